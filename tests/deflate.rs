//! permessage-deflate through the server: negotiation in the handshake (and the hook's veto),
//! compressed messages both ways in every notify mode and with either context setting, a
//! compressed broadcast, bad compressed input, and decompression bombs (closed with 1009, the
//! memory they cost measured from the server's counters and this process's RSS).
//!
//! The client is a raw socket speaking the protocol crate's sans-IO deflate; the independent
//! clients (Python `websockets`, Node `ws`, Chromium) are in `tests/interop`, and Autobahn's
//! sections 12 and 13 run against `echo --deflate` in CI.

mod common;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use syncws::{Accept, DeflateConfig, DeflateParams, Server};
use syncws_protocol::deflate::{negotiate, parse_offers, Compressor, Inflater};
use syncws_protocol::frame::{write_frame, FrameHeader, OpCode};

const MIB: usize = 1 << 20;

/// A client that negotiated (or not) permessage-deflate, reading and writing frames itself.
struct Client {
    sock: std::net::TcpStream,
    buf: Vec<u8>,
    /// Compresses what the client sends (with context takeover unless the server asked).
    comp: Option<Compressor>,
    inflater: Option<Inflater>,
}

/// A server message as it came off the wire.
#[derive(Debug)]
struct Received {
    opcode: OpCode,
    compressed: bool,
    /// The payload's length on the wire.
    wire_len: usize,
    payload: Vec<u8>,
}

impl Client {
    /// Upgrades with `offer` (`None`: no `Sec-WebSocket-Extensions`); returns the client and
    /// the server's answer.
    fn connect(addr: SocketAddr, path: &str, offer: Option<&str>) -> (Self, Option<String>) {
        let extra = offer.map_or(String::new(), |o| format!("Sec-WebSocket-Extensions: {o}\r\n"));
        let (resp, raw) = raw_upgrade(addr, &upgrade_request(path, &extra));
        assert_eq!(resp.status, 101, "{}", resp.head);
        let answer = resp.header("Sec-WebSocket-Extensions");
        // The client accepts the server's answer as a client would: parse it as parameters.
        let params = answer.as_deref().map(|a| {
            let all = DeflateConfig::default().server_no_context_takeover(false);
            negotiate(&parse_offers([a]), &all).expect("the answer parses as permessage-deflate")
        });
        let sock = raw.sock;
        sock.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        let client = Self {
            sock,
            buf: Vec::new(),
            // From the client's side the roles swap: it compresses with the "client" window,
            // and inflates the server's.
            comp: params.map(|p| Compressor::new(6, p.client_max_window_bits, p.client_no_context_takeover)),
            inflater: params.map(|p| Inflater::new(p.server_max_window_bits, p.server_no_context_takeover)),
        };
        (client, answer)
    }

    /// Sends one message, compressed if agreed, in frames of `frag` payload bytes.
    fn send(&mut self, op: OpCode, data: &[u8], frag: usize) {
        let (payload, rsv1) = match &mut self.comp {
            Some(c) => {
                let mut out = Vec::new();
                c.compress(data, &mut out);
                (out, true)
            }
            None => (data.to_vec(), false),
        };
        self.send_frames(op, &payload, rsv1, frag);
    }

    /// [`Client::send`] in one frame, returning the write error instead of panicking.
    fn try_send(&mut self, op: OpCode, data: &[u8]) -> std::io::Result<()> {
        let mut payload = Vec::new();
        let c = self.comp.as_mut().expect("compression agreed");
        c.compress(data, &mut payload);
        let mut wire = Vec::new();
        let mut h = FrameHeader::new(op, payload.len() as u64, Some([1, 2, 3, 4]));
        h.rsv1 = true;
        write_frame(&mut wire, h, &payload);
        self.sock.write_all(&wire)
    }

    fn send_frames(&mut self, op: OpCode, payload: &[u8], rsv1: bool, frag: usize) {
        let chunks: Vec<&[u8]> = if payload.is_empty() {
            vec![&[]]
        } else {
            payload.chunks(frag.max(1)).collect()
        };
        let mut wire = Vec::new();
        for (i, chunk) in chunks.iter().enumerate() {
            let opcode = if i == 0 { op } else { OpCode::Continuation };
            let mut h = FrameHeader::new(opcode, chunk.len() as u64, Some([1, 2, 3, 4]));
            h.fin = i + 1 == chunks.len();
            h.rsv1 = rsv1 && i == 0;
            write_frame(&mut wire, h, chunk);
        }
        self.sock.write_all(&wire).unwrap();
    }

    /// Reads one frame (the server never fragments) and inflates it if compressed; `None` on
    /// EOF.
    fn read(&mut self) -> Option<Received> {
        loop {
            if let Some((h, hl)) = FrameHeader::parse(&self.buf).expect("bad frame header") {
                let total = hl + h.payload_len as usize;
                if self.buf.len() >= total {
                    let raw = self.buf[hl..total].to_vec();
                    let wire_len = raw.len();
                    self.buf.drain(..total);
                    assert!(h.fin, "the server fragmented a message");
                    assert!(!h.rsv1 || !h.opcode.is_control(), "a compressed control frame");
                    let payload = if h.rsv1 {
                        let inf = self.inflater.as_mut().expect("RSV1 without negotiation");
                        let mut out = Vec::new();
                        inf.inflate(&raw, &mut out, 1 << 30).expect("inflate");
                        inf.finish(&mut out, 1 << 30).expect("inflate");
                        out
                    } else {
                        raw
                    };
                    return Some(Received {
                        opcode: h.opcode,
                        compressed: h.rsv1,
                        wire_len,
                        payload,
                    });
                }
            }
            let mut chunk = [0u8; 64 << 10];
            match self.sock.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return None,
                Err(e) => panic!("client read: {e}"),
            }
        }
    }

    /// Reads until the close frame; its code.
    fn close_code(&mut self) -> u16 {
        loop {
            match self.read() {
                Some(m) if m.opcode == OpCode::Close => {
                    return u16::from_be_bytes([m.payload[0], m.payload[1]]);
                }
                Some(_) => continue,
                None => panic!("connection ended without a close frame"),
            }
        }
    }
}

/// What the handshake hook saw: the path and the parameters it was offered.
type Seen = Arc<Mutex<Vec<(String, Option<DeflateParams>)>>>;

fn deflate_server(cfg: DeflateConfig) -> Server {
    Server::new(config().deflate(Some(cfg)))
}

#[test]
fn the_handshake_answers_exactly_what_was_agreed_and_the_hook_can_veto() {
    let seen: Seen = Arc::default();
    let log = seen.clone();
    let server = deflate_server(DeflateConfig::default()).on_handshake(move |req| {
        log.lock().unwrap().push((req.path().to_string(), req.deflate));
        Ok(if req.path() == "/plain" {
            Accept::new().without_compression()
        } else {
            Accept::new()
        })
    });
    let ts = start(&server, Mode::Async);
    let addr = ts.local_addr();
    let cases: &[(&str, Option<&str>, Option<&str>)] = &[
        ("/", None, None),
        (
            "/",
            Some("permessage-deflate"),
            Some("permessage-deflate; server_no_context_takeover"),
        ),
        (
            "/",
            Some(
                "permessage-deflate; server_max_window_bits=8, permessage-deflate; server_max_window_bits=10",
            ),
            Some("permessage-deflate; server_no_context_takeover; server_max_window_bits=10"),
        ),
        ("/", Some("permessage-deflate; server_max_window_bits=8"), None),
        ("/", Some("permessage-deflate; nonsense"), None),
        ("/", Some("x-webkit-deflate-frame"), None),
        ("/plain", Some("permessage-deflate"), None),
    ];
    for (path, offer, want) in cases {
        let (mut c, answer) = Client::connect(addr, path, *offer);
        assert_eq!(answer.as_deref(), *want, "offer {offer:?} on {path}");
        // Whatever was agreed, messages flow.
        c.send(OpCode::Text, "hello ".repeat(500).as_bytes(), 1 << 20);
        let m = c.read().expect("echo");
        assert_eq!(m.payload, "hello ".repeat(500).as_bytes());
        assert_eq!(m.compressed, want.is_some(), "offer {offer:?}");
    }
    let seen = seen.lock().unwrap();
    assert!(seen[1].1.is_some_and(|p| p.server_no_context_takeover));
    assert_eq!(seen[0].1, None);
    assert!(
        seen[6].1.is_some(),
        "the hook sees what would be agreed before it vetoes"
    );
}

#[test]
fn compression_is_off_by_default_and_rsv1_then_fails_with_1002() {
    let ts = start(&Server::new(config()), Mode::Inline);
    let (mut c, answer) = Client::connect(ts.local_addr(), "/", Some("permessage-deflate"));
    assert_eq!(answer, None);
    c.send_frames(
        OpCode::Text,
        &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00],
        true,
        100,
    );
    assert_eq!(c.close_code(), 1002);
}

/// Sends messages of several sizes and kinds, single and fragmented, and checks the echoes
/// (and that long ones came back compressed, short ones not).
fn round_trips(c: &mut Client, threshold: usize) {
    let json = |i: usize| {
        format!(
            "{{\"id\":{i},\"name\":\"user{i}\",\"tags\":[\"a\",\"b\"],\"text\":\"{}\"}}",
            "héllo ✓ ".repeat(i % 50)
        )
    };
    for i in 0..60 {
        let (op, data): (OpCode, Vec<u8>) = match i % 4 {
            0 => (OpCode::Text, json(i).into_bytes()),
            1 => (OpCode::Binary, vec![i as u8; i * 997]),
            2 => (OpCode::Text, json(i).repeat(40).into_bytes()),
            _ => (OpCode::Binary, (0..i * 300).map(|k| (k * 7 + i) as u8).collect()),
        };
        c.send(op, &data, if i % 3 == 0 { 7 } else { 1 << 20 });
        let m = c.read().expect("echo");
        assert_eq!((m.opcode, m.payload.len()), (op, data.len()), "message {i}");
        assert!(m.payload == data, "message {i} differs");
        assert_eq!(
            m.compressed,
            data.len() >= threshold,
            "message {i} of {} bytes",
            data.len()
        );
    }
}

#[test]
fn compressed_messages_round_trip_in_every_mode_and_context_setting() {
    let configs = [
        DeflateConfig::default().threshold(100),
        DeflateConfig::default()
            .threshold(0)
            .server_no_context_takeover(false)
            .server_max_window_bits(9)
            .client_max_window_bits(10),
        DeflateConfig::default()
            .threshold(1)
            .client_no_context_takeover(true)
            .level(1),
    ];
    for mode in MODES {
        for cfg in configs {
            let ts = start(&deflate_server(cfg), mode);
            for offer in [
                "permessage-deflate; client_max_window_bits",
                "permessage-deflate; server_no_context_takeover",
            ] {
                let (mut c, answer) = Client::connect(ts.local_addr(), "/", Some(offer));
                assert!(answer.is_some(), "{mode:?} {cfg:?}");
                round_trips(&mut c, cfg.threshold);
            }
        }
    }
}

#[test]
fn a_broadcast_reaches_compressed_and_plain_clients_alike() {
    // With server context takeover on, a client that asks for none shares the compressed
    // frame, one that does not gets its own compression, and one without the extension the
    // plain frame.
    let cfg = DeflateConfig::default()
        .server_no_context_takeover(false)
        .threshold(64);
    let ts = start(&deflate_server(cfg), Mode::Async);
    let addr = ts.local_addr();
    let mut clients = [
        Client::connect(addr, "/", Some("permessage-deflate; server_no_context_takeover")).0,
        Client::connect(addr, "/", Some("permessage-deflate; server_no_context_takeover")).0,
        Client::connect(addr, "/", Some("permessage-deflate")).0,
        Client::connect(addr, "/", None).0,
    ];
    ts.wait_connections(4);
    let text = (0..300)
        .map(|i| format!("broadcast #{i} to every kind of client ✓ "))
        .collect::<String>();
    let mut sizes = vec![Vec::new(); 4];
    for round in 0..3 {
        assert_eq!(ts.messenger().broadcast_text(&text, None), 4);
        for (i, c) in clients.iter_mut().enumerate() {
            let m = c.read().expect("broadcast");
            assert_eq!(m.payload, text.as_bytes(), "client {i} round {round}");
            assert_eq!(m.compressed, i < 3, "client {i}");
            sizes[i].push(m.wire_len);
        }
    }
    // Compressed alone, each round costs the same; with the window kept, the repeats are
    // mostly references to the first.
    assert!(
        sizes[0].iter().all(|&n| n == sizes[0][0]) && sizes[0] == sizes[1],
        "{sizes:?}"
    );
    assert!(sizes[2][1] * 2 < sizes[2][0], "context takeover: {sizes:?}");
    assert_eq!(sizes[3][0], text.len());
}

#[test]
fn corrupt_compressed_data_and_bad_inflated_text_fail_with_1007() {
    let ts = start(&deflate_server(DeflateConfig::default()), Mode::Async);
    let (mut c, _) = Client::connect(ts.local_addr(), "/", Some("permessage-deflate"));
    c.send_frames(OpCode::Binary, &[0xff, 0xfe, 0xfd, 0xfc], true, 100);
    assert_eq!(c.close_code(), 1007);
    let (mut c, _) = Client::connect(ts.local_addr(), "/", Some("permessage-deflate"));
    c.send(OpCode::Text, b"valid so far \xff\xfe not UTF-8", 5);
    assert_eq!(c.close_code(), 1007);
    // RSV1 on a continuation frame is a protocol error.
    let (mut c, _) = Client::connect(ts.local_addr(), "/", Some("permessage-deflate"));
    c.send_frames(OpCode::Text, b"abc", false, 100);
    let mut cont = Vec::new();
    let mut h = FrameHeader::new(OpCode::Continuation, 1, Some([1, 2, 3, 4]));
    h.rsv1 = true;
    write_frame(&mut cont, h, b"d");
    c.sock.write_all(&cont).unwrap();
    assert_eq!(c.close_code(), 1002);
}

/// A bomb: `inflated` zero bytes, compressed (about 1,000 to 1).
fn bomb(inflated: usize) -> Vec<u8> {
    let mut out = Vec::new();
    Compressor::new(9, 15, true).compress(&vec![0u8; inflated], &mut out);
    out
}

/// `n` clients each send `wire` (one compressed binary message); each must be closed with
/// 1009. Returns the peak of the server's inbound counter and the RSS growth, in MiB.
fn bombard(server: &Server, n: usize, wire: &[u8]) -> (f64, f64) {
    let ts = start(server, Mode::Inline);
    let addr = ts.local_addr();
    let rss0 = rss_kib();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let (stop, m, rss) = (stop.clone(), ts.messenger(), Arc::new(Mutex::new((0u64, rss0))));
        let out = rss.clone();
        let t = std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let mut p = rss.lock().unwrap();
                p.0 = p.0.max(m.stats().inbound_held_bytes);
                p.1 = p.1.max(rss_kib());
                drop(p);
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        (t, out)
    };
    let mut clients: Vec<Client> = (0..n)
        .map(|_| Client::connect(addr, "/", Some("permessage-deflate")).0)
        .collect();
    let t0 = Instant::now();
    for c in &mut clients {
        c.send_frames(OpCode::Binary, wire, true, 1 << 20);
    }
    for (i, c) in clients.iter_mut().enumerate() {
        assert_eq!(c.close_code(), 1009, "bomber {i}");
    }
    assert!(t0.elapsed() < LONG_WAIT);
    // Everyone else carries on.
    let (mut ok, _) = Client::connect(addr, "/", Some("permessage-deflate"));
    ok.send(OpCode::Text, b"still here", 1 << 20);
    assert_eq!(ok.read().unwrap().payload, b"still here");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    sampler.0.join().unwrap();
    let (inbound, rss) = *sampler.1.lock().unwrap();
    (
        inbound as f64 / MIB as f64,
        rss.saturating_sub(rss0) as f64 / 1024.0,
    )
}

#[test]
fn decompression_bombs_are_closed_with_1009_having_held_about_the_limit() {
    // 20 clients, each a 64 KiB frame that inflates to 64 MiB (1.25 GiB together), against a
    // 1 MiB message limit: the server holds at most about 20 x 1 MiB.
    let wire = bomb(64 * MIB);
    assert!(wire.len() < 128 << 10, "{}", wire.len());
    let server = deflate_server(DeflateConfig::default());
    let server = Server::new(server.config().clone().max_message_size(MIB as u64));
    let (inbound, rss) = bombard(&server, 20, &wire);
    eprintln!("20 bombs of 64 MiB, limit 1 MiB: peak inbound {inbound:.2} MiB, RSS +{rss:.1} MiB");
    assert!(inbound <= 20.0 * 1.6, "peak inbound {inbound:.2} MiB");
    assert!(rss < 200.0, "RSS grew by {rss:.1} MiB");
}

#[test]
fn the_inbound_budget_bounds_inflating_below_the_message_limit() {
    // The default 64 MiB message limit, but a 8 MiB inbound budget for the whole server: 20
    // bombs together may not take more than about the budget.
    let wire = bomb(64 * MIB);
    let cfg = config()
        .deflate(Some(DeflateConfig::default()))
        .inbound_budget(8 * MIB);
    let (inbound, rss) = bombard(&Server::new(cfg), 20, &wire);
    eprintln!("20 bombs of 64 MiB, budget 8 MiB: peak inbound {inbound:.2} MiB, RSS +{rss:.1} MiB");
    assert!(inbound <= 8.0 + 20.0 * 0.2, "peak inbound {inbound:.2} MiB");
    assert!(rss < 200.0, "RSS grew by {rss:.1} MiB");
}

#[test]
fn with_context_takeover_a_slow_reader_never_blocks_other_senders() {
    // The connection's own thread (inline echo) waits when its client stops reading; it must
    // not do so holding the connection's compressor, which every other sender needs.
    let cfg = DeflateConfig::default()
        .server_no_context_takeover(false)
        .threshold(0);
    let server = Server::new(
        config()
            .deflate(Some(cfg))
            .max_send_queue(64 << 10)
            .write_timeout(Duration::from_secs(20)),
    );
    let ts = start(&server, Mode::Inline);
    let addr = ts.local_addr();
    let sock = tcp_small_rcvbuf(addr, 4 << 10);
    let offer = "Sec-WebSocket-Extensions: permessage-deflate\r\n";
    let (resp, raw) = raw_upgrade_on(sock, &upgrade_request("/", offer));
    assert!(resp.header("Sec-WebSocket-Extensions").is_some());
    let conn = ts.expect_connect();
    let mut c = Client {
        sock: raw.sock,
        buf: Vec::new(),
        comp: Some(Compressor::new(1, 15, false)),
        inflater: None,
    };
    // Incompressible messages (each different: the window would find repeats), never read
    // back: the echoes fill the socket and the queue.
    let writer = std::thread::spawn(move || {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..1000 {
            let noise: Vec<u8> = (0..40 << 10)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    (x >> 32) as u8
                })
                .collect();
            if c.try_send(OpCode::Binary, &noise).is_err() {
                break; // the server stopped, or gave up on us
            }
        }
    });
    wait_until("the echoes fill the queue", || conn.queued_bytes() > 16 << 10);
    std::thread::sleep(Duration::from_millis(200)); // the reader is now waiting for room
    let t0 = Instant::now();
    let _ = conn.send_text(&"from another thread ".repeat(100));
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "a send waited {:?}",
        t0.elapsed()
    );
    assert!(
        conn.is_open(),
        "the slow client is still served (back-pressure, not a close)"
    );
    ts.stop();
    drop(conn); // the last handle to the server's socket: the blocked writer now fails
    let _ = writer.join();
}
