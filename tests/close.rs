//! Closing handshakes in both directions, in every notify mode, and connections that end
//! without one.

mod common;

use std::time::{Duration, Instant};

use common::*;
use syncws::{CloseCode, SendError, Server};
use syncws_protocol::frame::OpCode;
use tungstenite::protocol::frame::coding::CloseCode as TCode;
use tungstenite::protocol::CloseFrame;
use tungstenite::Message;

#[test]
fn client_close_reports_code_and_reason() {
    for mode in MODES {
        let server = Server::new(config());
        let srv = start(&server, mode);
        let (mut ws, conn) = connect_pair(&srv, "/");
        ws.close(Some(CloseFrame {
            code: TCode::from(4001),
            reason: "bye now".into(),
        }))
        .unwrap();
        // The server answers with a close frame echoing the code; then the connection ends.
        let reply = read_close(&mut ws).expect("close reply with a code");
        assert_eq!(code_of(&reply), 4001, "{mode:?}");
        drain_until_closed(&mut ws);
        let d = srv.expect_disconnect(conn.id());
        assert_eq!(d.code, CloseCode(4001), "{mode:?}");
        assert_eq!(d.reason, "bye now");
        assert!(d.clean, "{mode:?}: {d:?}");
        wait_until("unregistered", || srv.connection_count() == 0);
        srv.stop();
    }
}

#[test]
fn client_close_without_status_is_1005() {
    let server = Server::new(config());
    let srv = start(&server, Mode::Inline);
    let mut raw = raw_connect(srv.local_addr(), "/");
    let conn = srv.expect_connect();
    raw.send(true, OpCode::Close, b"");
    let f = raw.read_frame();
    assert_eq!(f.opcode, OpCode::Close);
    assert!(
        f.payload.is_empty(),
        "an empty close is answered with an empty close"
    );
    raw.expect_eof();
    let d = srv.expect_disconnect(conn.id());
    assert_eq!(d.code, CloseCode::NO_STATUS);
    assert!(d.clean);
    srv.stop();
}

#[test]
fn server_close_reaches_the_client() {
    for mode in MODES {
        let server = Server::new(config());
        let srv = start(&server, mode);
        let (mut ws, conn) = connect_pair(&srv, "/");
        srv.close(&conn.id(), CloseCode(4002), "go away").unwrap();
        // Closing again is a no-op; sending after the close is refused.
        conn.close(CloseCode::NORMAL, "again").unwrap();
        assert!(matches!(conn.send_text("late"), Err(SendError::Closed)));
        assert!(!conn.is_open());
        let f = read_close(&mut ws).expect("close frame with a code");
        assert_eq!(code_of(&f), 4002, "{mode:?}");
        assert_eq!(f.reason.as_str(), "go away");
        drain_until_closed(&mut ws);
        let d = srv.expect_disconnect(conn.id());
        assert_eq!(d.code, CloseCode(4002), "{mode:?}");
        assert_eq!(d.reason, "go away");
        assert!(d.clean, "{mode:?}: {d:?}");
        srv.stop();
    }
}

#[test]
fn data_sent_before_a_close_arrives_before_it() {
    let server = Server::new(config());
    let srv = start(&server, Mode::Async);
    let (mut ws, conn) = connect_pair(&srv, "/");
    for i in 0..50 {
        conn.send_text(&format!("m{i}")).unwrap();
    }
    conn.close(CloseCode::NORMAL, "done").unwrap();
    for i in 0..50 {
        assert_eq!(read_text(&mut ws), format!("m{i}"));
    }
    match ws.read().unwrap() {
        Message::Close(Some(f)) => {
            assert_eq!(code_of(&f), 1000);
            assert_eq!(f.reason.as_str(), "done");
        }
        m => panic!("expected the close frame, got {m:?}"),
    }
    drain_until_closed(&mut ws);
    let d = srv.expect_disconnect(conn.id());
    assert_eq!(
        (d.code, d.reason.as_str(), d.clean),
        (CloseCode::NORMAL, "done", true)
    );
    srv.stop();
}

#[test]
fn server_close_without_a_reply_ends_after_the_close_timeout() {
    let server = Server::new(config().close_timeout(Duration::from_secs(1)));
    let srv = start(&server, Mode::Async);
    let mut raw = raw_connect(srv.local_addr(), "/");
    let conn = srv.expect_connect();
    let t0 = Instant::now();
    srv.close(&conn.id(), CloseCode(4003), "no reply expected")
        .unwrap();
    // The client reads the close frame but never answers.
    assert_eq!(raw.read_close(), (4003, "no reply expected".to_string()));
    raw.expect_eof();
    assert!(t0.elapsed() < WAIT, "the close deadline was not enforced");
    let d = srv.expect_disconnect(conn.id());
    assert_eq!(d.code, CloseCode(4003));
    assert!(!d.clean, "{d:?}");
    srv.stop();
}

#[test]
fn abrupt_disconnect_mid_frame_is_abnormal() {
    for mode in MODES {
        let server = Server::new(config());
        let srv = start(&server, mode);
        let mut raw = raw_connect(srv.local_addr(), "/");
        let conn = srv.expect_connect();
        // Header announcing 100 bytes, then 10 of them, then the socket goes away.
        let f = frame(true, OpCode::Text, &[b'a'; 100], true);
        raw.send_raw(&f[..2 + 4 + 10]);
        drop(raw);
        let d = srv.expect_disconnect(conn.id());
        assert_eq!(d.code, CloseCode::ABNORMAL, "{mode:?}: {d:?}");
        assert!(!d.clean);
        // No message was delivered for the partial frame.
        let leftovers: Vec<_> = srv.events.try_iter().collect();
        assert!(
            !leftovers.iter().any(|e| matches!(e, Ev::Text(..))),
            "{mode:?}: {leftovers:?}"
        );
        srv.stop();
    }
}

#[test]
fn dropped_tungstenite_client_is_abnormal() {
    let server = Server::new(config());
    let srv = start(&server, Mode::Inline);
    let (ws, conn) = connect_pair(&srv, "/");
    drop(ws);
    let d = srv.expect_disconnect(conn.id());
    assert_eq!(d.code, CloseCode::ABNORMAL);
    assert!(!d.clean);
    srv.stop();
}

#[test]
fn handler_can_close_the_connection() {
    /// Closes every connection that says "close me".
    struct Closer(crossbeam_channel::Sender<syncws::Disconnect>);
    impl syncws::Handler for Closer {
        fn on_text(&mut self, conn: &syncws::Connection, text: syncws::TextPayload) {
            if text == "close me" {
                conn.close(CloseCode(4100), "as you wish").unwrap();
            }
        }
        fn on_disconnect(&mut self, _conn: &syncws::Connection, info: syncws::Disconnect) {
            let _ = self.0.send(info);
        }
    }
    let (tx, rx) = crossbeam_channel::unbounded();
    let handle = Server::new(config()).start(Closer(tx)).unwrap();
    let mut ws = connect(handle.local_addr(), "/");
    ws.send(Message::text("close me")).unwrap();
    let f = read_close(&mut ws).unwrap();
    assert_eq!((code_of(&f), f.reason.as_str()), (4100, "as you wish"));
    drain_until_closed(&mut ws);
    let d = rx.recv_timeout(WAIT).unwrap();
    assert_eq!((d.code, d.clean), (CloseCode(4100), true));
    handle.stop();
}

/// Codes that may not appear in a close frame are refused by `close`, and nothing is sent:
/// the connection stays open and closes normally afterwards.
#[test]
fn close_refuses_codes_that_may_not_be_sent() {
    let server = Server::new(config());
    let srv = start(&server, Mode::Async);
    let (mut ws, conn) = connect_pair(&srv, "/");
    for bad in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535] {
        assert_eq!(
            conn.close(CloseCode(bad), "no"),
            Err(SendError::InvalidCloseCode(bad)),
            "code {bad}"
        );
        assert_eq!(
            srv.close(&conn.id(), CloseCode(bad), "no"),
            Err(SendError::InvalidCloseCode(bad)),
            "code {bad} by id"
        );
    }
    assert!(conn.is_open(), "a refused close changed nothing");
    echo(&mut ws, "still here");
    // The registered codes 1012-1014 may be sent (a server restarting, try again later).
    conn.close(CloseCode(1013), "try again later").unwrap();
    let f = read_close(&mut ws).expect("close frame");
    assert_eq!(code_of(&f), 1013);
    drain_until_closed(&mut ws);
    assert_eq!(srv.expect_disconnect(conn.id()).code, CloseCode(1013));
    srv.stop();
}
