"""The behaviours written with Starlette's public API (https://www.starlette.io/).

StreamingResponse over an async generator, ``request.stream()``, a lifespan context
manager whose yielded dict becomes ``request.state``, ``BackgroundTask``, ``Mount`` and
``url_for``, exception handlers, ``WebSocket.close(code, reason)``, ``FileResponse``
(which sends ``http.response.pathsend`` when the server advertises it) and a GET route
(Starlette answers HEAD for it). Imported only inside the server, at first use.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.websockets import WebSocket

from ..routes import App
from . import FRAMEWORKS
from .common import CustomError, background, body_report, chunk, file_path, info, lifespan_shutdown, lifespan_startup
from .common import produce as produce_numbers

NAME = "starlette"


async def _info(request: Request) -> Response:
    return JSONResponse(info(NAME, FRAMEWORKS[NAME].version))


async def _chunks(token: str) -> AsyncIterator[bytes]:
    async for n in produce_numbers(token):
        yield chunk(n)


async def _stream(request: Request) -> Response:
    return StreamingResponse(_chunks(request.path_params["token"]), media_type="text/plain")


async def _body(request: Request) -> Response:
    data = bytearray()
    parts = 0
    async for part in request.stream():
        data += part
        parts += 1
    return JSONResponse(body_report(bytes(data), parts))


async def _background(request: Request) -> Response:
    token = request.path_params["token"]
    return PlainTextResponse(f"ok {token}", background=BackgroundTask(background, token))


async def _where(request: Request) -> Response:
    return JSONResponse(
        {
            "url": str(request.url),
            "url_for": str(request.url_for("sub:where")),
            "root_path": request.scope.get("root_path"),
            "path": request.scope.get("path"),
        }
    )


async def _boom(request: Request) -> Response:
    raise RuntimeError(f"boom {request.path_params['token']}")


async def _custom(request: Request) -> Response:
    raise CustomError(request.path_params["token"])


async def _custom_handler(request: Request, exc: Exception) -> Response:
    return PlainTextResponse(f"handled {exc}", status_code=418)


async def _close(websocket: WebSocket) -> None:
    await websocket.accept()
    code = int(websocket.path_params["code"])
    await websocket.close(code=code, reason=f"bye {websocket.path_params['token']}")


async def _file(request: Request) -> Response:
    return FileResponse(file_path(), media_type="application/octet-stream")


async def _head(request: Request) -> Response:
    return PlainTextResponse(f"hello head {request.path_params['token']}")


async def _state(request: Request) -> Response:
    return JSONResponse({"value": getattr(request.state, "fw_value", None)})


@contextlib.asynccontextmanager
async def _lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
    value = lifespan_startup(NAME)
    state = {"fw_value": value}
    yield state
    lifespan_shutdown(NAME, state.get("fw_value"))


def build(prefix: str) -> App:
    sub = Starlette(routes=[Route("/where", _where, name="where")])
    routes = [
        Route(f"{prefix}/info", _info),
        Route(f"{prefix}/stream/{{token}}", _stream),
        Route(f"{prefix}/body/{{token}}", _body, methods=["POST"]),
        Route(f"{prefix}/background/{{token}}", _background),
        Mount(f"{prefix}/sub", app=sub, name="sub"),
        Route(f"{prefix}/boom/{{token}}", _boom),
        Route(f"{prefix}/custom/{{token}}", _custom),
        WebSocketRoute(f"{prefix}/ws/close/{{code:int}}/{{token}}", _close),
        Route(f"{prefix}/file/{{token}}", _file),
        Route(f"{prefix}/head/{{token}}", _head),
        Route(f"{prefix}/state", _state),
    ]
    app = Starlette(routes=routes, exception_handlers={CustomError: _custom_handler}, lifespan=_lifespan)
    return app  # type: ignore[return-value]
