"""Chaos target: accepts connections and never answers (bounded to 120 s)."""

import socket
import sys
import time

listener = socket.create_server(("127.0.0.1", int(sys.argv[1])))
listener.settimeout(0.5)
held = []
print("chaos: listening, will never answer", flush=True)
end = time.monotonic() + 120
while time.monotonic() < end:
    try:
        conn, _ = listener.accept()
    except TimeoutError:
        continue
    held.append(conn)
