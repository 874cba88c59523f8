//! TLS (wss://) tests: certificates are generated at test time with rcgen and written as PEM
//! files into a private temporary directory; the client is tungstenite over a rustls client
//! stream that trusts only the generated certificate (or CA).

#![cfg(feature = "tls")]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use rcgen::{BasicConstraints, CertificateParams, CertifiedKey, DnType, IsCa, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, ServerName};
use syncws::{
    CloseCode, Connection, ConnectionId, Disconnect, Error, Handler, InlineHandler, Server, ServerConfig,
    ServerHandle, TlsConfig,
};
use tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;
use tungstenite::protocol::CloseFrame;
use tungstenite::Message;

/// Generous upper bound for anything we wait for (loaded CI machine).
const WAIT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// Temporary files and certificates
// ---------------------------------------------------------------------------------------------

/// A private temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!(
            "syncws-tls-test-{}-{name}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        Self(dir)
    }

    fn write(&self, file: &str, contents: &str) -> PathBuf {
        let p = self.0.join(file);
        std::fs::write(&p, contents).expect("write temp file");
        p
    }

    fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A self-signed certificate for "localhost" (ECDSA P-256, PKCS#8 key).
fn self_signed() -> CertifiedKey {
    rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("rcgen")
}

fn ca_params(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p
}

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
    let mut lp = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    lp.distinguished_name.push(DnType::CommonName, "localhost");
    let leaf = lp.signed_by(&leaf_key, &intermediate, &int_key).unwrap();
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
// Server side
// ---------------------------------------------------------------------------------------------

#[derive(Debug)]
enum Ev {
    Connect(Connection),
    Disconnect(ConnectionId, Disconnect),
}

/// Asynchronous-mode echo handler that reports connects and disconnects.
struct Echo(Sender<Ev>);

impl Handler for Echo {
    fn on_connect(&mut self, conn: &Connection) {
        let _ = self.0.send(Ev::Connect(conn.clone()));
    }
    fn on_text(&mut self, conn: &Connection, text: String) {
        let _ = conn.send_text(&text);
    }
    fn on_binary(&mut self, conn: &Connection, data: Vec<u8>) {
        let _ = conn.send_binary(&data);
    }
    fn on_disconnect(&mut self, conn: &Connection, info: Disconnect) {
        let _ = self.0.send(Ev::Disconnect(conn.id(), info));
    }
}

/// The same for no-sync mode.
struct InlineEcho(Sender<Ev>);

impl InlineHandler for InlineEcho {
    fn on_connect(&self, conn: &Connection) {
        let _ = self.0.send(Ev::Connect(conn.clone()));
    }
    fn on_text(&self, conn: &Connection, text: &str) {
        let _ = conn.send_text(text);
    }
    fn on_binary(&self, conn: &Connection, data: &[u8]) {
        let _ = conn.send_binary(data);
    }
    fn on_disconnect(&self, conn: &Connection, info: Disconnect) {
        let _ = self.0.send(Ev::Disconnect(conn.id(), info));
    }
}

#[derive(Clone, Copy, Debug)]
enum Mode {
    Async,
    NoSync,
}

fn config() -> ServerConfig {
    ServerConfig::new(([127, 0, 0, 1], 0))
        .close_timeout(Duration::from_secs(1))
        .handshake_timeout(Duration::from_secs(1))
}

fn start_tls(tls: TlsConfig, mode: Mode) -> (ServerHandle, Receiver<Ev>) {
    let (tx, rx) = crossbeam_channel::unbounded();
    let server = Server::new(config()).tls(tls);
    let handle = match mode {
        Mode::Async => server.start(Echo(tx)),
        Mode::NoSync => server.start_inline(InlineEcho(tx)),
    }
    .expect("start with TLS");
    (handle, rx)
}

fn wait_connect(rx: &Receiver<Ev>) -> Connection {
    match rx.recv_timeout(WAIT).expect("no connect event") {
        Ev::Connect(c) => c,
        other => panic!("expected a connect event, got {other:?}"),
    }
}

fn wait_disconnect(rx: &Receiver<Ev>) -> (ConnectionId, Disconnect) {
    match rx.recv_timeout(WAIT).expect("no disconnect event") {
        Ev::Disconnect(id, d) => (id, d),
        other => panic!("expected a disconnect event, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Client side
// ---------------------------------------------------------------------------------------------

type TlsStream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;
type Wss = tungstenite::WebSocket<TlsStream>;

fn client_config(trusted: &[&CertificateDer<'_>]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in trusted {
        roots.add((*c).clone().into_owned()).expect("add root");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// Connects a wss client trusting only `trusted`; `Err` with the reason when it cannot.
fn try_wss(addr: SocketAddr, trusted: &[&CertificateDer<'_>]) -> Result<Wss, String> {
    let tcp = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(WAIT)).unwrap();
    tcp.set_write_timeout(Some(WAIT)).unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(client_config(trusted), name).unwrap();
    let tls = rustls::StreamOwned::new(conn, tcp);
    tungstenite::client(format!("wss://localhost:{}/", addr.port()), tls)
        .map(|(ws, _)| ws)
        .map_err(|e| e.to_string())
}

fn wss(addr: SocketAddr, trusted: &[&CertificateDer<'_>]) -> Wss {
    try_wss(addr, trusted).expect("wss client could not connect")
}

/// Sends `text` and expects it back.
fn echo(ws: &mut Wss, text: &str) {
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

/// Reads until the connection is closed; returns the close frame seen, if any.
fn read_until_closed(ws: &mut Wss) -> Option<CloseFrame> {
    let mut frame = None;
    let end = Instant::now() + WAIT;
    loop {
        assert!(Instant::now() < end, "connection not closed");
        match ws.read() {
            Ok(Message::Close(f)) => frame = f,
            Ok(_) => {}
            Err(tungstenite::Error::ConnectionClosed) => return frame,
            Err(tungstenite::Error::AlreadyClosed) => return frame,
            // Some peers reset after the close handshake; the close frame is what counts.
            Err(tungstenite::Error::Io(_)) if frame.is_some() => return frame,
            Err(e) => panic!("error while waiting for the close: {e}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[test]
fn echo_over_wss_in_both_modes() {
    let dir = TempDir::new("echo");
    let ck = self_signed();
    let cert = dir.write("cert.pem", &ck.cert.pem());
    let key = dir.write("key.pem", &ck.key_pair.serialize_pem());
    assert!(
        ck.key_pair.serialize_pem().contains("BEGIN PRIVATE KEY"),
        "PKCS#8 key"
    );
    for mode in [Mode::Async, Mode::NoSync] {
        let (server, rx) = start_tls(TlsConfig::new(&cert, &key), mode);
        let mut ws = wss(server.local_addr(), &[ck.cert.der()]);
        let conn = wait_connect(&rx);
        for i in 0..20 {
            echo(&mut ws, &format!("{mode:?} message {i}"));
        }
        // Large messages span many TLS records.
        let big = "x".repeat(300_000);
        echo(&mut ws, &big);
        ws.send(Message::binary(vec![7u8; 70_000])).unwrap();
        match ws.read().unwrap() {
            Message::Binary(b) => assert!(b.len() == 70_000 && b.iter().all(|&x| x == 7)),
            other => panic!("{other:?}"),
        }
        assert_eq!(server.connection_count(), 1);
        assert!(conn.is_open());
        server.stop();
        let (id, d) = wait_disconnect(&rx);
        assert_eq!(id, conn.id());
        assert_eq!(d.code, CloseCode::GOING_AWAY, "{d:?}");
    }
}

/// Messages larger than rustls' default 64 KiB outgoing buffer go out whole, from the
/// dispatch thread, from an inline handler, and from another thread.
#[test]
fn messages_larger_than_the_rustls_buffer() {
    let dir = TempDir::new("large");
    let ck = self_signed();
    let cert = dir.write("cert.pem", &ck.cert.pem());
    let key = dir.write("key.pem", &ck.key_pair.serialize_pem());
    for mode in [Mode::Async, Mode::NoSync] {
        let (server, rx) = start_tls(TlsConfig::new(&cert, &key), mode);
        let mut ws = wss(server.local_addr(), &[ck.cert.der()]);
        let conn = wait_connect(&rx);
        // From the test thread: the send itself reports a frame cut short.
        let bigger = "z".repeat(1 << 20);
        server
            .send_text(&conn.id(), &bigger)
            .expect("send 1 MiB over TLS");
        match ws.read().expect("read 1 MiB") {
            Message::Text(t) => assert!(t.as_str() == bigger, "1 MiB message corrupted"),
            other => panic!("{mode:?}: unexpected {other:?}"),
        }
        // From the handler (dispatch thread or inline).
        let big: String = (0..200_000u32).map(|i| (b'a' + (i % 26) as u8) as char).collect();
        echo(&mut ws, &big);
        echo(&mut ws, "small after big");
        server.stop();
    }
}

#[test]
fn combined_pem_file() {
    let dir = TempDir::new("combined");
    let ck = self_signed();
    let combined = dir.write(
        "combined.pem",
        &format!("{}{}", ck.cert.pem(), ck.key_pair.serialize_pem()),
    );
    // Key first works as well: the certificate is found wherever it is.
    let combined_rev = dir.write(
        "combined-rev.pem",
        &format!("{}{}", ck.key_pair.serialize_pem(), ck.cert.pem()),
    );
    for file in [combined, combined_rev] {
        let (server, rx) = start_tls(TlsConfig::combined(&file), Mode::Async);
        let mut ws = wss(server.local_addr(), &[ck.cert.der()]);
        wait_connect(&rx);
        echo(&mut ws, "combined");
        server.stop();
    }
}

#[test]
fn certificate_with_separate_chain_file() {
    let dir = TempDir::new("chain");
    let p = pki();
    let cert = dir.write("leaf.pem", &p.leaf.pem());
    let key = dir.write("leaf-key.pem", &p.leaf_key.serialize_pem());
    let chain = dir.write("chain.pem", &p.intermediate.pem());

    // The client trusts only the root: it needs the intermediate from the server.
    let (server, rx) = start_tls(TlsConfig::new(&cert, &key).chain(&chain), Mode::Async);
    let mut ws = wss(server.local_addr(), &[p.root.der()]);
    wait_connect(&rx);
    echo(&mut ws, "through the chain");
    server.stop();

    // Control: without the chain file the same client cannot verify the server.
    let (server, _rx) = start_tls(TlsConfig::new(&cert, &key), Mode::Async);
    let r = try_wss(server.local_addr(), &[p.root.der()]);
    assert!(r.is_err(), "connected without the intermediate");
    server.stop();

    // Chain inside the certificate file (leaf first, then the intermediate).
    let full = dir.write(
        "fullchain.pem",
        &format!("{}{}", p.leaf.pem(), p.intermediate.pem()),
    );
    let (server, rx) = start_tls(TlsConfig::new(&full, &key), Mode::NoSync);
    let mut ws = wss(server.local_addr(), &[p.root.der()]);
    wait_connect(&rx);
    echo(&mut ws, "fullchain");
    server.stop();
}

#[test]
fn ec_sec1_private_key() {
    let dir = TempDir::new("sec1");
    let ck = self_signed();
    let cert = dir.write("cert.pem", &ck.cert.pem());
    let pkcs8 = ck.key_pair.serialize_der();
    for (name, with_params) in [("sec1-bare.pem", false), ("sec1-openssl.pem", true)] {
        let sec1 = pkcs8_to_sec1(&pkcs8, with_params);
        let key = dir.write(name, &pem("EC PRIVATE KEY", &sec1));
        let (server, rx) = start_tls(TlsConfig::new(&cert, &key), Mode::Async);
        let mut ws = wss(server.local_addr(), &[ck.cert.der()]);
        wait_connect(&rx);
        echo(&mut ws, name);
        server.stop();
    }
}

/// Starts a TLS server bound to an address this test holds, expecting a TLS error: had the
/// server tried to listen before checking the files, the error would be `Error::Bind`.
fn start_err(tls: TlsConfig) -> String {
    let hold = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut cfg = config();
    cfg.bind = vec![hold.local_addr().unwrap()];
    let (tx, _rx) = crossbeam_channel::unbounded();
    match Server::new(cfg).tls(tls).start(Echo(tx)) {
        Ok(h) => {
            h.stop();
            panic!("started with a bad TLS configuration");
        }
        Err(Error::Tls(msg)) => msg,
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
    let ck = self_signed();
    let other = self_signed();
    let cert = dir.write("cert.pem", &ck.cert.pem());
    let key = dir.write("key.pem", &ck.key_pair.serialize_pem());
    let other_key = dir.write("other-key.pem", &other.key_pair.serialize_pem());
    let missing = dir.path("does-not-exist.pem");
    let junk = dir.write("junk.pem", "this is not a PEM file\n");

    // Missing certificate file.
    let msg = start_err(TlsConfig::new(&missing, &key));
    assert_names(&msg, &missing);
    // Missing key file.
    let msg = start_err(TlsConfig::new(&cert, &missing));
    assert_names(&msg, &missing);
    // Missing chain file.
    let msg = start_err(TlsConfig::new(&cert, &key).chain(&missing));
    assert_names(&msg, &missing);
    // A certificate file with no certificate in it (a key; junk).
    let msg = start_err(TlsConfig::new(&key, &key));
    assert_names(&msg, &key);
    assert!(msg.contains("no certificate"), "{msg}");
    let msg = start_err(TlsConfig::new(&junk, &key));
    assert_names(&msg, &junk);
    // A key file with no key in it (a certificate; junk).
    let msg = start_err(TlsConfig::new(&cert, &cert));
    assert_names(&msg, &cert);
    assert!(msg.contains("private key"), "{msg}");
    let msg = start_err(TlsConfig::new(&cert, &junk));
    assert_names(&msg, &junk);
    // A key that does not match the certificate.
    let msg = start_err(TlsConfig::new(&cert, &other_key));
    assert_names(&msg, &other_key);
    assert_names(&msg, &cert);
    assert!(msg.contains("does not match"), "{msg}");

    // The same checks guard reload_tls, and a failed reload keeps the old certificate.
    let (server, rx) = start_tls(TlsConfig::new(&cert, &key), Mode::Async);
    match server.reload_tls(&TlsConfig::new(&cert, &other_key)) {
        Err(Error::Tls(msg)) => assert_names(&msg, &other_key),
        other => panic!("reload with a mismatched key: {other:?}"),
    }
    match server.reload_tls(&TlsConfig::new(&missing, &key)) {
        Err(Error::Tls(msg)) => assert_names(&msg, &missing),
        other => panic!("reload with a missing file: {other:?}"),
    }
    let mut ws = wss(server.local_addr(), &[ck.cert.der()]);
    wait_connect(&rx);
    echo(&mut ws, "old certificate still in force");
    server.stop();
}

/// Reads from a raw socket until EOF or an error (reset); panics on a read timeout.
fn wait_dropped(mut s: TcpStream) -> Duration {
    let t0 = Instant::now();
    s.set_read_timeout(Some(WAIT)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return t0.elapsed(),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                panic!("the server did not drop the connection within {WAIT:?}")
            }
            Err(_) => return t0.elapsed(),
        }
    }
}

#[test]
fn bad_handshakes_are_dropped_and_good_clients_unaffected() {
    let dir = TempDir::new("garbage");
    let ck = self_signed();
    let cert = dir.write("cert.pem", &ck.cert.pem());
    let key = dir.write("key.pem", &ck.key_pair.serialize_pem());
    let (server, rx) = start_tls(TlsConfig::new(&cert, &key), Mode::Async);
    let addr = server.local_addr();
    let mut good = wss(addr, &[ck.cert.der()]);
    wait_connect(&rx);

    // 1. Random non-TLS bytes (first byte not a TLS record type).
    let mut garbage = TcpStream::connect(addr).unwrap();
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
    // 2. A client that connects and sends nothing.
    let silent = TcpStream::connect(addr).unwrap();
    let silent_t0 = Instant::now();
    // 3. A client that stops in the middle of its ClientHello.
    let mut partial = TcpStream::connect(addr).unwrap();
    let partial_t0 = Instant::now();
    {
        let name = ServerName::try_from("localhost").unwrap();
        let mut cc = rustls::ClientConnection::new(client_config(&[ck.cert.der()]), name).unwrap();
        let mut hello = Vec::new();
        while cc.wants_write() {
            cc.write_tls(&mut hello).unwrap();
        }
        assert!(hello.len() > 20);
        partial.write_all(&hello[..hello.len() / 2]).unwrap();
    }
    // 4. A plain ws:// client on the wss:// port.
    let mut plain = TcpStream::connect(addr).unwrap();
    plain
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\r\n")
        .unwrap();

    // Meanwhile the good client works, and a new one can connect.
    echo(&mut good, "while garbage is pending");
    let mut good2 = wss(addr, &[ck.cert.der()]);
    wait_connect(&rx);
    echo(&mut good2, "new client during garbage");

    wait_dropped(garbage);
    wait_dropped(plain);
    wait_dropped(silent);
    let silent_after = silent_t0.elapsed();
    wait_dropped(partial);
    let partial_after = partial_t0.elapsed();
    // Those that wait are dropped by the handshake timeout (1 s), not before.
    assert!(
        silent_after >= Duration::from_millis(800),
        "silent client dropped after {silent_after:?}"
    );
    assert!(
        partial_after >= Duration::from_millis(800),
        "half-handshake client dropped after {partial_after:?}"
    );

    echo(&mut good, "after the garbage");
    echo(&mut good2, "after the garbage too");
    assert_eq!(server.connection_count(), 2);
    assert!(rx.try_recv().is_err(), "garbage produced connection events");
    server.stop();
}

#[test]
fn send_from_another_thread_to_an_idle_client() {
    let dir = TempDir::new("push");
    let ck = self_signed();
    let cert = dir.write("cert.pem", &ck.cert.pem());
    let key = dir.write("key.pem", &ck.key_pair.serialize_pem());
    for mode in [Mode::Async, Mode::NoSync] {
        let (server, rx) = start_tls(TlsConfig::new(&cert, &key), mode);
        let mut ws = wss(server.local_addr(), &[ck.cert.der()]);
        let id = wait_connect(&rx).id();
        let messenger = server.messenger();
        let (sent_tx, sent_rx) = crossbeam_channel::unbounded();
        let pusher = std::thread::spawn(move || {
            for i in 0..3 {
                // Let the connection thread block in its read of the quiet client.
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
            assert!(
                delay < Duration::from_secs(2),
                "{mode:?}: message {i} took {delay:?} to reach an idle TLS client"
            );
        }
        pusher.join().unwrap();
        server.stop();
    }
}

#[test]
fn server_initiated_close_over_tls() {
    let dir = TempDir::new("sclose");
    let ck = self_signed();
    let cert = dir.write("cert.pem", &ck.cert.pem());
    let key = dir.write("key.pem", &ck.key_pair.serialize_pem());
    for mode in [Mode::Async, Mode::NoSync] {
        let (server, rx) = start_tls(TlsConfig::new(&cert, &key), mode);
        let mut ws = wss(server.local_addr(), &[ck.cert.der()]);
        let conn = wait_connect(&rx);
        echo(&mut ws, "hi");
        server
            .close(&conn.id(), CloseCode(4001), "server says bye")
            .unwrap();
        let frame = read_until_closed(&mut ws).expect("no close frame");
        assert_eq!(frame.code, WsCloseCode::from(4001));
        assert_eq!(frame.reason.as_str(), "server says bye");
        let (id, d) = wait_disconnect(&rx);
        assert_eq!(id, conn.id());
        assert_eq!(d.code, CloseCode(4001), "{d:?}");
        assert_eq!(d.reason, "server says bye");
        assert!(d.clean, "{d:?}");
        assert_eq!(server.connection_count(), 0);
        server.stop();
    }
}

#[test]
fn client_initiated_close_over_tls() {
    let dir = TempDir::new("cclose");
    let ck = self_signed();
    let cert = dir.write("cert.pem", &ck.cert.pem());
    let key = dir.write("key.pem", &ck.key_pair.serialize_pem());
    for mode in [Mode::Async, Mode::NoSync] {
        let (server, rx) = start_tls(TlsConfig::new(&cert, &key), mode);
        let mut ws = wss(server.local_addr(), &[ck.cert.der()]);
        let conn = wait_connect(&rx);
        echo(&mut ws, "hi");
        ws.close(Some(CloseFrame {
            code: WsCloseCode::Normal,
            reason: "client done".into(),
        }))
        .unwrap();
        let frame = read_until_closed(&mut ws).expect("no close reply");
        assert_eq!(frame.code, WsCloseCode::Normal);
        let (id, d) = wait_disconnect(&rx);
        assert_eq!(id, conn.id());
        assert_eq!(d.code, CloseCode::NORMAL, "{d:?}");
        assert_eq!(d.reason, "client done");
        assert!(d.clean, "{d:?}");
        server.stop();
    }
}

#[test]
fn reload_tls_swaps_the_certificate_for_new_connections() {
    let dir = TempDir::new("reload");
    let first = self_signed();
    let second = self_signed();
    let cert1 = dir.write("cert1.pem", &first.cert.pem());
    let key1 = dir.write("key1.pem", &first.key_pair.serialize_pem());
    let cert2 = dir.write("cert2.pem", &second.cert.pem());
    let key2 = dir.write("key2.pem", &second.key_pair.serialize_pem());
    let (server, rx) = start_tls(TlsConfig::new(&cert1, &key1), Mode::Async);
    let addr = server.local_addr();

    let mut old = wss(addr, &[first.cert.der()]);
    wait_connect(&rx);
    echo(&mut old, "before reload");
    assert!(
        try_wss(addr, &[second.cert.der()]).is_err(),
        "a client trusting only the second certificate connected before the reload"
    );

    server.reload_tls(&TlsConfig::new(&cert2, &key2)).expect("reload");
    let mut new = wss(addr, &[second.cert.der()]);
    wait_connect(&rx);
    echo(&mut new, "after reload");
    assert!(
        try_wss(addr, &[first.cert.der()]).is_err(),
        "the old certificate is still served to new connections"
    );
    // The connection opened before the reload keeps its session.
    echo(&mut old, "old session still fine");

    // reload_tls on a server without TLS is an error.
    let (tx, _rx2) = crossbeam_channel::unbounded();
    let plain = Server::new(config()).start(Echo(tx)).unwrap();
    assert!(matches!(
        plain.reload_tls(&TlsConfig::new(&cert2, &key2)),
        Err(Error::Tls(_))
    ));
    plain.stop();
    server.stop();
}
