"""Framework apps: the same small behaviours, written with each web framework's own API.

A framework is the other half of the ASGI contract, and users meet server and framework
together. Each module here (``starlette``, ``fastapi``, ``litestar``, ``quart``,
``django``) exposes ``build(prefix) -> ASGI app``: the framework's app serving the
behaviours it declares in ``FRAMEWORKS`` under ``prefix``. They are served two ways:

``/app/fw-<name>/...`` on the shared catalogue server
    registered here as scenario apps (routes), built on first use inside the server;
``asgi_conformance.apps.serve:fw_<name>``
    the framework app at the top level of a dedicated process (``TopLevel``), with the
    framework's own lifespan handlers, for the lifespan and root_path behaviours.

Nothing here imports a framework: this module is imported by every server process (the
catalogue must load where no framework is installed); ``Served`` imports the framework
module at its first call. Frameworks that only run on asyncio (Quart, Django) answer
``501 {"unsupported": ...}`` under another event loop (hypercorn's trio worker): the
harness turns that into an ``unsupported`` cell, judged from the loop the app runs on.

Every framework app sits behind the app-side protocol checker (``checker.wrap``) when
that module provides it: see ``_checked``, the one place where the wrap happens.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
from dataclasses import dataclass
from typing import Any

from .. import aio, journal, routes
from ..catalogue import CONTROL_PREFIX
from ..routes import App, Message, Receive, Scope, Send

__all__ = [
    "BEHAVIOURS",
    "FRAMEWORKS",
    "PATHS",
    "ROOT_PATH",
    "Framework",
    "FrameworkError",
    "Served",
    "TopLevel",
    "installed",
    "resolve",
    "route_name",
]

BEHAVIOURS = (
    "stream_disconnect",
    "stream_disconnect_idle",
    "request_stream",
    "lifespan_state",
    "background_task",
    "root_path",
    "exception",
    "websocket_close",
    "file_response",
    "head",
)
"""Every behaviour a framework app can serve; each framework declares its subset."""

ROOT_PATH = "/api"
"""The root path dedicated root_path processes are started with."""

TOKEN = re.compile(r"/([0-9a-f]{12})(?:/|$)")
"""A request's unique token (secrets.token_hex(6)) somewhere in its path."""


class FrameworkError(Exception):
    """A --framework value that cannot be used; the message is one line for the user."""


@dataclass(frozen=True)
class Framework:
    """One web framework: how to import it, its pip extra, what it can serve."""

    name: str
    distribution: str
    extra: str
    modules: tuple[str, ...]
    behaviours: tuple[str, ...]
    asyncio_only: bool = False
    """The framework needs asyncio (it cannot run under trio)."""
    lifespan: bool = True
    """The framework's app speaks the lifespan protocol (else ``Served`` completes it)."""

    @property
    def module(self) -> str:
        return f"{__name__}.{self.name}_app"

    @property
    def installed(self) -> bool:
        return all(importlib.util.find_spec(m) is not None for m in self.modules)

    @property
    def version(self) -> str | None:
        import importlib.metadata  # here: every server process imports this module, few ask this

        try:
            return importlib.metadata.version(self.distribution)
        except importlib.metadata.PackageNotFoundError:
            return None


_ALL = BEHAVIOURS
FRAMEWORKS: dict[str, Framework] = {
    f.name: f
    for f in (
        Framework("starlette", "starlette", "starlette", ("starlette", "anyio"), _ALL),
        Framework("fastapi", "fastapi", "fastapi", ("fastapi", "starlette", "pydantic"), _ALL),
        Framework("litestar", "litestar", "litestar", ("litestar",), _ALL),
        Framework(
            "quart", "quart", "quart", ("quart",), tuple(b for b in _ALL if b != "background_task"), asyncio_only=True
        ),
        Framework(
            "django",
            "django",
            "django",
            ("django", "channels"),
            tuple(b for b in _ALL if b not in ("lifespan_state", "background_task")),
            asyncio_only=True,
            lifespan=False,
        ),
    )
}
"""The frameworks, by the name ``--framework`` takes. Django's ASGIHandler has no lifespan
and no background tasks: those behaviours are not generated for it. Quart's background tasks
belong to the app, not to a response (``add_background_task`` starts one at once): there is
no "after the response" for the pair to keep, so that behaviour is not generated either."""

PATHS: dict[str, dict[str, tuple[str, ...]]] = {
    name: {
        "http": (
            "/info",
            "/stream/{token}",
            "POST /body/{token}",
            "/background/{token}",
            "/sub/where",
            "/boom/{token}",
            "/custom/{token}",
            "/file/{token}",
            "HEAD /head/{token}",
            "/head/{token}",
        ),
        "websocket": ("/ws/close/{code}/{token}",),
    }
    for name in FRAMEWORKS
}
"""The request paths each framework app serves, relative to ``/app/fw-<name>`` on the shared
server (``route_name``). ``{token}`` is a fresh ``secrets.token_hex(6)``; a method other than
GET is written first. ``/stream/{token}`` streams until the client leaves (about 10 ms a
chunk, at most 20 s); ``/background/{token}`` runs a background task that waits (at most
15 s) for the journal gate ``bg-{token}``; ``/boom`` raises (500), ``/custom`` raises an
exception a custom handler answers with 418. Django serves no ``/background``; Quart's
starts at once, not after the response. The
checker helper may drive any of them (``chk.<framework>.*``)."""


def route_name(name: str) -> str:
    """The scenario-app name the shared server serves framework ``name`` under."""
    return f"fw-{name}"


def installed(name: str) -> bool:
    return name in FRAMEWORKS and FRAMEWORKS[name].installed


def resolve(values: list[str]) -> list[str]:
    """Turn ``--framework`` values (repeatable, comma-separated, ``all``) into names, in the
    registry's order; FrameworkError (one line) for an unknown or uninstalled one."""
    chosen: set[str] = set()
    for raw in values:
        for name in (n.strip().lower() for n in raw.split(",")):
            if not name:
                continue
            if name == "all":
                found = [f.name for f in FRAMEWORKS.values() if f.installed]
                if not found:
                    raise FrameworkError(
                        "--framework=all: no framework is installed; pip install 'asgi-conformance[frameworks]'"
                    )
                chosen.update(found)
                continue
            framework = FRAMEWORKS.get(name)
            if framework is None:
                raise FrameworkError(f"unknown framework {name!r}; choose from: {', '.join(FRAMEWORKS)}, all")
            if not framework.installed:
                raise FrameworkError(
                    f"framework {name!r} is not installed; pip install 'asgi-conformance[{framework.extra}]'"
                )
            chosen.add(name)
    return [name for name in FRAMEWORKS if name in chosen]


# -- serving -------------------------------------------------------------------------------


def _checked(app: App, label: str) -> App:
    """THE place where a framework app is put behind the app-side protocol checker
    (asgi_conformance.apps.checker.wrap), once that module provides it."""
    try:
        checker: Any = importlib.import_module("asgi_conformance.apps.checker")
    except ImportError:
        return app
    wrap = getattr(checker, "wrap", None)
    if not callable(wrap):
        return app
    wrapped: App = wrap(app, label)
    return wrapped


async def respond_json(send: Send, status: int, payload: Any) -> None:
    body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _drain(receive: Receive) -> None:
    for _ in range(10_000):
        message = await receive()
        if message.get("type") != "http.request" or not message.get("more_body", False):
            return


class Served:
    """Framework ``name``'s app under ``prefix``, built at its first call in the server."""

    def __init__(self, name: str, prefix: str) -> None:
        self.framework = FRAMEWORKS[name]
        self.prefix = prefix
        self.app: App | None = None
        self.broken: str | None = None

    def _build(self) -> App | None:
        if self.app is None and self.broken is None:
            try:
                module: Any = importlib.import_module(self.framework.module)
                self.app = _checked(module.build(self.prefix), route_name(self.framework.name))
            except ImportError as exc:
                self.broken = (
                    f"{self.framework.name} is not installed in the server's environment ({exc}); "
                    f"pip install 'asgi-conformance[{self.framework.extra}]'"
                )
        return self.app

    def unsupported(self) -> str | None:
        """Why the framework cannot serve here, or None."""
        if self.framework.asyncio_only and aio.library() != "asyncio":
            return f"{self.framework.name} runs only on asyncio; this server runs the app under {aio.library()}"
        if self._build() is None:
            return self.broken
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any:
        kind = scope.get("type")
        why = self.unsupported()
        if why is not None:
            if kind == "http":
                await _drain(receive)
                await respond_json(send, 501, {"unsupported": why})
            elif kind == "websocket":
                await receive()
                await send({"type": "websocket.close", "code": 1011, "reason": f"unsupported: {why}"[:120]})
            elif kind == "lifespan":
                await _answer_lifespan(receive, send)
            return None
        app = self.app
        assert app is not None
        if kind == "lifespan" and not self.framework.lifespan:
            await _answer_lifespan(receive, send)
            return None
        if kind not in ("http", "websocket"):
            return await app(scope, receive, send)
        return await _Recorder(scope, send).run(app, scope, receive)


async def _answer_lifespan(receive: Receive, send: Send) -> None:
    """Complete the lifespan protocol without the framework (it cannot run here)."""
    for _ in range(10):
        message = await receive()
        kind = message.get("type")
        if kind == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif kind == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


class _Recorder:
    """Notes the event types the framework sends for a request with a token in its path and
    journals them to ``fw-<token>`` when the app returns (which path a file response took,
    whether events came in order)."""

    def __init__(self, scope: Scope, send: Send) -> None:
        path = scope.get("path")
        found = TOKEN.search(path) if isinstance(path, str) else None
        self.token = found.group(1) if found else None
        self.sent: list[str] = []
        self.extensions = sorted(str(k) for k in (scope.get("extensions") or {}) if not str(k).startswith("ac."))
        asgi = scope.get("asgi")
        self.spec_version = asgi.get("spec_version") if isinstance(asgi, dict) else None
        self.downstream = send

    async def send(self, message: Message) -> None:
        if len(self.sent) < 200:
            self.sent.append(str(message.get("type")))
        await self.downstream(message)

    async def run(self, app: App, scope: Scope, receive: Receive) -> Any:
        if self.token is None:
            return await app(scope, receive, self.downstream)
        error: str | None = None
        try:
            return await app(scope, receive, self.send)
        except BaseException as exc:
            error = type(exc).__name__
            raise
        finally:
            journal.write(
                f"fw-{self.token}",
                {
                    "kind": "events",
                    "sent": self.sent,
                    "extensions": self.extensions,
                    "spec_version": self.spec_version,
                    "raised": error,
                },
            )


class TopLevel:
    """A framework app at the top of a dedicated process (``serve.fw_<name>``), lifespan
    included. The harness's readiness probe (``/__asgi_conformance__/ready``, with or
    without the root path in front) is answered here; everything else is the framework's."""

    def __init__(self, name: str) -> None:
        self.served = Served(name, "")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any:
        path = scope.get("path")
        if scope.get("type") == "http" and isinstance(path, str) and CONTROL_PREFIX in path:
            await _drain(receive)
            await respond_json(send, 200, {"framework": self.served.framework.name, "journal": journal.directory()})
            return None
        return await self.served(scope, receive, send)


for _name in FRAMEWORKS:
    routes.route(route_name(_name))(Served(_name, routes.PREFIX + route_name(_name)))
