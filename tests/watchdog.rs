//! Watchdog tests: when a listener fails from outside (the hidden `__break_listeners` test
//! hook), the server reports it and the watchdog binds the address again, counting attempts,
//! giving up after the configured number, or retrying forever with 0. A deliberate stop never
//! wakes the watchdog.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use syncws::{Connection, Handler, Server, ServerConfig, ServerEvent, ServerHandle, WatchdogConfig};
use tungstenite::Message;

/// Generous upper bound for anything we wait for (loaded CI machine).
const WAIT: Duration = Duration::from_secs(10);

struct Rec(Sender<ServerEvent>);

impl Handler for Rec {
    fn on_text(&mut self, conn: &Connection, text: String) {
        let _ = conn.send_text(&text);
    }
    fn on_server_event(&mut self, event: ServerEvent) {
        let _ = self.0.send(event);
    }
}

fn start(interval_ms: u64, attempts: u32) -> (ServerHandle, Receiver<ServerEvent>) {
    let cfg = ServerConfig::new(([127, 0, 0, 1], 0))
        .close_timeout(Duration::from_secs(1))
        .watchdog(WatchdogConfig::new(Duration::from_millis(interval_ms), attempts));
    let (tx, rx) = crossbeam_channel::unbounded();
    let handle = Server::new(cfg).start(Rec(tx)).expect("start");
    (handle, rx)
}

fn next(rx: &Receiver<ServerEvent>) -> ServerEvent {
    rx.recv_timeout(WAIT).expect("no server event within the bound")
}

type Ws = tungstenite::WebSocket<TcpStream>;

fn try_client(addr: SocketAddr) -> Option<Ws> {
    let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    tcp.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    tungstenite::client(format!("ws://{addr}/"), tcp)
        .ok()
        .map(|(ws, _)| ws)
}

fn client(addr: SocketAddr) -> Ws {
    try_client(addr).expect("client could not connect")
}

fn echo(ws: &mut Ws, text: &str) {
    ws.send(Message::text(text)).expect("send");
    loop {
        match ws.read().expect("read echo") {
            Message::Text(t) => {
                assert_eq!(t.as_str(), text);
                return;
            }
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn expect_failed(rx: &Receiver<ServerEvent>, addr: SocketAddr) {
    match next(rx) {
        ServerEvent::ListenerFailed { addr: a, error } => {
            assert_eq!(a, addr);
            assert!(!error.is_empty());
        }
        other => panic!("expected ListenerFailed, got {other:?}"),
    }
}

#[test]
fn broken_listener_is_restarted_and_connections_survive() {
    let (server, rx) = start(200, 5);
    let addr = server.local_addr();
    let mut before = client(addr);
    echo(&mut before, "before");

    for round in 1..=2 {
        server.__break_listeners();
        expect_failed(&rx, addr);
        // The open connection keeps working while the listener is down.
        echo(&mut before, &format!("during restart {round}"));
        assert_eq!(
            next(&rx),
            ServerEvent::WatchdogAttempt { addr, attempt: 1 },
            "round {round}"
        );
        assert_eq!(
            next(&rx),
            ServerEvent::WatchdogRestarted { addr, attempt: 1 },
            "round {round}"
        );
        // New clients are accepted on the same port again.
        let mut after = client(addr);
        echo(&mut after, &format!("after restart {round}"));
        echo(&mut before, &format!("old one after restart {round}"));
        drop(after);
    }
    assert_eq!(server.local_addr(), addr);
    server.stop();
    assert!(
        rx.try_recv().is_err(),
        "stop after a restart produced a server event"
    );
}

#[test]
fn port_taken_gives_up_after_the_attempts() {
    // The interval leaves time to grab the port before the first attempt.
    let (server, rx) = start(500, 3);
    let addr = server.local_addr();
    let mut before = client(addr);
    server.__break_listeners();
    let squatter = TcpListener::bind(addr).expect("grab the port after the listener broke");
    expect_failed(&rx, addr);
    for n in 1..=3 {
        assert_eq!(next(&rx), ServerEvent::WatchdogAttempt { addr, attempt: n });
    }
    assert_eq!(next(&rx), ServerEvent::WatchdogGaveUp { addr, attempts: 3 });
    // Nothing more happens after giving up.
    assert!(rx.recv_timeout(Duration::from_millis(1200)).is_err());
    // Existing connections are not affected.
    echo(&mut before, "still served");
    drop(squatter);
    server.stop();
}

#[test]
fn unlimited_attempts_succeed_once_the_port_is_free() {
    let (server, rx) = start(500, 0);
    let addr = server.local_addr();
    server.__break_listeners();
    let squatter = TcpListener::bind(addr).expect("grab the port after the listener broke");
    expect_failed(&rx, addr);
    // Let it fail a few times (more than a limited watchdog would need to give up at 3).
    for n in 1..=4 {
        assert_eq!(next(&rx), ServerEvent::WatchdogAttempt { addr, attempt: n });
    }
    drop(squatter);
    let mut attempts_seen = 4;
    let restarted_at = loop {
        match next(&rx) {
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
    let mut ws = client(addr);
    echo(&mut ws, "back");
    server.stop();
}

#[test]
fn stop_does_not_trigger_the_watchdog() {
    let (server, rx) = start(100, 0);
    let addr = server.local_addr();
    let mut ws = client(addr);
    echo(&mut ws, "hello");
    let t0 = Instant::now();
    server.stop();
    assert!(t0.elapsed() < WAIT, "stop took {:?}", t0.elapsed());
    // The dispatch thread has been joined: every event there was has been delivered.
    let events: Vec<ServerEvent> = rx.try_iter().collect();
    assert!(events.is_empty(), "stop produced server events: {events:?}");
    // Nothing listens there any more.
    assert!(try_client(addr).is_none(), "something still serves {addr}");
}

#[test]
fn stop_while_the_watchdog_waits_is_prompt() {
    // A long interval: the watchdog is asleep when stop() comes.
    let (server, rx) = start(60_000, 0);
    let addr = server.local_addr();
    server.__break_listeners();
    expect_failed(&rx, addr);
    let t0 = Instant::now();
    server.stop();
    let took = t0.elapsed();
    assert!(
        took < Duration::from_secs(8),
        "stop waited for the watchdog: {took:?}"
    );
    let events: Vec<ServerEvent> = rx.try_iter().collect();
    assert!(events.is_empty(), "events after stop: {events:?}");
}
