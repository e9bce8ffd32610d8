"""The results JSON: loading and validating it, and merging separate runs."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from asgi_conformance.merge import MergeError, merge
from asgi_conformance.results import SCHEMA_PATH, ResultsError, load, validate

SCHEMA = json.loads(SCHEMA_PATH.read_text())


def make_results(cells: dict[tuple[str, str], str], *, started: str = "2026-11-25T10:00:00+00:00") -> dict[str, Any]:
    """A small valid results document: ``{(target, scenario): verdict}``."""
    targets = list(dict.fromkeys(t for t, _ in cells))
    scenarios = sorted({s for _, s in cells})
    return {
        "schema": 1,
        "run": {
            "started": started,
            "duration_s": 1.5,
            "harness_version": "0.1.0",
            "python": "3.11.9",
            "platform": "Linux-test",
        },
        "targets": [
            {
                "id": t,
                "name": t.split("-")[0],
                "version": "1.0",
                "variant": "test",
                "command": "{python} -m x {app} --port {port}",
                "bind": "port",
                "capabilities": ["lifespan"],
            }
            for t in targets
        ],
        "scenarios": [
            {
                "id": s,
                "title": s,
                "area": "http_scope",
                "level": "MUST",
                "spec": "test",
                "requirements": [s],
            }
            for s in scenarios
        ],
        "results": [
            {
                "target": t,
                "scenario": s,
                "verdict": v,
                "duration_s": 0.01,
                "rerun": f"pytest --target={t} --scenario={s}",
                **({"observed": "1.1"} if v == "info" else {}),
            }
            for (t, s), v in cells.items()
        ],
    }


def write(path: Path, data: Any) -> str:
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return str(path)


def test_schema_is_a_valid_json_schema_and_documents_every_property() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["properties"]["schema"] == {**SCHEMA["properties"]["schema"], "const": 1}

    def undocumented(node: Any, where: str) -> list[str]:
        found = []
        for name, sub in (node.get("properties") or {}).items():
            if "description" not in sub:
                found.append(f"{where}.{name}")
            found += undocumented(sub.get("items", sub), f"{where}.{name}")
        return found

    assert undocumented(SCHEMA, "") == []


def test_synthetic_document_is_valid() -> None:
    data = make_results({("a", "http.scope.type"): "pass"})
    jsonschema.validate(data, SCHEMA)
    assert validate(data) is data


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "not a results document"),
        ({**make_results({("a", "x.y"): "pass"}), "schema": 2}, "results schema 2; this asgi-conformance"),
        ({"schema": 1, "run": {}}, "does not match the results schema: (top): 'targets' is a required property"),
    ],
)
def test_bad_files_are_one_line_errors(tmp_path: Path, content: Any, message: str) -> None:
    path = write(tmp_path / "r.json", content)
    with pytest.raises(ResultsError) as raised:
        load(path)
    assert message in str(raised.value)
    assert str(raised.value).startswith(path)
    assert "\n" not in str(raised.value)


def test_validation_errors_are_summarized(tmp_path: Path) -> None:
    data = make_results({("a", "x.y"): "pass", ("a", "x.z"): "pass"})
    data["results"][0]["verdict"] = "splendid"
    data["results"][1]["verdict"] = "bogus"
    with pytest.raises(ResultsError) as raised:
        load(write(tmp_path / "r.json", data))
    assert "results/0/verdict: 'splendid' is not one of" in str(raised.value)
    assert "(and 1 more)" in str(raised.value)
    with pytest.raises(ResultsError, match="no such file"):
        load(tmp_path / "missing.json")


def test_merge_unions_targets_scenarios_and_cells() -> None:
    one = make_results({("uvicorn", "http.a"): "pass", ("uvicorn", "http.b"): "fail"})
    two = make_results(
        {("granian", "http.a"): "fail", ("granian", "http.c"): "info"}, started="2026-11-25T09:00:00+00:00"
    )
    merged = merge([("one.json", one), ("two.json", two)])
    jsonschema.validate(merged, SCHEMA)
    assert [t["id"] for t in merged["targets"]] == ["uvicorn", "granian"]
    assert [s["id"] for s in merged["scenarios"]] == ["http.a", "http.b", "http.c"]
    assert {(c["target"], c["scenario"]): c["verdict"] for c in merged["results"]} == {
        ("uvicorn", "http.a"): "pass",
        ("uvicorn", "http.b"): "fail",
        ("granian", "http.a"): "fail",
        ("granian", "http.c"): "info",
    }
    run = merged["run"]
    assert run["started"] == "2026-11-25T09:00:00+00:00"
    assert run["duration_s"] == 3.0
    assert [s["file"] for s in run["sources"]] == ["one.json", "two.json"]
    assert run["sources"][1]["targets"] == ["granian"]
    # Merging a merged document keeps a flat list of the source runs.
    three = make_results({("daphne", "http.a"): "pass"})
    again = merge([("merged.json", merged), ("three.json", three)])
    assert [s["file"] for s in again["run"]["sources"]] == ["one.json", "two.json", "three.json"]


def test_merge_refuses_mixed_schema_versions() -> None:
    one = make_results({("a", "http.a"): "pass"})
    two = {**make_results({("b", "http.a"): "pass"}), "schema": 2}
    with pytest.raises(MergeError, match=r"different schema versions \(one.json: 1, two.json: 2\)"):
        merge([("one.json", one), ("two.json", two)])


def test_merge_reports_duplicate_cells_unless_prefer_last() -> None:
    one = make_results({("a", "http.a"): "pass", ("a", "http.b"): "pass"})
    two = copy.deepcopy(one)
    two["results"][0]["verdict"] = "fail"
    with pytest.raises(MergeError) as raised:
        merge([("one.json", one), ("two.json", two)])
    assert str(raised.value) == (
        "duplicate cells: a x http.a (one.json and two.json) and 1 more (use --prefer-last to keep the later input's)"
    )
    merged = merge([("one.json", one), ("two.json", two)], prefer_last=True)
    assert {c["scenario"]: c["verdict"] for c in merged["results"]} == {"http.a": "fail", "http.b": "pass"}
