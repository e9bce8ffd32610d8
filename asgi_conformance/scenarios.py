"""The scenario model: a conformance case is a test function with a stable identity.

A case reads like h2spec's: a small function under the requirement it checks::

    @scenario(
        "http.scope.raw_path.value",
        "raw_path is the path as received: undecoded, without the query",
        level=MUST,
        spec="www › HTTP Connection Scope",
    )
    def test_raw_path(server: Server) -> None:
        seen = server.echo("/echo/a%2Fb%20c?q=1")
        expect(seen.scope.get("raw_path"), b"/echo/a%2Fb%20c", "raw_path")

The ID is dotted and lower-case (``area.topic.detail``), taken from the requirement
catalogue where a row exists; it never changes meaning. ``covers`` lists the
catalogue rows the case checks (default: the ID itself, if it is a row).
``requires`` lists target capabilities; a target without them gets ``unsupported``.
``impact`` says what a failure costs a user, so reports can lead with what matters:
``security`` (desync, smuggling, injection), ``data-loss`` (bytes or events lost or
altered), ``hang`` (a client or app left waiting), ``interop`` (a conformant app or
client breaks), ``cosmetic`` (visible, harmless). ``framework`` names the web framework whose app a case
drives (``fw.<framework>.*``, ``chk.<framework>.*``); such cases run only when that framework
is selected (``--framework``). ``waits`` says why a case may take longer than a second: it waits
out a timeout of the server's own (the benchmark lists these apart, and they start first when
cases run side by side). ``alone`` marks a case that observes the server process as a whole (its
log, its count of app calls): when cases run side by side, the ``alone`` ones run one at a time
on a second process of the target that no other case touches.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from .requirements import all_requirements
from .verdicts import Level

__all__ = ["AREAS", "IMPACTS", "Scenario", "all_scenarios", "area_of", "scenario", "scenario_of"]

F = TypeVar("F", bound=Callable[..., Any])

IMPACTS = ("security", "data-loss", "hang", "interop", "cosmetic")

_ID = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)+$")

# ID prefix -> (area, title). The area names the suite file: suites/test_<area>.py.
AREAS: dict[str, tuple[str, str]] = {
    "core": ("core", "Core protocol"),
    "ls": ("lifespan", "Lifespan"),
    "state": ("lifespan_state", "Lifespan state"),
    "http.scope": ("http_scope", "HTTP connection scope"),
    "http.request": ("http_request", "HTTP request body and disconnect"),
    "http.disconnect": ("http_request", "HTTP request body and disconnect"),
    "http.start": ("http_response", "HTTP response"),
    "http.body": ("http_response", "HTTP response"),
    "http.send": ("http_response", "HTTP response"),
    "http.resp": ("http_response", "HTTP response"),
    "http.send_closed": ("http_disconnect", "Send after the client has gone"),
    "err": ("http_errors", "App errors"),
    "err.ws": ("websocket", "WebSocket"),
    "ws": ("websocket", "WebSocket"),
    "ext": ("extensions", "Extensions"),
    "ext.tls": ("tls", "TLS"),
    "ext.push": ("wire_h2", "HTTP/2 on the wire"),
    "ext.trailers.h2_emission": ("wire_h2", "HTTP/2 on the wire"),
    "tls": ("tls", "TLS"),
    "wire.h1": ("wire_h1", "HTTP/1.1 on the wire"),
    "wire.h1.conn": ("wire_h1_conn", "HTTP/1.1 connection management"),
    "wire.ws": ("wire_ws", "WebSocket on the wire"),
    "wire.h2": ("wire_h2", "HTTP/2 on the wire"),
    "fw": ("framework", "Frameworks under each server"),
    "chk": ("checker", "App-side protocol checker"),
}


def area_of(scenario_id: str) -> tuple[str, str]:
    """The (area, title) an ID belongs to: its longest known prefix."""
    parts = scenario_id.split(".")
    for n in range(len(parts), 0, -1):
        prefix = ".".join(parts[:n])
        if prefix in AREAS:
            return AREAS[prefix]
    raise ValueError(f"scenario ID {scenario_id!r} is in no known area (see AREAS)")


@dataclass(frozen=True)
class Scenario:
    id: str
    title: str
    level: Level
    spec: str
    covers: tuple[str, ...]
    requires: frozenset[str]
    impact: str = "interop"
    framework: str | None = None
    """The web framework whose app the case drives (``fw.*``, ``chk.*``); None: plain ASGI apps."""
    waits: str | None = None
    """Why the case may take over a second: the server-side timeout it waits out, or how long it
    must watch a server hold something (negative evidence); None: it does not."""
    alone: bool = False
    """The case reads what the whole process did (its log, its app-call count): no case runs beside it."""

    @property
    def area(self) -> str:
        return area_of(self.id)[0]

    @property
    def requirement_text(self) -> str:
        """The catalogue's paraphrase of what is required (first covered row), else the title."""
        rows = all_requirements()
        for rid in self.covers:
            if rid in rows:
                return rows[rid].text
        return self.title

    def to_json(self) -> dict[str, Any]:
        return (
            {
                "id": self.id,
                "title": self.title,
                "area": self.area,
                "level": str(self.level),
                "spec": self.spec,
                "requirements": list(self.covers),
                "requires": sorted(self.requires),
                "impact": self.impact,
            }
            | ({"framework": self.framework} if self.framework is not None else {})
            | ({"waits": self.waits} if self.waits is not None else {})
        )


_REGISTRY: dict[str, Scenario] = {}
_ATTRIBUTE = "__asgi_conformance_scenario__"


def scenario(
    scenario_id: str,
    title: str,
    *,
    level: Level,
    spec: str,
    covers: Iterable[str] | None = None,
    requires: Iterable[str] = (),
    impact: str = "interop",
    framework: str | None = None,
    waits: str | None = None,
    alone: bool = False,
) -> Callable[[F], F]:
    """Declare a test function as the conformance case ``scenario_id``."""
    if not _ID.match(scenario_id):
        raise ValueError(f"scenario ID {scenario_id!r} must be dotted lower-case words")
    area_of(scenario_id)
    if covers is None:
        covers = (scenario_id,) if scenario_id in all_requirements() else ()
    unknown = [rid for rid in covers if rid not in all_requirements()]
    if unknown:
        raise ValueError(f"scenario {scenario_id!r} covers unknown requirement IDs {unknown}")
    if impact not in IMPACTS:
        raise ValueError(f"scenario {scenario_id!r}: impact {impact!r} is not one of {IMPACTS}")
    declared = Scenario(
        scenario_id, title, Level(level), spec, tuple(covers), frozenset(requires), impact, framework, waits, alone
    )

    def decorate(func: F) -> F:
        previous = _REGISTRY.get(scenario_id)
        if previous is not None and previous != declared:
            raise ValueError(f"scenario ID {scenario_id!r} is declared twice")
        _REGISTRY[scenario_id] = declared
        setattr(func, _ATTRIBUTE, declared)
        return func

    return decorate


def scenario_of(obj: object) -> Scenario | None:
    found = getattr(obj, _ATTRIBUTE, None)
    return found if isinstance(found, Scenario) else None


def all_scenarios() -> dict[str, Scenario]:
    """Every scenario declared so far (import the suites first)."""
    return dict(_REGISTRY)
