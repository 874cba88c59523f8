//! Heartbeat tests: the service thread pings every client at the configured interval, measures
//! the round-trip time from the pongs, and closes clients that stop answering (unless the
//! timeout is zero).
//!
//! No test sleeps and then looks: each one counts pings as they arrive, under a generous
//! ceiling, so a slow machine makes a test slower, not wrong.

mod common;

use std::time::{Duration, Instant};

use common::*;
use syncws::{CloseCode, HeartbeatConfig, Server};
use syncws_protocol::frame::OpCode;
use tungstenite::Message;

fn start_hb(interval_ms: u64, timeout_ms: u64) -> TestServer {
    let hb = HeartbeatConfig::new(
        Duration::from_millis(interval_ms),
        Duration::from_millis(timeout_ms),
    );
    start(&Server::new(config().heartbeat(hb)), Mode::Async)
}

fn is_timeout(e: &tungstenite::Error) -> bool {
    matches!(e, tungstenite::Error::Io(io)
        if matches!(io.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut))
}

/// Reads from `ws` (which answers the pings: tungstenite queues a pong for each and writes it
/// on the next read) until `n` pings have arrived and at least `min` has passed; returns the
/// ping payloads. Panics if the connection ends, or after `min` plus [`LONG_WAIT`].
fn pings(ws: &mut Client, n: usize, min: Duration) -> Vec<Vec<u8>> {
    // A short read timeout so that a queued pong is written promptly.
    ws.get_ref()
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let t0 = Instant::now();
    let mut seen = Vec::new();
    while seen.len() < n || t0.elapsed() < min {
        assert!(
            t0.elapsed() < min + LONG_WAIT,
            "saw {} of {n} pings in {:?}",
            seen.len(),
            t0.elapsed()
        );
        match ws.read() {
            Ok(Message::Ping(p)) => seen.push(p.to_vec()),
            Ok(_) => {}
            Err(e) if is_timeout(&e) => {}
            Err(e) => panic!("connection ended while answering pings: {e}"),
        }
    }
    seen
}

#[test]
fn pings_are_seen_by_the_client() {
    let srv = start_hb(200, 2000);
    let (mut ws, _conn) = connect_pair(&srv, "/");
    // Several intervals: several pings, each with the 8-byte timestamp payload.
    let seen = pings(&mut ws, 3, Duration::ZERO);
    assert!(seen.iter().all(|p| p.len() == 8), "payloads: {seen:?}");
    srv.stop();
}

#[test]
fn answering_client_stays_connected_and_gets_rtt() {
    // The timeout leaves the client ample slack to answer on a loaded machine.
    let timeout = Duration::from_secs(2);
    let srv = start_hb(200, timeout.as_millis() as u64);
    let (mut ws, conn) = connect_pair(&srv, "/");
    // Twenty intervals and the timeout twice over: a client that answers is never closed.
    pings(&mut ws, 20, 2 * timeout);
    assert!(
        conn.is_open(),
        "connection was closed although the client answered"
    );
    assert_eq!(srv.connection_count(), 1);
    let unexpected: Vec<Ev> = srv.events.try_iter().collect();
    assert!(
        unexpected.is_empty(),
        "unexpected events while the client answered pings: {unexpected:?}"
    );
    // The pongs carried the timestamp back: the RTT is known.
    let t0 = Instant::now();
    while conn.rtt().is_none() {
        assert!(t0.elapsed() < WAIT, "rtt still unknown after pongs");
        pings(&mut ws, 1, Duration::ZERO);
    }
    let rtt = conn.rtt().unwrap();
    assert!(rtt < WAIT, "implausible rtt {rtt:?}");
    // It still works as a WebSocket.
    ws.get_ref().set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    echo(&mut ws, "still here");
    srv.stop();
}

#[test]
fn silent_client_is_closed_for_heartbeat_timeout() {
    let timeout = Duration::from_millis(600);
    let srv = start_hb(200, timeout.as_millis() as u64);
    // The clock starts before the connection exists: the server cannot have pinged earlier.
    let t0 = Instant::now();
    let mut raw = raw_connect(srv.local_addr(), "/");
    let conn = srv.expect_connect();
    // Expected after about interval + timeout (+ one interval of granularity); `WAIT` allows
    // plenty.
    let d = srv.expect_disconnect(conn.id());
    let elapsed = t0.elapsed();
    assert!(
        d.reason.contains("heartbeat"),
        "disconnect reason does not mention the heartbeat: {d:?}"
    );
    assert_eq!(d.code, CloseCode::POLICY_VIOLATION, "{d:?}");
    assert!(!d.clean, "{d:?}");
    // Not closed before the timeout could have run out (the server's clock counts whole
    // milliseconds, hence the small margin).
    assert!(
        elapsed >= timeout - Duration::from_millis(5),
        "closed after only {elapsed:?}"
    );
    wait_until("unregistered", || srv.connection_count() == 0);
    // The client's socket ends: after the pings and the close frame, EOF (or a reset).
    let mut closed_with = None;
    while let Some(f) = raw.try_read_frame() {
        match f.opcode {
            OpCode::Ping => {}
            OpCode::Close => closed_with = Some(f.close().0),
            other => panic!("unexpected {other:?} frame"),
        }
    }
    if let Some(code) = closed_with {
        assert_eq!(code, 1008);
    }
    srv.stop();
}

#[test]
fn zero_timeout_never_closes() {
    let srv = start_hb(150, 0);
    let mut raw = raw_connect(srv.local_addr(), "/");
    let conn = srv.expect_connect();
    // Ten pings never answered: nine heartbeat ticks found a ping outstanding, and any timeout
    // shorter than that silence would have closed the connection. The server pings all along.
    for i in 0..10 {
        let f = raw.read_frame();
        assert_eq!(f.opcode, OpCode::Ping, "frame {i}: {f:?}");
        assert_eq!(f.payload.len(), 8, "ping payload: {f:?}");
    }
    let events: Vec<Ev> = srv.events.try_iter().collect();
    assert!(events.is_empty(), "events with heartbeat timeout 0: {events:?}");
    assert!(conn.is_open());
    assert_eq!(srv.connection_count(), 1);
    srv.stop();
}
