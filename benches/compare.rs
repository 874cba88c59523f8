//! syncws against tungstenite: throughput, latency, server CPU per message and server memory,
//! with every server in its own process and the same load generator (`wsload` of the
//! `syncws-tools` crate, `tools/src/bin/wsload.rs`, included as a module) driving each.
//!
//! ```text
//! cargo bench --bench compare -- [--rounds N] [--secs S] [--only NAME[,NAME...]]
//!     [--servers async,inline,tungstenite] [--echo-bin PATH]
//! ```
//!
//! The servers are this same binary, re-executed with `SYNCWS_BENCH_SERVER=<kind>` (so both
//! libraries are built with the same profile, allocator and echo logic):
//!
//! - `syncws-async`: `Server::start` with the echo handler of `examples/echo.rs`;
//! - `syncws-inline`: `Server::start_inline` with the inline echo handler of `examples/echo.rs`;
//! - `tungstenite`: `tungstenite::accept` and one thread per connection, `read()` then
//!   `send()` (the canonical blocking echo loop);
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
//! Names for `--only`: `pp1`, `pp64`, `pipe1k`, `pipe1m`, `bcast`, `idle`.

#[allow(dead_code)]
#[path = "../tools/src/bin/wsload.rs"]
mod wsload;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read as _};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use syncws_protocol::frame::OpCode;

use wsload::{Config, Mode, Summary};

const SERVER_ENV: &str = "SYNCWS_BENCH_SERVER";

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
        fn on_text(&mut self, conn: &Connection, text: String) {
            if !broadcast_to_all(&self.0, &text) {
                let _ = conn.send_text(&text);
            }
        }
        fn on_binary(&mut self, conn: &Connection, data: Vec<u8>) {
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

    fn syncws(inline: bool, broadcast: bool) -> ! {
        let b: Bcast = Arc::new(OnceLock::new());
        // Every client is on one address here: the per-address cap must not be the limit.
        let server = Server::new(ServerConfig::new(([127, 0, 0, 1], 0)).max_connections_per_ip(100_000));
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

    pub(super) fn run(kind: &str) -> ! {
        match kind {
            "syncws-async" => syncws(false, false),
            "syncws-inline" => syncws(true, false),
            "syncws-async-broadcast" => syncws(false, true),
            "syncws-inline-broadcast" => syncws(true, true),
            "tungstenite" => tungstenite(false),
            "tungstenite-broadcast" => tungstenite(true),
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
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Async => "syncws async",
            Kind::Inline => "syncws inline",
            Kind::Tungstenite => "tungstenite",
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
                c
            }
            _ => {
                let mut c = Command::new(std::env::current_exe().expect("current_exe"));
                c.env(SERVER_ENV, kind.env(broadcast));
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
        let s = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap_or_default();
        // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
        let rest = s.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<&str> = rest.split_whitespace().collect();
        let tick = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        (tick(11) + tick(12)) as f64 / 100.0
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
    let p = Proc::start(kind, false, echo_bin);
    let mut cfg = cfg.clone();
    cfg.addr = p.addr.clone();
    cfg.duration = Duration::from_secs_f64(secs);
    let cpu0 = std::cell::Cell::new(0.0);
    let cpu1 = std::cell::Cell::new(0.0);
    let s: Summary = wsload::run_with(&cfg, || cpu0.set(p.cpu_secs()), || cpu1.set(p.cpu_secs()));
    let hwm = p.status_kib("VmHWM");
    eprintln!("  {:<14} {}", kind.name(), s.line());
    Run {
        msgs_per_s: s.msgs_per_s(),
        p50_us: s.p50_us,
        p99_us: s.p99_us,
        cpu_us: (cpu1.get() - cpu0.get()) * 1e6 / s.msgs.max(1) as f64,
        hwm_mib: mib(hwm),
        all_us: 0.0,
        errors: s.errors,
    }
}

fn run_broadcast(kind: Kind, clients: usize, count: usize) -> Run {
    let p = Proc::start(kind, true, None);
    let mut writers = Vec::with_capacity(clients);
    let mut errors = 0u64;
    // (broadcast number, when received)
    let (tx, rx) = crossbeam_channel::unbounded::<(u64, Instant)>();
    let mut threads = Vec::new();
    for _ in 0..clients {
        match wsload::connect(&p.addr, "/", Duration::from_secs(20)) {
            Ok((w, mut r)) => {
                writers.push(w);
                let tx = tx.clone();
                let t = std::thread::Builder::new()
                    .stack_size(128 << 10)
                    .spawn(move || {
                        for _ in 0..count {
                            let got = r.recv(|is_text, b| {
                                let s = std::str::from_utf8(b).ok().filter(|_| is_text)?;
                                let rest = s.strip_prefix("broadcast:")?;
                                rest.split(':').next()?.parse::<u64>().ok()
                            });
                            match got {
                                Ok(Some(k)) => {
                                    let _ = tx.send((k, Instant::now()));
                                }
                                _ => return 1u64,
                            }
                        }
                        0
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
    let padding = "x".repeat(40);
    'outer: for k in 0..count as u64 {
        let t0 = Instant::now();
        let text = format!("broadcast:{k:012}:{padding}");
        debug_assert_eq!(text.len(), 64);
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
    for t in threads {
        errors += t.join().unwrap_or(1);
    }
    lat.sort_unstable();
    let r = Run {
        msgs_per_s: 0.0,
        p50_us: wsload::quantile(&lat, 0.5) / 1000.0,
        p99_us: wsload::quantile(&lat, 0.99) / 1000.0,
        cpu_us: (cpu1 - cpu0) * 1e6 / delivered.max(1) as f64,
        hwm_mib: mib(hwm),
        all_us: median(all),
        errors,
    };
    eprintln!(
        "  {:<14} clients={n} broadcasts={count} p50_us={:.0} p99_us={:.0} all_us={:.0} cpu_us_per_delivery={:.2} \
         vmhwm_mib={:.1} server_threads={threads_srv} errors={}",
        kind.name(),
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
}

fn opts() -> Opts {
    let mut o = Opts {
        rounds: 5,
        secs: 3.0,
        only: None,
        kinds: vec![Kind::Async, Kind::Tungstenite, Kind::Inline],
        echo_bin: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--rounds" => o.rounds = val().parse().expect("--rounds N"),
            "--secs" => o.secs = val().parse().expect("--secs S"),
            "--only" => o.only = Some(val().split(',').map(str::to_string).collect()),
            "--echo-bin" => o.echo_bin = Some(val()),
            "--servers" => {
                o.kinds = val()
                    .split(',')
                    .map(|k| match k {
                        "async" => Kind::Async,
                        "inline" => Kind::Inline,
                        "tungstenite" => Kind::Tungstenite,
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
    let scenarios = vec![
        load("pp1", "1 conn ping-pong 16 B text", 1, 16, 1, false),
        load("pp64", "64 conns ping-pong 16 B text", 64, 16, 1, false),
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
    ];
    let started = Instant::now();
    let ncpu = std::thread::available_parallelism().map_or(0, |n| n.get());
    eprintln!(
        "compare: {} rounds x {} s, {} CPUs ({}), load average {}",
        o.rounds,
        o.secs,
        ncpu,
        cpu_model(),
        loadavg()
    );
    let mut results: Vec<(Scenario, HashMap<Kind, Vec<Run>>)> = Vec::new();
    for sc in scenarios {
        if let Some(only) = &o.only {
            if !only.iter().any(|n| n == sc.name()) {
                continue;
            }
        }
        eprintln!("== {} ({})", sc.title(), sc.name());
        let mut runs: HashMap<Kind, Vec<Run>> = HashMap::new();
        for round in 0..o.rounds {
            let mut order = o.kinds.clone();
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
    // The table (Markdown), medians of the rounds; ratios are syncws / tungstenite.
    let med = |runs: &HashMap<Kind, Vec<Run>>, k: Kind, f: fn(&Run) -> f64| {
        median(runs.get(&k).map_or(Vec::new(), |v| v.iter().map(f).collect()))
    };
    println!();
    println!(
        "{} rounds x {} s, medians; {} CPUs ({}); load average at the end {}; {:.0} s in all",
        o.rounds,
        o.secs,
        ncpu,
        cpu_model(),
        loadavg(),
        started.elapsed().as_secs_f64()
    );
    println!();
    println!(
        "| scenario | server | msgs/s | vs tung. | p50 µs | p99 µs | server CPU µs/msg | vs tung. | server VmHWM MiB | errors |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (sc, runs) in &results {
        for &k in &o.kinds {
            if !runs.contains_key(&k) {
                continue;
            }
            let rate = med(runs, k, |r| r.msgs_per_s);
            let cpu = med(runs, k, |r| r.cpu_us);
            let (t_rate, t_cpu) = (
                med(runs, Kind::Tungstenite, |r| r.msgs_per_s),
                med(runs, Kind::Tungstenite, |r| r.cpu_us),
            );
            let errors: u64 = runs[&k].iter().map(|r| r.errors).sum();
            let (p50, p99) = match sc {
                Scenario::Idle { .. } => (f64::NAN, f64::NAN),
                _ => (med(runs, k, |r| r.p50_us), med(runs, k, |r| r.p99_us)),
            };
            let fmt_lat = |v: f64| {
                if v.is_nan() {
                    "-".to_string()
                } else {
                    format!("{v:.0}")
                }
            };
            let (rate_s, rate_ratio) = match sc {
                Scenario::Load { .. } => (format!("{rate:.0}"), ratio(rate, t_rate)),
                Scenario::Broadcast { .. } => (
                    format!("all in {:.0} µs", med(runs, k, |r| r.all_us)),
                    ratio(
                        med(runs, Kind::Tungstenite, |r| r.all_us),
                        med(runs, k, |r| r.all_us),
                    ),
                ),
                Scenario::Idle { .. } => (format!("all in {:.0} µs", med(runs, k, |r| r.all_us)), "-".into()),
            };
            println!(
                "| {} | {} | {} | {} | {} | {} | {:.2} | {} | {:.1} | {} |",
                sc.title(),
                k.name(),
                rate_s,
                if k == Kind::Tungstenite {
                    "-".into()
                } else {
                    rate_ratio
                },
                fmt_lat(p50),
                fmt_lat(p99),
                cpu,
                if k == Kind::Tungstenite {
                    "-".into()
                } else {
                    ratio(cpu, t_cpu)
                },
                med(runs, k, |r| r.hwm_mib),
                errors
            );
        }
    }
    println!();
    println!(
        "msgs/s vs tung.: syncws / tungstenite (higher is better; broadcast: tungstenite time / syncws \
         time). CPU vs tung.: syncws / tungstenite (lower is better)."
    );
}
