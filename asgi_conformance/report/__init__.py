"""The HTML report: one self-contained page rendered with Jinja2 from the results JSON.

``render_html(results)`` is the matrix (scenarios grouped by area down the side, targets
across, a summary per target led by impact, a detail section per cell);
``render_diff_html(old, new, changes)`` is the page for ``asgi-conformance diff``.

Everything a target sent (observed values, messages, traces, logs, even its version string)
is untrusted: the templates autoescape every value, nothing from the results is marked safe,
nothing is embedded in a script (the page's script reads ``data-`` attributes), every
rendered string is bounded, and a Content-Security-Policy allows only the page's own
script (by hash) and no network loads at all.
"""

from __future__ import annotations

import base64
import hashlib
import re
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from .._version import __version__
from ..diff import KINDS, Change
from ..framework_view import build as build_framework_grids
from ..requirements import all_requirements
from ..scenarios import AREAS, IMPACTS

__all__ = ["render_diff_html", "render_html", "write_html"]

VERDICTS = ("pass", "fail", "warn", "info", "unsupported", "error")
NOT_RUN = "none"
LEVELS = ("MUST", "SHOULD", "MAY", "info")
DEFAULT_IMPACT = "interop"
PROBLEMS = ("fail", "warn")

CELL_VALUE_CHARS = 28  # an info cell's observed value in the matrix
FIELD_CHARS = 4000  # expected, observed, message, a note, an unknown field
SHORT_CHARS = 300  # names, versions, commands, IDs
TRACE_LINE_CHARS = 2000
TRACE_LINES = 60
BLOCK_CHARS = 16000  # a trace or a log slice in total
NOTES = 20
NOTE_CHARS = 1000

ASGI_DOCS = "https://asgi.readthedocs.io/en/latest/"
SPEC_DOCUMENTS = {
    "core": ASGI_DOCS + "specs/main.html",
    "www": ASGI_DOCS + "specs/www.html",
    "ls": ASGI_DOCS + "specs/lifespan.html",
    "ext": ASGI_DOCS + "extensions.html",
    "tls": ASGI_DOCS + "specs/tls.html",
}
_SPEC_PART = re.compile(r"^\s*(?P<doc>[a-z]+)\s*›\s*(?P<section>.*)$")
_RFC = re.compile(r"^\s*RFC\s*(?P<number>\d{1,5})\b(?P<rest>.*)$", re.IGNORECASE)
_RFC_SECTION = re.compile(r"§\s*(?P<section>\d+(?:\.\d+)*)")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\x80-\x9f\ud800-\udfff]")


# ---------------------------------------------------------------- text helpers


def clip(value: Any, limit: int = FIELD_CHARS) -> str:
    """A bounded, displayable string for any value (control characters shown as escapes)."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else repr(value)
    if len(text) > limit:
        text = text[: max(limit - 1, 0)] + "…"
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 256 else "\ufffd", text)


def clip_block(value: Any, limit: int = BLOCK_CHARS) -> str:
    """A bounded multi-line block: head and tail kept, the middle elided with a count."""
    if value is None:
        return ""
    if isinstance(value, list):
        lines = [clip(line, TRACE_LINE_CHARS) for line in value]
        if len(lines) > TRACE_LINES:
            keep = TRACE_LINES // 2
            lines = [*lines[:keep], f"… {len(lines) - 2 * keep} lines omitted …", *lines[-keep:]]
        text = "\n".join(lines)
    else:
        text = value if isinstance(value, str) else repr(value)
    if len(text) > limit:
        half = limit // 2
        text = f"{text[:half]}\n… {len(text) - 2 * half} characters omitted …\n{text[-half:]}"
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 256 else "\ufffd", text)


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def spec_links(spec: Any) -> list[dict[str, str | None]]:
    """The spec string's parts, each with a link to its document where the abbreviation is known."""
    parts = []
    for part in str(spec or "").split(";"):
        text = clip(part.strip(), SHORT_CHARS)
        if not text:
            continue
        href: str | None = None
        match = _SPEC_PART.match(text)
        rfc = _RFC.match(text)
        if match and match.group("doc") in SPEC_DOCUMENTS:
            href = SPEC_DOCUMENTS[match.group("doc")]
            section = slug(match.group("section").split(",")[0])
            if section and section != "intro":
                href += "#" + section
        elif rfc:
            href = f"https://www.rfc-editor.org/rfc/rfc{int(rfc.group('number'))}"
            section_match = _RFC_SECTION.search(rfc.group("rest"))
            if section_match:
                href += "#section-" + section_match.group("section")
        parts.append({"text": text, "href": href})
    return parts


def format_duration(seconds: Any) -> str:
    try:
        value = float(seconds)
    except (TypeError, ValueError):
        return ""
    if value < 1:
        return f"{value * 1000:.1f} ms"
    if value < 120:
        return f"{value:.2f} s"
    return f"{int(value // 60)} min {value % 60:.0f} s"


# ---------------------------------------------------------------- the view model


def _area_titles() -> dict[str, str]:
    titles: dict[str, str] = {}
    for area, title in AREAS.values():
        titles.setdefault(area, title)
    return titles


class _Ids:
    """Unique, stable HTML ids from untrusted names."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def make(self, *parts: str) -> str:
        base = "-".join(slug(p) or "x" for p in parts)[:200]
        candidate, n = base, 1
        while candidate in self.used:
            n += 1
            candidate = f"{base}-{n}"
        self.used.add(candidate)
        return candidate


def _target_view(target: dict[str, Any]) -> dict[str, Any]:
    stop = target.get("stop") if isinstance(target.get("stop"), dict) else None
    return {
        "id": clip(target.get("id"), SHORT_CHARS),
        "name": clip(target.get("name") or target.get("id"), SHORT_CHARS),
        "version": clip(target.get("version") or "", SHORT_CHARS),
        "variant": clip(target.get("variant") or "", SHORT_CHARS),
        "command": clip(target.get("command") or "", FIELD_CHARS),
        "bind": clip(target.get("bind") or "", SHORT_CHARS),
        "source": clip(target.get("source") or "", SHORT_CHARS),
        "capabilities": [clip(c, SHORT_CHARS) for c in (target.get("capabilities") or [])][:50],
        "ready_after": format_duration(target.get("ready_after_s")) if target.get("ready_after_s") is not None else "",
        "stop": None
        if stop is None
        else {
            "signal": clip(stop.get("signal"), SHORT_CHARS),
            "exit_status": clip(stop.get("exit_status"), SHORT_CHARS),
            "forced": bool(stop.get("forced")),
            "seconds": format_duration(stop.get("seconds")),
        },
    }


KNOWN_CELL_KEYS = frozenset(
    {"target", "scenario", "verdict", "expected", "observed", "message", "notes", "duration_s", "trace", "log"}
    | {"rerun", "nodeid", "baseline"}
)
BASELINE = {
    "known": "a known failure listed in the target's baseline (expected)",
    "flaky": "listed as known_flaky in the target's baseline (either outcome accepted)",
    "stale": "listed as a known failure in the baseline, but it passed: the entry is stale",
}


def _cell_view(
    cell: dict[str, Any] | None, target: dict[str, Any], scenario: dict[str, Any], ids: _Ids
) -> dict[str, Any]:
    anchor = ids.make("c", target["id"], scenario["id"])
    if cell is None:
        return {"anchor": anchor, "verdict": NOT_RUN, "label": "not run", "short": "", "present": False}
    verdict = str(cell.get("verdict") or "")
    css = verdict if verdict in VERDICTS else "other"
    observed = cell.get("observed")
    notes = cell.get("notes")
    if not isinstance(notes, list):
        notes = [] if notes is None else [notes]
    extra = [
        {"key": clip(k, SHORT_CHARS), "value": clip(v)}
        for k, v in sorted(cell.items())
        if k not in KNOWN_CELL_KEYS and v is not None
    ][:20]
    return {
        "anchor": anchor,
        "present": True,
        "verdict": css,
        "label": clip(verdict, 20) or "?",
        "short": clip(observed, CELL_VALUE_CHARS) if verdict == "info" and observed is not None else "",
        "title": clip(observed, 200) if observed is not None else clip(cell.get("message"), 200),
        "has_expected": "expected" in cell,
        "expected": clip(cell.get("expected")),
        "has_observed": "observed" in cell,
        "observed": clip(observed),
        "message": clip(cell.get("message")),
        "notes": [clip(n, NOTE_CHARS) for n in notes[:NOTES]]
        + ([f"… {len(notes) - NOTES} more notes"] if len(notes) > NOTES else []),
        "trace": clip_block(cell.get("trace")),
        "log": clip_block(cell.get("log")),
        "rerun": clip(cell.get("rerun"), FIELD_CHARS),
        "nodeid": clip(cell.get("nodeid"), SHORT_CHARS),
        "duration": format_duration(cell.get("duration_s")),
        "extra": extra,
        "baseline": clip(cell.get("baseline"), 20) if cell.get("baseline") is not None else "",
        "baseline_text": BASELINE.get(str(cell.get("baseline")), "a baseline entry applied"),
        "rich": any(
            [
                observed is not None,
                cell.get("message"),
                notes,
                cell.get("trace"),
                cell.get("log"),
                "expected" in cell,
                extra,
                cell.get("baseline"),
            ]
        ),
    }


def _scenario_view(scenario: dict[str, Any], ids: _Ids) -> dict[str, Any]:
    rows = all_requirements()
    requirements = []
    for rid in (scenario.get("requirements") or [scenario.get("id")])[:50]:
        row = rows.get(str(rid))
        requirements.append(
            {
                "id": clip(rid, SHORT_CHARS),
                "text": clip(row.text) if row else "",
                "level": clip(row.level, SHORT_CHARS) if row else "",
                "ref": clip(row.ref, SHORT_CHARS) if row else "",
            }
        )
    level = str(scenario.get("level") or "")
    impact = str(scenario.get("impact") or DEFAULT_IMPACT)
    sid = str(scenario.get("id"))
    return {
        "id": clip(sid, SHORT_CHARS),
        "raw_id": sid,
        "anchor": ids.make("s", sid),
        "row_anchor": ids.make("row", sid),
        "title": clip(scenario.get("title"), FIELD_CHARS),
        "level": clip(level, 20),
        "level_css": slug(level) or "none",
        "impact": clip(impact, 40),
        "impact_css": slug(impact) or "none",
        "spec": spec_links(scenario.get("spec")),
        "requirements": requirements,
        "requires": [clip(r, SHORT_CHARS) for r in (scenario.get("requires") or [])][:20],
    }


def _scenario_from_cell(scenario_id: str) -> dict[str, Any]:
    """A scenario the results name in a cell but do not describe: what the ID says."""
    try:
        from ..scenarios import area_of

        area = area_of(scenario_id)[0]
    except ValueError:
        area = "other"
    return {"id": scenario_id, "title": scenario_id, "area": area, "level": "", "spec": "", "requirements": []}


def build_model(results: dict[str, Any]) -> dict[str, Any]:
    """Everything the page template shows, bounded and as plain strings."""
    ids = _Ids()
    raw_targets = [t for t in (results.get("targets") or []) if isinstance(t, dict) and t.get("id") is not None]
    raw_scenarios = [s for s in (results.get("scenarios") or []) if isinstance(s, dict) and s.get("id") is not None]
    cells: dict[tuple[str, str], dict[str, Any]] = {}
    for cell in results.get("results") or []:
        if isinstance(cell, dict) and cell.get("target") is not None and cell.get("scenario") is not None:
            cells[(str(cell["target"]), str(cell["scenario"]))] = cell
    known_targets = {str(t["id"]) for t in raw_targets}
    known_scenarios = {str(s["id"]) for s in raw_scenarios}
    for target_id, scenario_id in cells:
        if target_id not in known_targets:
            known_targets.add(target_id)
            raw_targets.append({"id": target_id, "name": target_id})
        if scenario_id not in known_scenarios:
            known_scenarios.add(scenario_id)
            raw_scenarios.append(_scenario_from_cell(scenario_id))

    targets = []
    for raw in raw_targets:
        view = _target_view(raw)
        view["raw_id"] = str(raw["id"])
        # The column label: the target ID (unique), then the server's name (where it differs) and version.
        view["label"] = " ".join(p for p in (view["name"] if view["name"] != view["id"] else "", view["version"]) if p)
        view["anchor"] = ids.make("t", view["raw_id"])
        targets.append(view)

    titles = _area_titles()
    area_order = {area: i for i, area in enumerate(titles)}
    by_area: dict[str, list[dict[str, Any]]] = {}
    for raw in raw_scenarios:
        by_area.setdefault(str(raw.get("area") or "other"), []).append(raw)

    summary: dict[str, dict[str, Any]] = {
        t["raw_id"]: {
            "impacts": {impact: dict.fromkeys(PROBLEMS, 0) for impact in IMPACTS},
            "verdicts": dict.fromkeys((*VERDICTS, "other", NOT_RUN), 0),
            "total": 0,
        }
        for t in targets
    }
    areas: list[dict[str, Any]] = []
    for area in sorted(by_area, key=lambda a: (area_order.get(a, len(area_order)), a)):
        rows = []
        for raw in sorted(by_area[area], key=lambda s: str(s["id"])):
            scenario = _scenario_view(raw, ids)
            row_cells = []
            for target in targets:
                cell = cells.get((target["raw_id"], scenario["raw_id"]))
                view = _cell_view(cell, target, scenario, ids)
                view["target"] = target
                row_cells.append(view)
                counts = summary[target["raw_id"]]
                counts["total"] += 1
                counts["verdicts"][view["verdict"]] += 1
                if view["verdict"] in PROBLEMS:
                    impacts = counts["impacts"]
                    impacts.setdefault(scenario["impact"], dict.fromkeys(PROBLEMS, 0))[view["verdict"]] += 1
            scenario["cells"] = row_cells
            rows.append(scenario)
        areas.append({"id": clip(area, SHORT_CHARS), "title": clip(titles.get(area, area), SHORT_CHARS), "rows": rows})

    for target in targets:
        counts = summary[target["raw_id"]]
        total = counts["total"] or 1
        target["summary"] = counts
        target["problems"] = sum(sum(v.values()) for v in counts["impacts"].values())
        target["bar"] = [
            {"verdict": v, "count": counts["verdicts"][v], "percent": round(100 * counts["verdicts"][v] / total, 3)}
            for v in (*VERDICTS, "other", NOT_RUN)
            if counts["verdicts"][v]
        ]

    index = {(c["target"]["raw_id"], row["raw_id"]): c for a in areas for row in a["rows"] for c in row["cells"]}
    frameworks = _framework_view(results, index, {t["raw_id"]: t for t in targets})
    run = results.get("run")
    impacts = list(IMPACTS) + sorted({i for t in targets for i in t["summary"]["impacts"]} - set(IMPACTS))
    levels = list(LEVELS) + sorted({r["level"] for a in areas for r in a["rows"]} - set(LEVELS) - {""})
    return {
        "run": _run_view(run if isinstance(run, dict) else {}, results),
        "targets": targets,
        "areas": areas,
        "impacts": impacts,
        "verdicts": VERDICTS,
        "verdict_rows": [
            v
            for v in (*VERDICTS, "other", NOT_RUN)
            if v in VERDICTS or any(t["summary"]["verdicts"][v] for t in targets)
        ],
        "levels": levels,
        "frameworks": frameworks,
        "scenario_count": sum(len(a["rows"]) for a in areas),
        "cell_count": len(cells),
    }


def _framework_view(
    results: dict[str, Any], index: dict[tuple[str, str], dict[str, Any]], targets: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """The framework × server grids, each cell linking to its scenario's cell details."""
    grids = []
    for grid in build_framework_grids(results):
        rows = []
        for framework in grid.frameworks:
            cells = []
            for target_id in grid.targets:
                pair = grid.cells.get((framework, target_id))
                if pair is None:
                    cells.append(
                        {"verdict": NOT_RUN, "label": "not run", "summary": "", "anchor": "", "target": target_id}
                    )
                    continue
                linked = index.get((target_id, pair.scenarios[0])) if pair.scenarios else None
                cells.append(
                    {
                        "verdict": pair.verdict if pair.verdict in VERDICTS else "other",
                        "label": clip(pair.verdict, 20),
                        "summary": clip(pair.summary, 200),
                        "anchor": linked["anchor"] if linked and linked.get("present") else "",
                        "target": target_id,
                    }
                )
            rows.append({"framework": clip(framework, SHORT_CHARS), "cells": cells})
        grids.append(
            {
                "behaviour": clip(grid.behaviour, SHORT_CHARS),
                "title": clip(grid.title, SHORT_CHARS),
                "targets": [targets[t] for t in grid.targets if t in targets],
                "rows": rows,
            }
        )
    return grids


def _run_view(run: dict[str, Any], results: dict[str, Any]) -> list[tuple[str, str]]:
    fields = [
        ("harness", "asgi-conformance " + clip(run.get("harness_version"), SHORT_CHARS)),
        ("started", clip(run.get("started"), SHORT_CHARS)),
        ("duration", format_duration(run.get("duration_s"))),
        ("Python", " ".join(clip(run.get(k), SHORT_CHARS) for k in ("implementation", "python") if run.get(k))),
        ("platform", clip(run.get("platform"), SHORT_CHARS)),
        ("pytest", clip(run.get("pytest"), SHORT_CHARS)),
        ("timeout scale", clip(run.get("timeout_scale"), SHORT_CHARS)),
        ("mutant", clip(run.get("mutant"), SHORT_CHARS)),
        ("schema", clip(results.get("schema"), SHORT_CHARS)),
    ]
    return [(k, v) for k, v in fields if v and v.strip()]


# ---------------------------------------------------------------- rendering


@cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("asgi_conformance.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    # The page's own stylesheet and script (package files, never results data) go in verbatim;
    # the CSP admits the script by its hash, so nothing else can run.
    env.filters["slug"] = slug
    css, js = _asset("report.css"), _asset("report.js")
    env.globals.update(
        css=Markup(css),
        js=Markup(js),
        script_hash="sha256-" + base64.b64encode(hashlib.sha256(js.encode("utf-8")).digest()).decode("ascii"),
        version=__version__,
    )
    return env


def _asset(name: str) -> str:
    return resources.files("asgi_conformance.report").joinpath("templates", name).read_text("utf-8")


def render_html(results: dict[str, Any]) -> str:
    """The whole report: one self-contained HTML page."""
    model = build_model(results)
    template = _environment().get_template("report.html.j2")
    return template.render(m=model)


def _doc_summary(document: dict[str, Any]) -> dict[str, Any]:
    run = document.get("run")
    targets = [
        {
            "id": clip(t.get("id"), SHORT_CHARS),
            "version": clip(t.get("version") or "", SHORT_CHARS),
            "variant": clip(t.get("variant") or "", SHORT_CHARS),
        }
        for t in (document.get("targets") or [])
        if isinstance(t, dict)
    ][:200]
    return {
        "run": _run_view(run if isinstance(run, dict) else {}, document),
        "targets": targets,
        "cells": len(document.get("results") or []),
    }


def _titles(*documents: dict[str, Any]) -> dict[str, str]:
    titles: dict[str, str] = {}
    for document in documents:
        for scenario in document.get("scenarios") or []:
            if isinstance(scenario, dict) and scenario.get("id") is not None:
                titles.setdefault(str(scenario["id"]), clip(scenario.get("title"), SHORT_CHARS))
    return titles


def _messages(document: dict[str, Any]) -> dict[tuple[str, str], str]:
    return {
        (str(c["target"]), str(c["scenario"])): clip(c.get("message"), SHORT_CHARS)
        for c in document.get("results") or []
        if isinstance(c, dict) and c.get("target") is not None and c.get("scenario") is not None and c.get("message")
    }


def _change_view(change: Change, titles: dict[str, str], messages: dict[tuple[str, str], str]) -> dict[str, Any]:
    def css(verdict: str | None) -> str:
        return NOT_RUN if verdict is None else (verdict if verdict in VERDICTS else "other")

    return {
        "kind": change.kind,
        "target": clip(change.target, SHORT_CHARS),
        "scenario": clip(change.scenario, SHORT_CHARS),
        "title": titles.get(change.scenario, ""),
        "old_verdict": clip(change.old_verdict, 20) if change.old_verdict is not None else "absent",
        "new_verdict": clip(change.new_verdict, 20) if change.new_verdict is not None else "absent",
        "old_css": css(change.old_verdict),
        "new_css": css(change.new_verdict),
        "old_observed": clip(change.old_observed, 500),
        "new_observed": clip(change.new_observed, 500),
        "message": messages.get((change.target, change.scenario), ""),
    }


def render_diff_html(old: dict[str, Any], new: dict[str, Any], changes: list[Change]) -> str:
    """The diff page: both runs' provenance and the changed cells, in the order given (regressions first)."""
    titles = _titles(new, old)
    messages = _messages(new)
    counts = {kind: sum(1 for c in changes if c.kind == kind) for kind in KINDS}
    template = _environment().get_template("diff.html.j2")
    return template.render(
        old=_doc_summary(old),
        new=_doc_summary(new),
        changes=[_change_view(c, titles, messages) for c in changes],
        counts=counts,
    )


def write_html(results: dict[str, Any], path: Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(results), encoding="utf-8")
