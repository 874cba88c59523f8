//! TLS (wss://) tests: the server certificate is the common fixture's (a CA and a "localhost"
//! certificate it signed, generated once per test process); tests that need other certificates
//! (a chain, a mismatched key, a second identity) generate them with rcgen into a private
//! temporary directory. The client is tungstenite over a rustls client stream that trusts only
//! the certificates a test names.

#![cfg(feature = "tls")]

mod common;

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::tls::*;
use common::*;
use rcgen::KeyPair;
use rustls::pki_types::ServerName;
use syncws::{CloseCode, Error, Server, ServerConfig, TlsConfig};
use tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;
use tungstenite::protocol::CloseFrame;
use tungstenite::Message;

/// The notify modes the TLS tests run in.
const TLS_MODES: [Mode; 2] = [Mode::Async, Mode::Inline];

// ---------------------------------------------------------------------------------------------
// Certificates beyond the fixture
// ---------------------------------------------------------------------------------------------

/// Root CA -> intermediate CA -> leaf for "localhost".
struct Pki {
    root: rcgen::Certificate,
    intermediate: rcgen::Certificate,
    leaf: rcgen::Certificate,
    leaf_key: KeyPair,
}

fn pki() -> Pki {
    let root_key = KeyPair::generate().unwrap();
    let root = ca_params("syncws test root").self_signed(&root_key).unwrap();
    let int_key = KeyPair::generate().unwrap();
    let intermediate = ca_params("syncws test intermediate")
        .signed_by(&int_key, &root, &root_key)
        .unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = localhost_params()
        .signed_by(&leaf_key, &intermediate, &int_key)
        .unwrap();
    Pki {
        root,
        intermediate,
        leaf,
        leaf_key,
    }
}

/// Reads one DER TLV; returns (tag, header length, content).
fn der_tlv(d: &[u8]) -> (u8, usize, &[u8]) {
    let tag = d[0];
    let (len, hl) = if d[1] < 0x80 {
        (d[1] as usize, 2)
    } else {
        let n = (d[1] & 0x7f) as usize;
        let mut l = 0usize;
        for b in &d[2..2 + n] {
            l = (l << 8) | *b as usize;
        }
        (l, 2 + n)
    };
    (tag, hl, &d[hl..hl + len])
}

fn der_encode(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    let n = content.len();
    if n < 0x80 {
        v.push(n as u8);
    } else if n < 0x100 {
        v.extend_from_slice(&[0x81, n as u8]);
    } else {
        v.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]);
    }
    v.extend_from_slice(content);
    v
}

/// Extracts the SEC1 `ECPrivateKey` from an EC PKCS#8 document. With `with_params`, the
/// optional `[0] parameters` (prime256v1) is added as OpenSSL writes it.
fn pkcs8_to_sec1(pkcs8: &[u8], with_params: bool) -> Vec<u8> {
    let (tag, _, outer) = der_tlv(pkcs8);
    assert_eq!(tag, 0x30);
    // version INTEGER, AlgorithmIdentifier SEQUENCE, privateKey OCTET STRING.
    let (t, hl, c) = der_tlv(outer);
    assert_eq!(t, 0x02);
    let rest = &outer[hl + c.len()..];
    let (t, hl, c) = der_tlv(rest);
    assert_eq!(t, 0x30);
    let rest = &rest[hl + c.len()..];
    let (t, _, sec1) = der_tlv(rest);
    assert_eq!(t, 0x04);
    if !with_params {
        return sec1.to_vec();
    }
    // ECPrivateKey ::= SEQUENCE { version, privateKey OCTET STRING, [0] params, [1] pubkey }
    let (t, _, inner) = der_tlv(sec1);
    assert_eq!(t, 0x30);
    let (t, hl, c) = der_tlv(inner);
    assert_eq!(t, 0x02);
    let mut pos = hl + c.len();
    let (t, hl, c) = der_tlv(&inner[pos..]);
    assert_eq!(t, 0x04);
    pos += hl + c.len();
    let (t, _, _) = der_tlv(&inner[pos..]);
    assert_eq!(t, 0xa1, "expected the public key after the private key");
    let prime256v1 = der_encode(0x06, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]);
    let mut body = inner[..pos].to_vec();
    body.extend_from_slice(&der_encode(0xa0, &prime256v1));
    body.extend_from_slice(&inner[pos..]);
    der_encode(0x30, &body)
}

fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut s = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        s.push_str(std::str::from_utf8(line).unwrap());
        s.push('\n');
    }
    s.push_str(&format!("-----END {label}-----\n"));
    s
}

// ---------------------------------------------------------------------------------------------
// Server and client
// ---------------------------------------------------------------------------------------------

fn tls_server_config() -> ServerConfig {
    config().handshake_timeout(Duration::from_secs(1))
}

/// Starts an echoing, recording server with `tls` in `mode`.
fn start_tls(tls: TlsConfig, mode: Mode) -> TestServer {
    start(&Server::new(tls_server_config()).tls(tls), mode)
}

/// Starts a server with `tls` in `mode`, and checks that a client with `trust` connects and gets
/// `text` echoed.
fn assert_serves(tls: TlsConfig, mode: Mode, trust: Arc<rustls::ClientConfig>, text: &str) {
    let srv = start_tls(tls, mode);
    let mut ws = wss(srv.local_addr(), trust);
    srv.expect_connect();
    echo(&mut ws, text);
    // Gone before the stop, which then need not wait for its closing handshake.
    drop(ws);
    srv.stop();
}

/// Starts a server with the fixture's certificate in `mode` and connects a client trusting the
/// fixture's CA; returns both ends.
fn fixture_pair(mode: Mode) -> (TestServer, Wss, syncws::Connection) {
    let srv = start_tls(fixture().server_config(), mode);
    let ws = wss(srv.local_addr(), fixture().client_config());
    let conn = srv.expect_connect();
    (srv, ws, conn)
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[test]
fn echo_over_wss_in_both_modes() {
    assert!(fixture().key_pem.contains("BEGIN PRIVATE KEY"), "PKCS#8 key");
    for mode in TLS_MODES {
        let (srv, mut ws, conn) = fixture_pair(mode);
        for i in 0..20 {
            echo(&mut ws, &format!("{mode:?} message {i}"));
        }
        // Large messages span many TLS records.
        let big = "x".repeat(300_000);
        echo(&mut ws, &big);
        ws.send(Message::binary(vec![7u8; 70_000])).unwrap();
        match read_data(&mut ws) {
            Message::Binary(b) => assert!(b.len() == 70_000 && b.iter().all(|&x| x == 7)),
            other => panic!("{other:?}"),
        }
        assert_eq!(srv.connection_count(), 1);
        assert!(conn.is_open());
        let events = srv.events.clone();
        srv.stop();
        let d = loop {
            match events.recv_timeout(WAIT).expect("no disconnect after the stop") {
                Ev::Disconnect(c, d) if c.id() == conn.id() => break d,
                _ => {}
            }
        };
        assert_eq!(d.code, CloseCode::GOING_AWAY, "{d:?}");
    }
}

/// Messages larger than rustls' default 64 KiB outgoing buffer go out whole, from the
/// dispatch thread, from an inline handler, and from another thread.
#[test]
fn messages_larger_than_the_rustls_buffer() {
    for mode in TLS_MODES {
        let (srv, mut ws, conn) = fixture_pair(mode);
        // From the test thread: the send itself reports a frame cut short.
        let bigger = "z".repeat(1 << 20);
        srv.send_text(&conn.id(), &bigger).expect("send 1 MiB over TLS");
        match read_data(&mut ws) {
            Message::Text(t) => assert!(t.as_str() == bigger, "1 MiB message corrupted"),
            other => panic!("{mode:?}: unexpected {other:?}"),
        }
        // From the handler (dispatch thread or inline).
        let big: String = (0..200_000u32).map(|i| (b'a' + (i % 26) as u8) as char).collect();
        echo(&mut ws, &big);
        echo(&mut ws, "small after big");
        drop(ws);
        srv.stop();
    }
}

#[test]
fn combined_pem_file() {
    let dir = TempDir::new("combined");
    let f = fixture();
    let combined = dir.write("combined.pem", &format!("{}{}", f.cert_pem, f.key_pem));
    // Key first works as well: the certificate is found wherever it is.
    let combined_rev = dir.write("combined-rev.pem", &format!("{}{}", f.key_pem, f.cert_pem));
    for file in [combined, combined_rev] {
        assert_serves(
            TlsConfig::combined(&file),
            Mode::Async,
            f.client_config(),
            "combined",
        );
    }
}

#[test]
fn certificate_with_separate_chain_file() {
    let dir = TempDir::new("chain");
    let p = pki();
    let cert = dir.write("leaf.pem", &p.leaf.pem());
    let key = dir.write("leaf-key.pem", &p.leaf_key.serialize_pem());
    let chain = dir.write("chain.pem", &p.intermediate.pem());
    let trust_root = || client_config(&[p.root.der()]);

    // The client trusts only the root: it needs the intermediate from the server.
    let with_chain = TlsConfig::new(&cert, &key).chain(&chain);
    assert_serves(with_chain, Mode::Async, trust_root(), "through the chain");

    // Control: without the chain file the same client cannot verify the server.
    let srv = start_tls(TlsConfig::new(&cert, &key), Mode::Async);
    let r = try_wss(srv.local_addr(), trust_root());
    assert!(r.is_err(), "connected without the intermediate");
    srv.stop();

    // Chain inside the certificate file (leaf first, then the intermediate).
    let full = dir.write(
        "fullchain.pem",
        &format!("{}{}", p.leaf.pem(), p.intermediate.pem()),
    );
    assert_serves(
        TlsConfig::new(&full, &key),
        Mode::Inline,
        trust_root(),
        "fullchain",
    );
}

#[test]
fn ec_sec1_private_key() {
    let dir = TempDir::new("sec1");
    let f = fixture();
    for (name, with_params) in [("sec1-bare.pem", false), ("sec1-openssl.pem", true)] {
        let sec1 = pkcs8_to_sec1(&f.key_pkcs8_der, with_params);
        let key = dir.write(name, &pem("EC PRIVATE KEY", &sec1));
        assert_serves(
            TlsConfig::new(&f.cert_path, &key),
            Mode::Async,
            f.client_config(),
            name,
        );
    }
}

/// Starts a TLS server bound to an address this test holds, expecting a TLS error: had the
/// server tried to listen before checking the files, the error would be `Error::Bind`.
fn start_err(tls: TlsConfig) -> String {
    let hold = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut cfg = tls_server_config();
    cfg.bind = vec![hold.local_addr().unwrap()];
    let (tx, _rx) = crossbeam_channel::unbounded();
    match Server::new(cfg).tls(tls).start(Recorder { tx, echo: true }) {
        Ok(h) => {
            h.stop();
            panic!("started with a bad TLS configuration");
        }
        Err(Error::Tls(e)) => e.to_string(),
        Err(e) => panic!("expected a TLS error before binding, got: {e}"),
    }
}

fn assert_names(msg: &str, path: &Path) {
    let p = path.display().to_string();
    assert!(msg.contains(&p), "error {msg:?} does not name {p}");
}

#[test]
fn bad_configurations_fail_before_listening() {
    let dir = TempDir::new("bad");
    let f = fixture();
    let (cert, key) = (&f.cert_path, &f.key_path);
    let other = self_signed();
    let other_key = dir.write("other-key.pem", &other.key_pair.serialize_pem());
    let missing = dir.path("does-not-exist.pem");
    let junk = dir.write("junk.pem", "this is not a PEM file\n");

    // Missing certificate file.
    let msg = start_err(TlsConfig::new(&missing, key));
    assert_names(&msg, &missing);
    // Missing key file.
    let msg = start_err(TlsConfig::new(cert, &missing));
    assert_names(&msg, &missing);
    // Missing chain file.
    let msg = start_err(TlsConfig::new(cert, key).chain(&missing));
    assert_names(&msg, &missing);
    // A certificate file with no certificate in it (a key; junk).
    let msg = start_err(TlsConfig::new(key, key));
    assert_names(&msg, key);
    assert!(msg.contains("no certificate"), "{msg}");
    let msg = start_err(TlsConfig::new(&junk, key));
    assert_names(&msg, &junk);
    // A key file with no key in it (a certificate; junk).
    let msg = start_err(TlsConfig::new(cert, cert));
    assert_names(&msg, cert);
    assert!(msg.contains("private key"), "{msg}");
    let msg = start_err(TlsConfig::new(cert, &junk));
    assert_names(&msg, &junk);
    // A key that does not match the certificate.
    let msg = start_err(TlsConfig::new(cert, &other_key));
    assert_names(&msg, &other_key);
    assert_names(&msg, cert);
    assert!(msg.contains("does not match"), "{msg}");

    // The same checks guard reload_tls, and a failed reload keeps the old certificate.
    let srv = start_tls(f.server_config(), Mode::Async);
    match srv.reload_tls(&TlsConfig::new(cert, &other_key)) {
        Err(Error::Tls(e)) => assert_names(&e.to_string(), &other_key),
        other => panic!("reload with a mismatched key: {other:?}"),
    }
    match srv.reload_tls(&TlsConfig::new(&missing, key)) {
        Err(Error::Tls(e)) => assert_names(&e.to_string(), &missing),
        other => panic!("reload with a missing file: {other:?}"),
    }
    let mut ws = wss(srv.local_addr(), f.client_config());
    srv.expect_connect();
    echo(&mut ws, "old certificate still in force");
    srv.stop();
}

/// Reads from a raw socket until EOF or an error (reset); panics on a read timeout.
fn wait_dropped(mut s: TcpStream) {
    let mut buf = [0u8; 4096];
    loop {
        match std::io::Read::read(&mut s, &mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                panic!("the server did not drop the connection within {READ_TIMEOUT:?}")
            }
            Err(_) => return,
        }
    }
}

#[test]
fn bad_handshakes_are_dropped_and_good_clients_unaffected() {
    let srv = start_tls(fixture().server_config(), Mode::Async);
    let addr = srv.local_addr();
    let mut good = wss(addr, fixture().client_config());
    let good_id = srv.expect_connect().id();

    // 1. Random non-TLS bytes (first byte not a TLS record type).
    let mut garbage = tcp(addr);
    let mut x: u32 = 0x9e37_79b9 ^ std::process::id();
    let bytes: Vec<u8> = (0..600)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            if i == 0 {
                0x47
            } else {
                x as u8
            }
        })
        .collect();
    garbage.write_all(&bytes).unwrap();
    // 2. A client that connects and sends nothing. The clock starts before the connect, so the
    // server's handshake timer cannot have started earlier.
    let silent_t0 = Instant::now();
    let silent = tcp(addr);
    // 3. A client that stops in the middle of its ClientHello.
    let partial_t0 = Instant::now();
    let mut partial = tcp(addr);
    {
        let name = ServerName::try_from("localhost").unwrap();
        let mut cc = rustls::ClientConnection::new(fixture().client_config(), name).unwrap();
        let mut hello = Vec::new();
        while cc.wants_write() {
            cc.write_tls(&mut hello).unwrap();
        }
        assert!(hello.len() > 20);
        partial.write_all(&hello[..hello.len() / 2]).unwrap();
    }
    // 4. A plain ws:// client on the wss:// port.
    let mut plain = tcp(addr);
    plain
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\r\n")
        .unwrap();

    // Meanwhile the good client works, and a new one can connect.
    echo(&mut good, "while garbage is pending");
    let mut good2 = wss(addr, fixture().client_config());
    let good2_id = srv.expect_connect().id();
    echo(&mut good2, "new client during garbage");

    wait_dropped(garbage);
    wait_dropped(plain);
    wait_dropped(silent);
    let silent_after = silent_t0.elapsed();
    wait_dropped(partial);
    let partial_after = partial_t0.elapsed();
    // Those that wait are dropped by the handshake timeout (1 s), not before (the margin is
    // for a timer that rounds).
    assert!(
        silent_after >= Duration::from_millis(900),
        "silent client dropped after {silent_after:?}"
    );
    assert!(
        partial_after >= Duration::from_millis(900),
        "half-handshake client dropped after {partial_after:?}"
    );

    echo(&mut good, "after the garbage");
    echo(&mut good2, "after the garbage too");
    assert_eq!(srv.connection_count(), 2);
    // The only events are the good clients' messages: the garbage made no connection events.
    let others: Vec<Ev> = srv
        .events
        .try_iter()
        .filter(|ev| !matches!(ev, Ev::Text(c, _) if c.id() == good_id || c.id() == good2_id))
        .collect();
    assert!(others.is_empty(), "garbage produced events: {others:?}");
    srv.stop();
}

#[test]
fn send_from_another_thread_to_an_idle_client() {
    for mode in TLS_MODES {
        let (srv, mut ws, conn) = fixture_pair(mode);
        let id = conn.id();
        let messenger = srv.messenger();
        let (sent_tx, sent_rx) = crossbeam_channel::unbounded();
        let pusher = std::thread::spawn(move || {
            for i in 0..3 {
                // Let the connection thread block in its read of the quiet client (a pause, not
                // a condition: the test is about a connection that is idle).
                std::thread::sleep(Duration::from_millis(300));
                let at = Instant::now();
                messenger.send_text(&id, &format!("push {i}")).expect("send_text");
                sent_tx.send(at).unwrap();
            }
        });
        for i in 0..3 {
            let msg = ws.read().expect("pushed message");
            let arrived = Instant::now();
            assert_eq!(msg, Message::text(format!("push {i}")));
            let sent = sent_rx.recv_timeout(WAIT).unwrap();
            let delay = arrived.saturating_duration_since(sent);
            // Milliseconds expected; far below the client's read timeout, so a message that
            // waits for the next read wake-up of the server is caught.
            assert!(
                delay < Duration::from_secs(2),
                "{mode:?}: message {i} took {delay:?} to reach an idle TLS client"
            );
        }
        pusher.join().unwrap();
        drop(ws);
        srv.stop();
    }
}

#[test]
fn server_initiated_close_over_tls() {
    for mode in TLS_MODES {
        let (srv, mut ws, conn) = fixture_pair(mode);
        echo(&mut ws, "hi");
        srv.close(&conn.id(), CloseCode(4001), "server says bye").unwrap();
        let frame = read_close(&mut ws).expect("no close frame");
        assert_eq!(frame.code, WsCloseCode::from(4001));
        assert_eq!(frame.reason.as_str(), "server says bye");
        drain_until_closed(&mut ws);
        let d = srv.expect_disconnect(conn.id());
        assert_eq!(d.code, CloseCode(4001), "{d:?}");
        assert_eq!(d.reason, "server says bye");
        assert!(d.clean, "{d:?}");
        wait_until("unregistered", || srv.connection_count() == 0);
        srv.stop();
    }
}

#[test]
fn client_initiated_close_over_tls() {
    for mode in TLS_MODES {
        let (srv, mut ws, conn) = fixture_pair(mode);
        echo(&mut ws, "hi");
        ws.close(Some(CloseFrame {
            code: WsCloseCode::Normal,
            reason: "client done".into(),
        }))
        .unwrap();
        let frame = read_close(&mut ws).expect("no close reply");
        assert_eq!(frame.code, WsCloseCode::Normal);
        drain_until_closed(&mut ws);
        let d = srv.expect_disconnect(conn.id());
        assert_eq!(d.code, CloseCode::NORMAL, "{d:?}");
        assert_eq!(d.reason, "client done");
        assert!(d.clean, "{d:?}");
        srv.stop();
    }
}

#[test]
fn reload_tls_swaps_the_certificate_for_new_connections() {
    let dir = TempDir::new("reload");
    let first = fixture();
    let second = self_signed();
    let cert2 = dir.write("cert2.pem", &second.cert.pem());
    let key2 = dir.write("key2.pem", &second.key_pair.serialize_pem());
    let trust_second = || client_config(&[second.cert.der()]);
    let srv = start_tls(first.server_config(), Mode::Async);
    let addr = srv.local_addr();

    let mut old = wss(addr, first.client_config());
    srv.expect_connect();
    echo(&mut old, "before reload");
    assert!(
        try_wss(addr, trust_second()).is_err(),
        "a client trusting only the second certificate connected before the reload"
    );

    srv.reload_tls(&TlsConfig::new(&cert2, &key2)).expect("reload");
    let mut new = wss(addr, trust_second());
    srv.expect_connect();
    echo(&mut new, "after reload");
    assert!(
        try_wss(addr, first.client_config()).is_err(),
        "the old certificate is still served to new connections"
    );
    // The connection opened before the reload keeps its session.
    echo(&mut old, "old session still fine");

    // reload_tls on a server without TLS is an error.
    let plain = start(&Server::new(config()), Mode::Async);
    assert!(matches!(
        plain.reload_tls(&TlsConfig::new(&cert2, &key2)),
        Err(Error::Tls(_))
    ));
    plain.stop();
    srv.stop();
}
