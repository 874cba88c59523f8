//! Authentication through the public API with an independent client (tungstenite, and raw
//! HTTP for the session endpoint): Basic, URL and Session in the seed product's wire formats.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::*;
use syncws::{AuthConfig, Server, ServerConfig};
use tungstenite::client::IntoClientRequest;

fn auth_config(auth: AuthConfig) -> ServerConfig {
    config().auth(auth)
}

/// An echoing, recording server with `auth`, inline handlers.
fn start_auth(auth: AuthConfig) -> TestServer {
    start(&Server::new(auth_config(auth)), Mode::Inline)
}

fn users() -> AuthConfig {
    AuthConfig::new().user("ann", "s3cr:et pw").user("joe", "hunter2")
}

/// Connects with optional extra headers; `Ok` on 101 (after an echo round trip), `Err(status)`
/// otherwise.
fn connect_auth(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Result<(), u16> {
    let mut req = format!("ws://{addr}{path}")
        .into_client_request()
        .expect("request");
    for (n, v) in headers {
        let name = tungstenite::http::HeaderName::from_bytes(n.as_bytes()).expect("header name");
        req.headers_mut().insert(name, v.parse().expect("header value"));
    }
    match tungstenite::client(req, tcp(addr)) {
        Ok((mut ws, _)) => {
            echo(&mut ws, "ping?");
            let _ = ws.close(None);
            Ok(())
        }
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(resp))) => {
            Err(resp.status().as_u16())
        }
        Err(e) => panic!("unexpected handshake error: {e}"),
    }
}

fn basic(user_pass: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(user_pass)
    )
}

/// A raw HTTP/1.1 exchange.
fn http(addr: SocketAddr, request: &str) -> RawResponse {
    http_exchange(addr, request.as_bytes())
}

fn get(addr: SocketAddr, path: &str) -> RawResponse {
    http(addr, &format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n"))
}

/// Asks for a session token (which must be granted).
fn token(addr: SocketAddr, user: &str, password: &str) -> String {
    let r = get(addr, &format!("/sgc/req/auth/session/{user}/{password}"));
    assert_eq!(r.status, 200, "{}", r.head);
    String::from_utf8(r.body).expect("UTF-8 token").trim().to_string()
}

/// The user and target of the next connection.
fn seen(srv: &TestServer) -> (Option<String>, String) {
    let c = srv.expect_connect();
    (c.user().map(str::to_string), c.target().to_string())
}

#[test]
fn basic_accepted_and_user_visible() {
    let srv = start_auth(users());
    connect_auth(
        srv.local_addr(),
        "/room",
        &[("Authorization", &basic("ann:s3cr:et pw"))],
    )
    .expect("accepted");
    assert_eq!(seen(&srv), (Some("ann".into()), "/room".into()));
}

#[test]
fn basic_rejections() {
    let srv = start_auth(users());
    let a = srv.local_addr();
    assert_eq!(
        connect_auth(a, "/", &[("Authorization", &basic("ann:wrong"))]),
        Err(401)
    );
    assert_eq!(
        connect_auth(a, "/", &[("Authorization", &basic("nobody:hunter2"))]),
        Err(401)
    );
    assert_eq!(connect_auth(a, "/", &[]), Err(401));
    // Malformed: never a panic, always 400/401.
    assert_eq!(
        connect_auth(a, "/", &[("Authorization", "Basic !!!not-base64!!!")]),
        Err(400)
    );
    assert_eq!(
        connect_auth(a, "/", &[("Authorization", &basic("no-colon"))]),
        Err(400)
    );
    assert_eq!(
        connect_auth(a, "/", &[("Authorization", &basic(":empty-user"))]),
        Err(401)
    );
    let long = format!("ann:{}", "x".repeat(5000));
    assert_eq!(
        connect_auth(a, "/", &[("Authorization", &basic(&long))]),
        Err(400)
    );
    assert_eq!(connect_auth(a, "/", &[("Authorization", "Basic")]), Err(400));
    // The server is still fine, and nobody got in: joe's is the first connection (every refused
    // client above had its answer before joe connected) and the only one.
    connect_auth(a, "/", &[("Authorization", &basic("joe:hunter2"))]).expect("accepted");
    assert_eq!(seen(&srv).0.as_deref(), Some("joe"));
    let others: Vec<Ev> = srv
        .events
        .try_iter()
        .filter(|ev| matches!(ev, Ev::Connect(_)))
        .collect();
    assert!(others.is_empty(), "{others:?}");
}

#[test]
fn unauthorized_names_the_realm() {
    let srv = start_auth(users().realm("game"));
    let r = http(srv.local_addr(), &upgrade_request("/", ""));
    assert_eq!(r.status, 401, "{}", r.head);
    assert_eq!(
        r.header("WWW-Authenticate").as_deref(),
        Some("Basic realm=\"game\""),
        "{}",
        r.head
    );
    // Without Basic among the methods, no challenge header.
    let srv = start_auth(users().methods(false, true, true));
    let r = http(srv.local_addr(), &upgrade_request("/", ""));
    assert_eq!(r.status, 401, "{}", r.head);
    assert_eq!(r.header("WWW-Authenticate"), None, "{}", r.head);
}

#[test]
fn allow_non_auth_lets_anonymous_in_but_not_wrong_passwords() {
    let srv = start_auth(users().allow_non_auth(true));
    connect_auth(srv.local_addr(), "/open", &[]).expect("anonymous");
    assert_eq!(seen(&srv), (None, "/open".into()));
    assert_eq!(
        connect_auth(srv.local_addr(), "/", &[("Authorization", &basic("ann:nope"))]),
        Err(401)
    );
}

#[test]
fn url_credentials() {
    let srv = start_auth(users());
    let a = srv.local_addr();
    // Password "s3cr:et pw" percent-encoded; the rest of the path and the query survive.
    connect_auth(a, "/sgc/auth/url/ann/s3cr%3Aet%20pw/room/1?x=2", &[]).expect("accepted");
    assert_eq!(seen(&srv), (Some("ann".into()), "/room/1?x=2".into()));
    connect_auth(a, "/sgc/auth/url/joe/hunter2", &[]).expect("accepted");
    assert_eq!(seen(&srv), (Some("joe".into()), "/".into()));
    assert_eq!(connect_auth(a, "/sgc/auth/url/ann/wrong", &[]), Err(401));
    assert_eq!(connect_auth(a, "/sgc/auth/url/who/hunter2", &[]), Err(401));
    assert_eq!(connect_auth(a, "/sgc/auth/url/ann/%zz", &[]), Err(400));
    assert_eq!(connect_auth(a, "/sgc/auth/url/ann/%ff%fe", &[]), Err(400));
    assert_eq!(connect_auth(a, "/sgc/nothing/here", &[]), Err(404));
}

#[test]
fn session_flow_reuse_and_methods() {
    let srv = start_auth(users());
    let a = srv.local_addr();
    let token = token(a, "ann", "s3cr%3Aet%20pw");
    assert_eq!(token.len(), 32, "a UUID in simple form: {token}");
    connect_auth(a, &format!("/sgc/auth/session/{token}/lobby"), &[]).expect("accepted");
    assert_eq!(seen(&srv), (Some("ann".into()), "/lobby".into()));
    // Single use by default.
    assert_eq!(
        connect_auth(a, &format!("/sgc/auth/session/{token}"), &[]),
        Err(401)
    );
    assert_eq!(
        connect_auth(a, "/sgc/auth/session/00000000000000000000000000000000", &[]),
        Err(401)
    );
    // Wrong credentials get no token; other methods and paths are refused.
    assert_eq!(get(a, "/sgc/req/auth/session/ann/wrong").status, 401);
    assert_eq!(
        http(
            a,
            "POST /sgc/req/auth/session/ann/s3cr%3Aet%20pw HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
        )
        .status,
        405
    );
    assert_eq!(get(a, "/sgc/req/other").status, 404);
    assert_eq!(get(a, "/sgc/req/auth/session/ann/%zz").status, 400);
    // Plain HTTP outside /sgc/ is still the application's (no hook: 426).
    assert_eq!(get(a, "/index.html").status, 426);
}

#[test]
fn reusable_session_tokens() {
    // A TTL far longer than the test: reuse is not a race against the clock.
    let srv = start_auth(
        users()
            .session_ttl(Duration::from_secs(600))
            .single_use_sessions(false),
    );
    let a = srv.local_addr();
    let token = token(a, "joe", "hunter2");
    for i in 0..3 {
        connect_auth(a, &format!("/sgc/auth/session/{token}/{i}"), &[]).expect("reusable until expiry");
        assert_eq!(seen(&srv), (Some("joe".into()), format!("/{i}")));
    }
}

#[test]
fn session_tokens_expire() {
    let ttl = Duration::from_secs(1);
    let srv = start_auth(users().session_ttl(ttl).single_use_sessions(false));
    let a = srv.local_addr();
    // The clock starts before the token exists, so `elapsed` is an upper bound of its age.
    let t0 = Instant::now();
    let token = token(a, "joe", "hunter2");
    let path = format!("/sgc/auth/session/{token}");
    // Used until it is refused: never before the TTL (so a use that returns within the TTL must
    // have been accepted), and not long after it.
    wait_until_within(ttl + LONG_WAIT, "the token to expire", || {
        let r = connect_auth(a, &path, &[]);
        let age = t0.elapsed();
        match r {
            Ok(()) => {
                assert_eq!(seen(&srv).0.as_deref(), Some("joe"));
                std::thread::sleep(Duration::from_millis(50));
                false
            }
            Err(status) => {
                assert_eq!(status, 401);
                assert!(age >= ttl, "refused after {age:?}, before the TTL of {ttl:?}");
                true
            }
        }
    });
    // Expired for good.
    assert_eq!(connect_auth(a, &path, &[]), Err(401));
}

#[test]
fn callback_decides_for_users_not_in_the_list() {
    let server = Server::new(auth_config(users())).on_auth(|req, user, password| {
        assert!(!req.target.contains("pw"), "hooks never see URL credentials");
        user == "ldap-user" && password == "ldap-pw"
    });
    let srv = start(&server, Mode::Inline);
    let a = srv.local_addr();
    connect_auth(a, "/", &[("Authorization", &basic("ldap-user:ldap-pw"))]).expect("callback accepts");
    assert_eq!(seen(&srv).0.as_deref(), Some("ldap-user"));
    assert_eq!(
        connect_auth(a, "/", &[("Authorization", &basic("ldap-user:nope"))]),
        Err(401)
    );
    connect_auth(a, "/sgc/auth/url/ldap-user/ldap-pw", &[]).expect("URL too");
    // A listed user with a wrong password is refused without asking the callback.
    let server = Server::new(auth_config(users())).on_auth(|_, _, _| true);
    let srv = start(&server, Mode::Inline);
    assert_eq!(
        connect_auth(srv.local_addr(), "/", &[("Authorization", &basic("ann:wrong"))]),
        Err(401)
    );
    connect_auth(srv.local_addr(), "/", &[("Authorization", &basic("anyone:else"))])
        .expect("unlisted: callback");
}

#[test]
fn session_store_is_bounded() {
    let srv = start_auth(users().max_sessions(5));
    let a = srv.local_addr();
    let first = token(a, "joe", "hunter2");
    for _ in 0..4 {
        token(a, "joe", "hunter2");
    }
    // Full: new tokens are refused (503), live ones are never evicted.
    for _ in 0..5 {
        let r = get(a, "/sgc/req/auth/session/joe/hunter2");
        assert_eq!(r.status, 503, "{}", r.head);
        assert!(r.header("Retry-After").is_some(), "{}", r.head);
    }
    connect_auth(a, &format!("/sgc/auth/session/{first}"), &[]).expect("the oldest token is alive");
}

#[cfg(feature = "tls")]
#[test]
fn basic_over_tls() {
    use common::tls::{fixture, tls_stream};
    let fx = fixture();
    let server = Server::new(auth_config(users())).tls(fx.server_config());
    let srv = start(&server, Mode::Inline);
    let mut req = format!(
        "wss://localhost:{}/sgc/auth/url/joe/hunter2/secure",
        srv.local_addr().port()
    )
    .into_client_request()
    .expect("request");
    req.headers_mut()
        .insert("Authorization", basic("ann:s3cr:et pw").parse().expect("value"));
    let tls = tls_stream(srv.local_addr(), fx.client_config());
    let (mut ws, _) = tungstenite::client(req, tls).expect("wss handshake");
    // URL credentials are checked first when present.
    assert_eq!(seen(&srv), (Some("joe".into()), "/secure".into()));
    echo(&mut ws, "over tls");
}
