//! Server life: stop with clients attached, restart of the same `Server`, the connection
//! limit, idle and heartbeat timeouts, and the messenger after a stop.

mod common;

use std::io::Read;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::*;
use syncws::{CloseCode, HeartbeatConfig, SendError, Server};
use syncws_protocol::frame::OpCode;
use tungstenite::Message;

/// A client on its own thread that reads until the server closes; returns the close code.
fn closing_reader(mut ws: Client) -> JoinHandle<Option<u16>> {
    std::thread::spawn(move || loop {
        match ws.read() {
            Ok(Message::Close(f)) => {
                let code = f.as_ref().map(code_of);
                drain_until_closed(&mut ws);
                return code;
            }
            Ok(_) => {}
            Err(e) => panic!("client ended without a close frame: {e}"),
        }
    })
}

#[test]
fn stop_closes_clients_with_1001_and_the_same_server_restarts() {
    for mode in MODES {
        let server = Server::new(config());
        let srv = start(&server, mode);
        let mut readers = Vec::new();
        let mut ids = Vec::new();
        for _ in 0..3 {
            let (ws, conn) = connect_pair(&srv, "/");
            ids.push(conn.id());
            readers.push(closing_reader(ws));
        }
        // Also one connection mid-handshake and one raw client that never answers the close.
        let mut silent = tcp(srv.local_addr());
        let raw = raw_connect(srv.local_addr(), "/");
        let raw_id = srv.expect_connect().id();
        srv.wait_connections(4);
        let messenger = srv.messenger();
        assert!(messenger.is_active());

        let events = srv.events.clone();
        let t0 = Instant::now();
        srv.stop();
        let took = t0.elapsed();
        assert!(took < WAIT, "{mode:?}: stop took {took:?}");

        for r in readers {
            assert_eq!(r.join().unwrap(), Some(1001), "{mode:?}");
        }
        // Every connection reported its end, with the server's reason.
        let mut ended = Vec::new();
        while let Ok(ev) = events.recv_timeout(Duration::from_secs(1)) {
            if let Ev::Disconnect(c, d) = ev {
                assert_eq!(d.code, CloseCode::GOING_AWAY, "{mode:?}: {d:?}");
                ended.push(c.id());
            }
        }
        for id in ids.iter().chain([&raw_id]) {
            assert!(ended.contains(id), "{mode:?}: no disconnect for {id}");
        }
        // The connection mid-handshake was dropped.
        let mut b = [0u8; 16];
        match silent.read(&mut b) {
            Ok(0) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            r => panic!("{mode:?}: handshaking socket not dropped: {r:?}"),
        }
        drop(raw);

        // The messenger outlives the server and says so.
        assert!(!messenger.is_active());
        assert!(matches!(
            messenger.send_text(&ids[0], "x"),
            Err(SendError::NotRunning)
        ));
        assert_eq!(messenger.connection_count(), 0);

        // The same Server value starts again, on a fresh port, and serves.
        let srv = start(&server, mode);
        let (mut ws, _c) = connect_pair(&srv, "/again");
        ws.send(Message::text("back")).unwrap();
        assert_eq!(read_text(&mut ws), "back");
        drop(ws);
        srv.stop();
    }
}

#[test]
fn repeated_start_stop_cycles() {
    let server = Server::new(config());
    for i in 0..5 {
        let srv = start(&server, if i % 2 == 0 { Mode::Async } else { Mode::Inline });
        let (mut ws, _c) = connect_pair(&srv, "/");
        ws.send(Message::text(format!("cycle {i}"))).unwrap();
        assert_eq!(read_text(&mut ws), format!("cycle {i}"));
        let r = closing_reader(ws);
        srv.stop();
        assert_eq!(r.join().unwrap(), Some(1001));
    }
}

#[test]
fn stop_right_after_an_upgrade_still_sends_1001() {
    // A client that has its 101 when the stop begins is a client: it gets a close frame, not a
    // bare reset (the connection thread may not have registered it yet).
    let server = Server::new(config());
    for i in 0..30 {
        let srv = start(&server, if i % 2 == 0 { Mode::Async } else { Mode::Inline });
        let ws = connect(srv.local_addr(), "/");
        let r = closing_reader(ws);
        srv.stop();
        assert_eq!(r.join().unwrap(), Some(1001), "iteration {i}");
    }
}

#[test]
fn dropping_the_handle_stops_the_server() {
    let (tx, rx) = crossbeam_channel::unbounded();
    let handle = Server::new(config()).start(Recorder { tx, echo: true }).unwrap();
    let addr = handle.local_addr();
    let ws = connect(addr, "/");
    assert!(matches!(rx.recv_timeout(WAIT), Ok(Ev::Connect(_))));
    let r = closing_reader(ws);
    drop(handle);
    assert_eq!(r.join().unwrap(), Some(1001));
    // Events ended with the disconnect; the listener is gone.
    let mut last = None;
    loop {
        match rx.recv_timeout(WAIT) {
            Ok(ev) => last = Some(ev),
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
            Err(e) => panic!("the handler was not dropped after the stop: {e:?}"),
        }
    }
    let last = last.expect("events");
    assert!(matches!(last, Ev::Disconnect(_, ref d) if d.code == CloseCode::GOING_AWAY));
}

#[test]
fn max_connections_answers_503_before_the_upgrade() {
    let server = Server::new(config().max_connections(2));
    let srv = start(&server, Mode::Async);
    let (mut a, ca) = connect_pair(&srv, "/");
    let (_b, _cb) = connect_pair(&srv, "/");
    // The third client is refused at once, before it even sends its request.
    let mut third = tcp(srv.local_addr());
    let r = read_http_response_to_end(&mut third);
    assert_eq!(r.status, 503, "{}", r.head);
    assert!(r.header("Retry-After").is_some());
    // tungstenite sees the same.
    match tungstenite::client(srv.url("/"), tcp(srv.local_addr())) {
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(resp))) => {
            assert_eq!(resp.status().as_u16(), 503)
        }
        // The server may close before tungstenite has written its request.
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Io(_))) => {}
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("third client was upgraded"),
    }
    assert_eq!(srv.connection_count(), 2);
    a.send(Message::text("ok")).unwrap();
    assert_eq!(read_text(&mut a), "ok");

    // Once a client leaves, there is room again.
    a.close(None).unwrap();
    drain_until_closed(&mut a);
    srv.expect_disconnect(ca.id());
    let deadline = Instant::now() + WAIT;
    let mut c = loop {
        match tungstenite::client(srv.url("/"), tcp(srv.local_addr())) {
            Ok((ws, _)) => break ws,
            Err(_) => {
                assert!(Instant::now() < deadline, "no room after a client left");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    };
    c.send(Message::text("room")).unwrap();
    assert_eq!(read_text(&mut c), "room");
    drop((c, _b));
    srv.stop();
}

#[test]
fn idle_connections_are_closed_with_1000() {
    let server = Server::new(config().idle_timeout(Some(Duration::from_millis(500))));
    let srv = start(&server, Mode::Inline);
    let (mut ws, conn) = connect_pair(&srv, "/");
    let f = read_close(&mut ws).unwrap();
    assert_eq!((code_of(&f), f.reason.as_str()), (1000, "idle timeout"));
    drain_until_closed(&mut ws);
    let d = srv.expect_disconnect(conn.id());
    assert_eq!((d.code, d.reason.as_str()), (CloseCode::NORMAL, "idle timeout"));
    srv.stop();
}

#[test]
fn heartbeat_pings_and_drops_silent_peers() {
    // A timeout with ample slack for the answering client on a loaded machine.
    let hb = HeartbeatConfig::new(Duration::from_millis(200), Duration::from_millis(1500));
    let server = Server::new(config().heartbeat(hb));
    let srv = start(&server, Mode::Async);
    // tungstenite answers pings: it stays, and gets an RTT.
    let (ws, good) = connect_pair(&srv, "/");
    let reader = std::thread::spawn(move || {
        let mut ws = ws;
        let mut pings = 0;
        // Reading makes tungstenite answer the pings; ten of them outlast the timeout.
        while pings < 10 {
            if let Message::Ping(_) = ws.read().unwrap() {
                pings += 1;
            }
        }
        ws
    });
    // A raw client never answers: it is closed with 1008.
    let mut raw = raw_connect(srv.local_addr(), "/");
    let bad = srv.expect_connect();
    let d = srv.expect_disconnect(bad.id());
    assert_eq!(d.code, CloseCode::POLICY_VIOLATION, "{d:?}");
    assert!(d.reason.contains("heartbeat"), "{d:?}");
    loop {
        match raw.try_read_frame() {
            Some(f) if f.opcode == OpCode::Ping => {}
            Some(f) => {
                assert_eq!(f.close().0, 1008);
                break;
            }
            None => break,
        }
    }
    let ws = reader.join().unwrap();
    assert!(good.is_open());
    wait_until("an RTT", || good.rtt().is_some());
    drop(ws);
    srv.stop();
}
