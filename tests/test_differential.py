"""The differential view of wire cells (asgi_conformance.differential)."""

from __future__ import annotations

import json
from typing import Any

from asgi_conformance.differential import MISSING, build, format_text, to_json


def _results(*cells: tuple[str, str, str, Any]) -> dict[str, Any]:
    results = []
    for target, scenario, verdict, observed in cells:
        cell: dict[str, Any] = {"target": target, "scenario": scenario, "verdict": verdict}
        if observed is not None:
            cell["observed"] = observed
        results.append(cell)
    return {"targets": [{"id": "a"}, {"id": "b"}, {"id": "c"}], "results": results}


def test_variants_become_rows_and_disagreements_come_first() -> None:
    data = _results(
        ("a", "wire.h1.cl.invalid", "pass", "+5=400, then closed | -1=400, then closed"),
        ("b", "wire.h1.cl.invalid", "fail", "+5=app saw POST body 5, then follow-up answered | -1=400, then closed"),
        ("c", "wire.h1.cl.invalid", "pass", "+5=400, then closed | -1=400, then closed"),
        ("a", "wire.h1.host.missing", "pass", "no-host=400"),
        ("b", "wire.h1.host.missing", "pass", "no-host=400"),
        ("a", "http.scope.method", "pass", "GET"),
    )
    rows = build(data)
    assert [(r.scenario, r.variant, r.disagree) for r in rows] == [
        ("wire.h1.cl.invalid", "+5", True),
        ("wire.h1.cl.invalid", "-1", False),
        ("wire.h1.host.missing", "no-host", False),
    ]
    assert rows[0].observed == {
        "a": "400, then closed",
        "b": "app saw POST body 5, then follow-up answered",
        "c": "400, then closed",
    }
    assert rows[2].observed["c"] == MISSING
    assert rows[0].verdicts["b"] == "fail"


def test_cells_without_variants_or_observed_values() -> None:
    data = _results(
        ("a", "wire.h1.resp.date", "pass", None),
        ("b", "wire.h1.resp.date", "fail", None),
        ("a", "wire.h1.slow.headers_unfinished", "info", "held past the 5s deadline"),
        ("b", "wire.h1.slow.headers_unfinished", "info", "gave up (408) within 1s"),
    )
    rows = {r.label: r for r in build(data)}
    assert rows["wire.h1.resp.date"].observed == {"a": "(pass)", "b": "(fail)", "c": MISSING}
    assert rows["wire.h1.resp.date"].disagree
    assert rows["wire.h1.slow.headers_unfinished"].observed["b"] == "gave up (408) within 1s"


def test_text_groups_targets_and_json_round_trips() -> None:
    data = _results(
        ("a", "wire.h1.clte.both", "pass", "cl.te=400, then closed"),
        ("b", "wire.h1.clte.both", "fail", "cl.te=app saw POST body 0, then follow-up answered, SMUGGLED REQUEST RAN"),
        ("c", "wire.h1.clte.both", "pass", "cl.te=400, then closed"),
    )
    rows = build(data)
    text = format_text(rows)
    assert "1 of 1 wire payloads handled differently" in text
    assert "    a, c: 400, then closed" in text
    assert "SMUGGLED" in text
    assert json.loads(json.dumps(to_json(rows)))[0]["disagree"] is True
    assert format_text([]).startswith("differential: no wire cells")


def test_a_real_results_file_shape() -> None:
    """Targets missing from the targets list still get a column; observed that is not a string is shown as repr."""
    data = {"results": [{"target": "x", "scenario": "wire.h1.a.b", "verdict": "info", "observed": [1, 2]}]}
    rows = build(data)
    assert rows[0].observed == {"x": "[1, 2]"}
