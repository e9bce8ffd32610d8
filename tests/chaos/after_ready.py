"""Chaos target: answers the harness's readiness probe once, then misbehaves on every connection.

``after_ready.py MODE PORT``; MODE is one of:

* ``hang``: accepts every later connection, reads the request and never answers (a wedged server);
* ``dribble``: answers a status line, then one byte of an endless header every 50 ms, forever;
* ``dribble-body``: answers a complete head (Content-Length: 1 GB), then one body byte every 50 ms;
* ``garbage``: answers bytes that are not HTTP.

Bounded to 120 s, like the other chaos targets (the harness is expected to kill it long before).
"""

import socket
import sys
import threading
import time

READY = b"/__asgi_conformance__/ready"
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
END = time.monotonic() + 120

mode, port = sys.argv[1], int(sys.argv[2])
if mode not in ("hang", "dribble", "dribble-body", "garbage"):
    sys.exit(f"chaos: unknown mode {mode!r}")
held: list[socket.socket] = []


def misbehave(conn: socket.socket, number: int) -> None:
    try:
        conn.settimeout(1)
        conn.recv(65536)
        if mode == "hang":
            held.append(conn)  # never answered, never closed
            return
        if mode == "garbage":
            conn.sendall(b"\x00\xffNOT HTTP AT ALL\r\n\x01\x02\r\n\r\n")
            conn.close()
            return
        if mode == "dribble":
            conn.sendall(b"HTTP/1.1 200 OK\r\nX-Dribble: ")
        else:
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n")
        while time.monotonic() < END:
            conn.sendall(b"a")
            time.sleep(0.05)
    except OSError as exc:
        print(f"chaos: connection {number} ended by the client ({type(exc).__name__})", flush=True)
        conn.close()


listener = socket.create_server(("127.0.0.1", port))
listener.settimeout(0.5)
print(f"chaos: listening; will answer the readiness probe once, then {mode}", flush=True)
ready = False
count = 0
while time.monotonic() < END:
    try:
        conn, _ = listener.accept()
    except TimeoutError:
        continue
    count += 1
    if not ready:
        conn.settimeout(1)
        try:
            head = conn.recv(65536)
            if READY in head.split(b"\r\n", 1)[0]:
                conn.sendall(OK)
                ready = True
                print(f"chaos: answered the readiness probe; from now on: {mode}", flush=True)
        except OSError:
            pass
        conn.close()
        continue
    print(f"chaos: connection {count}: {mode}", flush=True)
    threading.Thread(target=misbehave, args=(conn, count), daemon=True).start()
