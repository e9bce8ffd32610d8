"""The HTML report and the run diff: structure, counts, escaping, no network, ordering."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from markupsafe import escape

from asgi_conformance import diff
from asgi_conformance.report import build_model, render_diff_html, render_html, spec_links, write_html
from asgi_conformance.requirements import all_requirements

SCRIPT = "<script>window.__pwned=1;document.title='pwned'</script>"
ESCAPED = "&lt;script&gt;window.__pwned=1;document.title=&#39;pwned&#39;&lt;/script&gt;"
ATTRIBUTE_BREAK = '" onmouseover="window.__pwned=2" x="'


def synthetic() -> dict[str, Any]:
    """Two targets, four scenarios in two areas; one target sends hostile text everywhere."""
    return {
        "schema": 1,
        "run": {
            "started": "2026-11-25T12:00:00+00:00",
            "duration_s": 12.5,
            "harness_version": "0.1.0",
            "python": "3.11.7",
            "implementation": "cpython",
            "platform": "Linux-test",
            "pytest": "9.2.0",
            "timeout_scale": 1.0,
            "mutant": None,
        },
        "targets": [
            {
                "id": "good",
                "name": "goodserver",
                "version": "1.2.3",
                "variant": "plain",
                "command": "{python} -m goodserver {app}",
                "bind": "port",
                "capabilities": ["lifespan"],
            },
            {
                "id": "evil",
                "name": "evil" + SCRIPT,
                "version": "6.6.6" + ATTRIBUTE_BREAK,
                "variant": SCRIPT,
                "command": "evil " + SCRIPT,
                "bind": "port",
                "capabilities": [],
            },
        ],
        "scenarios": [
            {
                "id": "core.scope.type",
                "title": "scope['type'] is present",
                "area": "core",
                "level": "MUST",
                "spec": "core › Connection Scope",
                "requirements": ["core.scope.type"],
                "requires": [],
                "impact": "security",
            },
            {
                "id": "core.scope.fresh_per_call",
                "title": "a fresh scope per call",
                "area": "core",
                "level": "SHOULD",
                "spec": "core › Middleware",
                "requirements": ["core.scope.fresh_per_call"],
                "requires": [],
                "impact": "data-loss",
            },
            {
                "id": "http.scope.asgi.spec_version",
                "title": "the spec_version the server claims",
                "area": "http_scope",
                "level": "info",
                "spec": "www › HTTP Connection Scope; RFC 9110 §9.3.2",
                "requirements": ["http.scope.asgi.spec_version"],
                "requires": [],
                "impact": "interop",
            },
            {
                "id": "ls.scope.type",
                "title": "lifespan scope type",
                "area": "lifespan",
                "level": "MUST",
                "spec": "ls › Scope",
                "requirements": ["ls.scope.type"],
                "requires": ["lifespan"],
                "impact": "hang",
            },
        ],
        "results": [
            cell("good", "core.scope.type", "pass"),
            cell("good", "core.scope.fresh_per_call", "pass"),
            cell("good", "http.scope.asgi.spec_version", "info", observed="2.3"),
            cell("good", "ls.scope.type", "pass"),
            cell(
                "evil",
                "core.scope.type",
                "fail",
                message="the type was " + SCRIPT,
                expected="'http'",
                observed=SCRIPT,
                trace=["connect 127.0.0.1:1", "< " + SCRIPT],
                log="--- server log\n" + SCRIPT + "\n",
                notes=["note " + SCRIPT],
            ),
            cell("evil", "core.scope.fresh_per_call", "warn", message="leaked", observed=ATTRIBUTE_BREAK),
            cell("evil", "http.scope.asgi.spec_version", "info", observed=SCRIPT + "x" * 200),
            # ls.scope.type was not run on "evil": the page says "not run".
        ],
    }


def cell(target: str, scenario: str, verdict: str, **fields: Any) -> dict[str, Any]:
    return {
        "target": target,
        "scenario": scenario,
        "verdict": verdict,
        "duration_s": 0.01,
        "rerun": f"pytest --target={target} --scenario={scenario}",
        "nodeid": f"suites/test_x.py::test_{scenario.replace('.', '_')}[{target}]",
        **fields,
    }


class Tags(HTMLParser):
    """Every start tag with its attributes, and the text inside <script> elements."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self.in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self.in_script = tag == "script"
        if self.in_script:
            self.scripts.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self.in_script = False

    def handle_data(self, data: str) -> None:
        if self.in_script:
            self.scripts[-1] += data

    def find(self, tag: str, **wanted: str) -> list[dict[str, str | None]]:
        return [a for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in wanted.items())]


def parse(html: str) -> Tags:
    parser = Tags()
    parser.feed(html)
    parser.close()
    return parser


@pytest.fixture(scope="module")
def page() -> str:
    return render_html(synthetic())


def test_page_structure(page: str) -> None:
    assert page.startswith("<!DOCTYPE html>")
    tags = parse(page)
    assert len(tags.find("table", id="matrix")) == 1
    # one row per scenario, areas in catalogue order with their titles
    rows = [a for t, a in tags.tags if t == "tr" and "scenario" in (a.get("class") or "").split()]
    assert [r["data-id"] for r in rows] == [
        "core.scope.fresh_per_call",
        "core.scope.type",
        "ls.scope.type",
        "http.scope.asgi.spec_version",
    ]
    assert [a["data-area"] for t, a in tags.tags if t == "tbody" and a.get("class") == "area"] == [
        "core",
        "lifespan",
        "http_scope",
    ]
    for title in ("Core protocol", "Lifespan", "HTTP connection scope"):
        assert title in page
    # targets across, with name and version
    matrix_html = page[page.index('id="matrix"') : page.index("</table>", page.index('id="matrix"'))]
    assert "goodserver 1.2.3" in matrix_html
    cells = [a for t, a in tags.tags if t == "td" and "cell" in (a.get("class") or "").split()]
    assert len(cells) == 8
    assert sorted(c["data-verdict"] or "" for c in cells) == sorted(
        ["pass", "pass", "info", "pass", "fail", "warn", "info", "none"]
    )
    assert "not run" in page
    # an info cell shows its observed value in the matrix
    assert re.search(r'class="cell v-info".*?info<span class="obs">2\.3</span>', page)
    # every present cell links to its detail section lower in the page (works without JS)
    links = [a["href"] for t, a in tags.tags if t == "a" and a.get("class") == "cell-link"]
    assert len(links) == 7
    ids = {a["id"] for _, a in tags.tags if a.get("id")}
    assert all(href and href[1:] in ids for href in links)
    # the filters exist but stay hidden until the script shows them
    assert "hidden" in tags.find("form", id="filters")[0]


def test_detail_sections(page: str) -> None:
    # requirement text from the catalogue, spec links, expected/observed/message/trace/log, rerun
    assert "pytest --target=good --scenario=core.scope.type" in page
    assert 'href="https://asgi.readthedocs.io/en/latest/specs/main.html#connection-scope"' in page
    assert 'href="https://www.rfc-editor.org/rfc/rfc9110#section-9.3.2"' in page
    assert 'href="https://asgi.readthedocs.io/en/latest/specs/lifespan.html#scope"' in page
    text = all_requirements()["core.scope.type"].text
    assert str(escape(text)) in page
    detail = page[page.index('id="c-evil-core-scope-type"') :]
    detail = detail[: detail.index("</article>")]
    for label in ("message", "expected", "observed", "notes", "wire trace", "server log", "re-run"):
        assert label in detail


def test_summary_is_led_by_impact() -> None:
    model = build_model(synthetic())
    evil = next(t for t in model["targets"] if t["raw_id"] == "evil")
    good = next(t for t in model["targets"] if t["raw_id"] == "good")
    assert evil["summary"]["impacts"]["security"] == {"fail": 1, "warn": 0}
    assert evil["summary"]["impacts"]["data-loss"] == {"fail": 0, "warn": 1}
    assert evil["summary"]["impacts"]["hang"] == {"fail": 0, "warn": 0}
    assert evil["summary"]["verdicts"] == {
        "pass": 0,
        "fail": 1,
        "warn": 1,
        "info": 1,
        "unsupported": 0,
        "error": 0,
        "other": 0,
        "none": 1,
    }
    assert good["summary"]["verdicts"]["pass"] == 3
    assert good["problems"] == 0
    assert evil["problems"] == 2
    page = render_html(synthetic())
    summary = page[page.index('class="summary"') : page.index("</table>", page.index('class="summary"'))]
    # the impact rows come before the verdict rows, and name counts, not a percentage
    assert summary.index("security") < summary.index("Cells by verdict")
    assert '<span class="count v-fail">1 fail</span>' in summary
    assert '<span class="count v-warn">1 warn</span>' in summary
    assert "%</" not in summary


SHOWN_AS = {
    "observed": ("c-evil-core-scope-type", "<dt>observed</dt>"),
    "message": ("c-evil-core-scope-type", "<dt>message</dt>"),
    "notes": ("c-evil-core-scope-type", "<dt>notes</dt>"),
    "trace": ("c-evil-core-scope-type", "wire trace</p>"),
    "log": ("c-evil-core-scope-type", "server log</p>"),
    "name": ("t-evil", "<dt>server</dt>"),
    "variant": ("t-evil", "<dt>variant</dt>"),
    "command": ("t-evil", "<dt>command</dt>"),
}


@pytest.mark.parametrize("field", sorted(SHOWN_AS))
def test_target_text_is_escaped(page: str, field: str) -> None:
    assert SCRIPT not in page
    # the page's own script is the only script element
    tags = parse(page)
    assert len([t for t, _ in tags.tags if t == "script"]) == 1
    assert "__pwned" not in tags.scripts[0]
    # the escaped text is there, right after the label that shows this field
    anchor, label = SHOWN_AS[field]
    section = page[page.index(f'id="{anchor}"') :]
    section = section[: section.index("</article>")]
    shown = section[section.index(label) :]
    assert shown.index(ESCAPED) < 200, shown[:400]


def test_attribute_values_cannot_break_out(page: str) -> None:
    tags = parse(page)
    for _, attrs in tags.tags:
        assert "onmouseover" not in attrs
        assert "onerror" not in attrs
    assert "&#34; onmouseover=&#34;window.__pwned=2&#34;" in page


def test_no_external_resources(page: str) -> None:
    tags = parse(page)
    for tag, attrs in tags.tags:
        assert "src" not in attrs, (tag, attrs)
        assert tag not in ("link", "iframe", "img", "object", "embed", "base")
        href = attrs.get("href") or ""
        if re.match(r"(?i)\s*(https?:)?//", href):
            assert tag == "a", (tag, attrs)
            assert href.startswith(("https://asgi.readthedocs.io/", "https://www.rfc-editor.org/rfc/")), href
        assert not href.lower().startswith(("javascript:", "data:")), href
    styles = page[page.index("<style>") : page.index("</style>")]
    assert "url(" not in styles
    assert "@import" not in styles


def test_content_security_policy_admits_only_the_page_script(page: str) -> None:
    tags = parse(page)
    csp = next(a["content"] for t, a in tags.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy")
    assert csp is not None
    assert "default-src 'none'" in csp
    digest = base64.b64encode(hashlib.sha256(tags.scripts[0].encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in csp
    assert "unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]


def test_rendered_strings_are_bounded() -> None:
    results = synthetic()
    huge = "A" * 2_000_000
    results["results"][4].update(
        observed=huge, message=huge, trace=[huge] * 500, log=huge, notes=[huge] * 500, expected=huge
    )
    size = len(render_html(results))
    assert size < len(render_html(synthetic())) + 100_000


def test_baseline_status_is_shown() -> None:
    results = synthetic()
    results["results"][1].update(verdict="warn", baseline="known", message="known leak")
    results["results"][0].update(baseline="stale")
    page = render_html(results)
    row = page[page.index('data-id="core.scope.fresh_per_call"') :]
    row = row[: row.index("</tr>")]
    assert '<span class="bl" title="baseline: a known failure' in row
    assert ">known</span>" in row
    detail = page[page.index('id="c-good-core-scope-type"') :]
    detail = detail[: detail.index("</article>")]
    assert "<dt>baseline</dt>" in detail
    assert "the entry is stale" in detail


def test_unknown_and_missing_data_do_not_break_the_page() -> None:
    results = synthetic()
    results["results"].append(cell("stranger", "wire.h1.something", "weird", extra_field={"a": 1}))
    results["results"].append({"verdict": "pass"})  # no target, no scenario: ignored
    page = render_html(results)
    assert "stranger" in page
    assert "wire.h1.something" in page
    assert "HTTP/1.1 on the wire" in page
    assert "weird" in page
    assert "extra_field" in page
    assert render_html({"schema": 1, "run": {}, "targets": [], "scenarios": [], "results": []}).startswith(
        "<!DOCTYPE html>"
    )


def test_spec_links() -> None:
    links = spec_links("core › Applications; ext › Zero Copy Send; tls › (intro); RFC 6455 §5.5.1; weird thing")
    assert [link["href"] for link in links] == [
        "https://asgi.readthedocs.io/en/latest/specs/main.html#applications",
        "https://asgi.readthedocs.io/en/latest/extensions.html#zero-copy-send",
        "https://asgi.readthedocs.io/en/latest/specs/tls.html",
        "https://www.rfc-editor.org/rfc/rfc6455#section-5.5.1",
        None,
    ]
    assert links[0]["text"] == "core › Applications"
    assert spec_links("www › WSGI encoding differences, Spec")[0]["href"] == (
        "https://asgi.readthedocs.io/en/latest/specs/www.html#wsgi-encoding-differences"
    )
    assert spec_links("RFC 9110")[0]["href"] == "https://www.rfc-editor.org/rfc/rfc9110"


def test_write_html(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "index.html"
    write_html(synthetic(), path)
    assert path.read_text(encoding="utf-8") == render_html(synthetic())


def test_render_a_real_run(tmp_path: Path, run_token: str) -> None:
    out = tmp_path / "results.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            "--target=uvicorn-h11",
            "--scenario=core.scope",
            "--scenario=http.scope.asgi.spec_version",
            f"--conformance-json={out}",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert out.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads(out.read_text())
    page = render_html(results)
    tags = parse(page)
    rows = [a["data-id"] for t, a in tags.tags if t == "tr" and "scenario" in (a.get("class") or "").split()]
    core = sorted(s["id"] for s in results["scenarios"] if s["area"] == "core")
    assert rows == [*core, "http.scope.asgi.spec_version"]
    assert "core.scope.type" in rows
    verdicts = [a["data-verdict"] for t, a in tags.tags if t == "td" and "cell" in (a.get("class") or "").split()]
    assert len(verdicts) == len(results["results"]) == len(rows)
    assert "none" not in verdicts
    assert results["run"]["harness_version"] in page
    assert results["targets"][0]["version"] in page
    assert "pytest --target=uvicorn-h11 --scenario=core.scope.type" in page


# ---------------------------------------------------------------- the diff


def diff_documents() -> tuple[dict[str, Any], dict[str, Any]]:
    old = synthetic()
    new = copy.deepcopy(old)
    new["run"]["started"] = "2026-11-26T12:00:00+00:00"

    def set_cell(doc: dict[str, Any], target: str, scenario: str, **fields: Any) -> None:
        for c in doc["results"]:
            if (c["target"], c["scenario"]) == (target, scenario):
                c.update(fields)
                for key, value in list(fields.items()):
                    if value is None:
                        del c[key]
                return
        doc["results"].append(cell(target, scenario, **fields))

    set_cell(new, "good", "core.scope.type", verdict="fail", message="broke")  # regression
    set_cell(new, "evil", "core.scope.type", verdict="pass", message=None, observed=None)  # improvement
    set_cell(new, "good", "http.scope.asgi.spec_version", observed="2.4")  # changed
    set_cell(new, "evil", "ls.scope.type", verdict="unsupported")  # added
    set_cell(new, "evil", "core.scope.fresh_per_call", verdict="fail")  # warn -> fail: regression
    new["results"] = [c for c in new["results"] if (c["target"], c["scenario"]) != ("good", "ls.scope.type")]
    old["results"].append(cell("good", "core.gone", "fail"))  # removed (it did not pass)
    set_cell(new, "good", "core.scope.fresh_per_call", verdict="unsupported")  # same severity: changed
    return old, new


def test_diff_kinds_and_order() -> None:
    old, new = diff_documents()
    changes = diff.compute(old, new)
    assert [(c.kind, c.target, c.scenario) for c in changes] == [
        ("regression", "good", "core.scope.type"),
        ("regression", "good", "ls.scope.type"),  # it passed and is gone
        ("regression", "evil", "core.scope.fresh_per_call"),
        ("improvement", "evil", "core.scope.type"),
        ("changed", "good", "core.scope.fresh_per_call"),
        ("changed", "good", "http.scope.asgi.spec_version"),
        ("added", "evil", "ls.scope.type"),
        ("removed", "good", "core.gone"),
    ]
    spec = changes[5]
    assert (spec.old_verdict, spec.new_verdict, spec.old_observed, spec.new_observed) == ("info", "info", "2.3", "2.4")
    gone = changes[1]
    assert (gone.old_verdict, gone.new_verdict) == ("pass", None)
    assert diff.has_regressions(changes)
    assert diff.compute(old, new) == changes  # deterministic
    assert diff.compute(new, new) == []
    assert not diff.has_regressions(diff.compute(new, new))
    improvements_only = diff.compute(new, old)
    assert {c.kind for c in improvements_only} >= {"improvement"}


def test_diff_text() -> None:
    old, new = diff_documents()
    text = diff.format_text(diff.compute(old, new))
    lines = text.splitlines()
    assert lines[0] == "8 changed cells: 3 regression, 1 improvement, 2 changed, 1 added, 1 removed"
    assert lines[1].startswith("REGRESSION")
    assert "core.scope.type" in lines[1]
    assert "pass -> fail" in lines[1]
    assert "observed '2.3' -> '2.4'" in text or "observed 2.3 -> 2.4" in text
    assert lines[-1].startswith("REMOVED")
    assert diff.format_text([]) == "no changes\n"


def test_diff_text_escapes_control_characters() -> None:
    old, new = diff_documents()
    new["results"][2]["observed"] = "\x1b[2J\x1b[31mred\nline"
    text = diff.format_text(diff.compute(old, new))
    assert "\x1b" not in text
    assert "\\x1b[2J" in text
    assert len(text.splitlines()) == 9


def test_diff_html_orders_and_escapes() -> None:
    old, new = diff_documents()
    new["results"][2]["observed"] = SCRIPT
    changes = diff.compute(old, new)
    page = render_diff_html(old, new, changes)
    assert SCRIPT not in page
    assert ESCAPED in page
    tags = parse(page)
    kinds = [a["data-kind"] for t, a in tags.tags if t == "tr" and a.get("data-kind")]
    assert kinds == [c.kind for c in changes]
    assert kinds[0] == "regression"
    assert len([t for t, _ in tags.tags if t == "script"]) == 1
    assert "2026-11-26T12:00:00+00:00" in page
    assert "2026-11-25T12:00:00+00:00" in page
    empty = render_diff_html(new, new, [])
    assert "No cell changed" in empty
