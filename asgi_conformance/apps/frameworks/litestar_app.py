"""The behaviours written with Litestar's public API (https://docs.litestar.dev/).

``Stream`` over an async generator, ``request.stream()``, a lifespan context manager that
sets ``app.state``, ``BackgroundTask``, a ``Router`` at /sub with ``request.url_for``,
``exception_handlers``, a ``@websocket`` handler with ``close(code, reason)``, ``File``
and a route for GET and HEAD. Imported only inside the server, at first use.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from litestar import Litestar, Request, Router, WebSocket, get, post, route, websocket
from litestar.background_tasks import BackgroundTask
from litestar.enums import HttpMethod
from litestar.response import File, Response, Stream

from ..routes import App
from . import FRAMEWORKS
from .common import CustomError, background, body_report, chunk, file_path, info, lifespan_shutdown, lifespan_startup
from .common import produce as produce_numbers

NAME = "litestar"


async def _chunks(token: str) -> AsyncIterator[bytes]:
    async for n in produce_numbers(token):
        yield chunk(n)


@get("/info")
async def _info() -> dict[str, Any]:
    return info(NAME, FRAMEWORKS[NAME].version)


@get("/stream/{token:str}")
async def _stream(token: str) -> Stream:
    return Stream(_chunks(token), media_type="text/plain")


@post("/body/{token:str}", status_code=200)
async def _body(token: str, request: Request[Any, Any, Any]) -> dict[str, Any]:
    data = bytearray()
    parts = 0
    async for part in request.stream():
        data += part
        parts += 1
    return body_report(bytes(data), parts)


@get("/background/{token:str}")
async def _background(token: str) -> Response[str]:
    return Response(f"ok {token}", media_type="text/plain", background=BackgroundTask(background, token))


@get("/where", name="where")
async def _where(request: Request[Any, Any, Any]) -> dict[str, Any]:
    return {
        "url": str(request.url),
        "url_for": request.url_for("where"),
        "root_path": request.scope.get("root_path"),
        "path": request.scope.get("path"),
    }


@get("/boom/{token:str}")
async def _boom(token: str) -> None:
    raise RuntimeError(f"boom {token}")


@get("/custom/{token:str}")
async def _custom(token: str) -> None:
    raise CustomError(token)


def _custom_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[str]:
    return Response(f"handled {exc}", status_code=418, media_type="text/plain")


@websocket("/ws/close/{code:int}/{token:str}")
async def _close(socket: WebSocket[Any, Any, Any], code: int, token: str) -> None:
    await socket.accept()
    await socket.close(code=code, reason=f"bye {token}")


@get("/file/{token:str}")
async def _file(token: str) -> File:
    return File(path=file_path(), media_type="application/octet-stream", content_disposition_type="inline")


@route("/head/{token:str}", http_method=[HttpMethod.GET, HttpMethod.HEAD], media_type="text/plain")
async def _head(token: str) -> str:
    return f"hello head {token}"


@get("/state")
async def _state(request: Request[Any, Any, Any]) -> dict[str, Any]:
    return {"value": request.app.state.get("fw_value")}


@contextlib.asynccontextmanager
async def _lifespan(app: Litestar) -> AsyncIterator[None]:
    app.state.fw_value = lifespan_startup(NAME)
    yield
    lifespan_shutdown(NAME, app.state.get("fw_value"))


def build(prefix: str) -> App:
    sub = Router(path="/sub", route_handlers=[_where])
    handlers: list[Any] = [_info, _stream, _body, _background, sub, _boom, _custom, _close, _file, _head, _state]
    app = Litestar(
        route_handlers=[Router(path=prefix or "/", route_handlers=handlers)],
        exception_handlers={CustomError: _custom_handler},
        lifespan=[_lifespan],
        openapi_config=None,
    )
    return app  # type: ignore[return-value]
