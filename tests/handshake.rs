//! The HTTP upgrade: refused requests and their statuses, the plain-HTTP and handshake hooks,
//! subprotocols, what a connection remembers of its request, and the handshake timeout.

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::*;
use syncws::{Accept, HttpResponse, Server};
use syncws_protocol::frame::OpCode;
use tungstenite::client::IntoClientRequest;
use tungstenite::Message;

fn status_of(srv: &TestServer, request: &str) -> RawResponse {
    http_exchange(srv.local_addr(), request.as_bytes())
}

#[test]
fn bad_upgrade_requests_get_their_status() {
    let server = Server::new(config().max_handshake_bytes(1024).max_headers(16));
    let srv = start(&server, Mode::Async);

    let post = upgrade_request("/", "").replacen("GET", "POST", 1);
    let r = status_of(&srv, &post);
    assert_eq!(r.status, 405, "{}", r.head);
    assert_eq!(r.header("Allow").as_deref(), Some("GET"));

    let no_upgrade = upgrade_request("/", "").replace("Upgrade: websocket\r\n", "");
    let r = status_of(&srv, &no_upgrade);
    assert_eq!(r.status, 426, "missing Upgrade: {}", r.head);

    let bad_version = upgrade_request("/", "").replace("Version: 13", "Version: 8");
    let r = status_of(&srv, &bad_version);
    assert_eq!(r.status, 426, "{}", r.head);
    assert_eq!(r.header("Sec-WebSocket-Version").as_deref(), Some("13"));

    let no_version = upgrade_request("/", "").replace("Sec-WebSocket-Version: 13\r\n", "");
    assert_eq!(status_of(&srv, &no_version).status, 426);

    let bad_key = upgrade_request("/", "").replace(KEY, "not-base64-of-16-bytes");
    assert_eq!(status_of(&srv, &bad_key).status, 400);

    let short_key = upgrade_request("/", "").replace(KEY, "c2hvcnQ=");
    assert_eq!(status_of(&srv, &short_key).status, 400);

    let no_key = upgrade_request("/", "").replace(&format!("Sec-WebSocket-Key: {KEY}\r\n"), "");
    assert_eq!(status_of(&srv, &no_key).status, 400);

    let no_host = upgrade_request("/", "").replace("Host: localhost\r\n", "");
    assert_eq!(status_of(&srv, &no_host).status, 400);

    let no_connection = upgrade_request("/", "").replace("Connection: Upgrade\r\n", "");
    assert_eq!(status_of(&srv, &no_connection).status, 400);

    let garbage = "\x16\x03\x01 this is not HTTP\r\n\r\n";
    assert_eq!(status_of(&srv, garbage).status, 400);

    let big = upgrade_request("/", &format!("X-Padding: {}\r\n", "p".repeat(3000)));
    let r = status_of(&srv, &big);
    assert_eq!(r.status, 431, "oversized head: {}", r.head);

    let many: String = (0..40).map(|i| format!("X-H{i}: v\r\n")).collect();
    let r = status_of(&srv, &upgrade_request("/", &many));
    assert_eq!(r.status, 431, "too many headers: {}", r.head);

    let plain = "GET /index.html HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let r = status_of(&srv, plain);
    assert_eq!(r.status, 426, "plain GET without an HTTP hook: {}", r.head);

    // None of these reached the handler, and the server still upgrades good requests.
    assert!(srv.events.try_recv().is_err());
    let (mut ws, _conn) = connect_pair(&srv, "/");
    ws.send(Message::text("still fine")).unwrap();
    assert_eq!(read_text(&mut ws), "still fine");
    assert!(srv.stats().rejected_handshakes >= 13, "{:?}", srv.stats());
    drop(ws);
    srv.stop();
}

#[test]
fn http_hook_serves_plain_requests() {
    let server = Server::new(config()).on_http(|req| {
        if req.path() == "/" {
            HttpResponse::html(format!("<h1>hello {}</h1>", req.query().unwrap_or("")))
        } else {
            HttpResponse::text(404, "nope\n")
        }
    });
    let srv = start(&server, Mode::Inline);
    let r = status_of(&srv, "GET /?who=you HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.status, 200, "{}", r.head);
    assert_eq!(r.body, b"<h1>hello who=you</h1>");
    assert!(r.header("Content-Type").unwrap().starts_with("text/html"));
    assert_eq!(r.header("Content-Length").as_deref(), Some("22"));
    let r = status_of(&srv, "GET /missing HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.status, 404);
    // HEAD gets the head only.
    let r = status_of(&srv, "HEAD / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
    // WebSocket upgrades still work next to the hook.
    let (mut ws, _c) = connect_pair(&srv, "/");
    ws.send(Message::text("ws")).unwrap();
    assert_eq!(read_text(&mut ws), "ws");
    drop(ws);
    srv.stop();
}

#[test]
fn handshake_hook_rejects_and_chooses_a_subprotocol() {
    let server = Server::new(config()).on_handshake(|req| {
        if req.path() == "/forbidden" {
            return Err(HttpResponse::text(403, "go away\n"));
        }
        let mut a = Accept::new().header("X-Server", "syncws-test");
        if req.protocols.iter().any(|p| p == "chat") {
            a = a.protocol("chat");
        }
        Ok(a)
    });
    for mode in [Mode::Async, Mode::Inline] {
        let srv = start(&server, mode);

        let r = status_of(&srv, &upgrade_request("/forbidden", ""));
        assert_eq!(r.status, 403, "{mode:?}");
        assert_eq!(r.body, b"go away\n");
        // tungstenite sees the refusal as an HTTP error with the status.
        let url = srv.url("/forbidden");
        match tungstenite::client(url, tcp(srv.local_addr())) {
            Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(resp))) => {
                assert_eq!(resp.status().as_u16(), 403)
            }
            Err(e) => panic!("{mode:?}: unexpected error {e}"),
            Ok(_) => panic!("{mode:?}: upgrade should have been refused"),
        }

        let mut req = srv.url("/room/7?user=ann&x=1").into_client_request().unwrap();
        req.headers_mut()
            .insert("Sec-WebSocket-Protocol", "superchat, chat".parse().unwrap());
        req.headers_mut()
            .insert("X-Custom", "custom value".parse().unwrap());
        let (mut ws, resp) = tungstenite::client(req, tcp(srv.local_addr())).unwrap();
        assert_eq!(
            resp.headers()
                .get("Sec-WebSocket-Protocol")
                .unwrap()
                .to_str()
                .unwrap(),
            "chat"
        );
        assert_eq!(
            resp.headers().get("X-Server").unwrap().to_str().unwrap(),
            "syncws-test"
        );
        let conn = srv.expect_connect();
        assert_eq!(conn.protocol(), Some("chat"), "{mode:?}");
        assert_eq!(conn.path(), "/room/7");
        assert_eq!(conn.query(), Some("user=ann&x=1"));
        assert_eq!(conn.target(), "/room/7?user=ann&x=1");
        assert_eq!(conn.header("x-custom"), Some("custom value"));
        assert!(conn.headers().iter().any(|(n, _)| n.eq_ignore_ascii_case("host")));
        assert_eq!(conn.peer_addr(), ws.get_ref().local_addr().unwrap());
        ws.send(Message::text("hi")).unwrap();
        assert_eq!(read_text(&mut ws), "hi");

        // No acceptable offer: no subprotocol header, connection still upgraded.
        let (r, _raw) = raw_upgrade(
            srv.local_addr(),
            &upgrade_request("/", "Sec-WebSocket-Protocol: other\r\n"),
        );
        assert_eq!(r.status, 101);
        assert_eq!(r.header("Sec-WebSocket-Protocol"), None);
        drop(ws);
        srv.stop();
    }
}

#[test]
fn handshake_hook_cannot_pick_an_unoffered_protocol() {
    let server = Server::new(config()).on_handshake(|_| Ok(Accept::new().protocol("never-offered")));
    let srv = start(&server, Mode::Async);
    let mut raw = raw_connect(srv.local_addr(), "/");
    let conn = srv.expect_connect();
    assert_eq!(conn.protocol(), None);
    raw.send(true, OpCode::Text, b"ok");
    assert_eq!(raw.read_frame().payload, b"ok");
    drop(raw);
    srv.stop();
}

#[test]
fn panicking_hooks_answer_500() {
    let server = Server::new(config())
        .on_handshake(|_| panic!("hook bug"))
        .on_http(|_| panic!("page bug"));
    let srv = start(&server, Mode::Inline);
    assert_eq!(status_of(&srv, &upgrade_request("/", "")).status, 500);
    assert_eq!(status_of(&srv, "GET / HTTP/1.1\r\nHost: x\r\n\r\n").status, 500);
    srv.stop();
}

#[test]
fn frames_right_after_the_request_are_not_lost() {
    let server = Server::new(config());
    let srv = start(&server, Mode::Async);
    let mut s = tcp(srv.local_addr());
    let mut bytes = upgrade_request("/", "").into_bytes();
    bytes.extend(frame(true, OpCode::Text, b"eager", true));
    s.write_all(&bytes).unwrap();
    let conn = srv.expect_connect();
    assert_eq!(srv.expect_text(conn.id()), "eager");
    srv.stop();
}

#[test]
fn silent_and_slow_clients_are_dropped_after_the_handshake_timeout() {
    let server = Server::new(config().handshake_timeout(Duration::from_secs(1)));
    let srv = start(&server, Mode::Async);
    let t0 = Instant::now();
    let mut silent = tcp(srv.local_addr());
    let mut half = tcp(srv.local_addr());
    half.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nUpg")
        .unwrap();

    // Meanwhile, a normal client is served.
    let (mut ws, _c) = connect_pair(&srv, "/");
    ws.send(Message::text("served")).unwrap();
    assert_eq!(read_text(&mut ws), "served");

    for (name, s) in [("silent", &mut silent), ("half", &mut half)] {
        let mut b = [0u8; 64];
        match std::io::Read::read(s, &mut b) {
            Ok(0) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            Ok(n) => panic!("{name}: unexpected bytes {:?}", &b[..n]),
            Err(e) => panic!("{name}: not dropped within the read timeout: {e}"),
        }
    }
    let took = t0.elapsed();
    assert!(took >= Duration::from_millis(900), "dropped too early: {took:?}");
    assert!(took < READ_TIMEOUT, "{took:?}");
    // The normal client is unaffected, and new ones still get in.
    ws.send(Message::text("still")).unwrap();
    assert_eq!(read_text(&mut ws), "still");
    let (mut ws2, _c2) = connect_pair(&srv, "/");
    ws2.send(Message::text("new")).unwrap();
    assert_eq!(read_text(&mut ws2), "new");
    drop((ws, ws2));
    srv.stop();
}
