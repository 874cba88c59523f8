//! Taking clients in: the handshake deadline holds however slowly the bytes trickle in (TLS
//! handshake, upgrade request over TLS and over plain TCP), `max_handshakes` caps the sockets
//! still in their handshake with a 503, and the listen backlog is the configured one (the
//! watchdog's rebuilt listener too).

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::*;
use syncws::{Server, ServerConfig, ServerEvent, WatchdogConfig};

/// The handshake deadline of the trickle tests.
const DEADLINE: Duration = Duration::from_secs(2);
/// Time between two trickled bytes: well under the deadline, so that a timeout set once per
/// read never expires while bytes keep coming.
const STEP: Duration = Duration::from_millis(700);
/// How long a trickle goes on at most: long past the deadline, so that a server that does not
/// enforce it fails the test.
const TRICKLE_FOR: Duration = Duration::from_secs(10);
/// When the server must have cut a trickling client at the latest: the deadline plus slack for
/// a loaded machine (still well within [`TRICKLE_FOR`]).
const CUT_BY: Duration = Duration::from_secs(6);

/// Reads (and discards) what arrives for `d`; `true` if the peer closed the socket meanwhile.
fn closed_within(s: &mut TcpStream, d: Duration) -> bool {
    let end = Instant::now() + d;
    let mut b = [0u8; 4096];
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut b) {
            Ok(0) => return true,
            // TLS 1.3 session tickets, say: not an answer to the trickle.
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => return false,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return true,
        }
    }
}

/// Sends `first` at once, then `rest` one byte every [`STEP`], for up to [`TRICKLE_FOR`].
/// Returns how long after the start the server closed the socket, `None` if it never did.
fn trickle(mut s: TcpStream, first: &[u8], rest: &[u8]) -> Option<Duration> {
    let t0 = Instant::now();
    if s.write_all(first).is_err() {
        return Some(t0.elapsed());
    }
    let mut rest = rest.iter();
    while t0.elapsed() < TRICKLE_FOR {
        if closed_within(&mut s, STEP) {
            return Some(t0.elapsed());
        }
        let b = rest.next().expect("ran out of bytes to trickle");
        if s.write_all(&[*b]).is_err() {
            return Some(t0.elapsed());
        }
    }
    None
}

/// Checks that a trickle was cut after about [`DEADLINE`] (`took` is what [`trickle`] returned).
fn assert_cut(what: &str, took: Option<Duration>) {
    let took = took.unwrap_or_else(|| panic!("{what}: still open after {TRICKLE_FOR:?} of trickling"));
    assert!(took < CUT_BY, "{what}: cut after {took:?}, deadline {DEADLINE:?}");
    // The deadline counts from the accept, a little before the trickle's start.
    assert!(
        took + Duration::from_millis(300) >= DEADLINE,
        "{what}: cut too early, after {took:?}"
    );
}

/// A configuration with the trickle tests' handshake deadline.
fn deadline_config() -> ServerConfig {
    config().handshake_timeout(DEADLINE)
}

#[test]
fn plain_upgrade_request_trickled_is_cut_at_the_deadline() {
    let srv = start(&Server::new(deadline_config()), Mode::Async);
    let req = upgrade_request("/", "");
    let took = trickle(tcp(srv.local_addr()), &req.as_bytes()[..3], &req.as_bytes()[3..]);
    assert_cut("plain upgrade request", took);
    assert_eq!(srv.connection_count(), 0);
    srv.stop();
}

#[cfg(feature = "tls")]
mod tls {
    use super::*;
    use rustls::pki_types::ServerName;

    fn start_tls() -> TestServer {
        let server = Server::new(deadline_config()).tls(common::tls::fixture().server_config());
        start(&server, Mode::Async)
    }

    #[test]
    fn client_hello_trickled_is_cut_at_the_deadline() {
        let srv = start_tls();
        // A TLS record header (handshake, TLS 1.0 on the record layer, 128 bytes), then the
        // start of a ClientHello: a prefix rustls waits on for the rest of the record.
        let first = [0x16, 0x03, 0x01];
        let mut rest = vec![0x00, 0x80, 0x01, 0x00, 0x00, 0x7c, 0x03, 0x03];
        rest.resize(120, 0);
        let took = trickle(tcp(srv.local_addr()), &first, &rest);
        assert_cut("ClientHello", took);
        srv.stop();
    }

    #[test]
    fn upgrade_request_trickled_over_tls_is_cut_at_the_deadline() {
        let srv = start_tls();
        let mut sock = tcp(srv.local_addr());
        let name = ServerName::try_from("localhost").unwrap();
        let mut client = rustls::ClientConnection::new(common::tls::fixture().client_config(), name).unwrap();
        while client.is_handshaking() {
            client.complete_io(&mut sock).expect("TLS handshake");
        }
        // The request encrypted, then its ciphertext trickled: no record is ever whole.
        client
            .writer()
            .write_all(upgrade_request("/", "").as_bytes())
            .unwrap();
        let mut ciphertext = Vec::new();
        while client.wants_write() {
            client.write_tls(&mut ciphertext).unwrap();
        }
        let took = trickle(sock, &ciphertext[..3], &ciphertext[3..]);
        assert_cut("upgrade request over TLS", took);
        assert_eq!(srv.connection_count(), 0);
        srv.stop();
    }
}

/// Upgrades a client to `addr`, retrying while the server answers 503 (for up to [`WAIT`]).
fn connect_when_room(addr: SocketAddr) -> Client {
    let deadline = Instant::now() + WAIT;
    loop {
        match tungstenite::client(format!("ws://{addr}/"), tcp(addr)) {
            Ok((ws, _)) => return ws,
            // 503 while the silent sockets are still being found gone.
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("no room for a new client within {WAIT:?}: {e}"),
        }
    }
}

#[test]
fn max_handshakes_answers_503_and_counts_only_handshakes() {
    let server = Server::new(config().max_handshakes(4).max_connections(100));
    let srv = start(&server, Mode::Async);
    let addr = srv.local_addr();
    // Open connections are not in their handshake: more of them than the cap are fine.
    let mut open: Vec<Client> = (0..5).map(|_| connect(addr, "/")).collect();
    srv.wait_connections(5);
    // Four silent sockets fill the handshake slots (accepted in order, before the fifth).
    let silent: Vec<TcpStream> = (0..4).map(|_| tcp(addr)).collect();
    let mut fifth = tcp(addr);
    let r = read_http_response_to_end(&mut fifth);
    assert_eq!(r.status, 503, "{}", r.head);
    assert!(r.header("Retry-After").is_some(), "{}", r.head);
    assert_eq!(srv.connection_count(), 5);
    // Once the silent ones leave, a new client gets in; the open ones were never touched.
    drop(silent);
    let mut ws = connect_when_room(addr);
    echo(&mut ws, "room again");
    for ws in &mut open {
        echo(ws, "still here");
    }
    drop((ws, open));
    srv.stop();
}

/// The listen queue size the kernel reports for the listening socket on `port` (`ss`'s
/// Send-Q for a LISTEN socket); `Err` with the reason when it cannot be read here.
fn listen_backlog(port: u16) -> Result<u32, String> {
    let out = std::process::Command::new("ss")
        .args(["-ltn"])
        .output()
        .map_err(|e| format!("cannot run ss: {e}"))?;
    if !out.status.success() {
        return Err(format!("ss failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let suffix = format!(":{port}");
    let line = text
        .lines()
        .find(|l| l.split_whitespace().nth(3).is_some_and(|a| a.ends_with(&suffix)))
        .ok_or_else(|| format!("ss shows no listener on port {port}:\n{text}"))?;
    let send_q = line.split_whitespace().nth(2).unwrap_or_default();
    send_q.parse().map_err(|e| format!("ss's Send-Q {send_q:?}: {e}"))
}

/// The backlog the kernel grants for `asked` (Linux caps it at `net.core.somaxconn`); `Err`
/// when it cannot be known or would not tell the configured backlog from std's 128.
fn granted_backlog(asked: u32) -> Result<u32, String> {
    let max = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .map_err(|e| format!("cannot read net.core.somaxconn: {e}"))?;
    let max: u32 = max.trim().parse().map_err(|e| format!("somaxconn: {e}"))?;
    let granted = asked.min(max);
    if granted <= 128 {
        return Err(format!("somaxconn is {max}: no backlog above 128 can be seen"));
    }
    Ok(granted)
}

#[test]
fn the_configured_backlog_is_in_force_after_a_rebind_too() {
    const ASKED: u32 = 2048;
    let expected = match granted_backlog(ASKED) {
        Ok(n) => n,
        Err(why) => return eprintln!("skipped: {why}"),
    };
    let wd = WatchdogConfig::new(Duration::from_millis(100), 0);
    let srv = start(&Server::new(config().backlog(ASKED).watchdog(wd)), Mode::Async);
    let port = srv.local_addr().port();
    match listen_backlog(port) {
        Ok(n) => assert_eq!(n, expected, "backlog of the first listener"),
        Err(why) => return eprintln!("skipped: {why}"),
    }
    break_listeners(&srv);
    srv.wait_for("the watchdog's restart", |ev| {
        matches!(ev, Ev::Server(ServerEvent::WatchdogRestarted { .. })).then_some(())
    });
    assert_eq!(
        listen_backlog(port),
        Ok(expected),
        "backlog of the rebuilt listener"
    );
    let mut ws = connect(srv.local_addr(), "/");
    echo(&mut ws, "rebound");
    drop(ws);
    srv.stop();
}

/// A client that reads a large plain-HTTP answer slowly (each write makes a little progress)
/// cannot hold the connection thread and its handshake slot past `write_timeout`: the answer
/// as a whole has that long. Seen through the one handshake slot it holds.
#[test]
fn a_slow_reader_of_a_large_page_is_cut_at_the_write_timeout() {
    let page = vec![b'x'; 64 << 20];
    let server = Server::new(
        config()
            .max_handshakes(1)
            .max_connections(100)
            .write_timeout(Duration::from_secs(1)),
    )
    .on_http(move |_| syncws::HttpResponse::new(200).body(page.clone()));
    let srv = start(&server, Mode::Async);
    let addr = srv.local_addr();
    let mut slow = tcp_small_rcvbuf(addr, 4096);
    slow.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    // Reads 64 KiB every 100 ms: every write the server makes gets somewhere, and the whole
    // page would take over 100 s.
    let reader = std::thread::spawn(move || {
        let end = Instant::now() + TRICKLE_FOR;
        let mut b = vec![0u8; 64 << 10];
        while Instant::now() < end {
            match slow.read(&mut b) {
                Ok(0) | Err(_) => return,
                Ok(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    });
    std::thread::sleep(Duration::from_millis(300));
    let mut second = tcp(addr);
    let r = read_http_response_to_end(&mut second);
    assert_eq!(
        r.status, 503,
        "the slow reader holds the only handshake slot: {}",
        r.head
    );
    let t0 = Instant::now();
    loop {
        let (resp, _c) = raw_upgrade(addr, &upgrade_request("/", ""));
        if resp.status == 101 {
            break;
        }
        assert!(
            t0.elapsed() < CUT_BY,
            "the slot was still held after {:?}",
            t0.elapsed()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(reader);
    srv.stop();
}
