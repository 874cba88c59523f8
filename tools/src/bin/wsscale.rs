//! Connection-scale test: N concurrent idle WebSocket connections (plain TCP) on one server
//! with the heartbeat on, then one broadcast that every connection must receive. Reports the
//! server's memory (VmHWM) per connection, its thread count, the time to accept the N
//! connections and the broadcast's delivery times. Results and reasoning: `docs/SCALE.md`.
//!
//! ```text
//! cargo run --release -p syncws-tools --bin wsscale -- [--conns N] [--stack-size BYTES]
//!     [--heartbeat-interval SECS] [--idle SECS] [--batch K] [--notify inline|async]
//!     [--max-runtime SECS] [--message BYTES] [--deflate] [--deflate-server-context on|off]
//! cargo run --release -p syncws-tools --bin wsscale -- server [--addr HOST:PORT]
//!     [--stack-size BYTES] [--heartbeat-interval SECS] [--heartbeat-timeout SECS]
//!     [--max-connections N] [--notify inline|async] [--echo] [--deflate]
//!     [--deflate-server-context on|off]
//! ```
//!
//! The client role (the default) starts this same binary as the server in a subprocess, reads
//! its `listening on ws://...` line, and opens the N connections from ONE thread, `K` at a
//! time (connect, hand-made upgrade request, read the 101), so the client costs no thread per
//! connection. It then idles for a heartbeat interval and more, answering the server's pings,
//! samples `/proc/PID/status` of the server, sends `broadcast:hello` on one connection and
//! waits (with epoll) until every connection has received `hello`. Finally it closes every
//! connection with a close frame and stops the server (closing its stdin). Every phase has a
//! deadline, and `--max-runtime` (default 300 s) kills both processes if anything hangs.
//!
//! The server role raises its `RLIMIT_NOFILE` soft limit (to `2 N + 64`, or to the hard limit
//! if that is lower: the server holds two descriptors per connection), runs a syncws server
//! with the heartbeat on, and answers the text `broadcast:<payload>` from any client by
//! broadcasting `<payload>` to every connection. It stops when its stdin reaches end of file.
//!
//! permessage-deflate: `--deflate` makes the server accept it (`DeflateConfig::default()`;
//! `--deflate-server-context on`: `server_no_context_takeover(false)`, a compressor per
//! connection) and every client offer it (`permessage-deflate; client_max_window_bits`, as
//! browsers do), failing the connection if it is not agreed. `--message BYTES` makes every
//! client, once all are connected, send one JSON text message of that size (`tools/src/json.rs`;
//! compressed with context takeover under `--deflate`, so the server's inflater keeps its
//! window) and wait for its echo (the server echoes every other text when started with
//! `--echo`, which the client passes; compressed under `--deflate` when at least the
//! threshold, 1 KiB). The idle phase and the memory samples follow.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::OwnedFd;
use std::process::{exit, ChildStdout, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use rustix::buffer::spare_capacity;
use rustix::event::{epoll, Timespec};
use rustix::process::{getrlimit, kill_process, setrlimit, Pid, Resource, Rlimit, Signal};
use syncws::{
    Connection, DeflateConfig, Handler, HeartbeatConfig, InlineHandler, Messenger, Server, ServerConfig,
};
use syncws_protocol::frame::{write_frame, FrameHeader, OpCode};
use syncws_protocol::handshake::accept_key;
use syncws_protocol::{Decoder, Limits, Message, Role};

#[allow(dead_code)] // some helpers serve only `wsload`
#[path = "../json.rs"]
mod json;
#[path = "../pmd.rs"]
mod pmd;

const PAYLOAD: &str = "hello";

fn usage(why: &str) -> ! {
    eprintln!("wsscale: {why}");
    eprintln!(
        "usage: wsscale [--conns N] [--stack-size BYTES] [--heartbeat-interval SECS] [--idle SECS]\n\
         \x20              [--batch K] [--notify inline|async] [--max-runtime SECS]\n\
         \x20              [--message BYTES] [--deflate] [--deflate-server-context on|off]\n\
         \x20      wsscale server [--addr HOST:PORT] [--stack-size BYTES] [--heartbeat-interval SECS]\n\
         \x20              [--heartbeat-timeout SECS] [--max-connections N] [--notify inline|async]\n\
         \x20              [--echo] [--deflate] [--deflate-server-context on|off]"
    );
    exit(2)
}

fn secs(v: &str) -> Duration {
    match v.parse::<f64>() {
        Ok(s) if s >= 0.0 && s.is_finite() => Duration::from_secs_f64(s),
        _ => usage(&format!("bad number of seconds: {v}")),
    }
}

fn number<T: std::str::FromStr>(flag: &str, v: &str) -> T {
    v.parse()
        .unwrap_or_else(|_| usage(&format!("bad value for {flag}: {v}")))
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("server") {
        args.remove(0);
        server_main(args);
    } else {
        client_main(args);
    }
}

/// Raises the soft `RLIMIT_NOFILE` to `want` (and the hard limit too when `want` is above it
/// and the process may do so); otherwise to the hard limit. Returns (soft, hard) in force.
fn raise_nofile(want: u64) -> (u64, u64) {
    let old = getrlimit(Resource::Nofile);
    let hard = old.maximum.unwrap_or(u64::MAX);
    if want > hard {
        // Only a privileged process (CAP_SYS_RESOURCE) may raise the hard limit.
        let _ = setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(want),
                maximum: Some(want),
            },
        );
    }
    let now = getrlimit(Resource::Nofile);
    let hard = now.maximum.unwrap_or(u64::MAX);
    if now.current.unwrap_or(u64::MAX) < hard {
        let _ = setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(hard),
                maximum: now.maximum,
            },
        );
    }
    let now = getrlimit(Resource::Nofile);
    (now.current.unwrap_or(u64::MAX), now.maximum.unwrap_or(u64::MAX))
}

// ---------------------------------------------------------------------------------------------
// Server role

/// Broadcasts the payload of `broadcast:<payload>`; reports on stdout how long the loop took.
/// Echoes any other text when `echo` is set.
fn on_text(messenger: &OnceLock<Messenger>, echo: bool, conn: &Connection, text: &str) {
    if let (Some(payload), Some(m)) = (text.strip_prefix("broadcast:"), messenger.get()) {
        let t = Instant::now();
        let n = m.broadcast_text(payload, None);
        println!("broadcast {n} {}", t.elapsed().as_micros());
        let _ = std::io::stdout().flush();
    } else if echo {
        let _ = conn.send_text(text);
    }
}

/// The messenger (for broadcasts), and whether to echo other texts.
struct InlineBroadcast(Arc<OnceLock<Messenger>>, bool);

impl InlineHandler for InlineBroadcast {
    fn on_text(&self, conn: &Connection, text: &str) {
        on_text(&self.0, self.1, conn, text);
    }
}

struct AsyncBroadcast(Arc<OnceLock<Messenger>>, bool);

impl Handler for AsyncBroadcast {
    fn on_text(&mut self, conn: &Connection, text: syncws::TextPayload) {
        on_text(&self.0, self.1, conn, &text);
    }
}

fn server_main(args: Vec<String>) {
    let mut addr: SocketAddr = "127.0.0.1:0".parse().expect("default address");
    let mut stack: Option<usize> = None;
    let mut interval = Duration::from_secs(5);
    let mut timeout = Duration::ZERO;
    let mut max_connections = 10_000usize;
    let mut inline = true;
    let mut echo = false;
    let mut deflate: Option<DeflateConfig> = None;
    let mut server_context = false;
    let mut it = args.into_iter();
    while let Some(flag) = it.next() {
        let mut val = || {
            it.next()
                .unwrap_or_else(|| usage(&format!("{flag} needs a value")))
        };
        match flag.as_str() {
            "--addr" => addr = number(&flag, &val()),
            "--stack-size" => stack = Some(number(&flag, &val())),
            "--heartbeat-interval" => interval = secs(&val()),
            "--heartbeat-timeout" => timeout = secs(&val()),
            "--max-connections" => max_connections = number(&flag, &val()),
            "--notify" => inline = notify(&val()),
            "--echo" => echo = true,
            "--deflate" => deflate = Some(DeflateConfig::default()),
            "--deflate-server-context" => server_context = on_off(&flag, &val()),
            other => usage(&format!("unknown server flag {other}")),
        }
    }
    // The library logs through the `log` facade: `RUST_LOG=syncws=debug` for more.
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("syncws=info")).init();
    let (soft, hard) = raise_nofile(2 * max_connections as u64 + 64);
    eprintln!("wsscale server: RLIMIT_NOFILE soft {soft}, hard {hard}");
    // Every client is on one address here: the per-address cap must not be the limit.
    let mut config = ServerConfig::new(addr)
        .heartbeat(HeartbeatConfig::new(interval, timeout))
        .max_connections(max_connections)
        .max_connections_per_ip(max_connections)
        .max_handshakes(max_connections);
    if let Some(s) = stack {
        config = config.thread_stack_size(s);
    }
    if let Some(d) = deflate {
        config = config.deflate(Some(d.server_no_context_takeover(!server_context)));
    } else if server_context {
        usage("--deflate-server-context needs --deflate");
    }
    let messenger = Arc::new(OnceLock::new());
    let server = Server::new(config);
    let started = if inline {
        server.start_inline(InlineBroadcast(messenger.clone(), echo))
    } else {
        server.start(AsyncBroadcast(messenger.clone(), echo))
    };
    let handle = match started {
        Ok(h) => h,
        Err(e) => {
            eprintln!("wsscale server: {e}");
            exit(1);
        }
    };
    let _ = messenger.set(handle.messenger());
    println!("listening on ws://{}", handle.local_addr());
    let _ = std::io::stdout().flush();
    // Run until stdin ends (the client closed it, or died).
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    let open = handle.connection_count();
    let t = Instant::now();
    handle.stop();
    println!("stopped {open} {}", t.elapsed().as_millis());
    let _ = std::io::stdout().flush();
}

fn on_off(flag: &str, v: &str) -> bool {
    match v {
        "on" => true,
        "off" => false,
        other => usage(&format!("bad {flag} {other}: on or off")),
    }
}

fn notify(v: &str) -> bool {
    match v {
        "inline" => true,
        "async" => false,
        other => usage(&format!("bad --notify {other}")),
    }
}

// ---------------------------------------------------------------------------------------------
// Client role

/// One client connection: a socket and its decoder.
struct Client {
    sock: TcpStream,
    dec: Decoder,
    /// When the broadcast payload arrived (since the broadcast was sent).
    got: Option<Duration>,
    /// The server's close frame arrived, or the socket ended.
    closed: bool,
    /// permessage-deflate, when agreed.
    agreed: Option<pmd::Agreed>,
    /// `--message`: this client's message number, and whether its echo came back intact.
    seq: u64,
    echoed: bool,
}

#[derive(Default)]
struct Counters {
    /// `--message`: its size, and the echoes received (intact or not).
    message: usize,
    echoes: u64,
    bad_echoes: u64,
    /// Bytes read from all sockets once connected.
    bytes_in: u64,
    pings: u64,
    pongs_sent: u64,
    other_texts: u64,
    closes: u64,
    /// Sockets that ended (EOF, error, protocol error) without a close frame.
    dropped: u64,
    errors: Vec<String>,
}

impl Counters {
    fn error(&mut self, e: String) {
        if self.errors.len() < 8 {
            self.errors.push(e);
        }
    }
}

/// A tiny xorshift generator for masking keys and `Sec-WebSocket-Key`s.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn mask(&mut self) -> [u8; 4] {
        (self.next() as u32).to_be_bytes()
    }

    /// A valid key: base64 of 16 bytes (22 characters, the last carrying 2 bits, then `==`).
    fn ws_key(&mut self) -> String {
        const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut s = String::with_capacity(24);
        for _ in 0..21 {
            s.push(B64[(self.next() % 64) as usize] as char);
        }
        s.push(B64[(self.next() % 4) as usize * 16] as char);
        s.push_str("==");
        s
    }
}

fn masked(rng: &mut Rng, op: OpCode, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 14);
    write_frame(
        &mut out,
        FrameHeader::new(op, payload.len() as u64, Some(rng.mask())),
        payload,
    );
    out
}

struct Opts {
    message: Option<usize>,
    deflate: bool,
    server_context: bool,
    conns: usize,
    stack: Option<usize>,
    interval: Duration,
    idle: Option<Duration>,
    batch: usize,
    inline: bool,
    max_runtime: Duration,
}

fn client_main(args: Vec<String>) {
    let mut o = Opts {
        message: None,
        deflate: false,
        server_context: false,
        conns: 10_000,
        stack: None,
        interval: Duration::from_secs(5),
        idle: None,
        batch: 64,
        inline: true,
        max_runtime: Duration::from_secs(300),
    };
    let mut it = args.into_iter();
    while let Some(flag) = it.next() {
        let mut val = || {
            it.next()
                .unwrap_or_else(|| usage(&format!("{flag} needs a value")))
        };
        match flag.as_str() {
            "--conns" => o.conns = number(&flag, &val()),
            "--stack-size" => o.stack = Some(number(&flag, &val())),
            "--heartbeat-interval" => o.interval = secs(&val()),
            "--idle" => o.idle = Some(secs(&val())),
            "--batch" => o.batch = number::<usize>(&flag, &val()).max(1),
            "--notify" => o.inline = notify(&val()),
            "--max-runtime" => o.max_runtime = secs(&val()),
            "--message" => o.message = Some(number(&flag, &val())),
            "--deflate" => o.deflate = true,
            "--deflate-server-context" => o.server_context = on_off(&flag, &val()),
            "-h" | "--help" => usage("help"),
            other => usage(&format!("unknown flag {other}")),
        }
    }
    if o.conns == 0 {
        usage("--conns must be at least 1");
    }
    if o.server_context && !o.deflate {
        usage("--deflate-server-context needs --deflate");
    }
    run_client(&o);
}

/// Fields of `/proc/PID/status` (kB, except threads).
#[derive(Debug, Clone, Copy, Default)]
struct Status {
    hwm_kb: u64,
    rss_kb: u64,
    threads: u64,
    /// Open file descriptors.
    fds: u64,
}

fn status(pid: u32) -> Status {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let mut s = Status::default();
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        let (Some(key), Some(v)) = (parts.next(), parts.next()) else {
            continue;
        };
        let v: u64 = v.parse().unwrap_or(0);
        match key {
            "VmHWM:" => s.hwm_kb = v,
            "VmRSS:" => s.rss_kb = v,
            "Threads:" => s.threads = v,
            _ => {}
        }
    }
    s.fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count() as u64);
    s
}

/// The server's memory mappings: how many there are (each thread costs four: its stack, the
/// stack's guard page, and Rust's signal stack with its guard; `vm.max_map_count` bounds the
/// total), and how many anonymous read-write mappings of exactly `stack_kb` (the connection
/// thread stacks) with their total resident size in kB.
fn mappings(pid: u32, stack_kb: u64) -> Option<(u64, u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps")).ok()?;
    let (mut total, mut stacks, mut stack_rss) = (0u64, 0u64, 0u64);
    let mut is_stack = false;
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        let first = parts.next().unwrap_or("");
        if let Some((a, b)) = first.split_once('-') {
            if let (Ok(a), Ok(b)) = (u64::from_str_radix(a, 16), u64::from_str_radix(b, 16)) {
                total += 1;
                let perms = parts.next().unwrap_or("");
                let path = parts.nth(3);
                is_stack = perms.starts_with("rw") && path.is_none() && (b - a) >> 10 == stack_kb;
                stacks += u64::from(is_stack);
                continue;
            }
        }
        if first == "Rss:" && is_stack {
            stack_rss += parts.next().and_then(|v| v.parse().ok()).unwrap_or(0);
            is_stack = false;
        }
    }
    Some((total, stacks, stack_rss))
}

/// Kills the server if the client ends early (panic or `exit`) and enforces the time limit.
struct ServerGuard {
    pid: Pid,
}

impl Drop for ServerGuard {
    fn drop(&mut self) {
        let _ = kill_process(self.pid, Signal::KILL);
    }
}

fn read_line(out: &mut BufReader<ChildStdout>) -> Option<String> {
    let mut line = String::new();
    match out.read_line(&mut line) {
        Ok(n) if n > 0 => Some(line.trim_end().to_string()),
        _ => None,
    }
}

fn run_client(o: &Opts) {
    let started = Instant::now();
    let (soft, hard) = raise_nofile(o.conns as u64 + 64);
    println!("client: RLIMIT_NOFILE soft {soft}, hard {hard}");
    let exe = std::env::current_exe().unwrap_or_else(|e| usage(&format!("current_exe: {e}")));
    let mut cmd = Command::new(exe);
    cmd.args(["server", "--addr", "127.0.0.1:0"])
        .args(["--heartbeat-interval", &o.interval.as_secs_f64().to_string()])
        .args(["--heartbeat-timeout", "0"])
        .args(["--max-connections", &(o.conns + 16).to_string()])
        .args(["--notify", if o.inline { "inline" } else { "async" }]);
    if let Some(s) = o.stack {
        cmd.args(["--stack-size", &s.to_string()]);
    }
    if o.message.is_some() {
        cmd.arg("--echo");
    }
    if o.deflate {
        cmd.arg("--deflate");
        if o.server_context {
            cmd.args(["--deflate-server-context", "on"]);
        }
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| usage(&format!("cannot start the server: {e}")));
    let pid = child.id();
    let guard = ServerGuard {
        pid: Pid::from_child(&child),
    };
    {
        // Watchdog: the whole run is bounded.
        let limit = o.max_runtime;
        let spid = Pid::from_child(&child);
        std::thread::spawn(move || {
            std::thread::sleep(limit);
            eprintln!("wsscale: --max-runtime {limit:?} exceeded; killing the server");
            let _ = kill_process(spid, Signal::KILL);
            exit(3);
        });
    }
    let mut stdin = child.stdin.take();
    let mut out = BufReader::new(child.stdout.take().expect("piped stdout"));
    let Some(line) = read_line(&mut out) else {
        eprintln!("wsscale: the server did not start");
        exit(1);
    };
    let Some(addr) = line.strip_prefix("listening on ws://") else {
        eprintln!("wsscale: unexpected server output: {line}");
        exit(1);
    };
    let addr: SocketAddr = addr
        .parse()
        .unwrap_or_else(|e| usage(&format!("bad server address {addr}: {e}")));
    let stack_desc = match o.stack {
        Some(s) => format!("{} KiB", s >> 10),
        None => format!(
            "default ({} KiB)",
            ServerConfig::default().thread_stack_size >> 10
        ),
    };
    println!(
        "server: pid {pid}, ws://{addr}, stack {stack_desc}, heartbeat every {:?}, notify {}",
        o.interval,
        if o.inline { "inline" } else { "async" }
    );
    if o.deflate || o.message.is_some() {
        println!(
            "permessage-deflate: {}; one message each: {}",
            match (o.deflate, o.server_context) {
                (false, _) => "off",
                (true, false) => "on (DeflateConfig::default(): server_no_context_takeover)",
                (true, true) => "on, server context takeover (a compressor per connection)",
            },
            o.message
                .map_or("none".into(), |n| format!("{n} B JSON text, echoed"))
        );
    }
    std::thread::sleep(Duration::from_millis(300));
    let base = status(pid);
    println!(
        "server baseline: VmHWM {} KiB, VmRSS {} KiB, threads {}",
        base.hwm_kb, base.rss_kb, base.threads
    );

    // Phase 1: connect, K at a time.
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ u64::from(pid));
    let mut counters = Counters::default();
    let mut clients: Vec<Client> = Vec::with_capacity(o.conns);
    let (mut connect_errors, mut upgrade_errors) = (0u64, 0u64);
    let t_connect = Instant::now();
    let mut t_last_ok = t_connect;
    let mut next = 0usize;
    while next < o.conns {
        let n = o.batch.min(o.conns - next);
        next += n;
        let mut pending = Vec::with_capacity(n);
        for _ in 0..n {
            match TcpStream::connect_timeout(&addr, Duration::from_secs(5)) {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    let key = rng.ws_key();
                    let offer = if o.deflate {
                        format!("Sec-WebSocket-Extensions: {}\r\n", pmd::OFFER)
                    } else {
                        String::new()
                    };
                    let req = format!(
                        "GET /scale HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\n\
                         Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n\
                         Sec-WebSocket-Version: 13\r\n{offer}\r\n"
                    );
                    match (&s).write_all(req.as_bytes()) {
                        Ok(()) => pending.push((s, key)),
                        Err(e) => {
                            upgrade_errors += 1;
                            counters.error(format!("writing the upgrade request: {e}"));
                        }
                    }
                }
                Err(e) => {
                    connect_errors += 1;
                    counters.error(format!("connect #{}: {e}", clients.len() + pending.len()));
                }
            }
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        for (s, key) in pending {
            match read_101(&s, &key, deadline, o.deflate) {
                Ok((rest, agreed)) => {
                    let _ = s.set_nonblocking(true);
                    let mut dec = Decoder::new(Role::Client, Limits::default().read_chunk(512));
                    if let Some(a) = &agreed {
                        dec.set_inflater(a.inflater());
                    }
                    dec.feed(&rest);
                    clients.push(Client {
                        sock: s,
                        dec,
                        got: None,
                        closed: false,
                        agreed,
                        seq: clients.len() as u64,
                        echoed: false,
                    });
                    t_last_ok = Instant::now();
                }
                Err(e) => {
                    upgrade_errors += 1;
                    counters.error(format!("upgrade #{}: {e}", clients.len()));
                }
            }
        }
    }
    let accept_time = t_last_ok - t_connect;
    let ok = clients.len();
    println!(
        "connected {ok}/{} in {:.3} s ({:.0} conns/s); connect errors {connect_errors}, \
         upgrade errors {upgrade_errors}",
        o.conns,
        accept_time.as_secs_f64(),
        ok as f64 / accept_time.as_secs_f64().max(1e-9)
    );
    if let Some(a) = clients.first().and_then(|c| c.agreed) {
        println!("permessage-deflate agreed: {}", a.describe());
    }
    let after_accept = status(pid);
    println!(
        "server after accept: VmHWM {} KiB, VmRSS {} KiB, threads {}, open fds {}",
        after_accept.hwm_kb, after_accept.rss_kb, after_accept.threads, after_accept.fds
    );

    // Phase 2: idle through at least one heartbeat, answering pings.
    let ep =
        epoll::create(epoll::CreateFlags::CLOEXEC).unwrap_or_else(|e| usage(&format!("epoll_create: {e}")));
    for (i, c) in clients.iter().enumerate() {
        if let Err(e) = epoll::add(
            &ep,
            &c.sock,
            epoll::EventData::new_u64(i as u64),
            epoll::EventFlags::IN,
        ) {
            usage(&format!("epoll_ctl: {e}"));
        }
    }
    if let Some(size) = o.message {
        send_messages(&ep, &mut clients, &mut counters, &mut rng, size);
    }
    let idle = o.idle.unwrap_or(o.interval + Duration::from_secs(1));
    pump(
        &ep,
        &mut clients,
        &mut counters,
        &mut rng,
        Instant::now() + idle,
        None,
        |_| false,
    );
    let idle_st = status(pid);
    let per_conn = |kb: u64| (kb.saturating_sub(base.hwm_kb) as f64) / ok.max(1) as f64;
    println!(
        "server after {idle:?} idle: VmHWM {} KiB, VmRSS {} KiB, threads {}; \
         pings received {}, pongs sent {}",
        idle_st.hwm_kb, idle_st.rss_kb, idle_st.threads, counters.pings, counters.pongs_sent
    );
    println!(
        "server VmHWM per connection: {:.1} KiB ((VmHWM - baseline) / {ok}); VmRSS per \
         connection {:.1} KiB",
        per_conn(idle_st.hwm_kb),
        (idle_st.rss_kb.saturating_sub(base.rss_kb) as f64) / ok.max(1) as f64
    );
    let stack_kb = (o.stack.unwrap_or(ServerConfig::default().thread_stack_size) as u64).div_ceil(4096) * 4;
    if let Some((total, count, rss)) = mappings(pid, stack_kb) {
        println!(
            "server smaps: {total} mappings; {count} thread stacks of {stack_kb} KiB, resident \
             {:.1} KiB each on average",
            rss as f64 / count.max(1) as f64
        );
    }

    // Phase 3: one broadcast, delivered to all.
    let mut bcast = None;
    if let Some(first) = clients.first() {
        let frame = masked(&mut rng, OpCode::Text, format!("broadcast:{PAYLOAD}").as_bytes());
        let t0 = Instant::now();
        if let Err(e) = (&first.sock).write_all(&frame) {
            counters.error(format!("sending the broadcast request: {e}"));
        }
        pump(
            &ep,
            &mut clients,
            &mut counters,
            &mut rng,
            Instant::now() + Duration::from_secs(30),
            Some(t0),
            |cs| cs.iter().all(|c| c.got.is_some() || c.closed),
        );
        bcast = Some(t0);
    }
    let mut times: Vec<Duration> = clients.iter().filter_map(|c| c.got).collect();
    times.sort();
    let missing = ok - times.len();
    let server_line = bcast.and_then(|_| read_line(&mut out)).unwrap_or_default();
    let after_bcast = status(pid);
    if times.is_empty() {
        println!("broadcast: delivered to 0/{ok}");
    } else {
        let pct = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];
        println!(
            "broadcast: delivered to {}/{ok} (missing {missing}); delivery min {:.2} ms, \
             p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            times.len(),
            ms(pct(0.0)),
            ms(pct(0.5)),
            ms(pct(0.99)),
            ms(pct(1.0))
        );
    }
    if let Some(rest) = server_line.strip_prefix("broadcast ") {
        let mut parts = rest.split_whitespace();
        let n = parts.next().unwrap_or("?");
        let us: f64 = parts.next().and_then(|v| v.parse().ok()).unwrap_or(f64::NAN);
        println!(
            "server: broadcast_text handed the frame to {n} connections in {:.2} ms",
            us / 1000.0
        );
    }
    println!(
        "server after broadcast: VmHWM {} KiB, VmRSS {} KiB, threads {}",
        after_bcast.hwm_kb, after_bcast.rss_kb, after_bcast.threads
    );

    // Phase 4: close every connection (close frame, wait for the reply), then stop the server.
    let t_close = Instant::now();
    let close = {
        let mut payload = 1000u16.to_be_bytes().to_vec();
        payload.extend_from_slice(b"done");
        payload
    };
    for c in clients.iter_mut().filter(|c| !c.closed) {
        let frame = masked(&mut rng, OpCode::Close, &close);
        if (&c.sock).write_all(&frame).is_err() {
            c.closed = true;
            counters.dropped += 1;
        }
    }
    pump(
        &ep,
        &mut clients,
        &mut counters,
        &mut rng,
        Instant::now() + Duration::from_secs(15),
        None,
        |cs| cs.iter().all(|c| c.closed),
    );
    let close_time = t_close.elapsed();
    let unclosed = clients.iter().filter(|c| !c.closed).count();
    drop(clients);
    std::thread::sleep(Duration::from_millis(500));
    let after_close = status(pid);
    println!(
        "closed: {} close replies, {} dropped, {unclosed} unanswered, in {:.3} s; server threads \
         now {}",
        counters.closes,
        counters.dropped,
        close_time.as_secs_f64(),
        after_close.threads
    );
    drop(stdin.take());
    let stop_deadline = Instant::now() + Duration::from_secs(20);
    let stopped = read_line(&mut out).unwrap_or_default();
    loop {
        match child.try_wait() {
            Ok(Some(st)) => {
                println!("server exited: {st} ({stopped})");
                break;
            }
            Ok(None) if Instant::now() < stop_deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                println!("server did not exit in time; killed");
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
        }
    }
    drop(guard);
    let me = status(std::process::id());
    println!("client: VmHWM {} KiB", me.hwm_kb);
    println!(
        "errors: connect {connect_errors}, upgrade {upgrade_errors}, broadcast missing {missing}, \
         dropped {}, unexpected texts {}",
        counters.dropped, counters.other_texts
    );
    for e in &counters.errors {
        println!("  error: {e}");
    }
    let quantile = |p: f64| match times.len() {
        0 => "-".to_string(),
        n => format!("{:.2}", ms(times[((n - 1) as f64 * p).round() as usize])),
    };
    let mut extra = String::new();
    if o.deflate || o.message.is_some() {
        extra = format!(
            " deflate={} message={} echoed={} rss_per_conn_kib={:.1}",
            match (o.deflate, o.server_context) {
                (false, _) => "off",
                (true, false) => "on",
                (true, true) => "on+server_context",
            },
            o.message.unwrap_or(0),
            counters.echoes - counters.bad_echoes,
            (idle_st.rss_kb.saturating_sub(base.rss_kb) as f64) / ok.max(1) as f64
        );
    }
    let echo_missing = o
        .message
        .map_or(0, |_| ok as u64 - (counters.echoes - counters.bad_echoes));
    println!(
        "SUMMARY conns={}/{} stack={stack_desc} accept_s={:.3} hwm_per_conn_kib={:.1} \
         threads={} bcast_p50_ms={} bcast_p99_ms={} bcast_max_ms={} errors={}{extra}",
        ok,
        o.conns,
        accept_time.as_secs_f64(),
        per_conn(idle_st.hwm_kb),
        idle_st.threads,
        quantile(0.5),
        quantile(0.99),
        quantile(1.0),
        connect_errors + upgrade_errors + missing as u64 + counters.dropped + echo_missing
    );
    println!("total run time {:.1} s", started.elapsed().as_secs_f64());
    let failed = ok < o.conns || missing > 0 || echo_missing > 0;
    exit(i32::from(failed));
}

/// `--message`: every client sends one JSON text message of `size` bytes (compressed, RSV1,
/// when permessage-deflate was agreed), then all wait for their echoes.
fn send_messages(ep: &OwnedFd, clients: &mut [Client], counters: &mut Counters, rng: &mut Rng, size: usize) {
    counters.message = size;
    let (in0, mut out, mut payload) = (counters.bytes_in, 0u64, Vec::with_capacity(size));
    let mut packed = Vec::new();
    let t0 = Instant::now();
    for c in clients.iter_mut().filter(|c| !c.closed) {
        payload.clear();
        json::write(c.seq, size, &mut payload);
        let frame = match &c.agreed {
            Some(a) => {
                // A compressor for one message: dropped after, as the client needs none.
                packed.clear();
                a.compressor().compress(&payload, &mut packed);
                let mut h = FrameHeader::new(OpCode::Text, packed.len() as u64, Some(rng.mask()));
                h.rsv1 = true;
                let mut f = Vec::with_capacity(packed.len() + 14);
                write_frame(&mut f, h, &packed);
                f
            }
            None => masked(rng, OpCode::Text, &payload),
        };
        match (&c.sock).write_all(&frame) {
            Ok(()) => out += frame.len() as u64,
            Err(e) => {
                counters.error(format!("sending the message on connection {}: {e}", c.seq));
                c.closed = true;
                counters.dropped += 1;
            }
        }
    }
    pump(
        ep,
        clients,
        counters,
        rng,
        Instant::now() + Duration::from_secs(30),
        None,
        |cs| cs.iter().all(|c| c.echoed || c.closed),
    );
    let n = clients.len() as u64;
    let echoed = clients.iter().filter(|c| c.echoed).count();
    let total = (n * size as u64).max(1) as f64;
    let wire_in = counters.bytes_in - in0;
    println!(
        "message: {echoed}/{n} echoes intact in {:.3} s; wire bytes sent {out} ({:.3} of the \
         payload), received {wire_in} ({:.3}; pings included)",
        t0.elapsed().as_secs_f64(),
        out as f64 / total,
        wire_in as f64 / total
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Reads the handshake response; checks the status and `Sec-WebSocket-Accept` (and, when
/// `deflate` was offered, that it was accepted). Returns the bytes that followed the head
/// (frames already sent, such as a heartbeat ping) and the permessage-deflate agreement.
fn read_101(
    mut s: &TcpStream,
    key: &str,
    deadline: Instant,
    deflate: bool,
) -> Result<(Vec<u8>, Option<pmd::Agreed>), String> {
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 512];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 8192 {
            return Err("response head too large".into());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err("timed out waiting for the 101".into());
        }
        s.set_read_timeout(Some(left)).map_err(|e| e.to_string())?;
        match s.read(&mut chunk) {
            Ok(0) => return Err("connection closed before the 101".into()),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err("timed out waiting for the 101".into())
            }
            Err(e) => return Err(format!("reading the 101: {e}")),
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]);
    let status = head.lines().next().unwrap_or("");
    if !status.starts_with("HTTP/1.1 101") {
        return Err(format!("status {status:?}"));
    }
    let want = accept_key(key.as_bytes());
    let good = head.lines().any(|l| {
        l.split_once(':')
            .is_some_and(|(n, v)| n.trim().eq_ignore_ascii_case("sec-websocket-accept") && v.trim() == want)
    });
    if !good {
        return Err("wrong Sec-WebSocket-Accept".into());
    }
    let agreed = if deflate {
        let a = pmd::Agreed::from_response(pmd::extension_values(&head))?;
        Some(a.ok_or("the server did not accept permessage-deflate")?)
    } else {
        None
    };
    let _ = s.set_read_timeout(None);
    Ok((buf[end..].to_vec(), agreed))
}

/// Reads from every open connection until `deadline` or until `done` holds: answers pings,
/// records the broadcast payload's arrival (when `t0` is set), notes close frames and ends.
/// Readiness comes from `ep`, an epoll set holding every client (data: its index), so each
/// wake-up costs in proportion to the sockets that are ready, not to all N.
fn pump(
    ep: &OwnedFd,
    clients: &mut [Client],
    counters: &mut Counters,
    rng: &mut Rng,
    deadline: Instant,
    t0: Option<Instant>,
    done: impl Fn(&[Client]) -> bool,
) {
    let mut events: Vec<epoll::Event> = Vec::with_capacity(1024);
    while !done(clients) {
        let now = Instant::now();
        if now >= deadline {
            return;
        }
        let wait = (deadline - now).min(Duration::from_millis(200));
        let ts = Timespec {
            tv_sec: wait.as_secs() as _,
            tv_nsec: wait.subsec_nanos() as _,
        };
        events.clear();
        match epoll::wait(ep, spare_capacity(&mut events), Some(&ts)) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => {
                counters.error(format!("epoll_wait: {e}"));
                return;
            }
        }
        for ev in &events {
            let c = &mut clients[ev.data.u64() as usize];
            if !c.closed {
                read_client(c, counters, rng, t0);
            }
            if c.closed {
                let _ = epoll::delete(ep, &c.sock);
            }
        }
    }
}

fn read_client(c: &mut Client, counters: &mut Counters, rng: &mut Rng, t0: Option<Instant>) {
    loop {
        let buf = c.dec.read_buf();
        let room = buf.len();
        let full = match (&c.sock).read(buf) {
            Ok(0) => {
                c.closed = true;
                counters.dropped += 1;
                return;
            }
            Ok(n) => {
                c.dec.commit(n);
                counters.bytes_in += n as u64;
                n == room
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return,
            Err(e) => {
                c.closed = true;
                counters.dropped += 1;
                counters.error(format!("read: {e}"));
                return;
            }
        };
        loop {
            match c.dec.next() {
                Ok(None) => break,
                Ok(Some(Message::Ping(p))) => {
                    counters.pings += 1;
                    let pong = masked(rng, OpCode::Pong, p);
                    if (&c.sock).write_all(&pong).is_ok() {
                        counters.pongs_sent += 1;
                    }
                }
                Ok(Some(Message::Text(t))) => match t0 {
                    Some(t0) if t == PAYLOAD && c.got.is_none() => c.got = Some(t0.elapsed()),
                    _ if counters.message > 0 && !c.echoed => {
                        counters.echoes += 1;
                        if json::check(c.seq, counters.message, t.as_bytes()) {
                            c.echoed = true;
                        } else {
                            counters.bad_echoes += 1;
                            counters.error(format!("the echo on connection {} is wrong", c.seq));
                        }
                    }
                    _ => counters.other_texts += 1,
                },
                Ok(Some(Message::Close(_))) => {
                    counters.closes += 1;
                    c.closed = true;
                    return;
                }
                Ok(Some(_)) => {}
                Err(e) => {
                    counters.error(format!("protocol error from the server: {e}"));
                    counters.dropped += 1;
                    c.closed = true;
                    return;
                }
            }
        }
        // A short read drained the socket: `poll` reports it again when more arrives.
        if !full {
            return;
        }
    }
}
