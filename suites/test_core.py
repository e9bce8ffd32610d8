"""Core protocol: the scope and the call (spec-catalogue §1; asgi.rst).

Judged on HTTP scopes, which every target serves: the echo app reports the scope,
the receive events, and facts about how it was called (its call counter, whether
the scope was a dict, whether ``receive`` returned an awaitable). Lifespan and
WebSocket scopes are judged by their own suites.
"""

from __future__ import annotations

import secrets
from typing import Any

from asgi_conformance import MUST, SHOULD, Server, check, expect, note, scenario, unsupported

SPEC = "core › Applications"
ABSENT: Any = object()


@scenario("core.scope.is_dict", "the scope is a dict", level=MUST, spec=SPEC)
def test_scope_is_dict(server: Server) -> None:
    interface = server.echo("/echo").app.get("interface", {})
    check(
        interface.get("scope_is_dict") is True,
        "the scope is not a dict",
        expected="dict (or a subclass)",
        observed=interface.get("scope_class"),
    )


@scenario("core.scope.type", "scope['type'] is present and a str naming the protocol", level=MUST, spec=SPEC)
def test_scope_type(server: Server) -> None:
    expect(server.echo("/echo").scope.get("type", ABSENT), "http", "scope['type'] of an HTTP request")


@scenario(
    "core.scope.asgi_dict",
    "scope['asgi'] is a dict whose 'version' is a str ('3.0' for a single-callable app)",
    level=MUST,
    spec=SPEC,
)
def test_scope_asgi_dict(server: Server) -> None:
    """MUST: presence and types are stated. SHOULD: "3.0", inferred from the app being an ASGI 3
    single callable ("2.0" is what a missing version means, and is the legacy interface)."""
    asgi = server.echo("/echo").scope.get("asgi", ABSENT)
    check(isinstance(asgi, dict), "scope['asgi'] is missing or not a dict", expected="a dict", observed=asgi)
    version = asgi.get("version", ABSENT)
    check(isinstance(version, str), "asgi['version'] is missing or not a str", expected="'3.0'", observed=version)
    expect(version, "3.0", "asgi['version'] for an ASGI 3 app", level=SHOULD)


def _non_str_keys(value: Any, where: str) -> list[str]:
    """Paths to every dict key in ``value`` that is not a str."""
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                found.append(f"{where}[{key!r}]")
            found.extend(_non_str_keys(item, f"{where}[{key!r}]"))
    elif isinstance(value, list | tuple):
        for n, item in enumerate(value):
            found.extend(_non_str_keys(item, f"{where}[{n}]"))
    return found


@scenario(
    "core.keys.unicode",
    "every dict key in the scope and the received events is a str",
    level=MUST,
    spec="core › Strings and Unicode",
)
def test_keys_unicode(server: Server) -> None:
    seen = server.echo("/echo?q=1", [("X-One", "1")], b"body", method="POST")
    bad = _non_str_keys(seen.scope, "scope") + _non_str_keys(seen.events, "events")
    check(not bad, "some dict keys are not str", expected="str keys only", observed=bad)


@scenario(
    "core.scope.fresh_per_call",
    "changes one call makes to its scope do not show in the next call's scope",
    level=SHOULD,
    spec="core › Connection Scope, Middleware",
)
def test_scope_fresh_per_call(server: Server) -> None:
    """SHOULD: inference; middleware is told to copy-and-change scopes, which only works if
    the server gives each call its own. The echo app adds a key and a header after its snapshot."""
    token = secrets.token_hex(4)
    leaks: dict[str, Any] = {}
    with server.connection() as conn:
        server.echo_over(conn, "/echo/fresh/1", [("X-Ac-Mutate", token)])
        later = [server.echo_over(conn, "/echo/fresh/2")]
    later.append(server.echo("/echo/fresh/3"))
    for n, seen in enumerate(later, 2):
        if f"ac_{token}" in seen.scope:
            leaks[f"request {n}: scope key"] = "ac_<token>"
        if any(
            isinstance(h, list | tuple) and len(h) == 2 and h[0] == b"x-ac-injected"
            for h in seen.scope.get("headers") or ()
        ):
            leaks[f"request {n}: headers"] = "x-ac-injected"
    check(not leaks, "an earlier call's changes to its scope leaked", expected={}, observed=leaks)


@scenario(
    "core.extensions.shape",
    "scope['extensions'], if present, is a dict of extension name -> dict",
    level=MUST,
    spec="core › Extensions",
)
def test_extensions_shape(server: Server) -> None:
    """MUST: a dict (format definition); SHOULD: each entry's value is a dict ("should")."""
    extensions = server.echo("/echo").scope.get("extensions", ABSENT)
    if extensions is ABSENT or extensions is None:
        unsupported(f"the scope has {'no' if extensions is ABSENT else 'a None'} extensions key")
    check(isinstance(extensions, dict), "extensions is not a dict", expected="a dict", observed=extensions)
    bad_keys = [k for k in extensions if not isinstance(k, str)]
    check(not bad_keys, "some extension names are not str", expected="str names", observed=bad_keys)
    bad = {k: v for k, v in extensions.items() if not isinstance(v, dict)}
    check(not bad, "some extension entries are not dicts", expected="dict values", observed=bad, level=SHOULD)


@scenario(
    "core.extensions.not_shared",
    "the extensions dict is not shared between scopes: a change in one request does not leak",
    level=SHOULD,
    spec="core › Middleware",
)
def test_extensions_not_shared(server: Server) -> None:
    """SHOULD: inference from the middleware rules. Request 1 adds ``ac.<token>`` to its
    extensions after the snapshot; requests 2 (same connection) and 3 (new one) must not see it."""
    token = secrets.token_hex(4)
    with server.connection() as conn:
        first = server.echo_over(conn, "/echo/ext/1", [("X-Ac-Mutate", token)])
        extensions = first.scope.get("extensions", ABSENT)
        if not isinstance(extensions, dict):
            shown = "absent" if extensions is ABSENT else repr(extensions)
            unsupported(f"the scope has no extensions dict (extensions: {shown})")
        later = [server.echo_over(conn, "/echo/ext/2")]
    later.append(server.echo("/echo/ext/3"))
    leaked = [n for n, seen in enumerate(later, 2) if f"ac.{token}" in (seen.scope.get("extensions") or {})]
    check(
        not leaked,
        "a key one request added to its extensions shows in later requests",
        expected="the key request 1 added ('ac.<token>') in no later scope",
        observed=f"seen in request(s) {leaked}",
    )


@scenario(
    "core.app.one_call_per_connection",
    "the app is called exactly once per HTTP request (not per TCP connection)",
    level=MUST,
    spec="core › Applications; www › HTTP Connection Scope",
)
def test_one_call_per_request(server: Server) -> None:
    """Three requests on one keep-alive connection must be three consecutive app calls.

    The app counts every call in its process; nothing else talks to this process
    while a test runs, so the numbers are consecutive unless the app is called
    more (or less) than once per request."""
    with server.connection() as conn:
        seen = [server.echo_over(conn, f"/echo/calls/{n}") for n in range(3)]
    pids = {e.app.get("pid") for e in seen}
    calls = [e.app.get("call") for e in seen]
    if len(pids) > 1:
        note(f"the requests were served by several processes {sorted(map(str, pids))}: only distinctness is judged")
        check(len(set(calls)) == 3, "two requests share an app call", expected="3 distinct calls", observed=calls)
        return
    start = calls[0] if isinstance(calls[0], int) else 0
    expect(calls, [start, start + 1, start + 2], "the app's call numbers for three requests")


@scenario(
    "core.app.call_signature",
    "the app is called with (scope, receive, send); receive and send are awaitable callables",
    level=MUST,
    spec=SPEC,
)
def test_call_signature(server: Server) -> None:
    """MUST: the interface definition. ``send`` is proven awaitable by the response arriving;
    ``receive`` must give awaitables that resolve to event dicts."""
    seen = server.echo("/echo", body=b"x", method="POST")
    interface = seen.app.get("interface", {})
    wanted = {"receive_callable": True, "send_callable": True, "receive_awaitable": True}
    expect({k: interface.get(k) for k in wanted}, wanted, "what the app was given")
    check(
        bool(seen.events) and all(isinstance(e, dict) for e in seen.events),
        "receive() did not return event dicts",
        expected="dicts",
        observed=seen.events,
    )
