"""Running a child for the benchmark scripts: bounded in time, and never orphaned.

``subprocess.run`` ends a child it gives up on (a timeout, Ctrl-C) with SIGKILL, which leaves
that child's own children (pytest's server processes, ``asgi-conformance run``'s pytest
processes) running. Here the child gets SIGTERM first, which the plugin and
``asgi-conformance run`` turn into an orderly stop of everything they started; SIGTERM sent
to the script itself does the same (``stop_on_sigterm``).
"""

from __future__ import annotations

import signal
import subprocess
import tempfile
from types import FrameType

GRACE_S = 60.0
"""How long a child has to stop its own processes after SIGTERM before it is killed."""


def stop_on_sigterm() -> None:
    """SIGTERM ends the script like Ctrl-C: ``finally`` blocks run, children are stopped."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def run_bounded(command: list[str], limit: float, env: dict[str, str] | None = None) -> tuple[int | None, str]:
    """Run ``command`` (in ``env``, else this environment) for at most ``limit`` seconds; its
    exit status (None if it overran) and the tail of its output."""
    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT, env=env)
        status: int | None = None
        try:
            status = process.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            _stop(process)
        except BaseException:
            _stop(process)
            raise
        output.seek(0)
        tail = output.read()[-4000:].decode(errors="replace")
    return status, tail


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=GRACE_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
