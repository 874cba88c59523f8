#!/usr/bin/env python3
"""A minimal WebSocket client (standard library only) for the desktop app's CI run.

usage: client.py ws://HOST:PORT/PATH TEXT [HOLD_SECONDS]

Opens the connection (RFC 6455 opening handshake), sends TEXT as one masked text frame,
prints "sent", then stays connected for HOLD_SECONDS (so the window's connection list shows
it), answering the server's heartbeat pings (so it shows an RTT), and closes with 1000.
Exits non-zero if the handshake fails.
"""

import base64
import hashlib
import os
import socket
import struct
import sys
import time
from urllib.parse import urlsplit

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def frame(opcode, payload):
    """One final, masked frame (clients must mask)."""
    head = bytes([0x80 | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 1 << 16:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def handshake(sock, host, path):
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    sock.sendall(request.encode())
    response = b""
    while b"\r\n\r\n" not in response:
        chunk = sock.recv(4096)
        if not chunk:
            raise SystemExit("client: connection closed during the handshake")
        response += chunk
    head = response.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    if not head.startswith("HTTP/1.1 101"):
        raise SystemExit(f"client: handshake refused: {head.splitlines()[0]}")
    want = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
    if f"sec-websocket-accept: {want.lower()}" not in head.lower():
        raise SystemExit("client: wrong Sec-WebSocket-Accept")


def main():
    url, text = sys.argv[1], sys.argv[2]
    hold = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
    handshake(sock, parts.netloc, parts.path or "/")
    sock.sendall(frame(0x1, text.encode()))
    print("sent", flush=True)
    answer_pings(sock, time.monotonic() + hold)
    sock.sendall(frame(0x8, struct.pack("!H", 1000)))
    sock.close()


def read_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def answer_pings(sock, until):
    """Reads the server's (unmasked) frames until `until`, answering each ping with a pong."""
    while time.monotonic() < until:
        sock.settimeout(max(0.05, until - time.monotonic()))
        try:
            b0, b1 = read_exact(sock, 2)
            n = b1 & 0x7F
            if n == 126:
                (n,) = struct.unpack("!H", read_exact(sock, 2))
            elif n == 127:
                (n,) = struct.unpack("!Q", read_exact(sock, 8))
            payload = read_exact(sock, n)
        except socket.timeout:
            return
        except EOFError:
            raise SystemExit("client: the server closed the connection")
        if b0 & 0x0F == 0x9:
            sock.sendall(frame(0xA, payload))


if __name__ == "__main__":
    main()
