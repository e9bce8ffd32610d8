"""The typed JSON used between the scenario app and the harness keeps the judged types."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asgi_conformance.apps.typedjson import Opaque, dumps, loads

values: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text() | st.binary(),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=4).map(tuple)
        | st.dictionaries(st.text() | st.binary() | st.integers(), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(values)
def test_round_trip_keeps_types(value: Any) -> None:
    assert loads(dumps(value)) == value
    assert type(loads(dumps(value))) is type(value)


@pytest.mark.parametrize("value", [("127.0.0.1", 8000), ["127.0.0.1", "8000"], {"$b64": 1}, b"", (b"k", b"v")])
def test_types_that_matter_for_scopes(value: Any) -> None:
    back = loads(dumps(value))
    assert back == value
    assert type(back) is type(value)


def test_non_json_values() -> None:
    back = loads(dumps({"f": math.inf, "obj": object()}))
    assert back["f"] == math.inf
    assert isinstance(back["obj"], Opaque)
    assert back["obj"].type_name == "object"
