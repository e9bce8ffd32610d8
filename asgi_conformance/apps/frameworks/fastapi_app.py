"""The behaviours written with FastAPI's public API (https://fastapi.tiangolo.com/).

A generator path operation (FastAPI streams what it yields as JSON Lines), ``Request``
with ``request.stream()``, a lifespan context manager whose yielded dict becomes
``request.state``, ``BackgroundTasks``, ``app.mount`` and ``url_for``,
``@app.exception_handler``, ``@app.websocket`` with ``close(code, reason)``,
``FileResponse`` and ``api_route(methods=["GET", "HEAD"])``. Imported only inside the
server, at first use.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

from fastapi import BackgroundTasks, FastAPI, Request, WebSocket
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response

from ..routes import App
from . import FRAMEWORKS
from .common import CustomError, background, body_report, file_path, info, lifespan_shutdown, lifespan_startup
from .common import produce as produce_numbers

NAME = "fastapi"


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    value = lifespan_startup(NAME)
    state = {"fw_value": value}
    yield state
    lifespan_shutdown(NAME, state.get("fw_value"))


def build(prefix: str) -> App:
    app = FastAPI(lifespan=_lifespan, openapi_url=None, docs_url=None, redoc_url=None)
    sub = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @sub.get("/where", name="where")
    async def where(request: Request) -> dict[str, Any]:
        return {
            "url": str(request.url),
            "url_for": str(request.url_for("sub:where")),
            "root_path": request.scope.get("root_path"),
            "path": request.scope.get("path"),
        }

    @app.get(f"{prefix}/info")
    async def info_route() -> dict[str, Any]:
        return info(NAME, FRAMEWORKS[NAME].version)

    @app.get(f"{prefix}/stream/{{token}}")
    async def stream(token: str) -> AsyncIterable[dict[str, int]]:
        async for n in produce_numbers(token):
            yield {"n": n}

    @app.post(f"{prefix}/body/{{token}}")
    async def body(token: str, request: Request) -> dict[str, Any]:
        data = bytearray()
        parts = 0
        async for part in request.stream():
            data += part
            parts += 1
        return body_report(bytes(data), parts)

    @app.get(f"{prefix}/background/{{token}}", response_class=PlainTextResponse)
    async def background_route(token: str, tasks: BackgroundTasks) -> str:
        tasks.add_task(background, token)
        return f"ok {token}"

    @app.get(f"{prefix}/boom/{{token}}")
    async def boom(token: str) -> None:
        raise RuntimeError(f"boom {token}")

    @app.get(f"{prefix}/custom/{{token}}")
    async def custom(token: str) -> None:
        raise CustomError(token)

    @app.exception_handler(CustomError)
    async def custom_handler(request: Request, exc: CustomError) -> Response:
        return PlainTextResponse(f"handled {exc}", status_code=418)

    @app.websocket(f"{prefix}/ws/close/{{code}}/{{token}}")
    async def close(websocket: WebSocket, code: int, token: str) -> None:
        await websocket.accept()
        await websocket.close(code=code, reason=f"bye {token}")

    @app.get(f"{prefix}/file/{{token}}")
    async def file(token: str) -> FileResponse:
        return FileResponse(file_path(), media_type="application/octet-stream")

    @app.api_route(f"{prefix}/head/{{token}}", methods=["GET", "HEAD"], response_class=PlainTextResponse)
    async def head(token: str) -> str:
        return f"hello head {token}"

    @app.get(f"{prefix}/state")
    async def state(request: Request) -> JSONResponse:
        return JSONResponse({"value": getattr(request.state, "fw_value", None)})

    app.mount(f"{prefix}/sub", sub, name="sub")
    return app  # type: ignore[return-value]
