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
    alone=True,
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


# -- sending and errors (core › Error Handling) ------------------------------------------------
# The apps are asgi_conformance.apps.http_errors; the helpers live with the suites that own
# the detailed rows (test_http_errors.py, test_http_disconnect.py).

from asgi_conformance import Launcher  # noqa: E402  (the section's own import, kept with it)

ERRORS = "core › Error Handling"


@scenario(
    "core.send.invalid_raises",
    "send() raises for an invalid event: unknown type, a missing key, a value of the wrong type",
    level=SHOULD,
    spec=ERRORS,
    impact="interop",
)
def test_send_invalid_raises(server: Server) -> None:
    """SHOULD: one probe each (http.response.bogus; a start without status; str header pairs).
    The app catches what send() does, then answers; the cell lists each outcome."""
    from .test_http_errors import judge_probes

    judge_probes(server, ("unknown_type", "missing_status", "headers_str"))


@scenario(
    "core.send.extra_keys_tolerated",
    "unknown extra keys in otherwise valid events do not make send() raise",
    level=SHOULD,
    spec=ERRORS,
    impact="interop",
)
def test_send_extra_keys_tolerated(server: Server) -> None:
    """SHOULD NOT raise: start and body carry ``x_future: 1``; the response must be normal."""
    from asgi_conformance import client

    from .test_http_errors import new_path, shown, wait_journal

    token, path = new_path("err-extra-keys", "x")
    outcome = server.request("GET", path)
    raised = None
    if not isinstance(outcome, client.Response):
        raised = wait_journal(server, token, "raised", server.timeouts.hold)
    check(
        isinstance(outcome, client.Response) and outcome.status == 200 and outcome.body == b"extra-keys-ok",
        "an event with an unknown extra key was not sent normally",
        expected="status 200, body b'extra-keys-ok'",
        observed=shown(outcome) + (f"; send() raised {raised.get('exception')}" if raised else ""),
    )


@scenario(
    "core.app_error.terminate",
    "an app that raises mid-response: its instance ends and its connection is closed",
    level=MUST,
    spec=ERRORS,
    impact="hang",
)
def test_app_error_terminate(launcher: Launcher) -> None:
    """MUST: the app raises after one chunk of a chunked body; the client must see the
    connection end (close or reset), not a hang and not a response made to look complete.
    Whether the log shows a traceback is err.reporting. Runs on a dedicated process of
    its own (test_http_errors.error_server)."""
    from asgi_conformance import client

    from .test_http_errors import error_server, exchange, new_path, shown

    server = error_server(launcher)

    _, path = new_path("err-raise", "mid_body_chunked")
    outcome, _ = exchange(server, path)
    check(
        isinstance(outcome, client.Closed | client.Reset),
        "the connection of the failed instance did not end",
        expected="closed or reset before the response is complete",
        observed=shown(outcome),
    )


@scenario(
    "core.app_error.server_survives",
    "after app exceptions and protocol misuse, a fresh connection still gets a normal 200",
    level=MUST,
    spec=ERRORS,
    impact="hang",
)
def test_app_error_server_survives(launcher: Launcher) -> None:
    """MUST (implied): after an app raised mid-body, a later app that raises before start still
    gets its request ended (no hang: the server still handles app errors), and after that, an
    app that returned without responding and one that sent an invalid event, a new connection
    gets the echo app's 200. Runs on a dedicated process of its own (test_http_errors.error_server)."""
    from asgi_conformance import client

    from .test_http_errors import error_server, exchange, judge_survival, new_path, probe, shown

    server = error_server(launcher)

    exchange(server, new_path("err-raise", "mid_body_cl")[1])
    later, _ = exchange(server, new_path("err-raise", "before_start")[1])
    check(
        not isinstance(later, client.Timeout),
        "after one app raised mid-body, a later app's exception left its client hanging",
        expected="the later request ends (an error status, a close or a reset)",
        observed=shown(later),
    )
    exchange(server, new_path("err-return", "no_start")[1])
    probe(server, "unknown_type")
    judge_survival(server, "core-survives")


@scenario(
    "core.send_after_close.default_noop",
    "send() after the connection closed is a no-op unless the protocol says otherwise (HTTP: spec 2.4)",
    level=SHOULD,
    spec=ERRORS,
    impact="interop",
)
def test_send_after_close_default_noop(server: Server) -> None:
    """SHOULD, judged on HTTP where the scope claims spec_version < 2.4 (from 2.4 on, HTTP's own
    rule applies: http.send_closed.*, recorded only). Below 2.4: no exception, or an OSError
    subclass (what 2.4 defines, which apps are prepared for); any other exception is a warn."""
    from asgi_conformance import record

    from .test_http_disconnect import send_after_close

    seen = send_after_close(server, "report")
    record(f"spec_version {seen.spec_version_text}: {seen.describe()}")
    if seen.spec_version >= (2, 4):
        note("spec_version >= 2.4: HTTP's own rule applies (http.send_closed.oserror)")
        return
    check(
        not seen.raised or seen.oserror,
        "send() after the client left raised an exception that is neither a no-op nor the 2.4 OSError",
        expected="no exception (or an OSError subclass)",
        observed=seen.describe(),
    )


@scenario(
    "core.send_error.caught_by_server",
    "an exception from send() that the app lets escape is caught by the server, not logged as an error",
    level=SHOULD,
    spec=ERRORS,
    impact="cosmetic",
    alone=True,
)
def test_send_error_caught_by_server(server: Server) -> None:
    """SHOULD: no error-level report in the server log for that request (``timeouts.hold`` is the
    negative evidence), MUST: the next request succeeds. The error is the one send() raises after
    the client left; where send() does not raise, nothing escapes and the log must stay clean."""
    from asgi_conformance import record

    from .test_http_disconnect import send_after_close

    seen = send_after_close(server, "escape")
    check(
        seen.survived,
        "the server did not serve the next request",
        expected="200",
        observed=seen.next_request,
        level=MUST,
    )
    escaped = "escaped" if seen.raised else "nothing to escape"
    record(f"send() {seen.describe()}; {escaped}; error lines in the log: {len(seen.log_errors)}")
    check(
        not seen.log_errors,
        "the server logged the escaped send() exception as an error",
        expected="no traceback or ERROR line",
        observed=seen.log_errors,
    )


# -- events, versions, how the app is run (core › Events, Applications, Overview, Extensions) --

import math  # noqa: E402  (the section's own imports, kept with it)
import re  # noqa: E402
import time  # noqa: E402

from asgi_conformance import INFO, fail, record  # noqa: E402
from asgi_conformance.apps.typedjson import Opaque  # noqa: E402

EVENTS = "core › Events"
INT64 = (-(2**63), 2**63 - 1)
MISSING = "<missing>"
NO_SCOPE: Any = object()


@scenario(
    "core.event.type_key",
    "every received event is a dict with a str 'type' '<protocol>.<message>' of the scope's protocol",
    level=MUST,
    spec=f"{EVENTS}; Protocol Specifications",
)
def test_event_type_key(server: Server) -> None:
    """MUST: each event ``receive()`` returns is a dict with a str ``type``; SHOULD: namespaced by
    the scope's protocol ("http.<message>" in an HTTP scope). Judged on a POST with a body: the
    echo app records every event it receives (HTTP only; the WebSocket suite sees its own)."""
    seen = server.echo("/echo/event-types", body=b"event-types", method="POST")
    check(bool(seen.events), "receive() gave no event", expected="at least http.request", observed=seen.events)
    types = [e.get("type", MISSING) if isinstance(e, dict) else f"<not a dict: {e!r}>" for e in seen.events]
    check(
        all(isinstance(e, dict) and isinstance(e.get("type"), str) for e in seen.events),
        "some received events have no str 'type'",
        expected="a str 'type' in every event",
        observed=types,
    )
    kind = seen.scope.get("type")
    foreign = [t for t in types if not (isinstance(kind, str) and re.fullmatch(re.escape(kind) + r"\.\w[\w.]*", t))]
    check(
        not foreign,
        "some event types are not namespaced by the scope's protocol",
        expected=f"'{kind}.<message>'",
        observed=types,
        level=SHOULD,
    )


def _bad_values(value: Any, where: str) -> list[str]:
    """Paths to every value an event may not carry (bytes, str, int64, finite float, list, dict, bool, None)."""
    if value is None or isinstance(value, bool | str | bytes):
        return []
    if isinstance(value, int):
        return [] if INT64[0] <= value <= INT64[1] else [f"{where}: int {value} outside the signed 64-bit range"]
    if isinstance(value, float):
        return [] if math.isfinite(value) else [f"{where}: float {value!r}"]
    if isinstance(value, list | tuple):  # tuples stand in for lists
        return [bad for n, item in enumerate(value) for bad in _bad_values(item, f"{where}[{n}]")]
    if isinstance(value, dict):
        found = [f"{where}: key {key!r} is not a str" for key in value if not isinstance(key, str)]
        return found + [bad for key, item in value.items() for bad in _bad_values(item, f"{where}[{key!r}]")]
    if isinstance(value, Opaque):
        return [f"{where}: {value.type_name} {value.repr[:60]}"]
    return [f"{where}: {type(value).__name__}"]


@scenario(
    "core.event.value_types",
    "received events carry only bytes, str, int64, finite floats, lists, str-keyed dicts, bools, None",
    level=MUST,
    spec=EVENTS,
)
def test_event_value_types(server: Server) -> None:
    """MUST ("only allowed to contain"): the echo app records every event typed-JSON encoded, so a
    bytearray or memoryview body, a NaN, a non-str key or an object shows as what it is."""
    seen = server.echo("/echo/event-values?q=1", [("X-One", "1")], b"event-values", method="POST")
    bad = _bad_values(seen.events, "events")
    check(not bad, "received events carry values of types outside the allowed set", expected=[], observed=bad)


def _spec_version_of(scope: Any) -> Any:
    asgi = scope.get("asgi", ABSENT) if isinstance(scope, dict) else ABSENT
    return asgi.get("spec_version", ABSENT) if isinstance(asgi, dict) else ABSENT


@scenario(
    "core.scope.spec_version",
    "asgi['spec_version'] per scope type (optional; a str naming the protocol's spec version)",
    level=INFO,
    spec="core › Applications",
)
def test_asgi_spec_version_per_scope(server: Server) -> None:
    """MAY: the cell is the value per scope type: http (the echo app), websocket (the echo app
    over a WebSocket, where the target serves them), lifespan (the catalogue's lifespan stash,
    where the target sends lifespan). A present value that is not a "major.minor" str fails."""
    found: dict[str, Any] = {"http": _spec_version_of(server.echo("/echo/spec-version").scope)}
    capabilities = server.target.all_capabilities
    if "websocket" in capabilities:
        from .test_websocket import _ws_echo

        found["websocket"] = _spec_version_of(_ws_echo(server, "/ws/echo/spec-version").scope)
    if "lifespan" in capabilities:
        stash = server.control("lifespan")
        scope = stash.get("scope") if isinstance(stash, dict) else None
        found["lifespan"] = _spec_version_of(scope) if isinstance(scope, dict) else NO_SCOPE
    shown = {k: "absent (2.0)" if v is ABSENT else "no scope seen" if v is NO_SCOPE else v for k, v in found.items()}
    record(", ".join(f"{k} {v}" for k, v in shown.items()))
    bad = {
        k: v
        for k, v in found.items()
        if v is not ABSENT and v is not NO_SCOPE and not (isinstance(v, str) and re.fullmatch(r"\d+\.\d+", v))
    }
    check(not bad, "asgi['spec_version'] is not a version str", expected="a str such as '2.3'", observed=bad)


@scenario(
    "core.app.event_loop",
    "how the app is run: async library, event loop type, main thread; one loop for every call",
    level=INFO,
    spec="core › Overview",
)
def test_app_event_loop(server: Server) -> None:
    """Implied: apps are asyncio-compatible coroutines on the main thread. The cell records the
    library, the loop's type and whether the call ran on the main thread (where the echo app
    reports it). SHOULD (inference): three calls (two on one connection, one on another) served
    by one process run on one event loop, as the one main-thread loop the text describes."""
    with server.connection() as conn:
        seen = [server.echo_over(conn, f"/echo/loop/{n}") for n in range(2)]
    seen.append(server.echo("/echo/loop/2"))
    loops: dict[str, set[str]] = {}
    for echo in seen:
        loops.setdefault(str(echo.app.get("pid")), set()).add(str(echo.app.get("loop")))
    libraries = sorted({str(e.app.get("library")) for e in seen})
    kinds = sorted({str(e.app.get("loop")).rsplit(":", 1)[0] for e in seen})
    main = {e.app.get("main_thread", MISSING) for e in seen}
    main_shown = (
        "not reported" if main == {MISSING} else "yes" if main == {True} else "no" if main == {False} else "mixed"
    )
    record(f"library {'/'.join(libraries)}; loop {'/'.join(kinds)}; main thread: {main_shown}")
    split = {pid: sorted(found) for pid, found in loops.items() if len(found) > 1}
    check(
        not split,
        "calls served by one process ran on different event loops",
        expected="one loop per process",
        observed=split,
        level=SHOULD,
    )


@scenario(
    "core.extensions.honest",
    "the extensions the HTTP scope advertises (recorded; each is judged by its own scenarios)",
    level=INFO,
    spec="core › Extensions",
)
def test_extensions_honest(server: Server) -> None:
    """Implied: an advertised key means the server accepts that extension's events. Whether it
    does is for each extension's scenarios; here the cell lists the names, with a shape check:
    MUST a dict of str names, SHOULD each entry a dict."""
    extensions = server.echo("/echo/extensions").scope.get("extensions", ABSENT)
    if extensions is ABSENT or extensions is None:
        record("none advertised" if extensions is ABSENT else "extensions: None")
        return
    check(isinstance(extensions, dict), "extensions is not a dict", expected="a dict", observed=extensions)
    names = sorted(map(str, extensions))
    # Keys other requests' echo apps added (x-ac-mutate): a leak that core.extensions.not_shared
    # judges; shown once, so the cell does not change with the tokens or the order of the run.
    leaked = [n for n in names if re.fullmatch(r"ac\.[0-9a-f]{8}", n)]
    shown = [n for n in names if n not in leaked]
    if leaked:
        shown.append("ac.<token> keys leaked from earlier requests (see core.extensions.not_shared)")
    record(", ".join(shown) or "{} (none advertised)")
    bad_names = [k for k in extensions if not isinstance(k, str)]
    check(not bad_names, "some extension names are not str", expected="str names", observed=bad_names)
    bad = {k: v for k, v in extensions.items() if not isinstance(v, dict)}
    check(not bad, "some advertised extensions' entries are not dicts", expected="dicts", observed=bad, level=SHOULD)


@scenario(
    "core.app.legacy_asgi2",
    "a class-style ASGI 2 app is served: app(scope), then await instance(receive, send)",
    level=SHOULD,
    spec="core › Applications, Legacy Applications",
)
def test_app_legacy_asgi2(launcher: Launcher) -> None:
    """SHOULD ("should try to support"). A dedicated process serves ``serve:legacy``, the class
    in apps/legacy.py, which answers every request with its scope's asgi dict. Served: the cell
    records asgi['version']. Not served: the process exits, or its first answer is not the app's
    200, before ``timeouts.startup`` (a server that calls the class as ASGI 3 answers 500)."""
    from asgi_conformance import client
    from asgi_conformance.apps.typedjson import loads
    from asgi_conformance.timing import Deadline

    process = launcher.start("legacy", wait_ready=False)
    assert process.address is not None
    deadline = Deadline(launcher.timeouts.startup)
    outcome: client.Outcome | None = None
    pause = 0.005
    while process.exit_status() is None and not deadline.expired:
        outcome = client.exchange(
            process.address,
            client.build_request("GET", f"/legacy/{secrets.token_hex(4)}"),
            timeout=min(launcher.timeouts.request, max(deadline.remaining(), 0.05)),
        )
        if isinstance(outcome, client.Response):
            break
        time.sleep(min(pause, deadline.remaining()))  # poll interval until the server listens, bounded
        pause = min(pause * 2, 0.1)
    if not isinstance(outcome, client.Response):
        exited = process.exit_status()
        fail(
            "the legacy ASGI 2 app was not served",
            expected="the app's 200",
            observed=f"exited with status {exited}" if exited is not None else client.describe(outcome),
        )
    try:
        data = loads(outcome.body) if outcome.status == 200 else None
    except ValueError:
        data = None
    if not isinstance(data, dict) or data.get("legacy") is not True:
        fail(
            "the legacy ASGI 2 app was not served",
            expected="the app's 200",
            observed=f"{client.describe(outcome)}: {outcome.body[:200]!r}",
        )
    asgi = data.get("asgi")
    version = asgi.get("version", "absent (2.0)") if isinstance(asgi, dict) else f"asgi {asgi!r}"
    record(f"served; asgi version {version}")
