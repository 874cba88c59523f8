//! Watchdog tests: when a listener fails from outside (the hidden `__break_listeners` test
//! hook), the server reports it and the watchdog binds the address again, counting attempts,
//! giving up after the configured number, or retrying forever with 0. A deliberate stop never
//! wakes the watchdog.

mod common;

use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use common::*;
use syncws::{Server, ServerEvent, WatchdogConfig};

fn start_wd(interval_ms: u64, attempts: u32) -> TestServer {
    let wd = WatchdogConfig::new(Duration::from_millis(interval_ms), attempts);
    start(&Server::new(config().watchdog(wd)), Mode::Async)
}

fn try_client(addr: SocketAddr) -> Option<Client> {
    let tcp = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    tcp.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    tcp.set_write_timeout(Some(READ_TIMEOUT)).unwrap();
    tungstenite::client(format!("ws://{addr}/"), tcp)
        .ok()
        .map(|(ws, _)| ws)
}

fn expect_failed(srv: &TestServer, addr: SocketAddr) {
    match srv.expect_server_event() {
        ServerEvent::ListenerFailed { addr: a, error } => {
            assert_eq!(a, addr);
            assert!(!error.is_empty());
        }
        other => panic!("expected ListenerFailed, got {other:?}"),
    }
}

/// Breaks the listener and takes its port before the watchdog's first attempt can. Should this
/// thread be too slow for the interval (the watchdog rebinds first), the round is waited out and
/// tried again. Returns the squatting listener; the `ListenerFailed` event is left unread.
fn break_and_squat(srv: &TestServer, addr: SocketAddr) -> TcpListener {
    for _ in 0..5 {
        break_listeners(srv);
        if let Ok(l) = TcpListener::bind(addr) {
            return l;
        }
        // Lost the race: the watchdog got the port back. Wait for that round to end.
        srv.wait_for("the watchdog's restart", |ev| {
            matches!(ev, Ev::Server(ServerEvent::WatchdogRestarted { .. })).then_some(())
        });
    }
    panic!("could not take the port after the listener broke, five times");
}

#[test]
fn broken_listener_is_restarted_and_connections_survive() {
    let server = start_wd(200, 5);
    let addr = server.local_addr();
    let (mut before, _c) = connect_pair(&server, "/");
    echo(&mut before, "before");

    for round in 1..=2 {
        break_listeners(&server);
        expect_failed(&server, addr);
        // The open connection keeps working while the listener is down.
        echo(&mut before, &format!("during restart {round}"));
        assert_eq!(
            server.expect_server_event(),
            ServerEvent::WatchdogAttempt { addr, attempt: 1 },
            "round {round}"
        );
        assert_eq!(
            server.expect_server_event(),
            ServerEvent::WatchdogRestarted { addr, attempt: 1 },
            "round {round}"
        );
        // New clients are accepted on the same port again.
        let mut after = connect(addr, "/");
        echo(&mut after, &format!("after restart {round}"));
        echo(&mut before, &format!("old one after restart {round}"));
        drop(after);
    }
    assert_eq!(server.local_addr(), addr);
    let events = server.events.clone();
    server.stop();
    let after = server_events_in(&events);
    assert!(
        after.is_empty(),
        "stop after a restart produced server events: {after:?}"
    );
}

#[test]
fn port_taken_gives_up_after_the_attempts() {
    // The interval leaves time to grab the port before the first attempt (and break_and_squat
    // tries again should it not).
    let server = start_wd(500, 3);
    let addr = server.local_addr();
    let (mut before, _c) = connect_pair(&server, "/");
    let squatter = break_and_squat(&server, addr);
    expect_failed(&server, addr);
    for n in 1..=3 {
        assert_eq!(
            server.expect_server_event(),
            ServerEvent::WatchdogAttempt { addr, attempt: n }
        );
    }
    assert_eq!(
        server.expect_server_event(),
        ServerEvent::WatchdogGaveUp { addr, attempts: 3 }
    );
    // Nothing more happens after giving up (three intervals of quiet).
    server.expect_no_server_event_within(Duration::from_millis(1500));
    // Existing connections are not affected.
    echo(&mut before, "still served");
    drop(squatter);
    server.stop();
}

#[test]
fn unlimited_attempts_succeed_once_the_port_is_free() {
    let server = start_wd(500, 0);
    let addr = server.local_addr();
    let squatter = break_and_squat(&server, addr);
    expect_failed(&server, addr);
    // Let it fail a few times (more than a limited watchdog would need to give up at 3).
    for n in 1..=4 {
        assert_eq!(
            server.expect_server_event(),
            ServerEvent::WatchdogAttempt { addr, attempt: n }
        );
    }
    drop(squatter);
    let mut attempts_seen = 4;
    let restarted_at = loop {
        match server.expect_server_event() {
            ServerEvent::WatchdogAttempt { attempt, .. } => {
                attempts_seen += 1;
                assert_eq!(attempt, attempts_seen);
            }
            ServerEvent::WatchdogRestarted { addr: a, attempt } => {
                assert_eq!(a, addr);
                assert_eq!(attempt, attempts_seen);
                break attempt;
            }
            other => panic!("unexpected {other:?}"),
        }
    };
    // The attempt event comes just before its bind, so the 4th may already find the port free.
    assert!(restarted_at >= 4, "restarted at attempt {restarted_at}");
    let mut ws = connect(addr, "/");
    echo(&mut ws, "back");
    server.stop();
}

#[test]
fn stop_does_not_trigger_the_watchdog() {
    let server = start_wd(100, 0);
    let addr = server.local_addr();
    let mut ws = connect(addr, "/");
    echo(&mut ws, "hello");
    let events = server.events.clone();
    let t0 = Instant::now();
    server.stop();
    assert!(t0.elapsed() < WAIT, "stop took {:?}", t0.elapsed());
    // The dispatch thread has been joined: every event there was has been delivered.
    let events = server_events_in(&events);
    assert!(events.is_empty(), "stop produced server events: {events:?}");
    // Nothing listens there any more.
    assert!(try_client(addr).is_none(), "something still serves {addr}");
}

#[test]
fn stop_while_the_watchdog_waits_is_prompt() {
    // A long interval: the watchdog is asleep when stop() comes.
    let server = start_wd(60_000, 0);
    let addr = server.local_addr();
    break_listeners(&server);
    expect_failed(&server, addr);
    let events = server.events.clone();
    let t0 = Instant::now();
    server.stop();
    let took = t0.elapsed();
    assert!(
        took < Duration::from_secs(8),
        "stop waited for the watchdog: {took:?}"
    );
    let events = server_events_in(&events);
    assert!(events.is_empty(), "events after stop: {events:?}");
}
