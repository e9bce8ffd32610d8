"""HTTP connection scope (spec-catalogue §4; www › HTTP Connection Scope)."""

from __future__ import annotations

from asgi_conformance import MUST, Server, expect, scenario


@scenario("http.scope.type", "plain HTTP requests get scope type 'http'", level=MUST, spec="www › HTTP")
def test_type(server: Server) -> None:
    expect(server.echo("/echo").scope.get("type"), "http", "scope['type']")


@scenario(
    "http.scope.raw_path.value",
    "raw_path is the path as received: undecoded, without the query",
    level=MUST,
    spec="www › HTTP Connection Scope",
)
def test_raw_path(server: Server) -> None:
    seen = server.echo("/echo/a%2Fb%20c?q=1")
    expect(seen.scope.get("raw_path"), b"/echo/a%2Fb%20c", "raw_path")
