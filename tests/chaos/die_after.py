"""Chaos target: serves the catalogue with uvicorn, then dies after N scenario requests."""

import itertools
import os
import sys

import uvicorn

from asgi_conformance.apps.catalogue import CONTROL_PREFIX
from asgi_conformance.apps.serve import app as catalogue

module_attr, port, limit = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
counter = itertools.count(1)


async def app(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] == "http" and not scope["path"].startswith(CONTROL_PREFIX) and next(counter) > limit:
        print(f"chaos: dying after {limit} requests", flush=True)
        os._exit(9)
    await catalogue(scope, receive, send)


uvicorn.run(app, host="127.0.0.1", port=port, http="h11", log_level="warning")
