//! Heartbeat tests: the service thread pings every client at the configured interval, measures
//! the round-trip time from the pongs, and closes clients that stop answering (unless the
//! timeout is zero).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use syncws::{
    Connection, ConnectionId, Disconnect, Handler, HeartbeatConfig, Server, ServerConfig, ServerHandle,
};
use tungstenite::Message;

/// Generous upper bound for anything we wait for (loaded CI machine).
const WAIT: Duration = Duration::from_secs(10);

#[derive(Debug)]
enum Ev {
    Connect(Connection),
    Disconnect(ConnectionId, Disconnect),
}

struct Rec(Sender<Ev>);

impl Handler for Rec {
    fn on_connect(&mut self, conn: &Connection) {
        let _ = self.0.send(Ev::Connect(conn.clone()));
    }
    fn on_text(&mut self, conn: &Connection, text: String) {
        let _ = conn.send_text(&text);
    }
    fn on_disconnect(&mut self, conn: &Connection, info: Disconnect) {
        let _ = self.0.send(Ev::Disconnect(conn.id(), info));
    }
}

fn start(interval_ms: u64, timeout_ms: u64) -> (ServerHandle, Receiver<Ev>) {
    let cfg = ServerConfig::new(([127, 0, 0, 1], 0))
        .close_timeout(Duration::from_secs(1))
        .heartbeat(HeartbeatConfig::new(
            Duration::from_millis(interval_ms),
            Duration::from_millis(timeout_ms),
        ));
    let (tx, rx) = crossbeam_channel::unbounded();
    let handle = Server::new(cfg).start(Rec(tx)).expect("start");
    (handle, rx)
}

fn wait_connect(rx: &Receiver<Ev>) -> Connection {
    match rx.recv_timeout(WAIT).expect("no connect event") {
        Ev::Connect(c) => c,
        other => panic!("expected a connect event, got {other:?}"),
    }
}

type Ws = tungstenite::WebSocket<TcpStream>;

fn ws_client(addr: SocketAddr) -> Ws {
    let tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    tcp.set_write_timeout(Some(WAIT)).unwrap();
    let (ws, _) = tungstenite::client(format!("ws://{addr}/"), tcp).expect("ws handshake");
    ws
}

fn is_timeout(e: &tungstenite::Error) -> bool {
    matches!(e, tungstenite::Error::Io(io)
        if matches!(io.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut))
}

/// Reads from `ws` for `dur` (auto-answering pings); returns the ping payloads seen.
/// Panics if the connection ends.
fn pump(ws: &mut Ws, dur: Duration) -> Vec<Vec<u8>> {
    let end = Instant::now() + dur;
    let mut pings = Vec::new();
    while Instant::now() < end {
        match ws.read() {
            Ok(Message::Ping(p)) => pings.push(p.to_vec()),
            Ok(_) => {}
            Err(e) if is_timeout(&e) => {}
            Err(e) => panic!("connection ended while answering pings: {e}"),
        }
    }
    pings
}

/// A raw TCP client that completes the WebSocket handshake, then never reads or writes.
fn raw_client(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.set_write_timeout(Some(WAIT)).unwrap();
    write!(
        s,
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = s.read(&mut b).expect("reading the 101");
        assert!(n > 0, "server closed during the handshake");
        head.push(b[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "unexpected response: {}",
        String::from_utf8_lossy(&head)
    );
    s
}

#[test]
fn pings_are_seen_by_the_client() {
    let (server, rx) = start(200, 2000);
    let mut ws = ws_client(server.local_addr());
    let _conn = wait_connect(&rx);
    // Several intervals: expect several pings, each with the 8-byte timestamp payload.
    let pings = pump(&mut ws, Duration::from_millis(1500));
    assert!(pings.len() >= 2, "saw {} pings in 1.5 s at 200 ms", pings.len());
    assert!(pings.iter().all(|p| p.len() == 8), "payloads: {pings:?}");
    server.stop();
}

#[test]
fn answering_client_stays_connected_and_gets_rtt() {
    // The timeout leaves the client a little slack to answer on a loaded machine.
    let (server, rx) = start(200, 1000);
    let mut ws = ws_client(server.local_addr());
    let conn = wait_connect(&rx);
    // Ten intervals, twice the timeout: a client that answers is never closed.
    let pings = pump(&mut ws, Duration::from_millis(2000));
    assert!(pings.len() >= 3, "saw {} pings", pings.len());
    assert!(
        conn.is_open(),
        "connection was closed although the client answered"
    );
    assert_eq!(server.connection_count(), 1);
    assert!(
        rx.try_recv().is_err(),
        "unexpected event while the client answered pings"
    );
    // The pongs carried the timestamp back: the RTT is known.
    let end = Instant::now() + WAIT;
    while conn.rtt().is_none() && Instant::now() < end {
        pump(&mut ws, Duration::from_millis(100));
    }
    let rtt = conn.rtt().expect("rtt still unknown after pongs");
    assert!(rtt < WAIT, "implausible rtt {rtt:?}");
    // It still works as a WebSocket.
    ws.send(Message::text("still here")).unwrap();
    let end = Instant::now() + WAIT;
    loop {
        assert!(Instant::now() < end, "no echo");
        match ws.read() {
            Ok(Message::Text(t)) => {
                assert_eq!(t.as_str(), "still here");
                break;
            }
            Ok(_) => {}
            Err(e) if is_timeout(&e) => {}
            Err(e) => panic!("{e}"),
        }
    }
    server.stop();
}

#[test]
fn silent_client_is_closed_for_heartbeat_timeout() {
    let (server, rx) = start(200, 300);
    let mut raw = raw_client(server.local_addr());
    let conn = wait_connect(&rx);
    let t0 = Instant::now();
    // Expected after about interval + timeout (+ one interval of granularity); allow plenty.
    let ev = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("silent client not closed within 5 s");
    let elapsed = t0.elapsed();
    match ev {
        Ev::Disconnect(id, info) => {
            assert_eq!(id, conn.id());
            assert!(
                info.reason.contains("heartbeat"),
                "disconnect reason does not mention the heartbeat: {info:?}"
            );
            assert!(!info.clean, "{info:?}");
        }
        other => panic!("expected a disconnect, got {other:?}"),
    }
    // Not closed before the timeout could have run out (loose lower bound).
    assert!(
        elapsed >= Duration::from_millis(250),
        "closed after only {elapsed:?}"
    );
    assert_eq!(server.connection_count(), 0);
    // The client's socket ends: after the pings and the close frame, EOF (or a reset).
    let mut buf = [0u8; 4096];
    let end = Instant::now() + WAIT;
    loop {
        assert!(Instant::now() < end, "socket not closed");
        match raw.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    server.stop();
}

#[test]
fn zero_timeout_never_closes() {
    let (server, rx) = start(150, 0);
    let mut raw = raw_client(server.local_addr());
    let conn = wait_connect(&rx);
    // Many intervals without a single answer.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        rx.try_recv().is_err(),
        "a client was closed with heartbeat timeout 0"
    );
    assert!(conn.is_open());
    assert_eq!(server.connection_count(), 1);
    // It was pinged all along: the unread bytes are ping frames (0x89, 8-byte payload).
    raw.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut buf = [0u8; 10];
    raw.read_exact(&mut buf).expect("no ping arrived");
    assert_eq!(buf[0], 0x89, "first frame is not a ping: {buf:?}");
    assert_eq!(buf[1], 8, "ping payload length: {buf:?}");
    server.stop();
}
