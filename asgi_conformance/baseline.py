"""Known-failure baselines: a file per target listing the cells expected to fail.

A baseline lets a server adopt the suite before it is fully conformant: the run
passes while only listed cells fail, fails on a new failure, and fails when a listed
cell passes (the entry is *stale*: remove it), so lists never go stale silently.
The file is TOML (read with :mod:`tomllib`, written by :func:`dumps`)::

    target = "granian"                       # the target ID the file is for (required)

    [[known_failure]]
    scenario = "http.resp.content_length.mismatch"   # a scenario ID (required)
    reason = "sends the short body and keeps the connection open"   # why (required)
    versions = ">=2.8,<3"                    # optional: which target versions it applies to

    [[known_flaky]]                          # may pass or fail; never fails the run
    scenario = "wire.h1.conn.keep_alive"
    reason = "races the idle timer"

``versions`` is either a string of comma-separated clauses, each an operator
(``==``, ``!=``, ``>=``, ``<=``, ``>``, ``<``) and a version, all of which must hold,
or a list of exact versions. Versions compare by their numeric release parts
(``2.8.7`` < ``2.10``; ``1.0`` == ``1.0.0``; suffixes such as ``rc1`` or ``.post1`` are
ignored). An entry whose versions do not match the target's version does not apply.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "FAILING",
    "Baseline",
    "BaselineError",
    "Entry",
    "load",
    "load_all",
    "parse_version",
    "version_matches",
]

# Verdicts a known_failure entry expects (anything else is a pass for a baseline).
FAILING = frozenset({"fail", "warn", "error"})
_CLAUSE = re.compile(r"^\s*(==|!=|>=|<=|>|<)?\s*([0-9][0-9A-Za-z.+\-]*)\s*$")
_OPS = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    "<": lambda a, b: a < b,
}


class BaselineError(Exception):
    """A baseline file cannot be used (one line, names the file)."""


def parse_version(text: str) -> tuple[int, ...]:
    """The numeric release parts of a version, trailing zeros dropped: "2.8.0rc1" -> (2, 8)."""
    parts: list[int] = []
    for piece in text.strip().lstrip("vV").split("."):
        digits = re.match(r"\d+", piece)
        if digits is None:
            break
        parts.append(int(digits.group()))
        if digits.end() != len(piece):
            break
    while parts and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def _check_versions(spec: Any, where: str) -> str | list[str] | None:
    if spec is None:
        return None
    if isinstance(spec, list) and spec and all(isinstance(v, str) and v.strip() for v in spec):
        return [str(v) for v in spec]
    if isinstance(spec, str):
        for clause in spec.split(","):
            if not _CLAUSE.match(clause):
                raise BaselineError(f"{where}: versions clause {clause.strip()!r} is not like '>=2.8' or '==1.0'")
        return spec
    raise BaselineError(f"{where}: versions must be a string like '>=2.8,<3' or a list of exact versions")


def version_matches(spec: str | list[str] | None, version: str | None) -> bool:
    """Whether a target version is covered by an entry's ``versions`` (no spec: always)."""
    if spec is None:
        return True
    if version is None:
        return False
    have = parse_version(version)
    if isinstance(spec, list):
        return any(parse_version(v) == have for v in spec)
    for clause in spec.split(","):
        found = _CLAUSE.match(clause)
        if found is None:
            return False
        op, wanted = found.group(1) or "==", parse_version(found.group(2))
        if not _OPS[op](have, wanted):
            return False
    return True


@dataclass(frozen=True)
class Entry:
    scenario: str
    reason: str
    versions: str | list[str] | None = None
    flaky: bool = False

    def applies_to(self, version: str | None) -> bool:
        return version_matches(self.versions, version)


@dataclass
class Baseline:
    """One target's baseline file."""

    path: Path
    target: str
    entries: list[Entry] = field(default_factory=list)

    def lookup(self, scenario: str, version: str | None) -> Entry | None:
        """The entry for a cell, if one applies to this target version (the first wins)."""
        for entry in self.entries:
            if entry.scenario == scenario and entry.applies_to(version):
                return entry
        return None

    def updated(self, cells: Iterable[dict[str, Any]], version: str | None) -> Baseline:
        """This baseline rewritten from a run's cells of its target.

        Known failures become the cells that failed, warned or erred (keeping the
        reason and versions of entries that remain); entries for scenarios the run did not
        judge, entries for other versions and ``known_flaky`` entries are kept as they are.
        """
        judged = {c["scenario"]: c for c in cells}
        kept: list[Entry] = []
        listed: set[str] = set()
        for entry in self.entries:
            cell = judged.get(entry.scenario)
            applies = entry.applies_to(version)
            if entry.flaky or cell is None or not applies or cell["verdict"] in FAILING:
                kept.append(entry)
                if applies:
                    listed.add(entry.scenario)
        for scenario_id in sorted(judged):
            cell = judged[scenario_id]
            if cell["verdict"] in FAILING and scenario_id not in listed:
                message = str(cell.get("message") or cell["verdict"]).splitlines()[0][:200]
                observed = cell.get("observed")
                shown = str(observed) if len(str(observed)) <= 80 else str(observed)[:77] + "..."
                seen = f" (observed: {shown})" if observed is not None else ""
                kept.append(Entry(scenario_id, f"{cell['verdict']}: {message}{seen}"))
        return Baseline(self.path, self.target, kept)

    def dumps(self) -> str:
        """The baseline as TOML (known failures first, then known_flaky, each by scenario)."""
        lines = [f"# Known failures of {self.target} (asgi-conformance --baseline; see the README).", ""]
        lines.append(f"target = {_toml_str(self.target)}")
        for flaky in (False, True):
            for entry in sorted((e for e in self.entries if e.flaky == flaky), key=lambda e: e.scenario):
                lines += ["", "[[known_flaky]]" if flaky else "[[known_failure]]"]
                lines.append(f"scenario = {_toml_str(entry.scenario)}")
                lines.append(f"reason = {_toml_str(entry.reason)}")
                if isinstance(entry.versions, str):
                    lines.append(f"versions = {_toml_str(entry.versions)}")
                elif entry.versions is not None:
                    lines.append(f"versions = [{', '.join(_toml_str(v) for v in entry.versions)}]")
        return "\n".join(lines) + "\n"

    def write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(self.dumps())


def _toml_str(text: str) -> str:
    """A TOML basic string."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _entries(raw: Any, flaky: bool, where: str) -> list[Entry]:
    key = "known_flaky" if flaky else "known_failure"
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise BaselineError(f"{where}: {key} must be an array of tables ([[{key}]])")
    found = []
    for n, item in enumerate(raw, 1):
        at = f"{where}: {key} #{n}"
        if not isinstance(item, dict):
            raise BaselineError(f"{at} is not a table")
        unknown = sorted(set(item) - {"scenario", "reason", "versions"})
        if unknown:
            raise BaselineError(f"{at}: unknown key(s) {', '.join(unknown)} (scenario, reason, versions)")
        scenario_id, reason = item.get("scenario"), item.get("reason")
        if not isinstance(scenario_id, str) or not scenario_id:
            raise BaselineError(f"{at}: 'scenario' (a scenario ID) is required")
        if not isinstance(reason, str) or not reason.strip():
            raise BaselineError(f"{at} ({scenario_id}): 'reason' is required")
        found.append(Entry(scenario_id, reason, _check_versions(item.get("versions"), f"{at} ({scenario_id})"), flaky))
    return found


def load(path: str | Path) -> Baseline:
    """Read and check a baseline file; every problem is a one-line :class:`BaselineError`."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise BaselineError(f"baseline {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BaselineError(f"baseline {path}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise BaselineError(f"baseline {path}: not valid TOML: {exc}") from None
    where = f"baseline {path}"
    unknown = sorted(set(data) - {"target", "known_failure", "known_flaky"})
    if unknown:
        raise BaselineError(f"{where}: unknown key(s) {', '.join(unknown)} (target, known_failure, known_flaky)")
    target = data.get("target")
    if not isinstance(target, str) or not target:
        raise BaselineError(f'{where}: the target it is for is required (target = "NAME")')
    entries = _entries(data.get("known_failure"), False, where) + _entries(data.get("known_flaky"), True, where)
    return Baseline(path, target, entries)


def load_all(paths: Iterable[str | Path]) -> dict[str, Baseline]:
    """Baselines by target; two files for one target is an error."""
    found: dict[str, Baseline] = {}
    for path in paths:
        loaded = load(path)
        if loaded.target in found:
            raise BaselineError(f"baseline {path}: target {loaded.target!r} already has {found[loaded.target].path}")
        found[loaded.target] = loaded
    return found
