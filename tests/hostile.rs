//! Misbehaving clients and handlers: protocol violations get the right close code, size limits
//! hold, and a panicking handler only costs its own connection.

mod common;

use std::time::Duration;

use common::*;
use syncws::{CloseCode, Server};
use syncws_protocol::frame::{FrameHeader, OpCode};
use tungstenite::Message;

/// Sends `bytes` on a fresh raw connection; expects a close frame with `code`, the end of the
/// connection, and a matching disconnect (not clean) plus an error event.
fn expect_failure(srv: &TestServer, bytes: &[u8], code: u16, what: &str) {
    let mut raw = raw_connect(srv.local_addr(), "/");
    let conn = srv.expect_connect();
    raw.send_raw(bytes);
    let (got, reason) = raw.read_close();
    assert_eq!(got, code, "{what} ({:?}): close reason {reason:?}", srv.mode);
    // Like a real client, stop sending after the close frame: the server then ends at once.
    let _ = raw.sock.shutdown(std::net::Shutdown::Write);
    raw.expect_eof();
    let mut saw_error = false;
    let d = srv.wait_for("disconnect", |ev| match ev {
        Ev::Error(c, _) if c.id() == conn.id() => {
            saw_error = true;
            None
        }
        Ev::Disconnect(c, d) if c.id() == conn.id() => Some(d.clone()),
        _ => None,
    });
    assert!(saw_error, "{what}: no error event before the disconnect");
    assert_eq!(d.code, CloseCode(code), "{what}: {d:?}");
    assert!(!d.clean, "{what}: {d:?}");
}

#[test]
fn protocol_violations_get_their_close_codes() {
    for mode in MODES {
        let server = Server::new(config());
        let srv = start(&server, mode);
        expect_failure(
            &srv,
            &frame(true, OpCode::Text, b"hello", false),
            1002,
            "unmasked frame",
        );
        expect_failure(
            &srv,
            &frame(true, OpCode::Text, &[b'o', b'k', 0xC3, 0x28], true),
            1007,
            "invalid UTF-8",
        );
        let mut frag = frame(false, OpCode::Text, "caf".as_bytes(), true);
        frag.extend(frame(true, OpCode::Continuation, &[0xC3], true));
        expect_failure(
            &srv,
            &frag,
            1007,
            "truncated UTF-8 at the end of a fragmented message",
        );
        let mut f = frame(true, OpCode::Binary, b"x", true);
        f[0] |= 0x40;
        expect_failure(&srv, &f, 1002, "RSV1 without an extension");
        let mut f = frame(true, OpCode::Binary, b"x", true);
        f[0] = (f[0] & 0xF0) | 0x3;
        expect_failure(&srv, &f, 1002, "reserved opcode");
        expect_failure(
            &srv,
            &frame(true, OpCode::Continuation, b"x", true),
            1002,
            "lone continuation",
        );
        let mut f = frame(false, OpCode::Text, b"a", true);
        f.extend(frame(true, OpCode::Text, b"b", true));
        expect_failure(&srv, &f, 1002, "new message inside a fragmented one");
        expect_failure(
            &srv,
            &frame(false, OpCode::Ping, b"p", true),
            1002,
            "fragmented ping",
        );
        expect_failure(
            &srv,
            &frame(true, OpCode::Ping, &[0; 126], true),
            1002,
            "long ping",
        );
        expect_failure(
            &srv,
            &frame(true, OpCode::Close, &[3], true),
            1002,
            "one-byte close",
        );
        expect_failure(
            &srv,
            &frame(true, OpCode::Close, &close_payload(1005, ""), true),
            1002,
            "close code not allowed on the wire",
        );
        expect_failure(
            &srv,
            &frame(true, OpCode::Close, &[0x03, 0xE8, 0xFF, 0xFE], true),
            1007,
            "close reason not UTF-8",
        );
        srv.stop();
    }
}

#[test]
fn messages_over_the_limits_are_refused_with_1009() {
    for mode in MODES {
        let server = Server::new(config().max_message_size(1024).max_frame_size(1024));
        let srv = start(&server, mode);
        // Just under the limit is fine.
        let mut raw = raw_connect(srv.local_addr(), "/");
        let conn = srv.expect_connect();
        raw.send(true, OpCode::Binary, &[7; 1024]);
        assert_eq!(raw.read_frame().payload, vec![7; 1024]);
        drop(raw);
        srv.expect_disconnect(conn.id());

        // Two fragments that together are too big.
        let mut f = frame(false, OpCode::Binary, &[1; 600], true);
        f.extend(frame(true, OpCode::Continuation, &[2; 600], true));
        expect_failure(&srv, &f, 1009, "fragmented message over max_message_size");

        // A frame header announcing too much is refused before its payload arrives.
        let mut hdr = Vec::new();
        FrameHeader::new(OpCode::Binary, 10 << 20, Some([1, 2, 3, 4])).encode_to_vec(&mut hdr);
        expect_failure(&srv, &hdr, 1009, "frame header over max_frame_size");

        // Through tungstenite: the client sees 1009.
        let mut ws = connect(srv.local_addr(), "/");
        ws.send(Message::text("x".repeat(5000))).unwrap();
        let f = read_close(&mut ws).unwrap();
        assert_eq!(code_of(&f), 1009, "{mode:?}");
        drain_until_closed(&mut ws);
        srv.stop();
    }
}

#[test]
fn handler_panic_closes_only_its_connection() {
    for mode in MODES {
        let server = Server::new(config());
        let srv = start(&server, mode);
        let (mut a, ca) = connect_pair(&srv, "/a");
        let (mut b, cb) = connect_pair(&srv, "/b");
        a.send(Message::text(PANIC_TEXT)).unwrap();
        let f = read_close(&mut a).unwrap();
        assert_eq!(code_of(&f), 1011, "{mode:?}");
        drain_until_closed(&mut a);
        let mut saw_panic = false;
        let d = srv.wait_for("disconnect of a", |ev| match ev {
            Ev::Error(c, e) if c.id() == ca.id() => {
                assert!(e.contains("panicked"), "{e}");
                saw_panic = true;
                None
            }
            Ev::Disconnect(c, d) if c.id() == ca.id() => Some(d.clone()),
            _ => None,
        });
        assert!(saw_panic, "{mode:?}: on_error was not told about the panic");
        assert_eq!(d.code, CloseCode::INTERNAL_ERROR, "{mode:?}: {d:?}");

        // The other connection still works, and new ones are accepted.
        b.send(Message::text("b still here")).unwrap();
        assert_eq!(read_text(&mut b), "b still here");
        assert_eq!(srv.expect_text(cb.id()), "b still here");
        let (mut c, _cc) = connect_pair(&srv, "/c");
        c.send(Message::text("c is new")).unwrap();
        assert_eq!(read_text(&mut c), "c is new");
        // A second panic on another connection is survived as well.
        c.send(Message::text(PANIC_TEXT)).unwrap();
        assert_eq!(code_of(&read_close(&mut c).unwrap()), 1011);
        b.send(Message::text("again")).unwrap();
        assert_eq!(read_text(&mut b), "again");
        assert_eq!(srv.stats().handler_panics, 2, "{mode:?}");
        drop((b, c));
        srv.stop();
    }
}

#[test]
fn garbage_after_the_upgrade_is_a_protocol_error() {
    let server = Server::new(config());
    let srv = start(&server, Mode::Async);
    // A 64-bit length with its top bit set.
    let bad_len = [0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4];
    expect_failure(&srv, &bad_len, 1002, "64-bit length with the top bit set");
    srv.stop();
}

#[test]
fn a_flood_of_pings_from_a_client_that_does_not_read_is_bounded() {
    // The client sends pings but never reads the pongs: the server's replies pile up in its
    // bounded queue; it must stop reading from (or drop) that client, never grow without end.
    let server = Server::new(
        config()
            .max_send_queue(16 << 10)
            .write_timeout(Duration::from_secs(1)),
    );
    let srv = start(&server, Mode::Inline);
    let mut raw = raw_connect(srv.local_addr(), "/");
    let conn = srv.expect_connect();
    raw.sock.set_nonblocking(true).unwrap();
    let ping = frame(true, OpCode::Ping, &[0x55; 125], true);
    let mut burst = Vec::new();
    for _ in 0..64 {
        burst.extend_from_slice(&ping);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while std::time::Instant::now() < deadline {
        match std::io::Write::write(&mut raw.sock, &burst) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(_) => break,
        }
        assert!(
            conn.queued_bytes() <= 32 << 10,
            "queue grew to {}",
            conn.queued_bytes()
        );
    }
    // Whatever happened, the server is still healthy.
    let (mut ws, _c) = connect_pair(&srv, "/");
    ws.send(Message::text("healthy")).unwrap();
    assert_eq!(read_text(&mut ws), "healthy");
    drop((raw, ws));
    srv.stop();
}
