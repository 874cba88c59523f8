//! Authentication through the public API with an independent client (tungstenite, and raw
//! HTTP for the session endpoint): Basic, URL and Session in the seed product's wire formats.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use base64::Engine as _;
use crossbeam_channel::{Receiver, Sender};
use syncws::{AuthConfig, Connection, InlineHandler, Server, ServerConfig, ServerHandle};
use tungstenite::client::IntoClientRequest;
use tungstenite::Message;

/// Reports `(user, path)` of each connection, and echoes text.
struct Who(Sender<(Option<String>, String)>);

impl InlineHandler for Who {
    fn on_connect(&self, conn: &Connection) {
        let _ = self
            .0
            .send((conn.user().map(str::to_string), conn.target().to_string()));
    }
    fn on_text(&self, conn: &Connection, text: &str) {
        let _ = conn.send_text(text);
    }
}

fn start(auth: AuthConfig) -> (ServerHandle, Receiver<(Option<String>, String)>) {
    start_with(Server::new(config(auth)))
}

fn config(auth: AuthConfig) -> ServerConfig {
    ServerConfig::new(([127, 0, 0, 1], 0))
        .close_timeout(Duration::from_secs(1))
        .auth(auth)
}

fn start_with(server: Server) -> (ServerHandle, Receiver<(Option<String>, String)>) {
    let (tx, rx) = crossbeam_channel::unbounded();
    (server.start_inline(Who(tx)).expect("start"), rx)
}

fn users() -> AuthConfig {
    AuthConfig::new().user("ann", "s3cr:et pw").user("joe", "hunter2")
}

/// Connects with optional extra headers; `Ok` on 101, `Err(status)` otherwise.
fn connect(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Result<(), u16> {
    let mut req = format!("ws://{addr}{path}")
        .into_client_request()
        .expect("request");
    for (n, v) in headers {
        let name = tungstenite::http::HeaderName::from_bytes(n.as_bytes()).expect("header name");
        req.headers_mut().insert(name, v.parse().expect("header value"));
    }
    let stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    match tungstenite::client(req, stream) {
        Ok((mut ws, _)) => {
            ws.send(Message::text("ping?")).expect("send");
            assert_eq!(
                ws.read().expect("echo").into_text().expect("text").as_str(),
                "ping?"
            );
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

/// A raw HTTP/1.1 exchange: returns (status, headers+body text).
fn http(addr: SocketAddr, request: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(request.as_bytes()).expect("write");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, out)
}

fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    http(addr, &format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n"))
}

fn body(resp: &str) -> &str {
    resp.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("")
}

fn seen(rx: &Receiver<(Option<String>, String)>) -> (Option<String>, String) {
    rx.recv_timeout(Duration::from_secs(10)).expect("connect event")
}

#[test]
fn basic_accepted_and_user_visible() {
    let (h, rx) = start(users());
    connect(
        h.local_addr(),
        "/room",
        &[("Authorization", &basic("ann:s3cr:et pw"))],
    )
    .expect("accepted");
    assert_eq!(seen(&rx), (Some("ann".into()), "/room".into()));
}

#[test]
fn basic_rejections() {
    let (h, rx) = start(users());
    let a = h.local_addr();
    assert_eq!(
        connect(a, "/", &[("Authorization", &basic("ann:wrong"))]),
        Err(401)
    );
    assert_eq!(
        connect(a, "/", &[("Authorization", &basic("nobody:hunter2"))]),
        Err(401)
    );
    assert_eq!(connect(a, "/", &[]), Err(401));
    // Malformed: never a panic, always 400/401.
    assert_eq!(
        connect(a, "/", &[("Authorization", "Basic !!!not-base64!!!")]),
        Err(400)
    );
    assert_eq!(
        connect(a, "/", &[("Authorization", &basic("no-colon"))]),
        Err(400)
    );
    assert_eq!(
        connect(a, "/", &[("Authorization", &basic(":empty-user"))]),
        Err(401)
    );
    let long = format!("ann:{}", "x".repeat(5000));
    assert_eq!(connect(a, "/", &[("Authorization", &basic(&long))]), Err(400));
    assert_eq!(connect(a, "/", &[("Authorization", "Basic")]), Err(400));
    // The server is still fine, and nobody got in.
    connect(a, "/", &[("Authorization", &basic("joe:hunter2"))]).expect("accepted");
    assert_eq!(seen(&rx).0.as_deref(), Some("joe"));
    assert!(rx.try_recv().is_err());
}

#[test]
fn unauthorized_names_the_realm() {
    let (h, _rx) = start(users().realm("game"));
    let (status, resp) = http(
        h.local_addr(),
        "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    );
    assert_eq!(status, 401);
    assert!(resp.contains("WWW-Authenticate: Basic realm=\"game\""), "{resp}");
    // Without Basic among the methods, no challenge header.
    let (h, _rx) = start(users().methods(false, true, true));
    let (status, resp) = http(
        h.local_addr(),
        "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    );
    assert_eq!(status, 401);
    assert!(!resp.contains("WWW-Authenticate"), "{resp}");
}

#[test]
fn allow_non_auth_lets_anonymous_in_but_not_wrong_passwords() {
    let (h, rx) = start(users().allow_non_auth(true));
    connect(h.local_addr(), "/open", &[]).expect("anonymous");
    assert_eq!(seen(&rx), (None, "/open".into()));
    assert_eq!(
        connect(h.local_addr(), "/", &[("Authorization", &basic("ann:nope"))]),
        Err(401)
    );
}

#[test]
fn url_credentials() {
    let (h, rx) = start(users());
    let a = h.local_addr();
    // Password "s3cr:et pw" percent-encoded; the rest of the path and the query survive.
    connect(a, "/sgc/auth/url/ann/s3cr%3Aet%20pw/room/1?x=2", &[]).expect("accepted");
    assert_eq!(seen(&rx), (Some("ann".into()), "/room/1?x=2".into()));
    connect(a, "/sgc/auth/url/joe/hunter2", &[]).expect("accepted");
    assert_eq!(seen(&rx), (Some("joe".into()), "/".into()));
    assert_eq!(connect(a, "/sgc/auth/url/ann/wrong", &[]), Err(401));
    assert_eq!(connect(a, "/sgc/auth/url/who/hunter2", &[]), Err(401));
    assert_eq!(connect(a, "/sgc/auth/url/ann/%zz", &[]), Err(400));
    assert_eq!(connect(a, "/sgc/auth/url/ann/%ff%fe", &[]), Err(400));
    assert_eq!(connect(a, "/sgc/nothing/here", &[]), Err(404));
}

#[test]
fn session_flow_reuse_and_methods() {
    let (h, rx) = start(users());
    let a = h.local_addr();
    let (status, resp) = get(a, "/sgc/req/auth/session/ann/s3cr%3Aet%20pw");
    assert_eq!(status, 200, "{resp}");
    let token = body(&resp).trim().to_string();
    assert_eq!(token.len(), 32, "a UUID in simple form: {token}");
    connect(a, &format!("/sgc/auth/session/{token}/lobby"), &[]).expect("accepted");
    assert_eq!(seen(&rx), (Some("ann".into()), "/lobby".into()));
    // Single use by default.
    assert_eq!(connect(a, &format!("/sgc/auth/session/{token}"), &[]), Err(401));
    assert_eq!(
        connect(a, "/sgc/auth/session/00000000000000000000000000000000", &[]),
        Err(401)
    );
    // Wrong credentials get no token; other methods and paths are refused.
    assert_eq!(get(a, "/sgc/req/auth/session/ann/wrong").0, 401);
    assert_eq!(
        http(
            a,
            "POST /sgc/req/auth/session/ann/s3cr%3Aet%20pw HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
        )
        .0,
        405
    );
    assert_eq!(get(a, "/sgc/req/other").0, 404);
    assert_eq!(get(a, "/sgc/req/auth/session/ann/%zz").0, 400);
    // Plain HTTP outside /sgc/ is still the application's (no hook: 426).
    assert_eq!(get(a, "/index.html").0, 426);
}

#[test]
fn session_tokens_expire_and_can_be_reusable() {
    let (h, _rx) = start(
        users()
            .session_ttl(Duration::from_millis(300))
            .single_use_sessions(false),
    );
    let a = h.local_addr();
    let (_, resp) = get(a, "/sgc/req/auth/session/joe/hunter2");
    let token = body(&resp).trim().to_string();
    connect(a, &format!("/sgc/auth/session/{token}"), &[]).expect("first use");
    connect(a, &format!("/sgc/auth/session/{token}"), &[]).expect("reusable until expiry");
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(connect(a, &format!("/sgc/auth/session/{token}"), &[]), Err(401));
}

#[test]
fn callback_decides_for_users_not_in_the_list() {
    let server = Server::new(config(users())).on_auth(|req, user, password| {
        assert!(!req.target.contains("pw"), "hooks never see URL credentials");
        user == "ldap-user" && password == "ldap-pw"
    });
    let (h, rx) = start_with(server);
    let a = h.local_addr();
    connect(a, "/", &[("Authorization", &basic("ldap-user:ldap-pw"))]).expect("callback accepts");
    assert_eq!(seen(&rx).0.as_deref(), Some("ldap-user"));
    assert_eq!(
        connect(a, "/", &[("Authorization", &basic("ldap-user:nope"))]),
        Err(401)
    );
    connect(a, "/sgc/auth/url/ldap-user/ldap-pw", &[]).expect("URL too");
    // A listed user with a wrong password is refused without asking the callback.
    let server = Server::new(config(users())).on_auth(|_, _, _| true);
    let (h, _rx) = start_with(server);
    assert_eq!(
        connect(h.local_addr(), "/", &[("Authorization", &basic("ann:wrong"))]),
        Err(401)
    );
    connect(h.local_addr(), "/", &[("Authorization", &basic("anyone:else"))]).expect("unlisted: callback");
}

#[test]
fn session_store_is_bounded() {
    let (h, _rx) = start(users().max_sessions(5));
    let a = h.local_addr();
    let first = body(&get(a, "/sgc/req/auth/session/joe/hunter2").1)
        .trim()
        .to_string();
    for _ in 0..20 {
        assert_eq!(get(a, "/sgc/req/auth/session/joe/hunter2").0, 200);
    }
    // The oldest token was evicted.
    assert_eq!(connect(a, &format!("/sgc/auth/session/{first}"), &[]), Err(401));
}

#[cfg(feature = "tls")]
#[test]
fn basic_over_tls() {
    let dir = std::env::temp_dir().join(format!("syncws-auth-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("cert");
    let cert_pem = ck.cert.pem();
    std::fs::write(dir.join("cert.pem"), &cert_pem).expect("write");
    std::fs::write(dir.join("key.pem"), ck.key_pair.serialize_pem()).expect("write");
    let server =
        Server::new(config(users())).tls(syncws::TlsConfig::new(dir.join("cert.pem"), dir.join("key.pem")));
    let (h, rx) = start_with(server);
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ck.cert.der().clone()).expect("root");
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let tcp = TcpStream::connect(h.local_addr()).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let tls = rustls::StreamOwned::new(
        rustls::ClientConnection::new(std::sync::Arc::new(cfg), name).expect("client"),
        tcp,
    );
    let mut req = format!(
        "wss://localhost:{}/sgc/auth/url/joe/hunter2/secure",
        h.local_addr().port()
    )
    .into_client_request()
    .expect("request");
    req.headers_mut()
        .insert("Authorization", basic("ann:s3cr:et pw").parse().expect("value"));
    let (mut ws, _) = tungstenite::client(req, tls).expect("wss handshake");
    // URL credentials are checked first when present.
    assert_eq!(seen(&rx), (Some("joe".into()), "/secure".into()));
    ws.send(Message::text("over tls")).expect("send");
    assert_eq!(
        ws.read().expect("echo").into_text().expect("text").as_str(),
        "over tls"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
