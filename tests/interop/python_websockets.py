"""Interop tests: the Python `websockets` library's sync client against the echo example.

usage: python_websockets.py MODE URL LIMITED_URL

URL is an echo server with default limits, LIMITED_URL one started with
`--max-message-size 1000`. MODE (async|inline|deflate) labels the output; `deflate` means the
servers run with `--deflate`: permessage-deflate must then be negotiated, and every test runs
compressed.
Prints one `ok - ...` or `FAIL - ...` line per test and a closing `N passed, N failed` line;
exits non-zero if any test failed.
"""

import sys
import threading
import time
import traceback

import websockets
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, ConnectionClosedOK
from websockets.sync.client import connect

MODE, URL, LIMITED = sys.argv[1], sys.argv[2], sys.argv[3]
T = 10  # seconds: every open, receive and close is bounded by this

results = {"passed": 0, "failed": 0}


def test(fn):
    name = f"python-websockets {websockets.__version__} [{MODE}] {fn.__name__}"
    start = time.monotonic()
    try:
        fn()
    except Exception:  # noqa: BLE001 - report every failure and go on
        results["failed"] += 1
        print(f"FAIL - {name}", flush=True)
        traceback.print_exc(file=sys.stdout)
    else:
        results["passed"] += 1
        print(f"ok - {name} ({time.monotonic() - start:.2f}s)", flush=True)
    return fn


def ws_connect(url=None, **kw):
    kw.setdefault("open_timeout", T)
    kw.setdefault("close_timeout", T)
    return connect(url or URL, **kw)


def eq(got, want, what):
    if got != want:
        g, w = repr(got), repr(want)
        if len(g) > 200:
            g = g[:200] + "..."
        if len(w) > 200:
            w = w[:200] + "..."
        raise AssertionError(f"{what}: got {g}, want {w}")


def expect_close(ws, code, what):
    """Reads until the server closes; asserts the close code it sent."""
    try:
        while True:
            ws.recv(timeout=T)
    except ConnectionClosed as e:
        if e.rcvd is None:
            raise AssertionError(f"{what}: connection dropped without a close frame ({e!r})")
        eq(e.rcvd.code, code, f"{what}: close code from the server")
        return e
    except TimeoutError:
        raise AssertionError(f"{what}: server did not close within {T}s")


@test
def text_messages():
    with ws_connect() as ws:
        for msg in ["hello", "", "héllo wörld ✓ 🎉 — ünïcödé", "x" * 125, "y" * 126, "z" * 70000]:
            ws.send(msg)
            got = ws.recv(timeout=T)
            eq(type(got), str, "type of the echo of a text message")
            eq(got, msg, "text echo")


@test
def binary_messages():
    with ws_connect() as ws:
        for msg in [b"", bytes(range(256)), b"\x00\xff" * 40000, bytes(200000)]:
            ws.send(msg)
            got = ws.recv(timeout=T)
            eq(type(got), bytes, "type of the echo of a binary message")
            eq(got, msg, "binary echo")


@test
def fragmented_messages():
    with ws_connect() as ws:
        # An iterator is sent as one message in several frames (first, continuation..., final).
        ws.send(iter(["frag-one ", "frag-two ", "", "frag-three ✓"]))
        eq(ws.recv(timeout=T), "frag-one frag-two frag-three ✓", "fragmented text echo")
        ws.send(iter([b"\x01\x02", b"\x03", b"\x04" * 5000]))
        eq(ws.recv(timeout=T), b"\x01\x02\x03" + b"\x04" * 5000, "fragmented binary echo")
        # A multi-byte UTF-8 character split across two frames must be reassembled.
        snow = "☃".encode()
        ws.send(iter([b"a" + snow[:1], snow[1:] + b"b"]), text=True)
        eq(ws.recv(timeout=T), "a☃b", "text with a character split across frames")


@test
def ping_pong():
    with ws_connect() as ws:
        for payload in [b"ping-1", b"", bytes(range(125))]:
            pong = ws.ping(payload)
            if not pong.wait(T):
                raise AssertionError(f"no pong for ping {payload[:16]!r} within {T}s")
        # Messages still flow after pings, and a ping between two sends does not reorder them.
        ws.send("before")
        pong = ws.ping(b"middle")
        ws.send("after")
        eq(ws.recv(timeout=T), "before", "first echo after a ping")
        eq(ws.recv(timeout=T), "after", "second echo after a ping")
        if not pong.wait(T):
            raise AssertionError("no pong for the ping between two messages")


@test
def many_messages_in_order():
    with ws_connect() as ws:
        n = 500
        for i in range(n):
            ws.send(f"m{i}" if i % 2 else f"m{i}".encode())
        for i in range(n):
            eq(ws.recv(timeout=T), f"m{i}" if i % 2 else f"m{i}".encode(), f"echo #{i}")


@test
def concurrent_clients():
    errors = []

    def client(k):
        try:
            with ws_connect() as ws:
                for i in range(50):
                    ws.send(f"client {k} message {i}")
                    eq(ws.recv(timeout=T), f"client {k} message {i}", f"client {k} echo")
        except Exception as e:  # noqa: BLE001
            errors.append(f"client {k}: {e!r}")

    threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(3 * T)
        if t.is_alive():
            raise AssertionError("a client thread did not finish in time")
    if errors:
        raise AssertionError("; ".join(errors))


@test
def client_close_with_code_and_reason():
    with ws_connect() as ws:
        ws.send("last words")
        eq(ws.recv(timeout=T), "last words", "echo before close")
        ws.close(4000, "client done")
        sent, rcvd = ws.protocol.close_sent, ws.protocol.close_rcvd
        eq((sent.code, sent.reason), (4000, "client done"), "close frame sent")
        if rcvd is None:
            raise AssertionError("server did not answer the close frame")
        # RFC 6455 5.5.1: the endpoint typically echoes the status code it received.
        eq(rcvd.code, 4000, "close code echoed by the server")
        try:
            ws.recv(timeout=T)
            raise AssertionError("recv after close returned a message")
        except ConnectionClosed as e:
            eq(e.sent.code, 4000, "close exception: code sent")
            eq(e.rcvd.code, 4000, "close exception: code received")


@test
def client_close_normal():
    with ws_connect() as ws:
        ws.close()  # 1000, no reason
        rcvd = ws.protocol.close_rcvd
        if rcvd is None:
            raise AssertionError("server did not answer the close frame")
        eq(rcvd.code, 1000, "close code echoed by the server")
        try:
            ws.recv(timeout=T)
            raise AssertionError("recv after close returned a message")
        except ConnectionClosedOK:
            pass


@test
def server_closes_1009_on_too_large_frame():
    with ws_connect(LIMITED) as ws:
        ws.send("a" * 1000)  # exactly at the limit: fine
        eq(ws.recv(timeout=T), "a" * 1000, "echo at the size limit")
        ws.send("b" * 2000)
        e = expect_close(ws, 1009, "message over --max-message-size 1000")
        if not isinstance(e, ConnectionClosedError):
            raise AssertionError(f"expected ConnectionClosedError, got {e!r}")


@test
def server_closes_1009_on_too_large_fragmented_message():
    with ws_connect(LIMITED) as ws:
        # Each frame is under the limit, the whole message is not.
        ws.send(iter([b"c" * 400, b"c" * 400, b"c" * 400]))
        expect_close(ws, 1009, "fragmented message over --max-message-size 1000")


@test
def server_closes_1007_on_invalid_utf8_text():
    with ws_connect() as ws:
        # websockets sends bytes with text=True as a Text frame without checking them.
        ws.send(b"valid then \xff\xfe invalid", text=True)
        expect_close(ws, 1007, "text message with invalid UTF-8")


@test
def subprotocols_offered_none_selected():
    with ws_connect(subprotocols=["chat.v2", "superchat"]) as ws:
        # The echo example selects no subprotocol: the client must accept that cleanly.
        eq(ws.subprotocol, None, "selected subprotocol")
        eq(ws.request.headers.get("Sec-WebSocket-Protocol"), "chat.v2, superchat", "offer sent")
        eq(ws.response.headers.get("Sec-WebSocket-Protocol"), None, "Sec-WebSocket-Protocol in the response")
        ws.send("with subprotocols offered")
        eq(ws.recv(timeout=T), "with subprotocols offered", "echo")


@test
def permessage_deflate():
    with ws_connect() as ws:  # websockets offers permessage-deflate by default
        offer = ws.request.headers.get("Sec-WebSocket-Extensions") or ""
        if "permessage-deflate" not in offer:
            raise AssertionError(f"client did not offer permessage-deflate: {offer!r}")
        answer = ws.response.headers.get("Sec-WebSocket-Extensions")
        if MODE == "deflate":
            # Negotiated: the server compresses each message alone (its default).
            eq(answer, "permessage-deflate; server_no_context_takeover", "the server's answer")
            eq([e.name for e in ws.protocol.extensions], ["permessage-deflate"], "negotiated extensions")
        else:
            eq(answer, None, "Sec-WebSocket-Extensions in the response (compression is off by default)")
            eq(ws.protocol.extensions, [], "negotiated extensions")
        for msg in ["compressible " * 5000, "x", "ünïcödé ✓ " * 300, bytes(300000)]:
            ws.send(msg)
            eq(ws.recv(timeout=T), msg, "echo")
        # Several messages in a row: the client keeps its window from one to the next.
        for i in range(50):
            ws.send(f"message {i} " * 100)
        for i in range(50):
            eq(ws.recv(timeout=T), f"message {i} " * 100, f"echo #{i}")


@test
def compression_can_be_declined_by_the_client():
    with ws_connect(compression=None) as ws:
        eq(ws.response.headers.get("Sec-WebSocket-Extensions"), None, "no extension without an offer")
        ws.send("plain " * 1000)
        eq(ws.recv(timeout=T), "plain " * 1000, "echo")


@test
def handshake_response_headers():
    with ws_connect() as ws:
        eq(ws.response.status_code, 101, "status")
        eq(ws.response.headers.get("Upgrade", "").lower(), "websocket", "Upgrade header")
        eq("upgrade" in ws.response.headers.get("Connection", "").lower(), True, "Connection: upgrade")


@test
def rejects_plain_http_client_cleanly():
    # A non-WebSocket GET must get an HTTP error, not a hang or a 101.
    import http.client
    from urllib.parse import urlparse

    u = urlparse(URL)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=T)
    c.request("GET", "/")
    r = c.getresponse()
    r.read()
    c.close()
    if not 400 <= r.status < 500:
        raise AssertionError(f"plain GET answered with {r.status}, want a 4xx")


print(f"python-websockets [{MODE}]: {results['passed']} passed, {results['failed']} failed", flush=True)
sys.exit(1 if results["failed"] else 0)
