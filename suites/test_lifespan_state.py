"""Lifespan state (spec-catalogue §3; lifespan.rst › Lifespan State; www.rst scope key ``state``).

The shared server runs the normal lifespan handler, which stores in its state: a
``token`` str, a ``counter`` dict, an ``obj`` (whose id the stash keeps) and a
``startup_key`` set after an await, just before ``startup.complete``. The echo app
shows each request's copy; a request with ``x-ac-mutate: <token>`` changes its copy
after the snapshot (adds ``ac_<token>``, deletes ``token``, increments ``counter``).
State is optional: a target without it gets ``unsupported`` here, never ``fail``.
"""

from __future__ import annotations

import uuid
from typing import Any

from websockets.exceptions import WebSocketException
from websockets.sync.client import ClientConnection, connect, unix_connect

from asgi_conformance import (
    INFO,
    MAY,
    MUST,
    SHOULD,
    Echo,
    Server,
    check,
    fail,
    note,
    record,
    scenario,
    unsupported,
)
from asgi_conformance.apps.lifespan import STATE_KEYS_AT_STARTUP
from asgi_conformance.apps.typedjson import Opaque, loads
from asgi_conformance.server import parse_echo

from .lifespan_runs import ErrorRun, StopRun, lifespan_stash

STATE_SPEC = "ls › Lifespan State"
ABSENT = "ABSENT"


def _lifespan_state(server: Server) -> dict[str, Any]:
    """The lifespan stash; ``unsupported`` if the lifespan scope had no state."""
    stash = lifespan_stash(server)
    if stash["state_initial"] == ABSENT:
        unsupported("the lifespan scope has no 'state'")
    return stash


def _request_state(seen: Echo) -> dict[str, Any]:
    """The request's state; ``unsupported`` if absent, a failed MUST if it is not a dict."""
    state = seen.scope.get("state", ABSENT)
    if state == ABSENT:
        unsupported(f"{seen.scope.get('type')} scopes carry no 'state'")
    check(isinstance(state, dict), "scope['state'] is not a dict", expected="a dict", observed=state, level=MUST)
    assert isinstance(state, dict)
    return state


def _unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


@scenario(
    "state.http.present",
    "HTTP scopes carry 'state', a copy of the lifespan namespace",
    level=MAY,
    spec="www › HTTP Connection Scope; ls › Lifespan State",
    requires=("lifespan",),
)
def test_http_present(server: Server) -> None:
    state = _request_state(server.echo("/echo/state"))
    check(
        state.get("token") == "lifespan-token",
        "the request's state is not a copy of the lifespan namespace",
        expected={"token": "lifespan-token", "...": "..."},
        observed=state,
        level=MUST,
    )


def _websocket_scope(server: Server) -> dict[str, Any]:
    """Open a WebSocket to the catalogue, which sends its scope as typed JSON, and decode it."""
    t = server.timeouts
    address = server.address
    try:
        ws: ClientConnection
        if address.uds is not None:
            ws = unix_connect(address.uds, "ws://localhost/ws/state", open_timeout=t.request, close_timeout=t.request)
        else:
            uri = f"ws://{address.host}:{address.port}/ws/state"
            ws = connect(uri, open_timeout=t.request, close_timeout=t.request, proxy=None)
        with ws:
            data = ws.recv(timeout=t.request)
    except (OSError, TimeoutError, WebSocketException) as exc:
        fail(
            "the WebSocket app's scope did not come back",
            expected="an accepted WebSocket and one message",
            observed=f"{type(exc).__name__}: {exc}",
            level=MUST,
        )
    try:
        scope = loads(data)["scope"]
    except (ValueError, KeyError, TypeError) as exc:
        fail("the WebSocket message is not the app's", expected="the scope", observed=f"{data[:200]!r} ({exc})")
    check(isinstance(scope, dict), "the WebSocket scope", expected="a dict", observed=scope)
    assert isinstance(scope, dict)
    return scope


@scenario(
    "state.ws.present",
    "WebSocket scopes carry 'state', a copy of the lifespan namespace",
    level=MAY,
    spec="www › Websocket Connection Scope; ls › Lifespan State",
    requires=("lifespan", "websocket"),
)
def test_ws_present(server: Server) -> None:
    scope = _websocket_scope(server)
    state = scope.get("state", ABSENT)
    if state == ABSENT:
        unsupported("WebSocket scopes carry no 'state'")
    check(
        isinstance(state, dict) and state.get("token") == "lifespan-token",
        "the WebSocket's state is not a copy of the lifespan namespace",
        expected={"token": "lifespan-token", "...": "..."},
        observed=state,
        level=MUST,
    )


@scenario(
    "state.consistency",
    "request scopes have 'state' exactly when the lifespan scope had it",
    level=SHOULD,
    spec="ls › Scope; www › HTTP Connection Scope",
    requires=("lifespan",),
)
def test_consistency(server: Server) -> None:
    """An inference about behaviour (offering half the feature helps no app): SHOULD."""
    in_lifespan = lifespan_stash(server)["state_initial"] != ABSENT
    in_request = "state" in server.echo("/echo/state-consistency").scope
    check(
        in_lifespan == in_request,
        "'state' is offered on one side only",
        expected=f"request scopes {'with' if in_lifespan else 'without'} 'state', like the lifespan scope",
        observed=f"lifespan scope {'with' if in_lifespan else 'without'}, request scope "
        f"{'with' if in_request else 'without'} 'state'",
    )


@scenario(
    "state.shallow_copy_top_level",
    "adding or deleting top-level state keys in a request changes nothing elsewhere",
    level=MUST,
    spec=STATE_SPEC,
    requires=("lifespan",),
)
def test_shallow_copy_top_level(server: Server) -> None:
    _lifespan_state(server)
    token = _unique("t")
    _request_state(server.echo("/echo/state-mutate", [("x-ac-mutate", token)]))
    later = _request_state(server.echo("/echo/state-after-mutate"))
    added, deleted = f"ac_{token}", "token"
    check(
        added not in later and deleted in later,
        "a request's change to its state reached the next request",
        expected=f"no {added!r}, {deleted!r} still there",
        observed=sorted(later),
    )
    keys = lifespan_stash(server)["state_keys_now"]
    check(
        added not in keys and deleted in keys,
        "a request's change to its state reached the lifespan namespace",
        expected=f"no {added!r}, {deleted!r} still there",
        observed=keys,
    )


@scenario(
    "state.shallow_copy_nested_shared",
    "mutable values in state are shared between requests (the copy is shallow)",
    level=MUST,
    spec=STATE_SPEC,
    requires=("lifespan",),
)
def test_shallow_copy_nested_shared(server: Server) -> None:
    """MUST: a shallow copy shares the values by definition; a deep copy breaks apps' pools and caches."""
    _lifespan_state(server)
    before = server.echo("/echo/state-counter-before")
    n = _counter(_request_state(before))
    server.echo("/echo/state-counter-bump", [("x-ac-mutate", _unique("n"))])  # increments after its snapshot
    after = server.echo("/echo/state-counter-after")
    # At least n + 1: cases running beside this one may bump the shared counter too; a deep
    # copy shows none of the increments, so it still reads n.
    check(
        _counter(_request_state(after)) >= n + 1,
        "an increment of state['counter']['n'] in one request is not seen by the next",
        expected=f"{n + 1} or more",
        observed=_counter(_request_state(after)),
    )
    ids = [e.app.get("state_ids", {}).get("counter") for e in (before, after)]
    check(ids[0] == ids[1], "state['counter'] is a different object in each request", expected=ids[0], observed=ids[1])


def _counter(state: dict[str, Any]) -> int:
    counter = state.get("counter")
    n = counter.get("n") if isinstance(counter, dict) else None
    if not isinstance(n, int):
        fail("state['counter'] is not what lifespan stored", expected={"n": 0}, observed=counter, level=MUST)
    return n


@scenario(
    "state.identity_preserved",
    "an object stored in state reaches requests as the same object",
    level=MUST,
    spec=STATE_SPEC,
    requires=("lifespan",),
)
def test_identity_preserved(server: Server) -> None:
    """Implied by 'shallow copy' (a definition): MUST."""
    stash = _lifespan_state(server)
    seen = server.echo("/echo/state-identity")
    obj = _request_state(seen).get("obj")
    observed_id = obj.id if isinstance(obj, Opaque) else obj
    check(
        observed_id == stash["obj_id"] and seen.app.get("state_ids", {}).get("obj") == stash["obj_id"],
        "state['obj'] in the request is not the object lifespan stored",
        expected=f"id {stash['obj_id']}",
        observed=f"{obj!r}",
    )


@scenario(
    "state.startup_values_visible",
    "keys stored before lifespan.startup.complete are in every request's state",
    level=MUST,
    spec=STATE_SPEC,
    requires=("lifespan",),
)
def test_startup_values_visible(server: Server) -> None:
    """Implied by the definition: requests get a copy of the namespace, which held these keys by then."""
    stash = _lifespan_state(server)
    state = _request_state(server.echo("/echo/state-startup"))
    at_complete = stash["state_keys_at_complete"] or []
    missing = [k for k in at_complete if k not in state]
    check(
        not missing and state.get("startup_key") == "set-before-complete",
        "keys stored during startup are missing from the request's state",
        expected=at_complete,
        observed=sorted(state),
    )


@scenario(
    "state.server_hands_off",
    "the server adds nothing to state and does nothing with it but copy it",
    level=MUST,
    spec=STATE_SPEC,
    requires=("lifespan",),
)
def test_server_hands_off(server: Server, stop_run: StopRun) -> None:
    """Three looks: the namespace at startup.complete, a request's copy, and the namespace at shutdown."""
    stash = _lifespan_state(server)
    check(
        stash["state_keys_at_complete"] == sorted(STATE_KEYS_AT_STARTUP),
        "the lifespan namespace holds keys the app did not store",
        expected=sorted(STATE_KEYS_AT_STARTUP),
        observed=stash["state_keys_at_complete"],
    )
    seen = server.echo("/echo/state-hands-off")
    extra = sorted(set(_request_state(seen)) - set(seen.app.get("lifespan_state_keys_now") or []))
    check(not extra, "the request's state has keys the app never stored", expected=[], observed=extra)
    run = stop_run
    if run.shutdown is None:
        note("no lifespan.shutdown in the stop run: the namespace at shutdown was not seen")
        return
    at_shutdown = run.shutdown.get("state_keys")
    check(
        isinstance(at_shutdown, list) and set(STATE_KEYS_AT_STARTUP) <= set(at_shutdown),
        "the lifespan namespace was changed by the time lifespan.shutdown arrived",
        expected=f"still holds {sorted(STATE_KEYS_AT_STARTUP)}",
        observed=at_shutdown,
    )


@scenario(
    "state.late_lifespan_mutation",
    "whether a key lifespan adds after startup reaches later requests (not specified)",
    level=INFO,
    spec=STATE_SPEC,
    requires=("lifespan",),
)
def test_late_lifespan_mutation(server: Server) -> None:
    """The cell is whether the late key is visible (the copy is taken per request, or once).

    Legal either way, as long as the request's state holds only keys the app stored.
    """
    _lifespan_state(server)
    key = _unique("late_")
    server.control(f"lifespan-state-set/{key}")
    seen = server.echo("/echo/state-late")
    state = _request_state(seen)
    extra = sorted(set(state) - set(seen.app.get("lifespan_state_keys_now") or []))
    check(not extra, "the request's state has keys the app never stored", expected=[], observed=extra, level=MUST)
    visible = key in state
    if visible:
        check(state[key] is True, "the late key's value", expected=True, observed=state[key], level=MUST)
    record("visible (copied per request)" if visible else "not visible (copied before the change)")


@scenario(
    "state.without_lifespan",
    "whether requests carry 'state' when lifespan is unsupported or failed (not specified)",
    level=INFO,
    spec="www › HTTP Connection Scope",
)
def test_without_lifespan(raise_on_scope_run: ErrorRun) -> None:
    """The app raises on the lifespan scope (a target without lifespan never calls it).

    The cell is the request's ``state``; if present it must be a dict the app left empty.
    """
    run = raise_on_scope_run
    if run.first != "ready" or run.request is None:
        note(f"the server did not serve after lifespan raised ({run.first}); ls.error.unsupported_continue judges it")
        record("not served")
        return
    seen = parse_echo(run.request, "the echo app's 200 response after the lifespan error")
    if "state" not in seen.scope:
        record("absent")
        return
    state = seen.scope["state"]
    check(
        isinstance(state, dict) and not state,
        "'state' without lifespan is not an empty dict",
        expected={},
        observed=state,
        level=MUST,
    )
    record(f"present: {state!r}")
