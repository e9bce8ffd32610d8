"""Chaos target: answers every connection with bytes that are not HTTP (bounded to 120 s)."""

import socket
import sys
import time

listener = socket.create_server(("127.0.0.1", int(sys.argv[1])))
listener.settimeout(0.5)
print("chaos: answering garbage", flush=True)
end = time.monotonic() + 120
while time.monotonic() < end:
    try:
        conn, _ = listener.accept()
    except TimeoutError:
        continue
    with conn:
        conn.settimeout(1)
        try:
            conn.recv(65536)
            conn.sendall(b"\x00\xffNOT HTTP AT ALL\r\n\x01\x02\r\n\r\n")
        except OSError:
            pass
