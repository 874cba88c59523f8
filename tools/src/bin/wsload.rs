//! WebSocket load generator. It is its own client: the upgrade request and the masked frames
//! are written by hand with `syncws-protocol`, so it measures any RFC 6455 echo server
//! without a client library in the way.
//!
//! ```text
//! cargo run --release -p syncws-tools --bin wsload -- --url ws://127.0.0.1:9001/ [--conns N] [--size BYTES]
//!     [--mode pingpong|pipeline] [--window W] [--duration SECS] [--binary]
//!     [--payload pattern|json] [--deflate] [--accept-masked]
//! ```
//!
//! - `pingpong`: one thread per connection sends a message, waits for the echo, repeats.
//! - `pipeline`: a writer and a reader thread per connection; up to `--window` messages are in
//!   flight on each connection.
//!
//! Every payload is derived from its sequence number (the number in hex, then a rotating
//! alphabet), text payloads are ASCII; every echoed byte is checked against what was sent, in
//! order. `--payload json` sends realistic JSON text instead (`tools/src/json.rs`: records
//! with ids, names, timestamps and nested objects, exactly `--size` bytes; up to 1,024
//! different messages made in advance, each carrying its sequence number), checked byte for
//! byte too. `--deflate` offers permessage-deflate (`permessage-deflate;
//! client_max_window_bits`, as browsers do), fails the connection if the server does not
//! accept it, compresses every message sent (RSV1, level 6, with the context takeover the
//! server allows) and inflates what comes back.
//!
//! `--accept-masked` is for a byte-echo "server" that does no WebSocket work at all (the
//! floor of `benches/compare.rs`): it sends back the client's own frames, masked. A client
//! must reject a masked frame (RFC 6455 §5.1); with this flag the frames read must instead be
//! masked, and are unmasked and checked here, at the client's cost. Against a real server
//! (unmasked frames) every echo is then an error.
//!
//! Connections are all opened (one after the other) before the clock starts. Sending stops
//! `--duration` after the start on every connection at once (however late its thread first
//! ran); messages still in flight are then received and counted.
//!
//! Output, one line of `key=value` pairs:
//!
//! ```text
//! wsload mode=pipeline conns=8 size=1024 binary=1 window=64 secs=5.012 msgs=812345
//!     msgs_per_s=162078 mib_per_s=158.28 p50_us=2412.3 p99_us=5810.0 max_us=9120.4 errors=0
//! ```
//!
//! `msgs` counts echoes received and verified; `mib_per_s` is echoed payload (one direction);
//! latency is from just before a message is written to when its echo has been read. The exit
//! status is 1 when `errors` is not 0. With `--payload json` the line ends with `payload=json`;
//! with `--deflate` also with `deflate=1` and `wire_out_ratio` / `wire_in_ratio`: the bytes
//! written to / read from the sockets (frame headers included) over the payload bytes echoed.
//!
//! `benches/compare.rs` includes this file as a module and drives the same code.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use syncws_protocol::deflate::Compressor;
use syncws_protocol::frame::{FrameHeader, OpCode, MAX_HEADER_LEN};
use syncws_protocol::handshake::accept_key;
use syncws_protocol::mask::apply_mask;
use syncws_protocol::{Decoder, Limits, Message, Role};

#[allow(dead_code)] // some helpers serve only `wsscale`
#[path = "../json.rs"]
pub(crate) mod json;
#[allow(dead_code)]
#[path = "../pmd.rs"]
mod pmd;

/// How a connection drives its traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// One message in flight per connection.
    PingPong,
    /// Up to `window` messages in flight per connection (writer + reader thread).
    Pipeline,
}

/// What to run.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// `host:port` to connect to.
    pub(crate) addr: String,
    /// Request target (path and query).
    pub(crate) path: String,
    pub(crate) conns: usize,
    pub(crate) size: usize,
    pub(crate) mode: Mode,
    pub(crate) window: usize,
    pub(crate) duration: Duration,
    pub(crate) binary: bool,
    /// JSON-like payloads (`--payload json`) instead of the pattern.
    pub(crate) json: bool,
    /// Offer permessage-deflate and compress what is sent (`--deflate`).
    pub(crate) deflate: bool,
    /// Expect the frames read to be masked, as a byte echo returns them (`--accept-masked`).
    pub(crate) accept_masked: bool,
}

impl Config {
    /// A configuration for `url` (`ws://HOST:PORT/path`) with the defaults of the command line.
    pub(crate) fn new(url: &str) -> Result<Self, String> {
        let (addr, path) = parse_url(url)?;
        Ok(Self {
            addr,
            path,
            conns: 1,
            size: 16,
            mode: Mode::PingPong,
            window: 1,
            duration: Duration::from_secs(5),
            binary: false,
            json: false,
            deflate: false,
            accept_masked: false,
        })
    }
}

/// Splits `ws://HOST:PORT/path` into `HOST:PORT` and `/path`.
pub(crate) fn parse_url(url: &str) -> Result<(String, String), String> {
    let rest = url
        .strip_prefix("ws://")
        .ok_or_else(|| format!("{url}: only ws:// URLs are supported"))?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if host.is_empty() {
        return Err(format!("{url}: no host"));
    }
    let host = if host.contains(':') {
        host.to_string()
    } else {
        format!("{host}:80")
    };
    Ok((host, path.to_string()))
}

/// The result of a run.
#[derive(Debug, Clone, Default)]
pub(crate) struct Summary {
    pub(crate) mode: String,
    pub(crate) conns: usize,
    pub(crate) size: usize,
    pub(crate) binary: bool,
    pub(crate) window: usize,
    /// From the start signal to the last echo received.
    pub(crate) secs: f64,
    /// Echoes received and verified.
    pub(crate) msgs: u64,
    pub(crate) p50_us: f64,
    pub(crate) p99_us: f64,
    pub(crate) max_us: f64,
    /// Connection failures, I/O errors, wrong or corrupted echoes.
    pub(crate) errors: u64,
    pub(crate) json: bool,
    pub(crate) deflate: bool,
    /// Bytes written to the sockets once connected (frames, headers included).
    pub(crate) wire_out: u64,
    /// Bytes read from the sockets once connected.
    pub(crate) wire_in: u64,
}

impl Summary {
    pub(crate) fn msgs_per_s(&self) -> f64 {
        if self.secs > 0.0 {
            self.msgs as f64 / self.secs
        } else {
            0.0
        }
    }

    pub(crate) fn mib_per_s(&self) -> f64 {
        self.msgs_per_s() * self.size as f64 / (1024.0 * 1024.0)
    }

    /// Wire bytes over payload bytes, one direction (`wire_out` or `wire_in`).
    pub(crate) fn wire_ratio(&self, wire: u64) -> f64 {
        wire as f64 / (self.msgs.max(1) * self.size.max(1) as u64) as f64
    }

    /// The one-line, `key=value` report.
    pub(crate) fn line(&self) -> String {
        let mut extra = String::new();
        if self.json {
            extra.push_str(" payload=json");
        }
        if self.deflate {
            extra.push_str(&format!(
                " deflate=1 wire_out_ratio={:.3} wire_in_ratio={:.3}",
                self.wire_ratio(self.wire_out),
                self.wire_ratio(self.wire_in)
            ));
        }
        format!(
            "wsload mode={} conns={} size={} binary={} window={} secs={:.3} msgs={} msgs_per_s={:.0} \
             mib_per_s={:.2} p50_us={:.1} p99_us={:.1} max_us={:.1} errors={}{extra}",
            self.mode,
            self.conns,
            self.size,
            u8::from(self.binary),
            self.window,
            self.secs,
            self.msgs,
            self.msgs_per_s(),
            self.mib_per_s(),
            self.p50_us,
            self.p99_us,
            self.max_us,
            self.errors
        )
    }
}

/// The value at quantile `q` (0..=1) of sorted `v`.
pub(crate) fn quantile(v: &[u64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let i = ((v.len() - 1) as f64 * q).round() as usize;
    v[i.min(v.len() - 1)] as f64
}

// ---------------------------------------------------------------------------------------------
// Payloads

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Payloads keyed by sequence number: the number in hex (its last `size` digits when `size` is
/// below 16), then the alphabet repeated from an offset that depends on the number. ASCII, so
/// also valid text. Or ([`Pattern::json`]) the JSON text of `tools/src/json.rs`.
#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    size: usize,
    /// The alphabet repeated, `size + 64` bytes: any payload tail is one slice of it.
    base: Vec<u8>,
    /// JSON: `ring` distinct messages of `size` bytes, back to back in `base`.
    json: bool,
    ring: usize,
}

/// Most bytes of JSON messages made in advance.
const JSON_RING_BYTES: usize = 8 << 20;
/// Most JSON messages made in advance.
const JSON_RING: usize = 1024;

impl Pattern {
    pub(crate) fn new(size: usize) -> Self {
        let base = (0..size + 64).map(|i| ALPHABET[i % 64]).collect();
        Self {
            size,
            base,
            json: false,
            ring: 0,
        }
    }

    /// JSON-like text of `size` bytes. So that making and checking a message costs the load
    /// generator a copy, not a formatting, up to 1,024 different messages (at most 8 MiB) are
    /// made in advance; message `seq` is the one of `seq` modulo their number with the 16 hex
    /// digits of `seq` itself in its `"seq"` field. With 1 KiB messages that is 1 MiB between
    /// repeats, far beyond a deflate window (32 KiB).
    pub(crate) fn json(size: usize) -> Self {
        let ring = (JSON_RING_BYTES / size.max(1)).clamp(1, JSON_RING);
        let mut base = Vec::with_capacity(ring * size);
        for k in 0..ring {
            json::write(k as u64, size, &mut base);
        }
        Self {
            size,
            base,
            json: true,
            ring,
        }
    }

    /// JSON: the message made in advance for `seq`, and where its hex digits go in it.
    fn json_parts(&self, seq: u64) -> (&[u8], std::ops::Range<usize>) {
        let k = (seq % self.ring as u64) as usize;
        let msg = &self.base[k * self.size..(k + 1) * self.size];
        let hex = json::SEQ_AT.min(self.size)..(json::SEQ_AT + 16).min(self.size);
        (msg, hex)
    }

    fn head(seq: u64, out: &mut [u8; 16]) -> usize {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for (i, b) in out.iter_mut().enumerate() {
            *b = HEX[((seq >> (60 - 4 * i)) & 0xF) as usize];
        }
        16
    }

    fn parts(&self, seq: u64) -> ([u8; 16], std::ops::Range<usize>, &[u8]) {
        let mut hex = [0u8; 16];
        Self::head(seq, &mut hex);
        let h = self.size.min(16);
        let off = (seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58) as usize;
        (hex, 16 - h..16, &self.base[off..off + self.size - h])
    }

    /// Appends the payload of message `seq` to `out`.
    pub(crate) fn write(&self, seq: u64, out: &mut Vec<u8>) {
        if self.json {
            let (msg, hex) = self.json_parts(seq);
            let at = out.len();
            out.extend_from_slice(msg);
            let mut digits = [0u8; 16];
            Self::head(seq, &mut digits);
            out[at + hex.start..at + hex.end].copy_from_slice(&digits[..hex.len()]);
            return;
        }
        let (hex, r, tail) = self.parts(seq);
        out.extend_from_slice(&hex[r]);
        out.extend_from_slice(tail);
    }

    /// Whether `got` is exactly the payload of message `seq`.
    pub(crate) fn check(&self, seq: u64, got: &[u8]) -> bool {
        if self.json {
            let (msg, hex) = self.json_parts(seq);
            let mut digits = [0u8; 16];
            Self::head(seq, &mut digits);
            return got.len() == self.size
                && got[hex.clone()] == digits[..hex.len()]
                && got[..hex.start] == msg[..hex.start]
                && got[hex.end..] == msg[hex.end..];
        }
        let (hex, r, tail) = self.parts(seq);
        let h = r.len();
        got.len() == self.size && got[..h] == hex[r] && &got[h..] == tail
    }
}

// ---------------------------------------------------------------------------------------------
// The client

static SEED: AtomicU64 = AtomicU64::new(0);

fn seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    let n = SEED.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
    (t ^ n ^ u64::from(std::process::id())) | 1
}

/// xorshift64*: masking keys and handshake nonces (not security-relevant here).
#[derive(Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new() -> Self {
        Self(seed())
    }
    pub(crate) fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// The sending half's permessage-deflate: the agreement, and the compressor (made on the
/// first message: a zlib deflate state is a few hundred KiB, and most broadcast clients never
/// send).
#[derive(Debug)]
struct Deflating {
    agreed: pmd::Agreed,
    compressor: Option<Compressor>,
    /// The message before compression.
    raw: Vec<u8>,
}

/// The sending half of a client connection: masked frames, written whole.
#[derive(Debug)]
pub(crate) struct Writer {
    pub(crate) sock: TcpStream,
    rng: Rng,
    buf: Vec<u8>,
    deflate: Option<Deflating>,
    /// Bytes written.
    pub(crate) wire: u64,
}

impl Writer {
    /// Sends one masked frame whose payload is `fill` appended to an empty buffer (a data
    /// frame compressed, with RSV1, when permessage-deflate was agreed).
    pub(crate) fn send_with(
        &mut self,
        op: OpCode,
        len: usize,
        fill: impl FnOnce(&mut Vec<u8>),
    ) -> io::Result<()> {
        let key = (self.rng.next() as u32).to_ne_bytes();
        let mut hdr = [0u8; MAX_HEADER_LEN];
        self.buf.clear();
        match self.deflate.as_mut() {
            Some(d) if matches!(op, OpCode::Text | OpCode::Binary) => {
                d.raw.clear();
                fill(&mut d.raw);
                debug_assert_eq!(d.raw.len(), len);
                // The payload goes after the longest header, then the header before it.
                self.buf.resize(MAX_HEADER_LEN, 0);
                let agreed = d.agreed;
                d.compressor
                    .get_or_insert_with(|| agreed.compressor())
                    .compress(&d.raw, &mut self.buf);
                let plen = self.buf.len() - MAX_HEADER_LEN;
                let mut h = FrameHeader::new(op, plen as u64, Some(key));
                h.rsv1 = true;
                let hlen = h.encode(&mut hdr);
                let at = MAX_HEADER_LEN - hlen;
                self.buf[at..MAX_HEADER_LEN].copy_from_slice(&hdr[..hlen]);
                apply_mask(&mut self.buf[MAX_HEADER_LEN..], key);
                if d.raw.capacity() > 4 << 20 {
                    d.raw = Vec::new();
                }
                return self.write_out(at);
            }
            _ => {}
        }
        let hlen = FrameHeader::new(op, len as u64, Some(key)).encode(&mut hdr);
        self.buf.extend_from_slice(&hdr[..hlen]);
        fill(&mut self.buf);
        debug_assert_eq!(self.buf.len(), hlen + len);
        apply_mask(&mut self.buf[hlen..], key);
        self.write_out(0)
    }

    /// Writes `buf[from..]`.
    fn write_out(&mut self, from: usize) -> io::Result<()> {
        let r = (&self.sock).write_all(&self.buf[from..]);
        if r.is_ok() {
            self.wire += (self.buf.len() - from) as u64;
        }
        if self.buf.capacity() > 4 << 20 {
            self.buf = Vec::new();
        }
        r
    }

    /// Sends one frame with `payload`.
    pub(crate) fn send(&mut self, op: OpCode, payload: &[u8]) -> io::Result<()> {
        self.send_with(op, payload.len(), |b| b.extend_from_slice(payload))
    }

    /// Sends message `seq` of `pat`.
    pub(crate) fn send_seq(&mut self, pat: &Pattern, seq: u64, binary: bool) -> io::Result<()> {
        let op = if binary { OpCode::Binary } else { OpCode::Text };
        self.send_with(op, pat.size, |b| pat.write(seq, b))
    }

    /// Sends a close frame (1000).
    pub(crate) fn send_close(&mut self) -> io::Result<()> {
        self.send(OpCode::Close, &1000u16.to_be_bytes())
    }
}

/// The receiving half: a client-role decoder over the socket.
#[derive(Debug)]
pub(crate) struct Reader {
    pub(crate) sock: TcpStream,
    dec: Decoder,
    /// Bytes read once connected.
    pub(crate) wire: u64,
}

impl Reader {
    /// Reads until the next data message and passes it to `f` (`true` for text). Pings and
    /// pongs are skipped; a close frame or EOF is an error.
    pub(crate) fn recv<R>(&mut self, f: impl FnOnce(bool, &[u8]) -> R) -> io::Result<R> {
        loop {
            match self.dec.next() {
                Ok(Some(Message::Text(t))) => return Ok(f(true, t.as_bytes())),
                Ok(Some(Message::Binary(b))) => return Ok(f(false, b)),
                Ok(Some(Message::Ping(_) | Message::Pong(_))) => continue,
                Ok(Some(Message::Close(c))) => {
                    return Err(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        format!("server closed: {c:?}"),
                    ))
                }
                Ok(None) => {}
                Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e.to_string())),
            }
            let n = (&self.sock).read(self.dec.read_buf())?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.wire += n as u64;
            self.dec.commit(n);
        }
    }

    /// Reads until the server's close frame or EOF (after we sent ours), for up to `timeout`.
    pub(crate) fn drain_close(&mut self, timeout: Duration) {
        let _ = self.sock.set_read_timeout(Some(timeout));
        loop {
            match self.dec.next() {
                Ok(Some(Message::Close(_))) | Err(_) => return,
                Ok(Some(_)) => continue,
                Ok(None) => {}
            }
            match (&self.sock).read(self.dec.read_buf()) {
                Ok(0) | Err(_) => return,
                Ok(n) => self.dec.commit(n),
            }
        }
    }
}

/// Opens a WebSocket connection to `addr` (`host:port`) for `path`. The handshake is checked
/// (status 101 and `Sec-WebSocket-Accept`). Reads time out after `read_timeout`.
#[allow(dead_code)] // used by benches/compare.rs
pub(crate) fn connect(addr: &str, path: &str, read_timeout: Duration) -> io::Result<(Writer, Reader)> {
    connect_with(addr, path, read_timeout, Dial::default())
}

/// How [`connect_with`] connects beyond [`connect`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Dial {
    /// Offer permessage-deflate: the connection then fails unless the server accepts it, and
    /// compresses and inflates data messages.
    pub(crate) deflate: bool,
    /// Read masked frames (and only those): a byte echo's (`--accept-masked`).
    pub(crate) accept_masked: bool,
}

/// [`connect`] with the options of `dial`.
pub(crate) fn connect_with(
    addr: &str,
    path: &str,
    read_timeout: Duration,
    dial: Dial,
) -> io::Result<(Writer, Reader)> {
    let deflate = dial.deflate;
    let sock = TcpStream::connect(addr)?;
    sock.set_nodelay(true)?;
    sock.set_read_timeout(Some(read_timeout))?;
    let mut rng = Rng::new();
    let mut nonce = [0u8; 16];
    nonce[..8].copy_from_slice(&rng.next().to_ne_bytes());
    nonce[8..].copy_from_slice(&rng.next().to_ne_bytes());
    let key = base64::engine::general_purpose::STANDARD.encode(nonce);
    let offer = if deflate {
        format!("Sec-WebSocket-Extensions: {}\r\n", pmd::OFFER)
    } else {
        String::new()
    };
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{offer}\r\n"
    );
    (&sock).write_all(req.as_bytes())?;
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    let end = loop {
        let n = (&sock).read(&mut chunk)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 16 << 10 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "response head too large",
            ));
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]);
    let bad = |why: String| io::Error::new(io::ErrorKind::InvalidData, why);
    let status = head.lines().next().unwrap_or("");
    if !status.starts_with("HTTP/1.1 101") {
        return Err(bad(format!("handshake refused: {status}")));
    }
    let want = accept_key(key.as_bytes());
    let accept = head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim()
            .eq_ignore_ascii_case("sec-websocket-accept")
            .then(|| v.trim())
    });
    if accept != Some(want.as_str()) {
        return Err(bad(format!("bad Sec-WebSocket-Accept {accept:?}")));
    }
    // A server-role decoder wants masked frames and unmasks them: all the role changes.
    let role = if dial.accept_masked {
        Role::Server
    } else {
        Role::Client
    };
    let mut dec = Decoder::new(role, Limits::default());
    let mut deflating = None;
    if deflate {
        let agreed = pmd::Agreed::from_response(pmd::extension_values(&head))
            .map_err(bad)?
            .ok_or_else(|| bad("the server did not accept permessage-deflate".into()))?;
        dec.set_inflater(agreed.inflater());
        deflating = Some(Deflating {
            agreed,
            compressor: None,
            raw: Vec::new(),
        });
    }
    dec.feed(&buf[end..]);
    let w = Writer {
        sock: sock.try_clone()?,
        rng,
        buf: Vec::new(),
        deflate: deflating,
        wire: 0,
    };
    Ok((w, Reader { sock, dec, wire: 0 }))
}

/// Sends a close frame, waits briefly for the server's, and closes the socket.
pub(crate) fn close(mut w: Writer, mut r: Reader) {
    if w.send_close().is_ok() {
        r.drain_close(Duration::from_secs(2));
    }
    let _ = w.sock.shutdown(Shutdown::Both);
}

// ---------------------------------------------------------------------------------------------
// A run

#[derive(Debug, Default)]
struct ConnResult {
    msgs: u64,
    errors: u64,
    /// Round-trip times in nanoseconds.
    lat: Vec<u64>,
    last: Option<Instant>,
    wire_out: u64,
    wire_in: u64,
}

impl ConnResult {
    /// Reads the echo of message `seq` (sent at `t0`), checks every byte and records its
    /// latency. `false` ends the connection's run (a wrong echo or a read error, counted).
    fn take_echo(&mut self, r: &mut Reader, pat: &Pattern, seq: u64, binary: bool, t0: Instant) -> bool {
        match r.recv(|is_text, got| verify(pat, seq, binary, is_text, got)) {
            Ok(true) => {
                let now = Instant::now();
                self.msgs += 1;
                self.lat.push(now.duration_since(t0).as_nanos() as u64);
                self.last = Some(now);
                true
            }
            Ok(false) => {
                eprintln!("wsload: echo of message {seq} is wrong");
                self.errors += 1;
                false
            }
            Err(e) => {
                eprintln!("wsload: receive: {e}");
                self.errors += 1;
                false
            }
        }
    }
}

/// Runs `cfg`. `on_start` is called once every connection is open, just before traffic
/// starts; `on_end` when all traffic is done, before the connections close.
pub(crate) fn run_with(cfg: &Config, on_start: impl FnOnce(), on_end: impl FnOnce()) -> Summary {
    let read_timeout = Duration::from_secs(10);
    let mut opened = Vec::with_capacity(cfg.conns);
    let mut errors = 0;
    for _ in 0..cfg.conns {
        let dial = Dial {
            deflate: cfg.deflate,
            accept_masked: cfg.accept_masked,
        };
        match connect_with(&cfg.addr, &cfg.path, read_timeout, dial) {
            Ok(c) => opened.push(c),
            Err(e) => {
                eprintln!("wsload: connect {}: {e}", cfg.addr);
                errors += 1;
            }
        }
    }
    let pat = Arc::new(if cfg.json {
        Pattern::json(cfg.size)
    } else {
        Pattern::new(cfg.size)
    });
    let start_gate = Arc::new(Barrier::new(opened.len() + 1));
    let end_gate = Arc::new(Barrier::new(opened.len() + 1));
    // One deadline for all, set before the gate opens: with many connections on few cores a
    // thread can first run long after the gate, and its own clock would stretch the run.
    let deadline = Arc::new(OnceLock::<Instant>::new());
    let mut threads = Vec::with_capacity(opened.len());
    for (i, (w, r)) in opened.into_iter().enumerate() {
        let (pat, start_gate, end_gate, cfg2, deadline) = (
            pat.clone(),
            start_gate.clone(),
            end_gate.clone(),
            cfg.clone(),
            deadline.clone(),
        );
        let t = std::thread::Builder::new()
            .name(format!("wsload-{i}"))
            .stack_size(256 << 10)
            .spawn(move || {
                start_gate.wait();
                let deadline = *deadline.get().expect("set before the gate opens");
                let (mut res, w, r) = match cfg2.mode {
                    Mode::PingPong => ping_pong(w, r, &pat, &cfg2, deadline),
                    Mode::Pipeline => pipeline(w, r, &pat, &cfg2, deadline),
                };
                (res.wire_out, res.wire_in) = (w.wire, r.wire);
                end_gate.wait();
                close(w, r);
                res
            });
        match t {
            Ok(t) => threads.push(t),
            Err(e) => {
                // The barriers count on this thread: cannot go on sensibly.
                eprintln!("wsload: cannot spawn a thread: {e}");
                std::process::exit(1);
            }
        }
    }
    on_start();
    let start = Instant::now();
    let _ = deadline.set(start + cfg.duration);
    start_gate.wait();
    // Wait for traffic to end: each thread reaches the end gate.
    end_gate.wait();
    on_end();
    let mut lat = Vec::new();
    let mut msgs = 0;
    let mut last = start;
    let (mut wire_out, mut wire_in) = (0, 0);
    for t in threads {
        match t.join() {
            Ok(r) => {
                msgs += r.msgs;
                wire_out += r.wire_out;
                wire_in += r.wire_in;
                errors += r.errors;
                lat.extend_from_slice(&r.lat);
                if let Some(l) = r.last {
                    last = last.max(l);
                }
            }
            Err(_) => errors += 1,
        }
    }
    lat.sort_unstable();
    let us = |ns: f64| ns / 1000.0;
    Summary {
        mode: match cfg.mode {
            Mode::PingPong => "pingpong".into(),
            Mode::Pipeline => "pipeline".into(),
        },
        conns: cfg.conns,
        size: cfg.size,
        binary: cfg.binary,
        window: if cfg.mode == Mode::Pipeline { cfg.window } else { 1 },
        secs: last.duration_since(start).as_secs_f64(),
        msgs,
        p50_us: us(quantile(&lat, 0.50)),
        p99_us: us(quantile(&lat, 0.99)),
        max_us: us(lat.last().map_or(0.0, |&v| v as f64)),
        errors,
        json: cfg.json,
        deflate: cfg.deflate,
        wire_out,
        wire_in,
    }
}

/// Round-trip times reserved per connection: 64 Ki, less with many connections (4 Mi in all:
/// 32 MiB of address space).
fn lat_capacity(conns: usize) -> usize {
    (1 << 16).min((1 << 22) / conns.max(1))
}

/// Checks an echo: kind and content.
fn verify(pat: &Pattern, seq: u64, binary: bool, is_text: bool, got: &[u8]) -> bool {
    is_text != binary && pat.check(seq, got)
}

fn ping_pong(
    mut w: Writer,
    mut r: Reader,
    pat: &Pattern,
    cfg: &Config,
    deadline: Instant,
) -> (ConnResult, Writer, Reader) {
    let mut res = ConnResult {
        lat: Vec::with_capacity(lat_capacity(cfg.conns)),
        ..ConnResult::default()
    };
    let mut seq = 0u64;
    while Instant::now() < deadline {
        let t0 = Instant::now();
        if let Err(e) = w.send_seq(pat, seq, cfg.binary) {
            eprintln!("wsload: send: {e}");
            res.errors += 1;
            break;
        }
        if !res.take_echo(&mut r, pat, seq, cfg.binary, t0) {
            break;
        }
        seq += 1;
    }
    (res, w, r)
}

fn pipeline(
    w: Writer,
    mut r: Reader,
    pat: &Pattern,
    cfg: &Config,
    deadline: Instant,
) -> (ConnResult, Writer, Reader) {
    let window = cfg.window.max(1);
    // One token per message in flight: the writer blocks when `window` are outstanding.
    let (tx, rx) = crossbeam_channel::bounded::<Instant>(window);
    let mut res = ConnResult {
        lat: Vec::with_capacity(lat_capacity(cfg.conns)),
        ..ConnResult::default()
    };
    let binary = cfg.binary;
    let (w, send_errors) = std::thread::scope(|s| {
        let writer = std::thread::Builder::new()
            .stack_size(256 << 10)
            .spawn_scoped(s, move || {
                let mut w = w;
                let mut errors = 0u64;
                let mut seq = 0u64;
                while Instant::now() < deadline {
                    if tx.send(Instant::now()).is_err() {
                        break; // the reader gave up
                    }
                    if let Err(e) = w.send_seq(pat, seq, binary) {
                        eprintln!("wsload: send: {e}");
                        errors += 1;
                        break;
                    }
                    seq += 1;
                }
                drop(tx);
                (w, errors)
            })
            .expect("spawn writer thread");
        let mut seq = 0u64;
        while let Ok(t0) = rx.recv() {
            // A send error also ends here (the writer's last token has no echo).
            if !res.take_echo(&mut r, pat, seq, binary, t0) {
                break;
            }
            seq += 1;
        }
        // Unblock the writer if it waits for a token or for the socket.
        drop(rx);
        if res.errors > 0 {
            let _ = r.sock.shutdown(Shutdown::Both);
        }
        writer.join().unwrap_or_else(|_| std::process::exit(1))
    });
    res.errors += send_errors;
    (res, w, r)
}

/// Runs `cfg` with no hooks.
pub(crate) fn run(cfg: &Config) -> Summary {
    run_with(cfg, || {}, || {})
}

fn usage(why: &str) -> ! {
    eprintln!("wsload: {why}");
    eprintln!(
        "usage: wsload --url ws://HOST:PORT/path [--conns N] [--size BYTES] [--mode pingpong|pipeline]\n\
         \x20             [--window W] [--duration SECS] [--binary] [--payload pattern|json] [--deflate]\n\
         \x20             [--accept-masked]"
    );
    std::process::exit(2)
}

#[allow(dead_code)] // unused when this file is a module of benches/compare.rs
fn main() {
    let mut url = None;
    let mut cfg = Config::new("ws://127.0.0.1:9001/").expect("default URL");
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut val = || {
            args.next()
                .unwrap_or_else(|| usage(&format!("{flag} needs a value")))
        };
        let num = |v: String| -> usize {
            v.parse()
                .unwrap_or_else(|e| usage(&format!("bad number {v}: {e}")))
        };
        match flag.as_str() {
            "--url" => url = Some(val()),
            "--conns" => cfg.conns = num(val()),
            "--size" => cfg.size = num(val()),
            "--window" => cfg.window = num(val()).max(1),
            "--mode" => {
                cfg.mode = match val().as_str() {
                    "pingpong" => Mode::PingPong,
                    "pipeline" => Mode::Pipeline,
                    other => usage(&format!("bad --mode {other}")),
                }
            }
            "--duration" => {
                let v = val();
                cfg.duration = match v.parse::<f64>() {
                    Ok(s) if s > 0.0 && s.is_finite() => Duration::from_secs_f64(s),
                    _ => usage(&format!("bad --duration {v}")),
                }
            }
            "--binary" => cfg.binary = true,
            "--payload" => {
                cfg.json = match val().as_str() {
                    "pattern" => false,
                    "json" => true,
                    other => usage(&format!("bad --payload {other}")),
                }
            }
            "--deflate" => cfg.deflate = true,
            "--accept-masked" => cfg.accept_masked = true,
            "-h" | "--help" => usage("help"),
            other => usage(&format!("unknown flag {other}")),
        }
    }
    let Some(url) = url else {
        usage("--url is required")
    };
    let (addr, path) = parse_url(&url).unwrap_or_else(|e| usage(&e));
    cfg.addr = addr;
    cfg.path = path;
    if cfg.conns == 0 {
        usage("--conns must be at least 1");
    }
    let s = run(&cfg);
    println!("{}", s.line());
    if s.errors > 0 {
        std::process::exit(1);
    }
}
