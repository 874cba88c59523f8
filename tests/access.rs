//! Access control as an attacker meets it, through the public API with raw sockets: login
//! throttling per client address and per user (clients bound to other loopback addresses),
//! session-token caps, and the strict request head.

mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use common::*;
use socket2::{Domain, Protocol, Socket, Type};
use syncws::{Accept, AuthConfig, HttpResponse, Server};

/// Users ann and joe; throttling after 3 failures, a 1 s lockout.
fn throttled() -> AuthConfig {
    AuthConfig::new()
        .user("ann", "right")
        .user("joe", "hunter2")
        .max_failures(3)
        .failure_window(Duration::from_secs(30))
        .lockout(Duration::from_secs(1))
}

fn start_auth(auth: AuthConfig) -> TestServer {
    start(&Server::new(config().auth(auth)), Mode::Inline)
}

/// 127.0.0.`n`.
fn lo(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, n))
}

/// A socket from `from` to `addr`, with the usual timeouts.
fn tcp_from(from: IpAddr, addr: SocketAddr) -> TcpStream {
    let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).expect("socket");
    s.bind(&SocketAddr::new(from, 0).into())
        .expect("bind to a loopback address");
    s.connect(&addr.into()).expect("connect");
    let s = TcpStream::from(s);
    s.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(READ_TIMEOUT)).unwrap();
    s
}

/// Sends `request` from `from` and reads the response head (and nothing more: a 101 leaves
/// the connection open, and it is dropped).
fn exchange_from(from: IpAddr, addr: SocketAddr, request: &str) -> RawResponse {
    let mut s = tcp_from(from, addr);
    s.write_all(request.as_bytes()).expect("write request");
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut chunk).expect("reading the response head");
        assert!(
            n > 0,
            "closed before a response: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    RawResponse {
        status,
        head,
        body: Vec::new(),
    }
}

/// An upgrade with Basic credentials `user:password` from `from`.
fn basic_from(from: IpAddr, addr: SocketAddr, user: &str, password: &str) -> RawResponse {
    let cred = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let req = upgrade_request("/", &format!("Authorization: Basic {cred}\r\n"));
    exchange_from(from, addr, &req)
}

/// Asserts `r` is a 429 whose `Retry-After` is between 1 and `max` seconds.
fn assert_throttled(r: &RawResponse, max: u64) {
    assert_eq!(r.status, 429, "{}", r.head);
    let secs: u64 = r
        .header("Retry-After")
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!((1..=max).contains(&secs), "Retry-After {secs}");
}

#[test]
fn failures_lock_the_address_out_even_for_the_right_password() {
    let srv = start_auth(throttled());
    let a = srv.local_addr();
    for _ in 0..3 {
        assert_eq!(basic_from(lo(1), a, "ann", "wrong").status, 401);
    }
    assert_throttled(&basic_from(lo(1), a, "ann", "right"), 1);
    // The address is locked out for every user; another address is not.
    assert_throttled(&basic_from(lo(1), a, "joe", "hunter2"), 1);
    assert_eq!(basic_from(lo(2), a, "joe", "hunter2").status, 101);
    srv.expect_connect();
    // ...unless it targets the locked-out user.
    assert_throttled(&basic_from(lo(2), a, "ann", "right"), 1);
    // The lockout ends; the count starts again.
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(basic_from(lo(1), a, "ann", "right").status, 101);
    srv.expect_connect();
}

#[test]
fn failures_spread_over_addresses_lock_the_user_out() {
    let srv = start_auth(throttled());
    let a = srv.local_addr();
    let url = |user: &str, pw: &str| upgrade_request(&format!("/sgc/auth/url/{user}/{pw}"), "");
    assert_eq!(exchange_from(lo(2), a, &url("ann", "a")).status, 401);
    assert_eq!(exchange_from(lo(2), a, &url("ann", "b")).status, 401);
    assert_eq!(exchange_from(lo(3), a, &url("ann", "c")).status, 401);
    assert_throttled(&exchange_from(lo(4), a, &url("ann", "right")), 1);
    assert_throttled(&basic_from(lo(5), a, "ann", "right"), 1);
    // Another user, from a fresh address, is unaffected.
    assert_eq!(exchange_from(lo(4), a, &url("joe", "hunter2")).status, 101);
    srv.expect_connect();
}

#[test]
fn a_success_resets_the_count() {
    let srv = start_auth(throttled());
    let a = srv.local_addr();
    for _ in 0..3 {
        assert_eq!(basic_from(lo(1), a, "ann", "wrong").status, 401);
        assert_eq!(basic_from(lo(1), a, "ann", "wrong").status, 401);
        assert_eq!(basic_from(lo(1), a, "ann", "right").status, 101);
        srv.expect_connect();
    }
}

#[test]
fn the_session_endpoint_is_throttled_too() {
    let srv = start_auth(throttled());
    let a = srv.local_addr();
    let get =
        |user: &str, pw: &str| format!("GET /sgc/req/auth/session/{user}/{pw} HTTP/1.1\r\nHost: x\r\n\r\n");
    for _ in 0..3 {
        assert_eq!(exchange_from(lo(1), a, &get("ann", "wrong")).status, 401);
    }
    assert_throttled(&exchange_from(lo(1), a, &get("ann", "right")), 1);
    // Basic for another user from the same address: locked out too.
    assert_throttled(&basic_from(lo(1), a, "joe", "hunter2"), 1);
    assert_eq!(exchange_from(lo(2), a, &get("joe", "hunter2")).status, 200);
}

/// A session token for `user`, or the refusal.
fn session(addr: SocketAddr, user: &str, password: &str) -> Result<String, RawResponse> {
    let req = format!("GET /sgc/req/auth/session/{user}/{password} HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = http_exchange(addr, req.as_bytes());
    if r.status != 200 {
        return Err(r);
    }
    Ok(String::from_utf8(r.body).expect("UTF-8").trim().to_string())
}

#[test]
fn another_users_flood_neither_evicts_a_token_nor_exceeds_its_cap() {
    let auth = AuthConfig::new()
        .user("victim", "v")
        .user("mallory", "m")
        .max_sessions_per_user(4);
    let srv = start_auth(auth);
    let a = srv.local_addr();
    let victim = session(a, "victim", "v").expect("victim's token");
    for _ in 0..4 {
        session(a, "mallory", "m").expect("within the cap");
    }
    for _ in 0..20 {
        let r = session(a, "mallory", "m").expect_err("over the per-user cap");
        assert_throttled(&r, 60);
    }
    let (r, _c) = raw_upgrade(a, &upgrade_request(&format!("/sgc/auth/session/{victim}"), ""));
    assert_eq!(r.status, 101, "the victim's token survived: {}", r.head);
    assert_eq!(srv.expect_connect().user(), Some("victim"));
}

#[test]
fn a_full_session_table_refuses_new_tokens_and_keeps_live_ones() {
    let auth = AuthConfig::new()
        .user("ann", "a")
        .user("joe", "j")
        .max_sessions(2);
    let srv = start_auth(auth);
    let a = srv.local_addr();
    let first = session(a, "ann", "a").expect("token");
    session(a, "joe", "j").expect("token");
    let r = session(a, "joe", "j").expect_err("table full");
    assert_eq!(r.status, 503, "{}", r.head);
    assert!(r.header("Retry-After").is_some(), "{}", r.head);
    let (r, _c) = raw_upgrade(a, &upgrade_request(&format!("/sgc/auth/session/{first}"), ""));
    assert_eq!(r.status, 101, "{}", r.head);
    srv.expect_connect();
    session(a, "joe", "j").expect("the used token made room");
}

/// Every strict-head refusal, each a 400; the hooks never see such a request, nor the
/// credentials in an absolute target.
#[test]
fn lenient_heads_get_400_and_reach_no_hook() {
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let (s1, s2) = (seen.clone(), seen.clone());
    let auth = AuthConfig::new().user("ann", "pw").allow_non_auth(true);
    let server = Server::new(config().auth(auth))
        .on_handshake(move |r| {
            s1.lock().unwrap().push(r.target.clone());
            Ok(Accept::new())
        })
        .on_http(move |r| {
            s2.lock().unwrap().push(r.target.clone());
            HttpResponse::text(200, "ok\n")
        });
    let srv = start(&server, Mode::Inline);
    let a = srv.local_addr();
    let good = upgrade_request("/chat", "");
    let cases = [
        good.replacen("\r\n\r\n", "\r\nHost: evil.example\r\n\r\n", 1),
        good.replacen("GET /chat", "GET http://evil.example/x", 1),
        good.replacen("GET /chat", "GET http://evil.example/sgc/auth/url/ann/pw", 1),
        good.replacen("GET /chat", "GET *", 1),
        good.replacen("\r\n\r\n", "\r\nSec-WebSocket-Version: 8\r\n\r\n", 1),
        good.replacen("\r\n\r\n", "\r\nUpgrade: websocket\r\n\r\n", 1),
        good.replacen("Connection: Upgrade", "Connection: Upgrade, close", 1),
        "GET http://evil.example/sgc/req/auth/session/ann/pw HTTP/1.1\r\nHost: x\r\n\r\n".into(),
        "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n".into(),
        "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n".into(),
    ];
    for req in &cases {
        assert_ne!(req, &good);
        let r = http_exchange(a, req.as_bytes());
        assert_eq!(r.status, 400, "{req:?} -> {}", r.head);
    }
    assert!(
        seen.lock().unwrap().is_empty(),
        "hooks saw {:?}",
        seen.lock().unwrap()
    );
    // The good request is still accepted, and the hook sees it.
    let (r, _c) = raw_upgrade(a, &good);
    assert_eq!(r.status, 101, "{}", r.head);
    srv.expect_connect();
    assert_eq!(*seen.lock().unwrap(), ["/chat"]);
}
