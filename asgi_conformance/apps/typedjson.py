"""A JSON encoding that keeps the Python types an ASGI scope is judged on.

Plain JSON loses exactly what conformance checks look at: bytes vs str, tuple vs
list, int vs str ports, non-str dict keys. Values are tagged instead:
``{"$b64": ...}`` for bytes, ``{"$tuple": [...]}``, ``{"$dict": [[k, v], ...]}``
when a dict has a non-str key (or a key that starts with "$"), ``{"$float": "nan"}``
and ``{"$obj": type, "repr": ..., "id": ...}`` for anything else. Shared by the
scenario app (encode) and the harness (decode). Standard library only.
"""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass
from typing import Any

__all__ = ["Opaque", "decode", "dumps", "encode", "loads"]

MAX_REPR = 200


@dataclass(frozen=True)
class Opaque:
    """A value the app saw that JSON cannot carry (an object, a function, ...)."""

    type_name: str
    repr: str
    id: int


def encode(value: Any, _depth: int = 0) -> Any:
    if _depth > 32:
        return {"$obj": "<too deep>", "repr": "", "id": 0}
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"$float": repr(value)}
    if isinstance(value, bytes):
        return {"$b64": base64.b64encode(value).decode("ascii")}
    if isinstance(value, tuple):
        return {"$tuple": [encode(v, _depth + 1) for v in value]}
    if isinstance(value, list):
        return [encode(v, _depth + 1) for v in value]
    if isinstance(value, dict):
        if all(isinstance(k, str) and not k.startswith("$") for k in value):
            return {k: encode(v, _depth + 1) for k, v in value.items()}
        return {"$dict": [[encode(k, _depth + 1), encode(v, _depth + 1)] for k, v in value.items()]}
    return {"$obj": type(value).__qualname__, "repr": repr(value)[:MAX_REPR], "id": id(value)}


def _hashable(value: Any) -> Any:
    return value if not isinstance(value, list | dict) else repr(value)


def decode(data: Any) -> Any:
    if isinstance(data, list):
        return [decode(v) for v in data]
    if not isinstance(data, dict):
        return data
    if "$b64" in data:
        return base64.b64decode(data["$b64"])
    if "$tuple" in data:
        return tuple(decode(v) for v in data["$tuple"])
    if "$dict" in data:
        return {_hashable(decode(k)): decode(v) for k, v in data["$dict"]}
    if "$float" in data:
        return float(data["$float"])
    if "$obj" in data:
        return Opaque(str(data["$obj"]), str(data.get("repr", "")), int(data.get("id", 0)))
    return {k: decode(v) for k, v in data.items()}


def dumps(value: Any) -> bytes:
    return json.dumps(encode(value), separators=(",", ":")).encode("utf-8")


def loads(data: bytes | str) -> Any:
    return decode(json.loads(data))
