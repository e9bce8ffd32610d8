"""Mutants that break rules of the HTTP connection scope (suites/test_http_scope.py, test_core.py).

Each imitates one server bug by changing the scope (or the call) the app gets; most
are bugs seen in real servers or proxies. ``reference`` is a target whose own scope
passes the listed scenarios, so the mutant alone makes them fail.
Runs inside the server: standard library only.
"""

from __future__ import annotations

import posixpath
import re
import types
from typing import Any
from urllib.parse import unquote, unquote_to_bytes

from .mutants import App, Receive, Scope, Send, copy_scope, mutant, scope_mutant

__all__: list[str] = []


def _headers(scope: Scope) -> list[tuple[bytes, bytes]]:
    return [(bytes(k), bytes(v)) for k, v in scope.get("headers") or ()]


def _raw_path(scope: Scope) -> bytes:
    raw = scope.get("raw_path")
    return raw if isinstance(raw, bytes) else str(scope.get("path", "")).encode("utf-8")


# -- scope shape, core ------------------------------------------------------------------

mutant("scope-type-wrong", "http scopes get type 'HTTP'", "http.scope.type", "core.scope.type")(
    scope_mutant(lambda s: s.update(type="HTTP"))
)

mutant("scope-not-dict", "the scope is a read-only mapping, not a dict", "core.scope.is_dict")(
    scope_mutant(lambda s: types.MappingProxyType(s))  # type: ignore[arg-type,return-value]
)


def _drop_asgi_version(scope: Scope) -> None:
    scope["asgi"] = {k: v for k, v in dict(scope.get("asgi") or {}).items() if k != "version"}


mutant(
    "asgi-version-missing",
    "scope['asgi'] has no 'version'",
    "core.scope.asgi_dict",
    "http.scope.asgi.version",
)(scope_mutant(_drop_asgi_version))


def _spec_version_float(scope: Scope) -> None:
    scope["asgi"] = {**dict(scope.get("asgi") or {}), "spec_version": 2.3}


mutant("spec-version-float", "asgi.spec_version is the float 2.3", "http.scope.asgi.spec_version")(
    scope_mutant(_spec_version_float)
)


def _bytes_key(scope: Scope) -> None:
    scope[b"x-raw"] = True  # type: ignore[index]


mutant("scope-bytes-key", "the scope has a byte-string key", "core.keys.unicode")(scope_mutant(_bytes_key))


# -- http_version, method, scheme ---------------------------------------------------------

mutant("http-version-short", "HTTP/1.0 is reported as '1' (not '1.0')", "http.scope.http_version.enum")(
    scope_mutant(lambda s: s.update(http_version="1") if s.get("http_version") == "1.0" else None)
)

mutant(
    "http-version-fixed",
    "http_version is always '1.1', whatever the client used",
    "http.scope.http_version.accurate",
)(scope_mutant(lambda s: s.update(http_version="1.1")))

mutant("method-bytes", "method is a byte string", "http.scope.method.str")(
    scope_mutant(lambda s: s.update(method=str(s.get("method")).encode("ascii")))
)

mutant(
    "method-lowercase",
    "method is lower-cased",
    "http.scope.method.upper",
    "http.scope.method.extension",
)(scope_mutant(lambda s: s.update(method=str(s.get("method")).lower())))

mutant("scheme-empty", "scheme is the empty string", "http.scope.scheme")(scope_mutant(lambda s: s.update(scheme="")))

# -- path, raw_path ---------------------------------------------------------------------

mutant(
    "path-not-decoded",
    "path keeps the %-escapes (it is raw_path as text)",
    "http.scope.path.decoded",
    "http.scope.path.encoded_slash",
    "http.scope.path.roundtrip",
)(scope_mutant(lambda s: s.update(path=_raw_path(s).decode("latin-1"))))

mutant(
    "path-latin1",
    "path bytes are decoded as Latin-1, not UTF-8 (mojibake)",
    "http.scope.path.decoded",
    "http.scope.path.raw_utf8",
    reference="granian",  # it serves raw UTF-8 in the target; other servers answer 400 first
)(scope_mutant(lambda s: s.update(path=unquote_to_bytes(_raw_path(s)).decode("latin-1"))))

_ENCODED_SLASH = re.compile(r"%2f", re.IGNORECASE)


def _keep_encoded_slash(scope: Scope) -> None:
    raw = _raw_path(scope).decode("latin-1")
    pieces = _ENCODED_SLASH.split(raw)
    scope["path"] = "%2F".join(unquote(p) for p in pieces)


mutant(
    "path-keeps-encoded-slash",
    "%2F is left encoded in path (to keep it apart from '/')",
    "http.scope.path.encoded_slash",
)(scope_mutant(_keep_encoded_slash))

mutant(
    "path-normalised",
    "path has dot-segments and duplicate slashes collapsed",
    "http.scope.path.no_normalisation",
)(scope_mutant(lambda s: s.update(path=posixpath.normpath(str(s.get("path"))))))


def _path_with_query(scope: Scope) -> None:
    query = scope.get("query_string")
    if isinstance(query, bytes) and query:
        scope["path"] = f"{scope.get('path')}?{query.decode('latin-1')}"


mutant("path-includes-query", "path keeps the '?query' part", "http.scope.path.query_excluded")(
    scope_mutant(_path_with_query)
)

mutant(
    "path-bytes",
    "path is the unescaped byte string, never decoded to text",
    "http.scope.path.decoded",
    "http.scope.path.invalid_utf8",
    "http.scope.root_path.path_relation",
)(scope_mutant(lambda s: s.update(path=unquote_to_bytes(_raw_path(s)))))

mutant(
    "raw-path-decoded",
    "raw_path is the decoded path re-encoded as UTF-8",
    "http.scope.raw_path.value",
    "http.scope.path.roundtrip",
)(scope_mutant(lambda s: s.update(raw_path=str(s.get("path")).encode("utf-8"))))

# -- query_string -----------------------------------------------------------------------

mutant(
    "query-decoded",
    "query_string has %-escapes and '+' decoded",
    "http.scope.query_string.raw",
    "http.scope.query_string.roundtrip",
)(
    scope_mutant(
        lambda s: s.update(query_string=unquote_to_bytes(bytes(s.get("query_string", b"")).replace(b"+", b" ")))
    )
)

mutant("query-none-when-empty", "query_string is None when there is no query", "http.scope.query_string.empty")(
    scope_mutant(lambda s: s.update(query_string=None) if not s.get("query_string") else None)
)

mutant(
    "query-after-last-qmark",
    "query_string starts after the last '?', not the first",
    "http.scope.query_string.second_qmark",
)(scope_mutant(lambda s: s.update(query_string=bytes(s.get("query_string", b"")).rsplit(b"?", 1)[-1])))

# -- root_path --------------------------------------------------------------------------

mutant(
    "root-path-bytes",
    "root_path is a byte string",
    "http.scope.root_path.default",
    "http.scope.root_path.configured",
)(scope_mutant(lambda s: s.update(root_path=str(s.get("root_path", "")).encode("utf-8"))))

mutant(
    "root-path-dropped",
    "the configured root path never reaches the scope",
    "http.scope.root_path.configured",
)(scope_mutant(lambda s: s.update(root_path="")))

# -- headers ----------------------------------------------------------------------------

mutant("header-values-str", "header values are str, not bytes", "http.scope.headers.type")(
    scope_mutant(lambda s: s.update(headers=[(k, v.decode("latin-1")) for k, v in _headers(s)]))
)

mutant("header-names-uppercase", "header names are upper-cased", "http.scope.headers.lowercase")(
    scope_mutant(lambda s: s.update(headers=[(k.upper(), v) for k, v in _headers(s)]))
)

mutant(
    "header-names-cgi",
    "header names are CGI-style (upper case, '-' turned into '_')",
    "http.scope.headers.case_best_effort",
    "http.scope.headers.no_injection",
    "http.scope.headers.roundtrip",
)(scope_mutant(lambda s: s.update(headers=[(k.upper().replace(b"-", b"_"), v) for k, v in _headers(s)])))


def _merge_duplicates(scope: Scope) -> None:
    merged: dict[bytes, list[bytes]] = {}
    for name, value in _headers(scope):
        merged.setdefault(name.lower(), []).append(value)
    scope["headers"] = [(k, (b"; " if k == b"cookie" else b", ").join(v)) for k, v in merged.items()]


mutant(
    "headers-merge-duplicates",
    "repeated fields are joined into one (cookies with '; ')",
    "http.scope.headers.duplicates",
    "http.scope.headers.cookie_preserved",
    "http.scope.headers.roundtrip",
)(scope_mutant(_merge_duplicates))

mutant(
    "headers-reversed",
    "headers are delivered in reverse order",
    "http.scope.headers.duplicates",
    "http.scope.headers.value_order",
)(scope_mutant(lambda s: s.update(headers=_headers(s)[::-1])))

mutant(
    "header-values-utf8",
    "header values are decoded as UTF-8 (errors replaced) and re-encoded",
    "http.scope.headers.exact_values",
)(scope_mutant(lambda s: s.update(headers=[(k, v.decode("utf-8", "replace").encode()) for k, v in _headers(s)])))

mutant(
    "headers-drop-underscore",
    "headers whose name contains '_' are dropped",
    "http.scope.headers.no_drop",
)(scope_mutant(lambda s: s.update(headers=[(k, v) for k, v in _headers(s) if b"_" not in k])))

mutant(
    "header-injected",
    "the server adds an x-forwarded-for header the client never sent",
    "http.scope.headers.no_injection",
)(scope_mutant(lambda s: s.update(headers=[*_headers(s), (b"x-forwarded-for", b"127.0.0.1")])))

# -- client, server ---------------------------------------------------------------------

mutant(
    "client-server-swapped",
    "client and server addresses are swapped",
    "http.scope.client.value",
    "http.scope.server.tcp",
)(scope_mutant(lambda s: s.update(client=s.get("server"), server=s.get("client"))))


def _str_port(address: Any) -> Any:
    if isinstance(address, list | tuple) and len(address) == 2 and address[1] is not None:
        return (address[0], str(address[1]))
    return address


mutant(
    "port-str",
    "client and server ports are str, not int",
    "http.scope.client.port_int",
)(scope_mutant(lambda s: s.update(client=_str_port(s.get("client")), server=_str_port(s.get("server")))))


def _uds_port_zero(scope: Scope) -> None:
    server = scope.get("server")
    if isinstance(server, list | tuple) and len(server) == 2 and server[1] is None:
        scope["server"] = (server[0], "0")
        scope["client"] = ("", "0")


mutant(
    "uds-port-zero",
    "on a Unix socket, server is [path, '0'] and client ['', '0']",
    "http.scope.server.uds",
    "http.scope.client.uds",
)(scope_mutant(_uds_port_zero))

# -- extensions -------------------------------------------------------------------------

mutant(
    "extensions-list",
    "extensions is a list of names, not a dict",
    "http.scope.extensions",
    "core.extensions.shape",
    reference="hypercorn",  # it sends an extensions dict: shape is judged, not unsupported
)(scope_mutant(lambda s: s.update(extensions=list(s.get("extensions") or {}))))

_SHARED_EXTENSIONS: dict[str, Any] = {}


def _shared_extensions(scope: Scope) -> None:
    _SHARED_EXTENSIONS.update(dict(scope.get("extensions") or {}))
    scope["extensions"] = _SHARED_EXTENSIONS


mutant(
    "extensions-shared",
    "one extensions dict object is given to every scope",
    "core.extensions.not_shared",
    reference="hypercorn",
)(scope_mutant(_shared_extensions))

# -- the call ---------------------------------------------------------------------------


def _scope_reused(app: App) -> App:
    """One dict for every request's scope, refreshed with ``update`` (stale keys survive)."""
    shared: Scope = {}

    async def mutated(scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") == "http":
            shared.update(copy_scope(scope))
            scope = shared
        await app(scope, receive, send)

    return mutated


mutant("scope-reused", "one scope dict is reused for every request", "core.scope.fresh_per_call")(_scope_reused)


def _scope_per_connection(app: App) -> App:
    """The scope is built once per TCP connection: later requests on it get the first one's."""
    first: dict[Any, Scope] = {}

    async def mutated(scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") == "http":
            peer = scope.get("client")
            key = tuple(peer) if isinstance(peer, list | tuple) else peer
            if key is not None:
                scope = copy_scope(first.setdefault(key, copy_scope(scope)))
        await app(scope, receive, send)

    return mutated


mutant(
    "scope-per-connection",
    "a keep-alive connection's requests all get the first request's scope",
    "http.scope.keepalive_distinct",
)(_scope_per_connection)


def _app_called_twice(app: App) -> App:
    """Each request first calls the app on a throw-away copy of the scope, then for real."""

    async def mutated(scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") == "http":

            async def disconnected() -> dict[str, Any]:
                return {"type": "http.disconnect"}

            async def discard(message: dict[str, Any]) -> None:
                return None

            await app(copy_scope(scope), disconnected, discard)
        await app(scope, receive, send)

    return mutated


mutant(
    "app-called-twice",
    "the app is called twice for each request",
    "core.app.one_call_per_connection",
)(_app_called_twice)


def _receive_not_awaitable(app: App) -> App:
    """``receive`` hands back the event dict directly instead of an awaitable."""

    async def mutated(scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            await app(scope, receive, send)
            return
        pending: list[dict[str, Any]] = [await receive()]

        def plain() -> dict[str, Any]:
            return pending.pop() if pending else {"type": "http.disconnect"}

        await app(scope, plain, send)  # type: ignore[arg-type]

    return mutated


mutant(
    "receive-not-awaitable",
    "receive() returns the event dict, not an awaitable",
    "core.app.call_signature",
)(_receive_not_awaitable)


def _upgrade_as_websocket(app: App) -> App:
    """A request with an Upgrade the server does not handle is treated as a WebSocket."""

    async def mutated(scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") == "http" and any(k.lower() == b"upgrade" for k, _ in _headers(scope)):
            scope = copy_scope(scope)
            scope["type"] = "websocket"
        await app(scope, receive, send)

    return mutated


mutant(
    "upgrade-as-websocket",
    "an unknown Upgrade request gets a websocket scope",
    "http.scope.unsupported_upgrade",
)(_upgrade_as_websocket)
