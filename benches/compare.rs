//! syncws against tungstenite and against a floor: throughput, latency, server CPU per message
//! and server memory, with every server in its own process and the same load generator (`wsload` of the
//! `syncws-tools` crate, `tools/src/bin/wsload.rs`, included as a module) driving each.
//!
//! ```text
//! cargo bench --bench compare -- [--rounds N] [--secs S] [--only NAME[,NAME...]]
//!     [--servers async,inline,tungstenite,floor] [--echo-bin PATH]
//! ```
//!
//! The servers are this same binary, re-executed with `SYNCWS_BENCH_SERVER=<kind>` (so both
//! libraries are built with the same profile, allocator and echo logic):
//!
//! - `syncws-async`: `Server::start` with the echo handler of `examples/echo.rs`;
//! - `syncws-inline`: `Server::start_inline` with the inline echo handler of `examples/echo.rs`;
//! - `tungstenite`: `tungstenite::accept` and one thread per connection, `read()` then
//!   `send()` (the canonical blocking echo loop);
//! - `floor`: no WebSocket work at all, the least any thread-per-connection server pays: the
//!   upgrade handshake (`syncws_protocol::handshake`), then one thread per connection copying
//!   the bytes it reads back to the socket (`TCP_NODELAY` on, as the others). The client's
//!   frames come back masked, which a client must reject; against the floor only, wsload
//!   reads with `accept_masked` (`--accept-masked`): it wants masked frames and unmasks them
//!   itself. Load scenarios only (it cannot broadcast; idle connections cost it nothing);
//! - for the broadcast scenario, a text message starting with `broadcast:` is sent to every
//!   client: syncws through `Messenger::broadcast_text`, tungstenite through one writer
//!   thread per connection fed by a channel (a blocking `WebSocket` cannot be written from
//!   another thread while its reader is blocked in `read()`).
//!
//! `--echo-bin target/release/examples/echo` runs the syncws echo scenarios against the echo
//! example instead (built separately with `cargo build --release --example echo`; note that
//! the release profile uses thin LTO and the bench profile fat LTO).
//!
//! Each scenario runs `--rounds` times (default 5) for `--secs` seconds (default 3), the
//! servers in a rotating order each round, and the median of the rounds is reported. A fresh
//! server process serves every run. Measured per run:
//!
//! - msgs/s, p50/p99 round-trip latency: from the load generator;
//! - server CPU per message: utime + stime of the server process (`/proc/PID/stat`) over the
//!   traffic phase (connections already open), divided by the messages echoed (broadcast: by
//!   the deliveries);
//! - server peak RSS: `VmHWM` from `/proc/PID/status` at the end of the run.
//!
//! Names for `--only`: `pp1`, `pp64`, `pp1000`, `pipe1k`, `pipe1m`, `bcast`, `idle`.
//!
//! The table gives, per scenario and server, msgs/s against tungstenite and against the floor,
//! p50/p99, the async p50 over the inline p50, server CPU per message (and over
//! tungstenite's) and VmHWM. After it, the targets of issue 16, each MET or MISSED (or not run,
//! when the scenario or a server it needs was left out): async msgs/s ≥ 1.0x tungstenite in
//! every load scenario; async p50 ≤ 1.5x inline p50 at `pp1` and `pp64`; inline msgs/s ≥ 0.9x
//! the floor at `pp1`, `pp64` and `pp1000`, ≥ 0.85x at `pipe1k`; async CPU/msg ≤ 1.0x
//! tungstenite at `pp1` and `pipe1m`.
//!
//! ## permessage-deflate
//!
//! ```text
//! cargo bench --bench compare -- --deflate [--rounds N] [--secs S] [--only dpp1,dpipe1k,dbcast]
//!     [--servers inline,async] [--deflate-level L] [--echo-bin PATH]
//! ```
//!
//! runs the permessage-deflate scenarios instead (and only those), each syncws server three
//! ways in the same rounds: without compression, with `DeflateConfig::default()` (no server
//! context takeover: pooled compressors, a broadcast compressed once) and with
//! `server_no_context_takeover(false)` (a compressor per connection). The clients offer
//! `permessage-deflate; client_max_window_bits` only to the compressing servers, send JSON-like
//! text (`tools/src/json.rs`), compressed with context takeover, and inflate what comes back:
//!
//! - `dpp1`: 1 conn ping-pong, 1 KiB JSON text;
//! - `dpipe1k`: 8 conns pipelined (window 64), 1 KiB JSON text;
//! - `dbcast`: one 16 KiB JSON text to 1,000 clients, 20 times (every delivery checked).
//!
//! Ratios are against the same server without compression in the same rounds. The load table
//! also gives the load generator's own CPU per message (`/proc/self/stat`: the clients compress
//! and inflate too, on the same cores as the server). `--deflate-level`
//! sets the servers' `DeflateConfig::level` (default: the library's; the clients always compress at 6).
//! tungstenite is left out unless named in `--servers` (then uncompressed, for reference); the
//! floor always is.

#[allow(dead_code)]
#[path = "../tools/src/bin/wsload.rs"]
mod wsload;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use syncws_protocol::frame::OpCode;

use wsload::{Config, Mode, Summary};

const SERVER_ENV: &str = "SYNCWS_BENCH_SERVER";
/// permessage-deflate of a syncws server child: unset (off), `default` or `server-context`.
const DEFLATE_ENV: &str = "SYNCWS_BENCH_DEFLATE";
/// Its compression level, when not the default.
const DEFLATE_LEVEL_ENV: &str = "SYNCWS_BENCH_DEFLATE_LEVEL";

// =============================================================================================
// Servers (run in the re-executed child)

mod servers {
    use super::*;
    use syncws::{Connection, Handler, InlineHandler, Messenger, Server, ServerConfig, ServerEvent};

    type Bcast = Arc<OnceLock<Messenger>>;

    fn broadcast_to_all(b: &Bcast, text: &str) -> bool {
        match b.get() {
            Some(m) if text.starts_with("broadcast:") => {
                m.broadcast_text(text, None);
                true
            }
            _ => false,
        }
    }

    /// The echo handler of `examples/echo.rs`, plus the broadcast trigger.
    struct Echo(Bcast);

    impl Handler for Echo {
        fn on_text(&mut self, conn: &Connection, text: syncws::TextPayload) {
            if !broadcast_to_all(&self.0, &text) {
                let _ = conn.send_text(&text);
            }
        }
        fn on_binary(&mut self, conn: &Connection, data: syncws::Payload) {
            let _ = conn.send_binary(&data);
        }
        fn on_server_event(&mut self, event: ServerEvent) {
            eprintln!("server event: {event:?}");
        }
    }

    /// The inline echo handler of `examples/echo.rs`, plus the broadcast trigger.
    struct InlineEcho(Bcast);

    impl InlineHandler for InlineEcho {
        fn on_text(&self, conn: &Connection, text: &str) {
            if !broadcast_to_all(&self.0, text) {
                let _ = conn.send_text(text);
            }
        }
        fn on_binary(&self, conn: &Connection, data: &[u8]) {
            let _ = conn.send_binary(data);
        }
        fn on_server_event(&self, event: ServerEvent) {
            eprintln!("server event: {event:?}");
        }
    }

    fn ready(addr: std::net::SocketAddr) {
        use std::io::Write as _;
        println!("listening on ws://{addr}");
        let _ = std::io::stdout().flush();
    }

    /// The permessage-deflate configuration the parent asked for.
    fn deflate() -> Option<syncws::DeflateConfig> {
        let mut d = match std::env::var(DEFLATE_ENV).ok()?.as_str() {
            "default" => syncws::DeflateConfig::default(),
            "server-context" => syncws::DeflateConfig::default().server_no_context_takeover(false),
            other => panic!("unknown {DEFLATE_ENV}={other}"),
        };
        if let Ok(level) = std::env::var(DEFLATE_LEVEL_ENV) {
            d = d.level(level.parse().expect("deflate level"));
        }
        Some(d)
    }

    fn syncws(inline: bool, broadcast: bool) -> ! {
        let b: Bcast = Arc::new(OnceLock::new());
        // Every client is on one address here: the per-address cap must not be the limit.
        let server = Server::new(
            ServerConfig::new(([127, 0, 0, 1], 0))
                .max_connections_per_ip(100_000)
                .deflate(deflate()),
        );
        let handle = if inline {
            server.start_inline(InlineEcho(b.clone()))
        } else {
            server.start(Echo(b.clone()))
        }
        .unwrap_or_else(|e| panic!("start: {e}"));
        if broadcast {
            let _ = b.set(handle.messenger());
        }
        ready(handle.local_addr());
        loop {
            std::thread::park();
        }
    }

    fn tungstenite_echo(stream: TcpStream) {
        let _ = stream.set_nodelay(true);
        let Ok(mut ws) = tungstenite::accept(stream) else {
            return;
        };
        loop {
            match ws.read() {
                Ok(m @ (tungstenite::Message::Text(_) | tungstenite::Message::Binary(_))) => {
                    if ws.send(m).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    }

    type Writers = Arc<Mutex<HashMap<u64, crossbeam_channel::Sender<tungstenite::Message>>>>;

    fn tungstenite_broadcast(stream: TcpStream, id: u64, writers: Writers) {
        let _ = stream.set_nodelay(true);
        let Ok(wstream) = stream.try_clone() else {
            return;
        };
        let Ok(mut ws) = tungstenite::accept(stream) else {
            return;
        };
        let (tx, rx) = crossbeam_channel::unbounded::<tungstenite::Message>();
        let writer = std::thread::spawn(move || {
            let mut out =
                tungstenite::WebSocket::from_raw_socket(wstream, tungstenite::protocol::Role::Server, None);
            while let Ok(m) = rx.recv() {
                if out.send(m).is_err() {
                    return;
                }
            }
        });
        writers.lock().unwrap().insert(id, tx.clone());
        loop {
            match ws.read() {
                Ok(tungstenite::Message::Text(t)) if t.starts_with("broadcast:") => {
                    let m = tungstenite::Message::Text(t);
                    for w in writers.lock().unwrap().values() {
                        let _ = w.send(m.clone());
                    }
                }
                Ok(m @ (tungstenite::Message::Text(_) | tungstenite::Message::Binary(_))) => {
                    let _ = tx.send(m);
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        writers.lock().unwrap().remove(&id);
        drop(tx);
        let _ = writer.join();
    }

    fn tungstenite(broadcast: bool) -> ! {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        ready(l.local_addr().expect("local addr"));
        let writers: Writers = Arc::default();
        let mut next = 0u64;
        for s in l.incoming() {
            let Ok(s) = s else { continue };
            next += 1;
            let (id, w) = (next, writers.clone());
            std::thread::spawn(move || {
                if broadcast {
                    tungstenite_broadcast(s, id, w)
                } else {
                    tungstenite_echo(s)
                }
            });
        }
        std::process::exit(0)
    }

    /// Reads the request head into `buf` and answers 101; returns how many bytes came after
    /// the head, moved to the start of `buf`. `None`: not a valid upgrade, or the peer left.
    fn floor_handshake(stream: &mut TcpStream, buf: &mut [u8]) -> Option<usize> {
        use syncws_protocol::handshake::{parse_request, response_101, validate_upgrade};
        let mut have = 0;
        while have < buf.len() {
            let n = stream.read(&mut buf[have..]).ok().filter(|&n| n > 0)?;
            have += n;
            if let Some((req, used)) = parse_request(&buf[..have], 64).ok()? {
                let up = validate_upgrade(&req).ok()?;
                stream.write_all(&response_101(&up.key, None, &[])).ok()?;
                buf.copy_within(used..have, 0);
                return Some(have - used);
            }
        }
        None
    }

    /// One floor connection: after the handshake every byte read is written back as it is, so
    /// the client gets its own frames, still masked (wsload reads them with `accept_masked`).
    /// No frame is parsed and nothing is unmasked: what is left is what any thread-per-connection
    /// server pays for the socket, the thread and the system calls.
    fn floor_conn(mut stream: TcpStream) {
        let _ = stream.set_nodelay(true);
        // As large as a 1 MiB message, as syncws's decoder reads it, so that large messages
        // take as few system calls (pages never written are never resident).
        let mut buf = vec![0u8; 1 << 20];
        let Some(mut n) = floor_handshake(&mut stream, &mut buf) else {
            return;
        };
        loop {
            if n > 0 && stream.write_all(&buf[..n]).is_err() {
                return;
            }
            n = match stream.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
        }
    }

    fn floor() -> ! {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        ready(l.local_addr().expect("local addr"));
        for s in l.incoming().flatten() {
            std::thread::spawn(move || floor_conn(s));
        }
        std::process::exit(0)
    }

    pub(super) fn run(kind: &str) -> ! {
        match kind {
            "syncws-async" => syncws(false, false),
            "syncws-inline" => syncws(true, false),
            "syncws-async-broadcast" => syncws(false, true),
            "syncws-inline-broadcast" => syncws(true, true),
            "tungstenite" => tungstenite(false),
            "tungstenite-broadcast" => tungstenite(true),
            "floor" => floor(),
            other => panic!("unknown {SERVER_ENV}={other}"),
        }
    }
}

// =============================================================================================
// The parent: servers as child processes

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Async,
    Inline,
    Tungstenite,
    /// The upgrade handshake, then a byte echo: no WebSocket work (load scenarios only).
    Floor,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Async => "syncws async",
            Kind::Inline => "syncws inline",
            Kind::Tungstenite => "tungstenite",
            Kind::Floor => "floor",
        }
    }
    fn env(self, broadcast: bool) -> &'static str {
        match (self, broadcast) {
            (Kind::Async, false) => "syncws-async",
            (Kind::Inline, false) => "syncws-inline",
            (Kind::Tungstenite, false) => "tungstenite",
            (Kind::Async, true) => "syncws-async-broadcast",
            (Kind::Inline, true) => "syncws-inline-broadcast",
            (Kind::Tungstenite, true) => "tungstenite-broadcast",
            (Kind::Floor, false) => "floor",
            (Kind::Floor, true) => panic!("the floor does not broadcast"),
        }
    }
}

/// permessage-deflate of a syncws server (`--deflate` scenarios).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Dfl {
    /// Not enabled: the clients do not offer it.
    Off,
    /// `DeflateConfig::default()`: no server context takeover, pooled compressors, a
    /// broadcast compressed once.
    Once,
    /// `server_no_context_takeover(false)`: a compressor per connection.
    PerConn,
}

impl Dfl {
    fn name(self) -> &'static str {
        match self {
            Dfl::Off => "off",
            Dfl::Once => "on (default: no server context)",
            Dfl::PerConn => "on, server context (per connection)",
        }
    }
    fn short(self) -> &'static str {
        match self {
            Dfl::Off => "off",
            Dfl::Once => "once",
            Dfl::PerConn => "perconn",
        }
    }
}

/// A server child process.
struct Proc {
    child: Child,
    addr: String,
}

impl Proc {
    fn start(kind: Kind, broadcast: bool, echo_bin: Option<&str>) -> Proc {
        Self::start_with(kind, broadcast, echo_bin, Dfl::Off, None)
    }

    /// [`Proc::start`] with permessage-deflate (`level`: the servers' `DeflateConfig::level`).
    fn start_with(kind: Kind, broadcast: bool, echo_bin: Option<&str>, dfl: Dfl, level: Option<u32>) -> Proc {
        let mut cmd = match (kind, echo_bin, broadcast) {
            (Kind::Async | Kind::Inline, Some(bin), false) => {
                let mut c = Command::new(bin);
                c.args([
                    "--addr",
                    "127.0.0.1:0",
                    "--max-connections-per-ip",
                    "100000",
                    "--notify",
                ]);
                c.arg(if kind == Kind::Async { "async" } else { "inline" });
                if dfl != Dfl::Off {
                    c.arg("--deflate");
                    if let Some(l) = level {
                        c.args(["--deflate-level", &l.to_string()]);
                    }
                }
                if dfl == Dfl::PerConn {
                    c.args(["--deflate-server-context", "on"]);
                }
                c
            }
            _ => {
                let mut c = Command::new(std::env::current_exe().expect("current_exe"));
                c.env(SERVER_ENV, kind.env(broadcast));
                match dfl {
                    Dfl::Off => {}
                    Dfl::Once => {
                        c.env(DEFLATE_ENV, "default");
                    }
                    Dfl::PerConn => {
                        c.env(DEFLATE_ENV, "server-context");
                    }
                }
                if let Some(l) = level {
                    c.env(DEFLATE_LEVEL_ENV, l.to_string());
                }
                c
            }
        };
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("server output");
        let addr = line
            .trim()
            .strip_prefix("listening on ws://")
            .unwrap_or_else(|| panic!("unexpected server output {line:?}"))
            .to_string();
        Proc { child, addr }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// utime + stime in seconds (clock ticks of 1/100 s, Linux's USER_HZ).
    fn cpu_secs(&self) -> f64 {
        cpu_secs_of(self.pid())
    }

    /// A `/proc/PID/status` value in KiB.
    fn status_kib(&self, key: &str) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        s.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }

    fn threads(&self) -> u64 {
        self.status_kib("Threads")
    }
}

/// utime + stime of process `pid` in seconds (clock ticks of 1/100 s, Linux's USER_HZ).
fn cpu_secs_of(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = s.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    (tick(11) + tick(12)) as f64 / 100.0
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One run's figures.
#[derive(Debug, Clone, Default)]
struct Run {
    msgs_per_s: f64,
    p50_us: f64,
    p99_us: f64,
    /// Server CPU per message (or per delivery), microseconds.
    cpu_us: f64,
    /// Server peak RSS, MiB.
    hwm_mib: f64,
    /// Broadcast: median time until every client has the message, microseconds.
    all_us: f64,
    errors: u64,
    /// Bytes written / read by the clients over the payload bytes echoed or delivered.
    wire_out: f64,
    wire_in: f64,
    /// The load generator's own CPU per message (this process), microseconds.
    client_cpu_us: f64,
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

// ---------------------------------------------------------------------------------------------
// Scenarios

#[derive(Debug, Clone)]
enum Scenario {
    /// A wsload run.
    Load {
        name: &'static str,
        title: &'static str,
        cfg: Config,
    },
    /// One message to `clients` clients, `count` times.
    Broadcast { clients: usize, count: usize },
    /// `clients` connections idle, then one 16 B message each.
    Idle { clients: usize },
}

impl Scenario {
    fn name(&self) -> &'static str {
        match self {
            Scenario::Load { name, .. } => name,
            Scenario::Broadcast { .. } => "bcast",
            Scenario::Idle { .. } => "idle",
        }
    }
    fn title(&self) -> String {
        match self {
            Scenario::Load { title, .. } => title.to_string(),
            Scenario::Broadcast { clients, .. } => format!("broadcast 64 B text to {clients} clients"),
            Scenario::Idle { clients } => format!("{clients} idle clients, then 16 B each"),
        }
    }
}

fn load(
    name: &'static str,
    title: &'static str,
    conns: usize,
    size: usize,
    window: usize,
    binary: bool,
) -> Scenario {
    let mut cfg = Config::new("ws://127.0.0.1:1/").expect("url");
    cfg.conns = conns;
    cfg.size = size;
    cfg.window = window;
    cfg.mode = if window > 1 {
        Mode::Pipeline
    } else {
        Mode::PingPong
    };
    cfg.binary = binary;
    Scenario::Load { name, title, cfg }
}

fn run_load(kind: Kind, cfg: &Config, secs: f64, echo_bin: Option<&str>) -> Run {
    run_load_with(kind, Dfl::Off, None, cfg, secs, echo_bin)
}

/// [`run_load`] against a server with permessage-deflate `dfl` (the clients offer it unless
/// `Dfl::Off`).
fn run_load_with(
    kind: Kind,
    dfl: Dfl,
    level: Option<u32>,
    cfg: &Config,
    secs: f64,
    echo_bin: Option<&str>,
) -> Run {
    let p = Proc::start_with(kind, false, echo_bin, dfl, level);
    let mut cfg = cfg.clone();
    cfg.addr = p.addr.clone();
    cfg.duration = Duration::from_secs_f64(secs);
    cfg.deflate = dfl != Dfl::Off;
    cfg.accept_masked = kind == Kind::Floor;
    let cpu0 = std::cell::Cell::new((0.0, 0.0));
    let cpu1 = std::cell::Cell::new((0.0, 0.0));
    let both = || (p.cpu_secs(), cpu_secs_of(std::process::id()));
    let s: Summary = wsload::run_with(&cfg, || cpu0.set(both()), || cpu1.set(both()));
    let ((srv0, me0), (srv1, me1)) = (cpu0.get(), cpu1.get());
    let hwm = p.status_kib("VmHWM");
    let label = if cfg.json {
        format!("{} deflate={}", kind.name(), dfl.short())
    } else {
        kind.name().to_string()
    };
    eprintln!("  {label:<14} {}", s.line());
    Run {
        msgs_per_s: s.msgs_per_s(),
        p50_us: s.p50_us,
        p99_us: s.p99_us,
        cpu_us: (srv1 - srv0) * 1e6 / s.msgs.max(1) as f64,
        hwm_mib: mib(hwm),
        all_us: 0.0,
        errors: s.errors,
        wire_out: s.wire_ratio(s.wire_out),
        wire_in: s.wire_ratio(s.wire_in),
        client_cpu_us: (me1 - me0) * 1e6 / s.msgs.max(1) as f64,
    }
}

fn run_broadcast(kind: Kind, clients: usize, count: usize) -> Run {
    run_broadcast_with(kind, Dfl::Off, None, clients, count, None)
}

/// [`run_broadcast`] against a server with permessage-deflate `dfl`; `json`: the messages are
/// that many bytes of JSON text (`broadcast:<k>:` and the JSON of message `k`), each delivery
/// checked byte for byte, instead of 64 B.
fn run_broadcast_with(
    kind: Kind,
    dfl: Dfl,
    level: Option<u32>,
    clients: usize,
    count: usize,
    json: Option<usize>,
) -> Run {
    let p = Proc::start_with(kind, true, None, dfl, level);
    // The messages, made in advance (JSON) so that every client can check what it got.
    let texts: Arc<Vec<String>> = Arc::new(
        (0..count as u64)
            .map(|k| match json {
                Some(size) => {
                    let mut v = format!("broadcast:{k:012}:").into_bytes();
                    wsload::json::write(k, size - v.len(), &mut v);
                    String::from_utf8(v).expect("JSON is ASCII")
                }
                None => format!("broadcast:{k:012}:{}", "x".repeat(40)),
            })
            .collect(),
    );
    let mut writers = Vec::with_capacity(clients);
    let mut errors = 0u64;
    // (broadcast number, when received)
    let (tx, rx) = crossbeam_channel::unbounded::<(u64, Instant)>();
    let mut threads = Vec::new();
    for _ in 0..clients {
        let dial = wsload::Dial {
            deflate: dfl != Dfl::Off,
            accept_masked: false,
        };
        match wsload::connect_with(&p.addr, "/", Duration::from_secs(20), dial) {
            Ok((w, mut r)) => {
                writers.push(w);
                let tx = tx.clone();
                let texts = texts.clone();
                let check = json.is_some();
                let t = std::thread::Builder::new()
                    .stack_size(128 << 10)
                    .spawn(move || {
                        for _ in 0..count {
                            let got = r.recv(|is_text, b| {
                                let s = std::str::from_utf8(b).ok().filter(|_| is_text)?;
                                let rest = s.strip_prefix("broadcast:")?;
                                let k = rest.split(':').next()?.parse::<u64>().ok()?;
                                let whole = texts.get(k as usize).is_some_and(|t| t.as_str() == s);
                                (whole || !check).then_some(k)
                            });
                            match got {
                                Ok(Some(k)) => {
                                    let _ = tx.send((k, Instant::now()));
                                }
                                _ => return (1u64, r.wire),
                            }
                        }
                        (0, r.wire)
                    })
                    .expect("spawn client thread");
                threads.push(t);
            }
            Err(e) => {
                eprintln!("  broadcast: connect: {e}");
                errors += 1;
            }
        }
    }
    drop(tx);
    let n = writers.len();
    if n == 0 {
        return Run {
            errors,
            ..Run::default()
        };
    }
    // Let the server settle (threads parked in read) before measuring.
    std::thread::sleep(Duration::from_millis(300));
    let cpu0 = p.cpu_secs();
    let mut lat = Vec::with_capacity(n * count);
    let mut all = Vec::with_capacity(count);
    let mut delivered = 0u64;
    'outer: for k in 0..count as u64 {
        let t0 = Instant::now();
        let text = &texts[k as usize];
        debug_assert!(json.is_some() || text.len() == 64);
        if writers[0].send(OpCode::Text, text.as_bytes()).is_err() {
            errors += 1;
            break;
        }
        let mut got = 0;
        let mut last = t0;
        while got < n {
            match rx.recv_timeout(Duration::from_secs(10)) {
                Ok((kk, t)) if kk == k => {
                    got += 1;
                    delivered += 1;
                    lat.push(t.duration_since(t0).as_nanos() as u64);
                    last = last.max(t);
                }
                Ok(_) => errors += 1,
                Err(_) => {
                    eprintln!("  broadcast {k}: only {got} of {n} clients got it");
                    errors += (n - got) as u64;
                    break 'outer;
                }
            }
        }
        all.push(last.duration_since(t0).as_secs_f64() * 1e6);
        std::thread::sleep(Duration::from_millis(20));
    }
    let cpu1 = p.cpu_secs();
    let hwm = p.status_kib("VmHWM");
    let threads_srv = p.threads();
    for w in &writers {
        let _ = w.sock.shutdown(std::net::Shutdown::Both);
    }
    let mut wire_in = 0u64;
    for t in threads {
        let (e, wire) = t.join().unwrap_or((1, 0));
        errors += e;
        wire_in += wire;
    }
    lat.sort_unstable();
    let size = texts.first().map_or(64, String::len);
    let r = Run {
        msgs_per_s: 0.0,
        p50_us: wsload::quantile(&lat, 0.5) / 1000.0,
        p99_us: wsload::quantile(&lat, 0.99) / 1000.0,
        cpu_us: (cpu1 - cpu0) * 1e6 / delivered.max(1) as f64,
        hwm_mib: mib(hwm),
        all_us: median(all),
        errors,
        wire_out: 0.0,
        wire_in: wire_in as f64 / (delivered.max(1) * size as u64) as f64,
        client_cpu_us: 0.0,
    };
    let label = if json.is_some() {
        format!("{} deflate={}", kind.name(), dfl.short())
    } else {
        kind.name().to_string()
    };
    let extra = if json.is_some() {
        format!(
            " size={size} cpu_ms_per_broadcast={:.2} wire_in_ratio={:.3}",
            r.cpu_us * n as f64 / 1e3,
            r.wire_in
        )
    } else {
        String::new()
    };
    eprintln!(
        "  {:<14} clients={n} broadcasts={count} p50_us={:.0} p99_us={:.0} all_us={:.0} cpu_us_per_delivery={:.2} \
         vmhwm_mib={:.1} server_threads={threads_srv} errors={}{extra}",
        label,
        r.p50_us,
        r.p99_us,
        r.all_us,
        r.cpu_us,
        r.hwm_mib,
        r.errors
    );
    r
}

fn run_idle(kind: Kind, clients: usize, echo_bin: Option<&str>) -> Run {
    let p = Proc::start(kind, false, echo_bin);
    let mut conns = Vec::with_capacity(clients);
    let mut errors = 0u64;
    for _ in 0..clients {
        match wsload::connect(&p.addr, "/", Duration::from_secs(20)) {
            Ok(c) => conns.push(c),
            Err(e) => {
                eprintln!("  idle: connect: {e}");
                errors += 1;
            }
        }
    }
    std::thread::sleep(Duration::from_secs(1));
    let rss_idle = p.status_kib("VmRSS");
    let pat = wsload::Pattern::new(16);
    let cpu0 = p.cpu_secs();
    let t0 = Instant::now();
    for (i, (w, _)) in conns.iter_mut().enumerate() {
        if w.send_seq(&pat, i as u64, false).is_err() {
            errors += 1;
        }
    }
    let mut lat = Vec::with_capacity(conns.len());
    for (i, (_, r)) in conns.iter_mut().enumerate() {
        match r.recv(|is_text, b| is_text && pat.check(i as u64, b)) {
            Ok(true) => lat.push(t0.elapsed().as_nanos() as u64),
            _ => errors += 1,
        }
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu1 = p.cpu_secs();
    let hwm = p.status_kib("VmHWM");
    let rss = p.status_kib("VmRSS");
    let threads_srv = p.threads();
    for (w, r) in conns {
        wsload::close(w, r);
    }
    eprintln!(
        "  {:<14} clients={clients} rss_idle_mib={:.1} vmrss_mib={:.1} vmhwm_mib={:.1} server_threads={threads_srv} \
         all_echoed_ms={:.1} errors={errors}",
        kind.name(),
        mib(rss_idle),
        mib(rss),
        mib(hwm),
        elapsed * 1e3
    );
    Run {
        msgs_per_s: clients as f64 / elapsed,
        p50_us: 0.0,
        p99_us: 0.0,
        cpu_us: (cpu1 - cpu0) * 1e6 / clients as f64,
        hwm_mib: mib(hwm),
        all_us: elapsed * 1e6,
        errors,
        wire_out: 0.0,
        wire_in: 0.0,
        client_cpu_us: 0.0,
    }
}

// ---------------------------------------------------------------------------------------------
// Main

struct Opts {
    rounds: usize,
    secs: f64,
    only: Option<Vec<String>>,
    kinds: Vec<Kind>,
    echo_bin: Option<String>,
    /// The permessage-deflate scenarios instead of the others.
    deflate: bool,
    /// `--servers` was given.
    kinds_given: bool,
    /// The servers' `DeflateConfig::level` (`--deflate-level`).
    level: Option<u32>,
}

fn opts() -> Opts {
    let mut o = Opts {
        rounds: 5,
        secs: 3.0,
        only: None,
        kinds: vec![Kind::Async, Kind::Tungstenite, Kind::Inline, Kind::Floor],
        echo_bin: None,
        deflate: false,
        kinds_given: false,
        level: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--rounds" => o.rounds = val().parse().expect("--rounds N"),
            "--secs" => o.secs = val().parse().expect("--secs S"),
            "--only" => o.only = Some(val().split(',').map(str::to_string).collect()),
            "--echo-bin" => o.echo_bin = Some(val()),
            "--deflate" => o.deflate = true,
            "--deflate-level" => o.level = Some(val().parse().expect("--deflate-level 0-9")),
            "--servers" => {
                o.kinds_given = true;
                o.kinds = val()
                    .split(',')
                    .map(|k| match k {
                        "async" => Kind::Async,
                        "inline" => Kind::Inline,
                        "tungstenite" => Kind::Tungstenite,
                        "floor" => Kind::Floor,
                        other => panic!("unknown server {other}"),
                    })
                    .collect()
            }
            // `cargo bench` passes --bench; ignore it and any filter.
            _ => {}
        }
    }
    o
}

fn cpu_model() -> String {
    let mut s = String::new();
    let _ = std::fs::File::open("/proc/cpuinfo").and_then(|mut f| f.read_to_string(&mut s));
    s.lines()
        .find_map(|l| {
            l.strip_prefix("model name")?
                .split_once(':')
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 && a > 0.0 {
        format!("{:.2}x", a / b)
    } else {
        "-".into()
    }
}

fn main() {
    if let Ok(kind) = std::env::var(SERVER_ENV) {
        servers::run(&kind);
    }
    let o = opts();
    if o.deflate {
        return deflate_main(&o);
    }
    let started = Instant::now();
    eprintln!(
        "compare: {} rounds x {} s, {} CPUs ({}), load average {}",
        o.rounds,
        o.secs,
        ncpus(),
        cpu_model(),
        loadavg()
    );
    let results = run_scenarios(&o, scenarios());
    println!();
    println!(
        "{} rounds x {} s, medians; {} CPUs ({}); load average at the end {}; {:.0} s in all",
        o.rounds,
        o.secs,
        ncpus(),
        cpu_model(),
        loadavg(),
        started.elapsed().as_secs_f64()
    );
    print_table(&o.kinds, &results);
    print_targets(&results);
}

fn ncpus() -> usize {
    std::thread::available_parallelism().map_or(0, |n| n.get())
}

/// The scenarios, in the order run (and the names of `--only`).
fn scenarios() -> Vec<Scenario> {
    vec![
        load("pp1", "1 conn ping-pong 16 B text", 1, 16, 1, false),
        load("pp64", "64 conns ping-pong 16 B text", 64, 16, 1, false),
        load("pp1000", "1,000 conns ping-pong 16 B text", 1000, 16, 1, false),
        load(
            "pipe1k",
            "8 conns pipelined (window 64) 1 KiB binary",
            8,
            1024,
            64,
            true,
        ),
        load(
            "pipe1m",
            "1 conn pipelined (window 4) 1 MiB binary",
            1,
            1 << 20,
            4,
            true,
        ),
        Scenario::Broadcast {
            clients: 1000,
            count: 20,
        },
        Scenario::Idle { clients: 1000 },
    ]
}

/// The runs of one scenario, by server.
type Runs = HashMap<Kind, Vec<Run>>;

/// Runs every scenario asked for, `o.rounds` times each, the servers in a rotating order.
/// The floor serves the load scenarios only (it cannot broadcast, and idle connections cost it
/// nothing to compare with).
fn run_scenarios(o: &Opts, scenarios: Vec<Scenario>) -> Vec<(Scenario, Runs)> {
    let mut results = Vec::new();
    for sc in scenarios {
        if let Some(only) = &o.only {
            if !only.iter().any(|n| n == sc.name()) {
                continue;
            }
        }
        eprintln!("== {} ({})", sc.title(), sc.name());
        let is_load = matches!(sc, Scenario::Load { .. });
        let mut runs = Runs::new();
        for round in 0..o.rounds {
            let mut order: Vec<Kind> = o
                .kinds
                .iter()
                .copied()
                .filter(|&k| is_load || k != Kind::Floor)
                .collect();
            let n = order.len().max(1);
            order.rotate_left(round % n);
            for kind in order {
                let r = match &sc {
                    Scenario::Load { cfg, .. } => run_load(kind, cfg, o.secs, o.echo_bin.as_deref()),
                    Scenario::Broadcast { clients, count } => run_broadcast(kind, *clients, *count),
                    Scenario::Idle { clients } => run_idle(kind, *clients, o.echo_bin.as_deref()),
                };
                runs.entry(kind).or_default().push(r);
            }
        }
        results.push((sc, runs));
    }
    results
}

/// The median over the rounds of `f` for server `k` (0 when it did not run).
fn med(runs: &Runs, k: Kind, f: fn(&Run) -> f64) -> f64 {
    median(runs.get(&k).map_or(Vec::new(), |v| v.iter().map(f).collect()))
}

/// `a`'s median of `f` over `b`'s; NaN when either did not run (or is 0).
fn rel(runs: &Runs, a: Kind, b: Kind, f: fn(&Run) -> f64) -> f64 {
    let (x, y) = (med(runs, a, f), med(runs, b, f));
    if x > 0.0 && y > 0.0 {
        x / y
    } else {
        f64::NAN
    }
}

/// A ratio as `1.23x`, or `-`.
fn times(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.2}x")
    } else {
        "-".into()
    }
}

/// The table (Markdown): the medians of the rounds.
fn print_table(kinds: &[Kind], results: &[(Scenario, Runs)]) {
    println!();
    println!(
        "| scenario | server | msgs/s | vs tung. | vs floor | p50 µs | p99 µs | p50 vs inline | \
         server CPU µs/msg | CPU vs tung. | server VmHWM MiB | errors |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (sc, runs) in results {
        for &k in kinds {
            if runs.contains_key(&k) {
                print_row(sc, k, runs);
            }
        }
    }
    println!();
    println!(
        "vs tung.: this server's msgs/s over tungstenite's (higher is better; broadcast: tungstenite's \
         time over this server's). vs floor: msgs/s over the floor's (a byte echo after the handshake, \
         no WebSocket work; load scenarios only). p50 vs inline: async p50 over inline p50. CPU vs \
         tung.: CPU per message over tungstenite's (lower is better)."
    );
}

fn print_row(sc: &Scenario, k: Kind, runs: &Runs) {
    use Kind::{Async, Floor, Inline, Tungstenite as Tung};
    let rate = |r: &Run| r.msgs_per_s;
    let all = |r: &Run| r.all_us;
    let p50 = |r: &Run| r.p50_us;
    let cpu = |r: &Run| r.cpu_us;
    let lat = |v: f64| {
        if matches!(sc, Scenario::Idle { .. }) {
            "-".to_string()
        } else {
            format!("{v:.0}")
        }
    };
    let unless = |skip: bool, v: f64| if skip { "-".into() } else { times(v) };
    let (rate_s, vs_tung, vs_floor) = match sc {
        Scenario::Load { .. } => (
            format!("{:.0}", med(runs, k, rate)),
            unless(k == Tung, rel(runs, k, Tung, rate)),
            unless(k == Floor, rel(runs, k, Floor, rate)),
        ),
        Scenario::Broadcast { .. } => (
            format!("all in {:.0} µs", med(runs, k, all)),
            unless(k == Tung, rel(runs, Tung, k, all)),
            "-".into(),
        ),
        Scenario::Idle { .. } => (
            format!("all in {:.0} µs", med(runs, k, all)),
            "-".into(),
            "-".into(),
        ),
    };
    let p50_vs_inline = unless(
        k != Async || matches!(sc, Scenario::Idle { .. }),
        rel(runs, Async, Inline, p50),
    );
    let errors: u64 = runs[&k].iter().map(|r| r.errors).sum();
    println!(
        "| {} | {} | {rate_s} | {vs_tung} | {vs_floor} | {} | {} | {p50_vs_inline} | {:.2} | {} | {:.1} | {errors} |",
        sc.title(),
        k.name(),
        lat(med(runs, k, p50)),
        lat(med(runs, k, |r| r.p99_us)),
        med(runs, k, cpu),
        unless(k == Tung, rel(runs, k, Tung, cpu)),
        med(runs, k, |r| r.hwm_mib),
    );
}

/// One of the issue's targets: `a`'s median of `f` over `b`'s, at least (or at most) `bound`,
/// in each of `scenarios`.
struct Target {
    what: &'static str,
    scenarios: Vec<&'static str>,
    a: Kind,
    b: Kind,
    f: fn(&Run) -> f64,
    at_least: bool,
    bound: f64,
}

fn targets() -> Vec<Target> {
    use Kind::{Async, Floor, Inline, Tungstenite};
    let every_load: Vec<&'static str> = scenarios()
        .iter()
        .filter(|s| matches!(s, Scenario::Load { .. }))
        .map(Scenario::name)
        .collect();
    let t = |what, scenarios, a, b, f, at_least, bound| Target {
        what,
        scenarios,
        a,
        b,
        f,
        at_least,
        bound,
    };
    let rate: fn(&Run) -> f64 = |r| r.msgs_per_s;
    vec![
        t(
            "async msgs/s / tungstenite",
            every_load,
            Async,
            Tungstenite,
            rate,
            true,
            1.0,
        ),
        t(
            "async p50 / inline p50",
            vec!["pp1", "pp64"],
            Async,
            Inline,
            |r| r.p50_us,
            false,
            1.5,
        ),
        t(
            "inline msgs/s / floor",
            vec!["pp1", "pp64", "pp1000"],
            Inline,
            Floor,
            rate,
            true,
            0.9,
        ),
        t(
            "inline msgs/s / floor",
            vec!["pipe1k"],
            Inline,
            Floor,
            rate,
            true,
            0.85,
        ),
        t(
            "async CPU/msg / tungstenite",
            vec!["pp1", "pipe1m"],
            Async,
            Tungstenite,
            |r| r.cpu_us,
            false,
            1.0,
        ),
    ]
}

/// The issue's targets against this run: MET, MISSED, or not run (the scenario or one of the
/// two servers was left out).
fn print_targets(results: &[(Scenario, Runs)]) {
    println!();
    println!("| target | scenario | measured | bound | result |");
    println!("|---|---|---:|---:|---|");
    let (mut met, mut missed, mut not_run) = (0, 0, 0);
    for t in targets() {
        for name in &t.scenarios {
            let v = results
                .iter()
                .find(|(sc, _)| sc.name() == *name)
                .map_or(f64::NAN, |(_, runs)| rel(runs, t.a, t.b, t.f));
            let result = if v.is_nan() {
                not_run += 1;
                "not run"
            } else if (t.at_least && v >= t.bound) || (!t.at_least && v <= t.bound) {
                met += 1;
                "MET"
            } else {
                missed += 1;
                "MISSED"
            };
            let measured = if v.is_nan() {
                "-".into()
            } else {
                format!("{v:.3}x")
            };
            let op = if t.at_least { "≥" } else { "≤" };
            println!(
                "| {} | {name} | {measured} | {op} {:.2}x | {result} |",
                t.what, t.bound
            );
        }
    }
    println!();
    println!("targets: {met} MET, {missed} MISSED, {not_run} not run");
}

// ---------------------------------------------------------------------------------------------
// permessage-deflate (`--deflate`)

/// The permessage-deflate scenarios.
enum DScenario {
    Load {
        name: &'static str,
        title: &'static str,
        cfg: Config,
    },
    Broadcast {
        clients: usize,
        count: usize,
        size: usize,
    },
}

impl DScenario {
    fn name(&self) -> &'static str {
        match self {
            DScenario::Load { name, .. } => name,
            DScenario::Broadcast { .. } => "dbcast",
        }
    }
    fn title(&self) -> String {
        match self {
            DScenario::Load { title, .. } => title.to_string(),
            DScenario::Broadcast { clients, size, .. } => {
                format!("broadcast {} KiB JSON text to {clients} clients", size >> 10)
            }
        }
    }
}

/// The runs of one scenario, by server.
type DRuns = HashMap<(Kind, Dfl), Vec<Run>>;

fn json_load(name: &'static str, title: &'static str, conns: usize, size: usize, window: usize) -> DScenario {
    let Scenario::Load { mut cfg, .. } = load(name, title, conns, size, window, false) else {
        unreachable!("load() makes a Load")
    };
    cfg.json = true;
    DScenario::Load { name, title, cfg }
}

fn deflate_main(o: &Opts) {
    let scenarios = vec![
        json_load("dpp1", "1 conn ping-pong 1 KiB JSON text", 1, 1024, 1),
        json_load(
            "dpipe1k",
            "8 conns pipelined (window 64) 1 KiB JSON text",
            8,
            1024,
            64,
        ),
        DScenario::Broadcast {
            clients: 1000,
            count: 20,
            size: 16 << 10,
        },
    ];
    let kinds: Vec<Kind> = if o.kinds_given {
        if o.kinds.contains(&Kind::Floor) {
            eprintln!("compare --deflate: the floor does not negotiate permessage-deflate; left out");
        }
        o.kinds.iter().copied().filter(|&k| k != Kind::Floor).collect()
    } else {
        vec![Kind::Inline, Kind::Async]
    };
    // Every syncws server three ways; tungstenite (only when asked for) uncompressed.
    let servers: Vec<(Kind, Dfl)> = kinds
        .iter()
        .flat_map(|&k| {
            if k == Kind::Tungstenite {
                vec![(k, Dfl::Off)]
            } else {
                vec![(k, Dfl::Off), (k, Dfl::Once), (k, Dfl::PerConn)]
            }
        })
        .collect();
    let started = Instant::now();
    let ncpu = std::thread::available_parallelism().map_or(0, |n| n.get());
    eprintln!(
        "compare --deflate: {} rounds x {} s, {} CPUs ({}), load average {}, server level {}",
        o.rounds,
        o.secs,
        ncpu,
        cpu_model(),
        loadavg(),
        o.level.map_or("6 (default)".into(), |l| l.to_string())
    );
    let mut results: Vec<(DScenario, DRuns)> = Vec::new();
    for sc in scenarios {
        if let Some(only) = &o.only {
            if !only.iter().any(|n| n == sc.name()) {
                continue;
            }
        }
        eprintln!("== {} ({})", sc.title(), sc.name());
        let mut runs = DRuns::new();
        for round in 0..o.rounds {
            let mut order = servers.clone();
            let n = order.len().max(1);
            order.rotate_left(round % n);
            for (kind, dfl) in order {
                let r = match &sc {
                    DScenario::Load { cfg, .. } => {
                        run_load_with(kind, dfl, o.level, cfg, o.secs, o.echo_bin.as_deref())
                    }
                    DScenario::Broadcast { clients, count, size } => {
                        run_broadcast_with(kind, dfl, o.level, *clients, *count, Some(*size))
                    }
                };
                runs.entry((kind, dfl)).or_default().push(r);
            }
        }
        results.push((sc, runs));
    }
    let med = |runs: &DRuns, k: (Kind, Dfl), f: fn(&Run) -> f64| {
        median(runs.get(&k).map_or(Vec::new(), |v| v.iter().map(f).collect()))
    };
    let wire = |v: f64| {
        if v > 0.0 {
            format!("{v:.2}")
        } else {
            "-".into()
        }
    };
    println!();
    println!(
        "{} rounds x {} s, medians; {} CPUs ({}); load average at the end {}; server deflate level {}; {:.0} s in all",
        o.rounds,
        o.secs,
        ncpu,
        cpu_model(),
        loadavg(),
        o.level.unwrap_or(syncws::DeflateConfig::default().level),
        started.elapsed().as_secs_f64()
    );
    println!();
    let any = |load: bool| {
        results
            .iter()
            .any(|(sc, _)| matches!(sc, DScenario::Load { .. }) == load)
    };
    if any(true) {
        println!(
            "| scenario | server | permessage-deflate | msgs/s | vs off | p50 µs | p99 µs | server CPU µs/msg | vs off | \
             client CPU µs/msg | wire out / in | server VmHWM MiB | errors |"
        );
        println!("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    }
    for (sc, runs) in &results {
        let DScenario::Load { .. } = sc else { continue };
        for &(k, d) in &servers {
            if !runs.contains_key(&(k, d)) {
                continue;
            }
            let off = (k, Dfl::Off);
            let rate = med(runs, (k, d), |r| r.msgs_per_s);
            let cpu = med(runs, (k, d), |r| r.cpu_us);
            let errors: u64 = runs[&(k, d)].iter().map(|r| r.errors).sum();
            let vs = |a: f64, b: f64| if d == Dfl::Off { "-".into() } else { ratio(a, b) };
            println!(
                "| {} | {} | {} | {rate:.0} | {} | {:.0} | {:.0} | {cpu:.2} | {} | {:.2} | {} / {} | {:.1} | {errors} |",
                sc.title(),
                k.name(),
                d.name(),
                vs(rate, med(runs, off, |r| r.msgs_per_s)),
                med(runs, (k, d), |r| r.p50_us),
                med(runs, (k, d), |r| r.p99_us),
                vs(cpu, med(runs, off, |r| r.cpu_us)),
                med(runs, (k, d), |r| r.client_cpu_us),
                wire(med(runs, (k, d), |r| r.wire_out)),
                wire(med(runs, (k, d), |r| r.wire_in)),
                med(runs, (k, d), |r| r.hwm_mib),
            );
        }
    }
    if any(false) {
        println!();
        println!(
            "| scenario | server | permessage-deflate | time to all µs | vs off | deliveries/s | p50 / p99 µs | \
             server CPU ms/broadcast | vs off | CPU µs/delivery | wire in | server VmHWM MiB | errors |"
        );
        println!("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    }
    for (sc, runs) in &results {
        let DScenario::Broadcast { clients, .. } = sc else {
            continue;
        };
        for &(k, d) in &servers {
            if !runs.contains_key(&(k, d)) {
                continue;
            }
            let off = (k, Dfl::Off);
            let all = med(runs, (k, d), |r| r.all_us);
            let cpu = med(runs, (k, d), |r| r.cpu_us);
            let errors: u64 = runs[&(k, d)].iter().map(|r| r.errors).sum();
            let vs = |a: f64, b: f64| if d == Dfl::Off { "-".into() } else { ratio(a, b) };
            let per_bcast_ms = |c: f64| c * *clients as f64 / 1e3;
            println!(
                "| {} | {} | {} | {all:.0} | {} | {:.0} | {:.0} / {:.0} | {:.2} | {} | {cpu:.2} | {} | {:.1} | {errors} |",
                sc.title(),
                k.name(),
                d.name(),
                vs(all, med(runs, off, |r| r.all_us)),
                *clients as f64 / (all / 1e6).max(1e-9),
                med(runs, (k, d), |r| r.p50_us),
                med(runs, (k, d), |r| r.p99_us),
                per_bcast_ms(cpu),
                vs(cpu, med(runs, off, |r| r.cpu_us)),
                wire(med(runs, (k, d), |r| r.wire_in)),
                med(runs, (k, d), |r| r.hwm_mib),
            );
        }
    }
    println!();
    println!(
        "vs off: against the same server without compression in the same rounds (msgs/s: higher is \
         better; time and CPU: lower is better). client CPU: the load generator's (this process, sharing \
         the machine with the server). wire: bytes the clients wrote / read over the payload \
         bytes (frame headers included). deliveries/s: clients / time to all."
    );
}
