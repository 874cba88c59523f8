//! The Origin policy (cross-site WebSocket hijacking): through the public API with raw
//! upgrade requests (`Host: localhost`).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use common::*;
use syncws::{Accept, AuthConfig, OriginPolicy, Server};

fn status(server: &TestServer, extra: &str) -> u16 {
    http_exchange(server.local_addr(), upgrade_request("/", extra).as_bytes()).status
}

#[test]
fn the_default_lets_the_own_host_and_non_browsers_in() {
    let server = Server::new(config());
    let srv = start(&server, Mode::Async);
    assert_eq!(
        raw_upgrade(srv.local_addr(), &upgrade_request("/", "")).0.status,
        101
    );
    let own = upgrade_request("/", "Origin: http://localhost\r\n");
    assert_eq!(raw_upgrade(srv.local_addr(), &own).0.status, 101);
    assert_eq!(status(&srv, "Origin: https://evil.example\r\n"), 403);
    assert_eq!(
        status(&srv, "Origin: http://localhost:9999\r\n"),
        403,
        "another port"
    );
    assert_eq!(status(&srv, "Origin: null\r\n"), 403);
    assert_eq!(srv.stats().rejected_handshakes, 3);
    srv.stop();
}

/// The attack: a page on another site opening a connection with the user's cached Basic
/// credentials. It is refused before authentication runs.
#[test]
fn an_unlisted_origin_with_valid_credentials_is_refused_before_auth() {
    let checked = Arc::new(AtomicUsize::new(0));
    let c = checked.clone();
    let auth = AuthConfig::new().user("ann", "secret");
    let server = Server::new(config().auth(auth)).on_auth(move |_, _, _| {
        c.fetch_add(1, Ordering::SeqCst);
        false
    });
    let srv = start(&server, Mode::Async);
    let basic = base64::engine::general_purpose::STANDARD.encode("ann:secret");
    let creds = format!("Authorization: Basic {basic}\r\n");
    let evil = format!("{creds}Origin: https://evil.example\r\n");
    assert_eq!(status(&srv, &evil), 403);
    let own = format!("{creds}Origin: http://localhost\r\n");
    assert_eq!(
        raw_upgrade(srv.local_addr(), &upgrade_request("/", &own))
            .0
            .status,
        101
    );
    let stranger = format!(
        "Authorization: Basic {}\r\nOrigin: https://evil.example\r\n",
        basic_of("joe:x")
    );
    assert_eq!(status(&srv, &stranger), 403);
    assert_eq!(
        checked.load(Ordering::SeqCst),
        0,
        "the auth hook never ran for refused origins"
    );
    srv.stop();
}

fn basic_of(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[test]
fn an_allow_list_and_any() {
    let policy = OriginPolicy::only(["https://app.example"]).allow_missing(false);
    let server = Server::new(config().origins(policy));
    let srv = start(&server, Mode::Async);
    let app = upgrade_request("/", "Origin: https://app.example\r\n");
    assert_eq!(raw_upgrade(srv.local_addr(), &app).0.status, 101);
    assert_eq!(
        status(&srv, "Origin: http://localhost\r\n"),
        403,
        "not even the own host"
    );
    assert_eq!(status(&srv, ""), 403, "Origin required");
    srv.stop();

    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    let server = Server::new(config().origins(OriginPolicy::any())).on_handshake(move |req| {
        s2.lock().unwrap().push(req.header("origin").map(str::to_string));
        Ok(Accept::new())
    });
    let srv = start(&server, Mode::Async);
    let any = upgrade_request("/", "Origin: https://anything.example\r\n");
    assert_eq!(raw_upgrade(srv.local_addr(), &any).0.status, 101);
    assert_eq!(
        seen.lock().unwrap().as_slice(),
        [Some("https://anything.example".to_string())],
        "the handshake hook still sees Origin"
    );
    srv.stop();
}
