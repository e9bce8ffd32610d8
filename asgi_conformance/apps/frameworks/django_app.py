"""The behaviours written with Django's public API (https://docs.djangoproject.com/), with
Channels for the WebSocket (https://channels.readthedocs.io/).

Settings are configured here, programmatically (no project files). Async views:
``StreamingHttpResponse`` over an async generator, ``request.body`` (Django's ASGI handler
reads the body before the view runs), ``include()`` of a namespaced URLconf at /sub with
``reverse`` and ``build_absolute_uri``, a middleware's ``process_exception``, Channels'
``AsyncWebsocketConsumer.close(code, reason)``, ``FileResponse`` and a view Django answers
HEAD for. Django's ASGI handler has no lifespan and no background tasks (not generated).
Django runs only on asyncio. Imported only inside the server, at first use.
"""

from __future__ import annotations

import sys
import types
from collections.abc import AsyncIterator, Callable
from typing import Any

import django  # type: ignore[import-untyped]
from django.conf import settings  # type: ignore[import-untyped]

from ..routes import App
from . import FRAMEWORKS
from .common import CustomError, body_report, chunk, file_path, info
from .common import produce as produce_numbers

NAME = "django"
URLCONF = f"{__name__}_urls"


async def _chunks(token: str) -> AsyncIterator[bytes]:
    async for n in produce_numbers(token):
        yield chunk(n)


class CustomErrorMiddleware:
    """Answers CustomError with 418 (Django's hook for a custom exception response)."""

    sync_capable = False
    async_capable = True

    def __init__(self, get_response: Callable[..., Any]) -> None:
        self.get_response = get_response

    async def __call__(self, request: Any) -> Any:
        return await self.get_response(request)

    def process_exception(self, request: Any, exception: Exception) -> Any:
        from django.http import HttpResponse  # type: ignore[import-untyped]

        if isinstance(exception, CustomError):
            return HttpResponse(f"handled {exception}", status=418, content_type="text/plain")
        return None


def _configure() -> None:
    if not settings.configured:
        settings.configure(
            DEBUG=False,
            SECRET_KEY="asgi-conformance-not-secret",
            ALLOWED_HOSTS=["*"],
            ROOT_URLCONF=URLCONF,
            MIDDLEWARE=[f"{__name__}.CustomErrorMiddleware"],
            INSTALLED_APPS=[],
            USE_TZ=True,
            LOGGING_CONFIG=None,
            DATABASES={},
        )
        django.setup()


def _urls(prefix: str) -> types.ModuleType:
    from django.http import FileResponse, HttpResponse, JsonResponse, StreamingHttpResponse
    from django.urls import include, path, reverse  # type: ignore[import-untyped]

    async def info_view(request: Any) -> Any:
        return JsonResponse(info(NAME, FRAMEWORKS[NAME].version))

    async def stream(request: Any, token: str) -> Any:
        return StreamingHttpResponse(_chunks(token), content_type="text/plain")

    async def body(request: Any, token: str) -> Any:
        return JsonResponse(body_report(request.body, 1))

    async def where(request: Any) -> Any:
        return JsonResponse(
            {
                "url": request.build_absolute_uri(),
                "url_for": request.build_absolute_uri(reverse("sub:where")),
                "root_path": request.scope.get("root_path"),
                "path": request.scope.get("path"),
            }
        )

    async def boom(request: Any, token: str) -> Any:
        raise RuntimeError(f"boom {token}")

    async def custom(request: Any, token: str) -> Any:
        raise CustomError(token)

    def file(request: Any, token: str) -> Any:  # a sync view: Django runs it in a thread
        return FileResponse(open(file_path(), "rb"), content_type="application/octet-stream")

    async def head(request: Any, token: str) -> Any:
        return HttpResponse(f"hello head {token}", content_type="text/plain")

    base = prefix.strip("/") + "/" if prefix.strip("/") else ""
    sub = types.ModuleType(f"{URLCONF}_sub")
    sub.app_name = "sub"  # type: ignore[attr-defined]
    sub.urlpatterns = [path("where", where, name="where")]  # type: ignore[attr-defined]
    sys.modules[sub.__name__] = sub
    module = types.ModuleType(URLCONF)
    module.urlpatterns = [  # type: ignore[attr-defined]
        path(f"{base}info", info_view),
        path(f"{base}stream/<str:token>", stream),
        path(f"{base}body/<str:token>", body),
        path(f"{base}sub/", include(sub.__name__)),
        path(f"{base}boom/<str:token>", boom),
        path(f"{base}custom/<str:token>", custom),
        path(f"{base}file/<str:token>", file),
        path(f"{base}head/<str:token>", head),
    ]
    sys.modules[URLCONF] = module
    return module


def build(prefix: str) -> App:
    _configure()
    _urls(prefix)
    from channels.generic.websocket import AsyncWebsocketConsumer  # type: ignore[import-untyped]
    from channels.routing import ProtocolTypeRouter, URLRouter  # type: ignore[import-untyped]
    from django.core.asgi import get_asgi_application  # type: ignore[import-untyped]
    from django.urls import path

    class Close(AsyncWebsocketConsumer):  # type: ignore[misc]
        async def connect(self) -> None:
            await self.accept()
            kwargs = self.scope["url_route"]["kwargs"]
            await self.close(code=int(kwargs["code"]), reason=f"bye {kwargs['token']}")

    base = prefix.strip("/") + "/" if prefix.strip("/") else ""
    http = get_asgi_application()
    app = ProtocolTypeRouter(
        {
            "http": http,
            "websocket": URLRouter([path(f"{base}ws/close/<int:code>/<str:token>", Close.as_asgi())]),
        }
    )
    return app  # type: ignore[no-any-return]
