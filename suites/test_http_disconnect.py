"""Send after the HTTP client has gone (spec-catalogue §7; www.rst "Disconnected Client", spec 2.4).

The client sends a request to ``/app/err-send-closed/<token>/<variant>`` and closes its
connection once the app has read the body. The app waits (bounded) for
``http.disconnect``, then calls ``send()`` and journals what happened: the exception's
class, its MRO, whether it is an ``OSError``, or that there was none, with the
``spec_version`` its scope advertised. Verdicts follow that advertised version: from
"2.4" on, ``send()`` should raise an ``OSError`` subclass; below, a silent no-op is the
core default. Whether the server logs an escaping exception as an error is judged on
the server's log for that request.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

from asgi_conformance import INFO, MUST, SHOULD, Server, check, client, fail, note, record, scenario
from asgi_conformance.apps.http_errors import DISCONNECT_LIMIT, stream_of
from asgi_conformance.timing import Deadline

SPEC = "www › Disconnected Client - send exception (HTTP)"
# What reads as an error report in a server log: a traceback, an ERROR/CRITICAL level, or
# the phrases servers use for an exception that reached them from the app.
ERROR_LOG = re.compile(
    r"Traceback \(most recent call last\)|\bERROR\b|\bCRITICAL\b|Exception in ASGI application|"
    r"Exception inside application|Unhandled exception",
    re.IGNORECASE,
)
Record = dict[str, Any]


@dataclass(frozen=True)
class SendAfterClose:
    """What one send-after-close exchange showed."""

    send: Record
    spec_version: tuple[int, int]
    spec_version_text: str
    log: str
    log_errors: list[str]
    survived: bool
    next_request: str

    @property
    def raised(self) -> bool:
        return self.send.get("exception") is not None

    @property
    def oserror(self) -> bool:
        return self.send.get("oserror") is True

    def describe(self) -> str:
        if not self.raised:
            return "no exception"
        kind = "an OSError subclass" if self.oserror else "not an OSError"
        return f"raised {self.send.get('exception')} ({kind})"

    def mro(self) -> str:
        return " > ".join(str(c) for c in self.send.get("mro") or ())


def parse_version(value: Any) -> tuple[tuple[int, int], str]:
    """The advertised spec_version as a tuple (missing means "2.0"), and as shown."""
    if value is None:
        return (2, 0), "absent (means 2.0)"
    found = re.fullmatch(r"(\d+)\.(\d+)", value) if isinstance(value, str) else None
    if found is None:
        return (2, 0), f"{value!r} (not a version: read as 2.0)"
    return (int(found[1]), int(found[2])), value


def error_lines(log: str, limit: int = 5) -> list[str]:
    return [line.strip()[:200] for line in log.splitlines() if ERROR_LOG.search(line)][:limit]


def log_after(server: Server, offset: int, follower: str) -> str:
    """The server log since ``offset``, once it has settled.

    Servers write their logs asynchronously. The caller has sent a fresh request
    (``follower`` is its path); this waits until an error report appears, or the
    fresh request's access-log line shows the server logged past the case, or, as
    negative evidence that nothing more will come, ``timeouts.hold`` passes.
    """
    deadline = Deadline(server.timeouts.hold)
    while True:
        text = server.process.log_slice(offset)
        if ERROR_LOG.search(text) or follower in text or deadline.expired:
            return text
        time.sleep(min(0.02, deadline.remaining()))  # poll interval, bounded by the deadline


def follower_path(what: str) -> str:
    return f"/echo/err-after/{what}"


def fresh_request(server: Server, what: str) -> tuple[bool, str]:
    """Whether a new connection still gets the echo app's 200 (and what it got)."""
    outcome = server.request("GET", follower_path(what))
    ok = isinstance(outcome, client.Response) and outcome.status == 200
    return ok, client.describe(outcome)


def send_after_close(server: Server, variant: str) -> SendAfterClose:
    """Request ``err-send-closed`` with ``variant`` (report, swallow, escape), close, observe.

    The client closes its connection (FIN) once the app journals that it has read the
    request; the app waits for ``http.disconnect`` (at most DISCONNECT_LIMIT s) and sends.
    The server log for the case is read by ``log_after``, which uses ``timeouts.hold`` as the
    negative evidence that no error report is still to come.
    """
    token = secrets.token_hex(6)
    stream = stream_of(token)
    offset = server.process.log_offset()
    with server.connection() as conn:
        conn.send(client.build_request("GET", f"/app/err-send-closed/{token}/{variant}"))
        ready = server.journal.wait_for(stream, lambda r: r.get("kind") == "ready", server.timeouts.event)
        if ready is None:
            fail(
                "the request never reached the app",
                expected="the app reads the request",
                observed=client.describe(conn.response(timeout=0)),
                level=MUST,
            )
    sent = server.journal.wait_for(stream, lambda r: r.get("kind") == "send", DISCONNECT_LIMIT + server.timeouts.event)
    if sent is None:
        fail(
            "the app never got to call send() after the client left",
            expected="a journal record of the send",
            observed="none within the deadline",
            level=MUST,
        )
    if not sent.get("disconnected"):
        fail(
            "http.disconnect never reached the app after the client closed its connection",
            expected="http.disconnect, then the send under test",
            observed=f"last event {sent.get('last_event')!r} after {sent.get('waited_s')} s",
            level=SHOULD,
        )
    survived, next_request = fresh_request(server, token)
    log = log_after(server, offset, follower_path(token))
    version, shown = parse_version(sent.get("spec_version"))
    return SendAfterClose(sent, version, shown, log, error_lines(log), survived, next_request)


def _judge_survival(seen: SendAfterClose) -> None:
    check(
        seen.survived,
        "the server did not serve a fresh request after the exception",
        expected="the echo app's 200 on a new connection",
        observed=seen.next_request,
        level=MUST,
    )


@scenario(
    "http.send_closed.oserror",
    "send() after the client has gone raises an OSError subclass (spec >= 2.4; a no-op below)",
    level=INFO,
    spec=SPEC,
    impact="interop",
)
def test_send_closed_oserror(server: Server) -> None:
    """INFO: the cell is what send() did. SHOULD (a warn) when the scope claims spec_version
    >= "2.4" and send() does not raise an OSError subclass; below 2.4 a no-op is the core default."""
    seen = send_after_close(server, "report")
    record(f"{seen.describe()}; spec_version {seen.spec_version_text}")
    if seen.raised:
        note(f"MRO: {seen.mro()}")
    if seen.spec_version >= (2, 4):
        check(
            seen.oserror,
            "send() after the client left did not raise an OSError subclass",
            expected="an OSError subclass (spec_version >= 2.4)",
            observed=seen.describe(),
            level=SHOULD,
        )


@scenario(
    "http.send_closed.version_consistency",
    "the advertised spec_version matches what send() does after the client has gone",
    level=SHOULD,
    spec="www › Spec Versions",
    impact="interop",
)
def test_send_closed_version_consistency(server: Server) -> None:
    """SHOULD (inference): claiming >= "2.4" while send() does not raise an OSError is over-claiming
    (a warn). Raising an OSError while claiming less is under-claiming: harmless, recorded."""
    seen = send_after_close(server, "report")
    claims = seen.spec_version >= (2, 4)
    if claims and not seen.oserror:
        verdict = "over-claims"
    elif not claims and seen.oserror:
        verdict = "under-claims"
    else:
        verdict = "consistent"
    record(f"{verdict}: spec_version {seen.spec_version_text}, send() {seen.describe()}")
    check(
        verdict != "over-claims",
        "the scope claims spec_version >= 2.4, but send() after the client left does not raise an OSError",
        expected="an OSError subclass, or a spec_version below 2.4",
        observed=f"spec_version {seen.spec_version_text}; {seen.describe()}",
    )


@scenario(
    "http.send_closed.app_may_swallow",
    "an app that catches the send() exception and returns normally is not treated as a failure",
    level=SHOULD,
    spec="www › Disconnected Client",
    impact="cosmetic",
    alone=True,
)
def test_send_closed_app_may_swallow(server: Server) -> None:
    """SHOULD: no error report in the server log for that request (judged on the log slice,
    with ``timeouts.hold`` as negative evidence). MUST: the server serves the next request."""
    seen = send_after_close(server, "swallow")
    _judge_survival(seen)
    record(f"send() {seen.describe()}; app returned; error lines in the log: {len(seen.log_errors)}")
    check(
        not seen.log_errors,
        "the server logged an error for an app that handled the exception and returned",
        expected="no traceback or ERROR line",
        observed=seen.log_errors,
    )


@scenario(
    "http.send_closed.not_logged",
    "an escaping send() exception after the client has gone is caught, not logged as an error",
    level=SHOULD,
    spec="www › Disconnected Client; core › Error Handling",
    impact="cosmetic",
    alone=True,
)
def test_send_closed_not_logged(server: Server) -> None:
    """MUST: the server catches the exception (it serves the next request). SHOULD NOT: log it as
    an error: no traceback or ERROR line in the log for that request (``timeouts.hold`` is the
    negative evidence). Where send() does not raise, nothing escapes: the app returns and the
    log must be as clean."""
    seen = send_after_close(server, "escape")
    _judge_survival(seen)
    escaped = "escaped" if seen.raised else "nothing to escape, the app returned"
    record(f"send() {seen.describe()}; {escaped}; error lines in the log: {len(seen.log_errors)}")
    check(
        not seen.log_errors,
        "the server logged the escaped send() exception as an error",
        expected="no traceback or ERROR line",
        observed=seen.log_errors,
    )
