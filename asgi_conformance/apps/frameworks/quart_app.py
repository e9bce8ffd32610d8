"""The behaviours written with Quart's public API (https://quart.palletsprojects.com/).

An async generator returned as the response body, ``async for data in request.body``,
``before_serving`` / ``after_serving`` handlers keeping a value in ``app.config``,
``app.add_background_task``, a Blueprint at /sub with ``url_for(_external=True)``,
``errorhandler``, ``websocket.close(code, reason)``, ``send_file(conditional=True)`` and a
GET route (Quart answers HEAD for it). Quart runs only on asyncio. Imported only inside the
server, at first use.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from quart import Blueprint, Quart, Response, request, send_file, url_for, websocket

from ..routes import App
from . import FRAMEWORKS
from .common import CustomError, background, body_report, chunk, file_path, info, lifespan_shutdown, lifespan_startup
from .common import produce as produce_numbers

NAME = "quart"


async def _chunks(token: str) -> AsyncIterator[bytes]:
    async for n in produce_numbers(token):
        yield chunk(n)


def build(prefix: str) -> App:
    app = Quart(__name__)
    sub = Blueprint("sub", __name__)

    @sub.get("/where")
    async def where() -> dict[str, Any]:
        return {
            "url": request.url,
            "url_for": url_for("sub.where", _external=True),
            "root_path": request.scope.get("root_path"),
            "path": request.scope.get("path"),
        }

    @app.get(f"{prefix}/info")
    async def info_route() -> dict[str, Any]:
        return info(NAME, FRAMEWORKS[NAME].version)

    @app.get(f"{prefix}/stream/<token>")
    async def stream(token: str) -> Response:
        return Response(_chunks(token), mimetype="text/plain")

    @app.post(f"{prefix}/body/<token>")
    async def body(token: str) -> dict[str, Any]:
        data = bytearray()
        parts = 0
        async for part in request.body:
            data += part
            parts += 1
        return body_report(bytes(data), parts)

    @app.get(f"{prefix}/background/<token>")
    async def background_route(token: str) -> Response:
        app.add_background_task(background, token)
        return Response(f"ok {token}", mimetype="text/plain")

    @app.get(f"{prefix}/boom/<token>")
    async def boom(token: str) -> Response:
        raise RuntimeError(f"boom {token}")

    @app.get(f"{prefix}/custom/<token>")
    async def custom(token: str) -> Response:
        raise CustomError(token)

    @app.errorhandler(CustomError)
    async def custom_handler(exc: CustomError) -> Response:
        return Response(f"handled {exc}", status=418, mimetype="text/plain")

    @app.websocket(f"{prefix}/ws/close/<int:code>/<token>")
    async def close(code: int, token: str) -> None:
        await websocket.accept()
        await websocket.close(code, f"bye {token}")

    @app.get(f"{prefix}/file/<token>")
    async def file(token: str) -> Response:
        return await send_file(file_path(), mimetype="application/octet-stream", conditional=True)

    @app.get(f"{prefix}/head/<token>")
    async def head(token: str) -> Response:
        return Response(f"hello head {token}", mimetype="text/plain")

    @app.get(f"{prefix}/state")
    async def state() -> dict[str, Any]:
        return {"value": app.config.get("FW_VALUE")}

    @app.before_serving
    async def startup() -> None:
        app.config["FW_VALUE"] = lifespan_startup(NAME)

    @app.after_serving
    async def shutdown() -> None:
        lifespan_shutdown(NAME, app.config.get("FW_VALUE"))

    app.register_blueprint(sub, url_prefix=f"{prefix}/sub")
    return app  # type: ignore[return-value]
