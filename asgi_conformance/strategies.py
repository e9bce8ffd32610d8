"""Hypothesis strategies for request parts, derived from the RFC grammar, and the settings for live targets.

Every value is valid by construction, so whatever a conformant server does with it is
fixed by the ASGI spec: a property scenario sends it with the raw client (httpx
normalises) and compares what the app saw with what the spec says it must see.

Grammar (RFC 3986 §3.3, §3.4, §2.1; RFC 9110 §5.1, §5.5, §5.6.2)::

    path-abempty  = *( "/" segment )
    segment       = *pchar
    pchar         = unreserved / pct-encoded / sub-delims / ":" / "@"
    query         = *( pchar / "/" / "?" )
    pct-encoded   = "%" HEXDIG HEXDIG
    unreserved    = ALPHA / DIGIT / "-" / "." / "_" / "~"
    sub-delims    = "!" / "$" / "&" / "'" / "(" / ")" / "*" / "+" / "," / ";" / "="
    field-name    = token
    token         = 1*tchar
    tchar         = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
                    "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
    field-value   = *field-content
    field-content = field-vchar [ 1*( SP / HTAB / field-vchar ) field-vchar ]

What separate scenarios cover is left out here, so a property failure points at one
rule: dot-segments and empty segments (``http.scope.path.no_normalisation``), raw
non-ASCII bytes and invalid UTF-8 escapes (``path.raw_utf8``, ``path.invalid_utf8``),
control characters (servers may refuse them), "_" in field names
(``headers.no_drop``), obs-text and empty values (``headers.exact_values``).
"""

from __future__ import annotations

import os
import string
from urllib.parse import unquote

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

__all__ = [
    "LIVE",
    "PCHAR_LITERAL",
    "PROFILES",
    "QUERY_LITERAL",
    "TCHAR",
    "UNRESERVED",
    "decoded_path",
    "field_names",
    "field_values",
    "header_fields",
    "pct_encoded_bytes",
    "pct_encoded_utf8",
    "profile_name",
    "query_strings",
    "request_paths",
    "segments",
]

UNRESERVED = string.ascii_letters + string.digits + "-._~"
SUB_DELIMS = "!$&'()*+,;="
PCHAR_LITERAL = UNRESERVED + SUB_DELIMS + ":@"
QUERY_LITERAL = PCHAR_LITERAL + "/?"
TCHAR = "!#$%&'*+-.^_`|~" + string.ascii_letters + string.digits
VCHAR = "".join(chr(c) for c in range(0x21, 0x7F))

PROFILES = {"default": 40, "ci": 20}
"""Examples per property scenario and target: ``ci`` when ``CI`` is set (or by
``ASGI_CONFORMANCE_HYPOTHESIS_PROFILE``), bounded either way; each is deterministic."""


def profile_name() -> str:
    chosen = os.environ.get("ASGI_CONFORMANCE_HYPOTHESIS_PROFILE")
    if chosen in PROFILES:
        return chosen
    return "ci" if os.environ.get("CI", "").lower() in {"1", "true", "yes"} else "default"


LIVE = settings(
    max_examples=PROFILES[profile_name()],
    derandomize=True,  # the same examples every run: a matrix must not change by chance
    database=None,  # nothing remembered between runs, for the same reason
    deadline=None,  # wall-clock deadlines against a live server are noise
    report_multiple_bugs=False,  # one falsifying example: one expected/observed pair
    print_blob=False,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,  # `server` is a view of a session process: nothing to reset
        HealthCheck.too_slow,
    ],
)
"""Settings for property scenarios that talk to a live target."""


def _hex(byte: int, lower: bool) -> str:
    text = f"%{byte:02X}"
    return text.lower() if lower else text


@st.composite
def pct_encoded_utf8(draw: st.DrawFn) -> str:
    """Whole characters as %-escaped UTF-8 (either hex case): always valid UTF-8 once unescaped."""
    text = draw(st.text(st.characters(exclude_categories=("Cs", "Cc")), min_size=1, max_size=3))
    lower = draw(st.booleans())
    return "".join(_hex(b, lower) for b in text.encode("utf-8"))


@st.composite
def pct_encoded_bytes(draw: st.DrawFn) -> str:
    """Arbitrary octets %-escaped: legal in a query, which the server must not decode."""
    data = draw(st.binary(min_size=1, max_size=3))
    lower = draw(st.booleans())
    return "".join(_hex(b, lower) for b in data)


def segments() -> st.SearchStrategy[str]:
    """A non-empty path segment that is not a dot-segment."""
    literal = st.text(PCHAR_LITERAL, min_size=1, max_size=8)
    parts = st.lists(st.one_of(literal, pct_encoded_utf8()), min_size=1, max_size=3).map("".join)
    return parts.filter(lambda s: s not in (".", ".."))


def request_paths(prefix: str) -> st.SearchStrategy[str]:
    """Origin-form paths under ``prefix`` (which routes to the echo app), as sent on the wire."""
    return st.lists(segments(), min_size=1, max_size=4).map(lambda parts: prefix + "/" + "/".join(parts))


def decoded_path(raw: str) -> str:
    """What ``scope["path"]`` must be for ``raw``: %-escapes decoded, then UTF-8 decoded."""
    return unquote(raw, encoding="utf-8", errors="strict")


def query_strings() -> st.SearchStrategy[str]:
    """A query (the part after the first "?"), possibly empty, with "?", "+", "/" and escapes."""
    literal = st.text(QUERY_LITERAL, min_size=1, max_size=10)
    return st.lists(st.one_of(literal, pct_encoded_bytes()), max_size=4).map("".join)


def field_names() -> st.SearchStrategy[str]:
    """Header names: "X-" and a token without "_" (no hop-by-hop or framing header can come out)."""
    return st.text(TCHAR.replace("_", ""), min_size=1, max_size=12).map(lambda t: "X-" + t)


def field_values() -> st.SearchStrategy[str]:
    """Header values: visible ASCII with inner single spaces, no leading or trailing whitespace."""
    word = st.text(VCHAR, min_size=1, max_size=10)
    return st.lists(word, min_size=1, max_size=3).map(" ".join)


@st.composite
def header_fields(draw: st.DrawFn) -> list[tuple[str, str]]:
    """Header lines in order; names repeat (in any case), so duplicates and their order are exercised."""
    pool = draw(st.lists(field_names(), min_size=1, max_size=3, unique_by=str.lower))
    pool = [n for n in pool if n.lower() != "x-ac-mutate"] or ["X-Default"]
    count = draw(st.integers(min_value=1, max_value=6))
    fields = []
    for _ in range(count):
        name = draw(st.sampled_from(pool))
        flips = draw(st.lists(st.booleans(), min_size=len(name), max_size=len(name)))
        recased = "".join(c.swapcase() if flip else c for c, flip in zip(name, flips, strict=True))
        fields.append((recased, draw(field_values())))
    return fields
