//! Message exchange through the public API: echo of text and binary in every notify mode,
//! fragmented messages, pings, sending from another thread, and sends to unknown ids.

mod common;

use std::time::{Duration, Instant};

use common::*;
use syncws::{SendError, Server};
use syncws_protocol::frame::OpCode;
use tungstenite::Message;

#[test]
fn echo_text_and_binary_in_every_mode() {
    for mode in MODES {
        let server = Server::new(config());
        let srv = start(&server, mode);
        let (mut ws, conn) = connect_pair(&srv, "/echo");
        for i in 0..20 {
            let t = format!("hello {i} ✓");
            ws.send(Message::text(t.clone())).unwrap();
            assert_eq!(read_text(&mut ws), t, "{mode:?}");
            assert_eq!(srv.expect_text(conn.id()), t);
        }
        let bin: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
        ws.send(Message::binary(bin.clone())).unwrap();
        match read_data(&mut ws) {
            Message::Binary(b) => assert_eq!(&b[..], &bin[..], "{mode:?}"),
            m => panic!("{mode:?}: expected binary, got {m:?}"),
        }
        // Empty messages are messages too.
        ws.send(Message::text("")).unwrap();
        assert_eq!(read_text(&mut ws), "");
        ws.send(Message::binary(Vec::new())).unwrap();
        assert_eq!(read_data(&mut ws), Message::binary(Vec::new()));
        drop(ws);
        srv.stop();
    }
}

#[test]
fn fragmented_messages_are_reassembled() {
    for mode in MODES {
        let server = Server::new(config());
        let srv = start(&server, mode);
        let mut raw = raw_connect(srv.local_addr(), "/");
        let conn = srv.expect_connect();

        // Text in three fragments, with a ping between fragments (allowed, answered at once).
        raw.send(false, OpCode::Text, "Hel".as_bytes());
        raw.send(false, OpCode::Continuation, "lo, ".as_bytes());
        raw.send(true, OpCode::Ping, b"mid");
        raw.send(true, OpCode::Continuation, "wörld".as_bytes());
        let pong = raw.read_frame();
        assert_eq!(
            (pong.opcode, &pong.payload[..]),
            (OpCode::Pong, &b"mid"[..]),
            "{mode:?}"
        );
        assert!(!pong.masked && pong.fin);
        assert_eq!(srv.expect_text(conn.id()), "Hello, wörld");
        let echo = raw.read_frame();
        assert_eq!(echo.opcode, OpCode::Text);
        assert_eq!(echo.payload, "Hello, wörld".as_bytes());

        // A multi-byte character split across fragments is fine.
        let s = "€uro";
        raw.send(false, OpCode::Text, &s.as_bytes()[..1]);
        raw.send(true, OpCode::Continuation, &s.as_bytes()[1..]);
        assert_eq!(srv.expect_text(conn.id()), s);
        assert_eq!(raw.read_frame().payload, s.as_bytes());

        // Binary, many small fragments.
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
        let chunks: Vec<&[u8]> = data.chunks(37).collect();
        for (i, c) in chunks.iter().enumerate() {
            let op = if i == 0 {
                OpCode::Binary
            } else {
                OpCode::Continuation
            };
            raw.send(i + 1 == chunks.len(), op, c);
        }
        let f = raw.read_frame();
        assert_eq!((f.opcode, f.payload), (OpCode::Binary, data), "{mode:?}");
        drop(raw);
        srv.stop();
    }
}

#[test]
fn pings_are_answered_with_the_same_payload() {
    let server = Server::new(config());
    let srv = start(&server, Mode::Async);
    let mut raw = raw_connect(srv.local_addr(), "/");
    srv.expect_connect();
    for payload in [&b""[..], b"x", &[0xAB; 125]] {
        raw.send(true, OpCode::Ping, payload);
        let f = raw.read_frame();
        assert_eq!(f.opcode, OpCode::Pong);
        assert_eq!(f.payload, payload);
    }
    // An unsolicited pong is ignored: no reply, the connection goes on.
    raw.send(true, OpCode::Pong, b"unsolicited");
    raw.send(true, OpCode::Text, b"after");
    let f = raw.read_frame();
    assert_eq!((f.opcode, &f.payload[..]), (OpCode::Text, &b"after"[..]));

    // Through tungstenite as well: it sees the pong.
    let mut ws = connect(srv.local_addr(), "/");
    ws.send(Message::Ping(b"tung".to_vec().into())).unwrap();
    match ws.read().unwrap() {
        Message::Pong(p) => assert_eq!(&p[..], b"tung"),
        m => panic!("unexpected {m:?}"),
    }
    drop((raw, ws));
    srv.stop();
}

#[test]
fn server_pings_reach_the_client() {
    let server = Server::new(config());
    let srv = start(&server, Mode::Inline);
    let mut raw = raw_connect(srv.local_addr(), "/");
    let conn = srv.expect_connect();
    srv.ping(&conn.id(), b"are you there").unwrap();
    let f = raw.read_frame();
    assert_eq!((f.opcode, &f.payload[..]), (OpCode::Ping, &b"are you there"[..]));
    assert!(matches!(srv.ping(&conn.id(), &[0; 126]), Err(SendError::TooLong)));
    srv.stop();
}

#[test]
fn send_from_another_thread_reaches_an_idle_client_promptly() {
    for mode in MODES {
        let server = Server::new(config());
        let srv = start(&server, mode);
        let (mut ws, conn) = connect_pair(&srv, "/");
        let messenger = srv.messenger();
        let id = conn.id();
        // The client is idle, blocked in read(); another thread sends.
        let sender = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            let t0 = Instant::now();
            messenger.send_text(&id, "pushed").unwrap();
            conn.send_binary(b"pushed too").unwrap();
            t0
        });
        let got = read_text(&mut ws);
        let arrived = Instant::now();
        let t0 = sender.join().unwrap();
        assert_eq!(got, "pushed");
        let latency = arrived.saturating_duration_since(t0);
        assert!(
            latency < Duration::from_secs(2),
            "{mode:?}: message took {latency:?} to arrive"
        );
        assert_eq!(read_data(&mut ws), Message::binary(b"pushed too".to_vec()));
        drop(ws);
        srv.stop();
    }
}

#[test]
fn many_senders_do_not_interleave_frames() {
    let server = Server::new(config());
    let srv = start_with(&server, Mode::Async, false);
    let (mut ws, conn) = connect_pair(&srv, "/");
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let c = conn.clone();
            std::thread::spawn(move || {
                for i in 0..200 {
                    let body = format!("{t}:{i}:{}", "x".repeat(500 + i));
                    c.send_text(&body).unwrap();
                }
            })
        })
        .collect();
    let mut next = [0usize; 4];
    for _ in 0..800 {
        let m = read_text(&mut ws);
        let mut parts = m.splitn(3, ':');
        let t: usize = parts.next().unwrap().parse().unwrap();
        let i: usize = parts.next().unwrap().parse().unwrap();
        assert_eq!(parts.next().unwrap().len(), 500 + i);
        assert_eq!(i, next[t], "messages from one thread arrive in order");
        next[t] += 1;
    }
    for t in threads {
        t.join().unwrap();
    }
    drop(ws);
    srv.stop();
}

#[test]
fn sending_to_an_unknown_id_is_an_error() {
    let server = Server::new(config());
    let srv = start(&server, Mode::Async);
    let (ws, conn) = connect_pair(&srv, "/");
    let bogus: syncws::ConnectionId = "00000000-0000-4000-8000-000000000000".parse().unwrap();
    assert!(matches!(
        srv.send_text(&bogus, "x"),
        Err(SendError::UnknownConnection)
    ));
    assert!(matches!(
        srv.send_binary(&bogus, b"x"),
        Err(SendError::UnknownConnection)
    ));
    assert!(matches!(
        srv.close(&bogus, syncws::CloseCode::NORMAL, ""),
        Err(SendError::UnknownConnection)
    ));
    assert!(matches!(srv.ping(&bogus, b""), Err(SendError::UnknownConnection)));
    assert!(srv.connection(&bogus).is_none());

    // A connection that has gone becomes unknown to the messenger; its handle says Closed.
    drop(ws);
    srv.expect_disconnect(conn.id());
    wait_until("unregistered", || srv.connection(&conn.id()).is_none());
    assert!(matches!(
        srv.send_text(&conn.id(), "x"),
        Err(SendError::UnknownConnection)
    ));
    assert!(matches!(conn.send_text("x"), Err(SendError::Closed)));
    assert!(!conn.is_open());
    srv.stop();
}

#[test]
fn connection_ids_are_listed_and_parse_back() {
    let server = Server::new(config());
    let srv = start(&server, Mode::Inline);
    let (_a, ca) = connect_pair(&srv, "/");
    let (_b, cb) = connect_pair(&srv, "/");
    assert_ne!(ca.id(), cb.id());
    let mut ids: Vec<_> = srv.connections().into_iter().map(|c| c.id).collect();
    ids.sort();
    let mut want = vec![ca.id(), cb.id()];
    want.sort();
    assert_eq!(ids, want);
    let s = ca.id().to_string();
    assert_eq!(s.parse::<syncws::ConnectionId>().unwrap(), ca.id());
    assert_eq!(srv.connection_count(), 2);
    srv.stop();
}

#[test]
fn a_quiet_client_after_a_large_message_stays_connected() {
    // After a large message the reader gives its big buffers back when the client has been
    // quiet for a second; the socket must then block again, not take the next quiet second
    // for an idle timeout (there is none by default).
    let server = Server::new(config());
    let srv = start(&server, Mode::Inline);
    let (mut ws, conn) = connect_pair(&srv, "/");
    let big = vec![5u8; 200 << 10];
    ws.send(Message::binary(big.clone())).unwrap();
    assert_eq!(read_data(&mut ws), Message::binary(big));
    std::thread::sleep(Duration::from_millis(3500));
    assert!(
        conn.is_open(),
        "closed while quiet: {:?}",
        srv.pending_server_events()
    );
    ws.send(Message::text("still here")).unwrap();
    assert_eq!(read_text(&mut ws), "still here");
}
