"""The framework × server view: grids from results, in text and in the HTML report."""

from __future__ import annotations

from typing import Any

from asgi_conformance import framework_view
from asgi_conformance.report import render_html


def _results() -> dict[str, Any]:
    scenarios = [
        {"id": "fw.starlette.stream_disconnect", "framework": "starlette", "area": "framework"},
        {"id": "fw.fastapi.stream_disconnect", "framework": "fastapi", "area": "framework"},
        {"id": "fw.starlette.request_stream", "framework": "starlette", "area": "framework"},
        {"id": "chk.starlette.send_after_complete", "framework": "starlette", "area": "checker"},
        {"id": "chk.starlette.start_twice", "framework": "starlette", "area": "checker"},
        {"id": "http.scope.type", "area": "http_scope"},
    ]
    cells = [
        ("uvicorn", "fw.starlette.stream_disconnect", "pass", None),
        ("granian", "fw.starlette.stream_disconnect", "fail", "12 chunks after the client left"),
        ("uvicorn", "fw.fastapi.stream_disconnect", "pass", None),
        ("uvicorn", "fw.starlette.request_stream", "fail", "not a key behaviour"),
        ("uvicorn", "chk.starlette.send_after_complete", "pass", None),
        ("uvicorn", "chk.starlette.start_twice", "pass", None),
        ("granian", "chk.starlette.send_after_complete", "fail", "http.response.body after the final body"),
        ("granian", "chk.starlette.start_twice", "pass", None),
        ("uvicorn", "http.scope.type", "pass", None),
    ]
    return {
        "targets": [{"id": "uvicorn"}, {"id": "granian"}],
        "scenarios": scenarios,
        "results": [
            {"target": t, "scenario": s, "verdict": v, **({"observed": o} if o else {})} for t, s, v, o in cells
        ],
    }


def test_one_grid_per_key_behaviour_and_one_for_the_checker() -> None:
    grids = framework_view.build(_results())
    assert [g.behaviour for g in grids] == ["stream_disconnect", "checker"]
    stream, checker = grids
    assert stream.frameworks == ["fastapi", "starlette"]
    assert stream.targets == ["uvicorn", "granian"]
    assert stream.cells[("starlette", "granian")].verdict == "fail"
    assert stream.cells[("starlette", "granian")].summary == "12 chunks after the client left"
    assert ("fastapi", "granian") not in stream.cells
    assert checker.cells[("starlette", "uvicorn")].verdict == "pass"
    assert checker.cells[("starlette", "granian")].verdict == "fail"
    assert checker.cells[("starlette", "granian")].summary == "1 of 2 broken: send_after_complete"


def test_no_framework_scenarios_no_view() -> None:
    results = _results()
    results["scenarios"] = [s for s in results["scenarios"] if not s["id"].startswith(("fw.", "chk."))]
    results["results"] = [c for c in results["results"] if not c["scenario"].startswith(("fw.", "chk."))]
    assert framework_view.build(results) == []
    assert 'id="frameworks"' not in render_html(results)


def test_framework_read_from_the_id_when_results_do_not_say() -> None:
    results = _results()
    for scenario in results["scenarios"]:
        scenario.pop("framework", None)
    assert framework_view.build(results)[0].frameworks == ["fastapi", "starlette"]


def test_text_and_json_forms() -> None:
    grids = framework_view.build(_results())
    text = framework_view.format_text(grids)
    assert "stream_disconnect: a streaming response stops when the client disconnects" in text
    assert "starlette   pass" in text
    assert framework_view.to_json(grids)[0]["cells"][0] == {
        "framework": "fastapi",
        "target": "uvicorn",
        "verdict": "pass",
        "summary": "",
        "scenarios": ["fw.fastapi.stream_disconnect"],
    }


def test_report_draws_the_grids_and_escapes_what_targets_sent() -> None:
    results = _results()
    results["results"][1]["observed"] = "<script>alert(1)</script>"
    page = render_html(results)
    assert 'id="frameworks"' in page
    assert 'id="fw-stream-disconnect"' in page
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_merge_recomputes_the_view_over_the_joined_matrix() -> None:
    from asgi_conformance.merge import merge
    from asgi_conformance.results import SCHEMA_VERSION

    whole = _results()
    run = {"started": "2026-11-25T00:00:00+00:00", "duration_s": 1.0}

    def part(target: str) -> dict[str, Any]:
        return {
            "schema": SCHEMA_VERSION,
            "run": run,
            "targets": [{"id": target}],
            "scenarios": whole["scenarios"],
            "results": [c for c in whole["results"] if c["target"] == target],
        }

    merged = merge([("a.json", part("uvicorn")), ("b.json", part("granian"))])
    grids = merged["frameworks"]
    assert [g["behaviour"] for g in grids] == ["stream_disconnect", "checker"]
    assert {(c["framework"], c["target"], c["verdict"]) for c in grids[0]["cells"]} == {
        ("fastapi", "uvicorn", "pass"),
        ("starlette", "uvicorn", "pass"),
        ("starlette", "granian", "fail"),
    }
