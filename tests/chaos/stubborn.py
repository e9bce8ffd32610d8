"""Chaos target: ignores SIGTERM and keeps children (uvicorn, plus a sleeper that ignores it too)."""

import contextlib
import signal
import subprocess
import sys

signal.signal(signal.SIGTERM, signal.SIG_IGN)
app, port = sys.argv[1], sys.argv[2]
sleeper = subprocess.Popen(
    [sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(300)"]
)
server = subprocess.Popen([sys.executable, "-m", "uvicorn", app, "--http", "h11", "--port", port])
print(f"chaos: stubborn leader with children {sleeper.pid} and {server.pid}", flush=True)
with contextlib.suppress(subprocess.TimeoutExpired):
    server.wait(timeout=300)
