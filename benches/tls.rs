//! Throughput over TLS against plain TCP, in the same run: an in-process inline echo server,
//! one tungstenite client (over rustls for wss), round trips of 16 B and 1 MiB messages.
//!
//! `cargo bench --bench tls` prints messages/s and MiB/s for each, and the TLS/plain ratio.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use syncws::{Connection, InlineHandler, Server, ServerConfig, ServerHandle, TlsConfig};
use tungstenite::{Message, WebSocket};

struct Echo;

impl InlineHandler for Echo {
    fn on_binary(&self, conn: &Connection, data: &[u8]) {
        let _ = conn.send_binary(data);
    }
}

trait Stream: Read + Write {}
impl<T: Read + Write> Stream for T {}

fn client(
    h: &ServerHandle,
    tls: Option<&rustls::pki_types::CertificateDer<'static>>,
) -> WebSocket<Box<dyn Stream>> {
    let tcp = TcpStream::connect(h.local_addr()).expect("connect");
    tcp.set_nodelay(true).expect("nodelay");
    let (url, stream): (String, Box<dyn Stream>) = match tls {
        Some(cert) => {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(cert.clone()).expect("root");
            let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
            let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
            let conn = rustls::ClientConnection::new(Arc::new(cfg), name).expect("client");
            (
                format!("wss://localhost:{}/", h.local_addr().port()),
                Box::new(rustls::StreamOwned::new(conn, tcp)),
            )
        }
        None => (format!("ws://{}/", h.local_addr()), Box::new(tcp)),
    };
    let cfg = tungstenite::protocol::WebSocketConfig::default()
        .max_message_size(Some(64 << 20))
        .max_frame_size(Some(64 << 20));
    tungstenite::client::client_with_config(url, stream, Some(cfg))
        .expect("handshake")
        .0
}

/// Round trips of `size`-byte messages for about `secs`: (messages/s, MiB/s).
fn run(ws: &mut WebSocket<Box<dyn Stream>>, size: usize, secs: f64) -> (f64, f64) {
    let payload = vec![0x5a; size];
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed().as_secs_f64() < secs {
        ws.send(Message::binary(payload.clone())).expect("send");
        match ws.read().expect("read") {
            Message::Binary(b) => assert_eq!(b.len(), size),
            other => panic!("unexpected {other:?}"),
        }
        n += 1;
    }
    let t = start.elapsed().as_secs_f64();
    (n as f64 / t, (n as f64 * size as f64) / t / (1 << 20) as f64)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("syncws-tls-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("cert");
    std::fs::write(dir.join("c.pem"), ck.cert.pem()).expect("write");
    std::fs::write(dir.join("k.pem"), ck.key_pair.serialize_pem()).expect("write");
    let cert = ck.cert.der().clone();
    let cfg = ServerConfig::new(([127, 0, 0, 1], 0)).close_timeout(Duration::from_secs(1));
    let plain = Server::new(cfg.clone()).start_inline(Echo).expect("plain");
    let tls = Server::new(cfg)
        .tls(TlsConfig::new(dir.join("c.pem"), dir.join("k.pem")))
        .start_inline(Echo)
        .expect("tls");
    let mut wp = client(&plain, None);
    let mut wt = client(&tls, Some(&cert));
    println!(
        "{:<10} {:>14} {:>14} {:>10}",
        "size", "plain msg/s", "tls msg/s", "tls/plain"
    );
    for (size, secs) in [(16usize, 2.0), (1 << 20, 3.0)] {
        // Alternate A B A B and keep the better of each, to damp noise on a shared machine.
        let mut best = [(0.0f64, 0.0f64); 2];
        for _ in 0..2 {
            for (i, ws) in [&mut wp, &mut wt].into_iter().enumerate() {
                let r = run(ws, size, secs / 2.0);
                if r.0 > best[i].0 {
                    best[i] = r;
                }
            }
        }
        println!(
            "{:<10} {:>14.0} {:>14.0} {:>10.2}   ({:.1} vs {:.1} MiB/s)",
            size,
            best[0].0,
            best[1].0,
            best[1].0 / best[0].0,
            best[0].1,
            best[1].1
        );
    }
    drop((wp, wt));
    plain.stop();
    tls.stop();
    let _ = std::fs::remove_dir_all(&dir);
}
