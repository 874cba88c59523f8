//! Soak: many echo connections for a long time, each checking every echo, while a broadcast
//! storm runs against clients that never read. Reports lost and mismatched messages, the
//! server's peak memory (`VmHWM` of the server process) and the peak bytes its budgets held.
//!
//! ```text
//! cargo bench --bench soak -- [--conns N] [--secs S] [--non-readers N] [--readers N]
//!     [--bcast-kib K] [--bcast-ms MS] [--churn-ms MS]
//! ```
//!
//! Defaults: 1 000 echo connections for 60 s; 100 non-reading clients and 4 reading clients
//! on a second server that broadcasts 64 KiB every 5 ms; the non-readers are replaced by a
//! fresh 100 every 5 s (the server drops them for overflow; each new generation renews the
//! pressure).
//!
//! The server is this same binary re-executed with `SYNCWS_SOAK_SERVER=1` (so its memory is
//! its own): two `Server`s in one process, an echo server (asynchronous mode) and the storm
//! server. It prints its counters every 100 ms on stdout and takes commands on stdin
//! (`storm BYTES MS`, `stop`, `quit`).
//!
//! Each echo client sends a numbered text, waits for its echo and compares it (ping-pong);
//! a reply that differs is *mismatched*, a message sent and never answered (the connection
//! failed) is *lost*. Each reading storm client checks that every broadcast arrives whole
//! and in order. Not run in CI (`cargo bench --no-run` only builds it).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Barrier, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tungstenite::Message;

const SERVER_ENV: &str = "SYNCWS_SOAK_SERVER";
const KIB: usize = 1 << 10;

/// `/proc/PID/status` value (KiB, or a count) of `pid` ("self" for this process).
fn status_value(pid: &str, key: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

// =============================================================================================
// The server process

mod server {
    use super::*;
    use syncws::{Connection, Disconnect, Handler, Messenger, Server, ServerConfig};

    /// Disconnects by reason.
    #[derive(Default)]
    struct Drops {
        overflow: AtomicU64,
        write_timeout: AtomicU64,
        budget: AtomicU64,
        /// The client went away without a close frame (1006): a dropped non-reader.
        gone: AtomicU64,
        other: AtomicU64,
    }

    impl Drops {
        fn note(&self, d: &Disconnect) {
            let c = if d.reason == "send queue overflow" {
                &self.overflow
            } else if d.reason.starts_with("write timeout") {
                &self.write_timeout
            } else if d.reason.starts_with("server busy") {
                &self.budget
            } else if d.code.0 == 1006 {
                &self.gone
            } else {
                &self.other
            };
            c.fetch_add(1, Relaxed);
        }
    }

    struct Echo(Arc<Drops>);

    impl Handler for Echo {
        fn on_text(&mut self, conn: &Connection, text: syncws::TextPayload) {
            let _ = conn.send_text(&text);
        }
        fn on_binary(&mut self, conn: &Connection, data: syncws::Payload) {
            let _ = conn.send_binary(&data);
        }
        fn on_disconnect(&mut self, _conn: &Connection, info: Disconnect) {
            // A normal end (the client's close, with or without a code) is not counted.
            if !matches!(info.code.0, 1000 | 1005) {
                self.0.note(&info);
            }
        }
    }

    struct Storm(Arc<Drops>);

    impl Handler for Storm {
        fn on_disconnect(&mut self, _conn: &Connection, info: Disconnect) {
            if !matches!(info.code.0, 1000 | 1005) {
                self.0.note(&info);
            }
        }
    }

    fn broadcaster(m: Messenger, size: usize, every: Duration, stop: Arc<AtomicBool>) -> (u64, u64) {
        let mut payload = vec![0x5Au8; size];
        let (mut n, mut handed) = (0u64, 0u64);
        let mut next = Instant::now();
        while !stop.load(Relaxed) {
            payload[..8].copy_from_slice(&n.to_be_bytes());
            handed += m.broadcast_binary(&payload, None) as u64;
            n += 1;
            next += every;
            let now = Instant::now();
            if next > now {
                std::thread::sleep(next - now);
            } else {
                next = now;
            }
        }
        (n, handed)
    }

    pub(super) fn run() -> ! {
        let conns: usize = std::env::var("SYNCWS_SOAK_CONNS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1000);
        // Every client is on one address here: the per-address cap must not be the limit.
        let cfg = ServerConfig::new(([127, 0, 0, 1], 0))
            .max_connections(conns + 1000)
            .max_handshakes(conns + 1000)
            .max_connections_per_ip(conns + 1000)
            .backlog(4096);
        let echo_drops = Arc::new(Drops::default());
        let storm_drops = Arc::new(Drops::default());
        let echo = Server::new(cfg.clone())
            .start(Echo(echo_drops.clone()))
            .unwrap_or_else(|e| panic!("echo server: {e}"));
        let storm = Server::new(cfg)
            .start(Storm(storm_drops.clone()))
            .unwrap_or_else(|e| panic!("storm server: {e}"));
        let (em, sm) = (echo.messenger(), storm.messenger());
        let out = Arc::new(Mutex::new(std::io::stdout()));
        let say = {
            let out = out.clone();
            move |line: String| {
                let mut o = out.lock().unwrap();
                let _ = writeln!(o, "{line}");
                let _ = o.flush();
            }
        };
        say(format!("ready {} {}", em.local_addr(), sm.local_addr()));
        {
            let (em, sm, say) = (em.clone(), sm.clone(), say.clone());
            let (ed, sd) = (echo_drops.clone(), storm_drops.clone());
            std::thread::spawn(move || loop {
                let (e, s) = (em.stats(), sm.stats());
                say(format!(
                    "stats {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {}",
                    e.connections_open,
                    e.outbound_queued_bytes,
                    e.inbound_held_bytes,
                    e.event_queue_bytes,
                    s.connections_open,
                    s.outbound_queued_bytes,
                    s.inbound_held_bytes,
                    status_value("self", "VmRSS"),
                    status_value("self", "VmHWM"),
                    status_value("self", "Threads"),
                    sd.overflow.load(Relaxed),
                    sd.write_timeout.load(Relaxed),
                    sd.budget.load(Relaxed),
                    sd.gone.load(Relaxed),
                    sd.other.load(Relaxed),
                    ed.overflow.load(Relaxed)
                        + ed.write_timeout.load(Relaxed)
                        + ed.budget.load(Relaxed)
                        + ed.gone.load(Relaxed)
                        + ed.other.load(Relaxed),
                ));
                std::thread::sleep(Duration::from_millis(100));
            });
        }
        let stop = Arc::new(AtomicBool::new(false));
        let mut storm_thread: Option<JoinHandle<(u64, u64)>> = None;
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            let w: Vec<&str> = line.split_whitespace().collect();
            match w.as_slice() {
                ["storm", bytes, ms] => {
                    let (size, every) = (bytes.parse().unwrap(), Duration::from_millis(ms.parse().unwrap()));
                    let (sm, stop) = (sm.clone(), stop.clone());
                    storm_thread = Some(std::thread::spawn(move || broadcaster(sm, size, every, stop)));
                }
                ["stop"] => {
                    stop.store(true, Relaxed);
                    let (n, handed) = storm_thread.take().map_or((0, 0), |t| t.join().unwrap());
                    say(format!("storm_done {n} {handed}"));
                }
                ["quit"] => break,
                _ => say(format!("error unknown command {line:?}")),
            }
        }
        let s = sm.stats();
        say(format!(
            "final {} {} {}",
            status_value("self", "VmHWM"),
            s.frames_out,
            s.bytes_out
        ));
        echo.stop();
        storm.stop();
        std::process::exit(0)
    }
}

// =============================================================================================
// The load

struct Opts {
    conns: usize,
    secs: f64,
    non_readers: usize,
    readers: usize,
    bcast_kib: usize,
    bcast_ms: u64,
    churn_ms: u64,
}

fn opts() -> Opts {
    let mut o = Opts {
        conns: 1000,
        secs: 60.0,
        non_readers: 100,
        readers: 4,
        bcast_kib: 64,
        bcast_ms: 5,
        churn_ms: 5000,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--conns" => o.conns = val().parse().expect("--conns N"),
            "--secs" => o.secs = val().parse().expect("--secs S"),
            "--non-readers" => o.non_readers = val().parse().expect("--non-readers N"),
            "--readers" => o.readers = val().parse().expect("--readers N"),
            "--bcast-kib" => o.bcast_kib = val().parse().expect("--bcast-kib K"),
            "--bcast-ms" => o.bcast_ms = val().parse().expect("--bcast-ms MS"),
            "--churn-ms" => o.churn_ms = val().parse().expect("--churn-ms MS"),
            // `cargo bench` passes --bench; ignore it and any filter.
            _ => {}
        }
    }
    o
}

/// Peaks of the server's counters, from its stats lines.
#[derive(Debug, Default, Clone, Copy)]
struct ServerPeaks {
    echo_open: u64,
    echo_outbound: u64,
    echo_inbound: u64,
    echo_events: u64,
    storm_open_min_during: Option<u64>,
    storm_open: u64,
    storm_outbound: u64,
    storm_inbound: u64,
    rss_kib: u64,
    hwm_kib: u64,
    threads: u64,
    drop_overflow: u64,
    drop_write_timeout: u64,
    drop_budget: u64,
    drop_gone: u64,
    drop_other: u64,
    echo_abnormal: u64,
}

#[derive(Default)]
struct FromServer {
    peaks: ServerPeaks,
    /// Storm running: track the fewest non-readers connected.
    storming: bool,
    storm_done: Option<(u64, u64)>,
    final_line: Option<(u64, u64, u64)>,
}

struct Proc {
    child: Child,
    stdin: ChildStdin,
    echo: SocketAddr,
    storm: SocketAddr,
    seen: Arc<Mutex<FromServer>>,
    reader: Option<JoinHandle<()>>,
}

impl Proc {
    fn start(conns: usize) -> Proc {
        let mut child = Command::new(std::env::current_exe().expect("current_exe"))
            .env(SERVER_ENV, "1")
            .env("SYNCWS_SOAK_CONNS", conns.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn server");
        let stdin = child.stdin.take().expect("stdin");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let ready = lines.next().expect("server output").expect("server output");
        let mut w = ready.split_whitespace().skip(1);
        let echo = w.next().expect("echo address").parse().expect("echo address");
        let storm = w.next().expect("storm address").parse().expect("storm address");
        let seen = Arc::new(Mutex::new(FromServer::default()));
        let reader = {
            let seen = seen.clone();
            std::thread::spawn(move || {
                for line in lines.map_while(Result::ok) {
                    let mut s = seen.lock().unwrap();
                    let v: Vec<u64> = line
                        .split_whitespace()
                        .skip(1)
                        .filter_map(|x| x.parse().ok())
                        .collect();
                    if line.starts_with("stats ") && v.len() == 16 {
                        let p = &mut s.peaks;
                        p.echo_open = p.echo_open.max(v[0]);
                        p.echo_outbound = p.echo_outbound.max(v[1]);
                        p.echo_inbound = p.echo_inbound.max(v[2]);
                        p.echo_events = p.echo_events.max(v[3]);
                        p.storm_open = p.storm_open.max(v[4]);
                        p.storm_outbound = p.storm_outbound.max(v[5]);
                        p.storm_inbound = p.storm_inbound.max(v[6]);
                        p.rss_kib = p.rss_kib.max(v[7]);
                        p.hwm_kib = p.hwm_kib.max(v[8]);
                        p.threads = p.threads.max(v[9]);
                        p.drop_overflow = v[10];
                        p.drop_write_timeout = v[11];
                        p.drop_budget = v[12];
                        p.drop_gone = v[13];
                        p.drop_other = v[14];
                        p.echo_abnormal = v[15];
                        if s.storming {
                            let m = s.peaks.storm_open_min_during.map_or(v[4], |m| m.min(v[4]));
                            s.peaks.storm_open_min_during = Some(m);
                        }
                    } else if line.starts_with("storm_done ") && v.len() == 2 {
                        s.storm_done = Some((v[0], v[1]));
                    } else if line.starts_with("final ") && v.len() == 3 {
                        s.final_line = Some((v[0], v[1], v[2]));
                    } else {
                        eprintln!("server: {line}");
                    }
                }
            })
        };
        Proc {
            child,
            stdin,
            echo,
            storm,
            seen,
            reader: Some(reader),
        }
    }

    fn command(&mut self, c: &str) {
        writeln!(self.stdin, "{c}").expect("server stdin");
        self.stdin.flush().expect("server stdin");
    }

    fn wait_for<T>(&self, what: &str, f: impl Fn(&FromServer) -> Option<T>) -> T {
        let t0 = Instant::now();
        loop {
            if let Some(v) = f(&self.seen.lock().unwrap()) {
                return v;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "server never reported {what}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn finish(mut self) -> FromServer {
        self.command("quit");
        let _ = self.child.wait();
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tcp(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.set_write_timeout(Some(Duration::from_secs(10)))?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// Echo client results.
#[derive(Debug, Default, Clone, Copy)]
struct EchoCount {
    sent: u64,
    echoed: u64,
    mismatched: u64,
    failed: u64,
    connect_failed: u64,
}

fn echo_client(i: usize, addr: SocketAddr, start: Arc<Barrier>, deadline: Arc<Mutex<Instant>>) -> EchoCount {
    let mut n = EchoCount::default();
    let ws = tcp(addr)
        .map_err(|e| e.to_string())
        .and_then(|s| tungstenite::client(format!("ws://{addr}/"), s).map_err(|e| e.to_string()));
    start.wait();
    let mut ws = match ws {
        Ok((ws, _)) => ws,
        Err(e) => {
            eprintln!("echo client {i}: connect: {e}");
            n.connect_failed = 1;
            return n;
        }
    };
    let end = *deadline.lock().unwrap();
    let mut seq = 0u64;
    'run: while Instant::now() < end {
        let text = format!("client {i} message {seq} ........");
        if ws.send(Message::text(text.clone())).is_err() {
            n.failed = 1;
            break;
        }
        n.sent += 1;
        loop {
            match ws.read() {
                Ok(Message::Text(t)) => {
                    if t.as_str() == text {
                        n.echoed += 1;
                    } else {
                        n.mismatched += 1;
                    }
                    break;
                }
                Ok(Message::Ping(_) | Message::Pong(_)) => {}
                Ok(m) => {
                    eprintln!("echo client {i}: unexpected {m:?}");
                    n.mismatched += 1;
                    break;
                }
                Err(e) => {
                    eprintln!("echo client {i}: {e}");
                    n.failed = 1;
                    break 'run;
                }
            }
        }
        seq += 1;
    }
    let _ = ws.close(None);
    let t0 = Instant::now();
    while ws.read().is_ok() && t0.elapsed() < Duration::from_secs(5) {}
    n
}

/// A reading storm client: every broadcast whole and in order.
#[derive(Debug, Default, Clone, Copy)]
struct ReaderCount {
    received: u64,
    gaps: u64,
    damaged: u64,
    failed: u64,
}

fn storm_reader(addr: SocketAddr, size: usize, expect: Arc<AtomicU64>, done: Arc<AtomicBool>) -> ReaderCount {
    let mut n = ReaderCount::default();
    let Ok((mut ws, _)) = tcp(addr)
        .map_err(|e| e.to_string())
        .and_then(|s| tungstenite::client(format!("ws://{addr}/"), s).map_err(|e| e.to_string()))
    else {
        n.failed = 1;
        return n;
    };
    // Short read timeouts, so that the end of the storm is noticed.
    let _ = ws.get_ref().set_read_timeout(Some(Duration::from_millis(500)));
    let mut next = None::<u64>;
    let mut quiet_since = None::<Instant>;
    loop {
        // After the storm: read until every broadcast is in (or nothing comes for 5 s).
        if done.load(Relaxed) && n.received + n.gaps >= expect.load(Relaxed) {
            break;
        }
        match ws.read() {
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                let since = *quiet_since.get_or_insert_with(Instant::now);
                if done.load(Relaxed) && since.elapsed() > Duration::from_secs(5) {
                    break;
                }
                continue;
            }
            Ok(Message::Binary(b)) => {
                if b.len() != size {
                    n.damaged += 1;
                    continue;
                }
                let seq = u64::from_be_bytes(b[..8].try_into().unwrap());
                if b[8..].iter().any(|&x| x != 0x5A) {
                    n.damaged += 1;
                }
                let want = next.unwrap_or(seq);
                if seq != want {
                    n.gaps += seq.saturating_sub(want);
                }
                next = Some(seq + 1);
                n.received += 1;
                quiet_since = None;
            }
            Ok(_) => {}
            Err(_) => {
                if !done.load(Relaxed) {
                    n.failed = 1;
                }
                break;
            }
        }
    }
    let _ = ws.close(None);
    n
}

/// The upgrade by hand on a socket with a small receive buffer; the socket is then never read.
fn non_reader(addr: SocketAddr) -> std::io::Result<TcpStream> {
    use rustix::net::{AddressFamily, SocketType};
    let fd = rustix::net::socket(AddressFamily::INET, SocketType::STREAM, None)?;
    rustix::net::sockopt::set_socket_recv_buffer_size(&fd, 4 * KIB)?;
    rustix::net::connect(&fd, &addr)?;
    let mut s = TcpStream::from(fd);
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )?;
    // Read the response head byte by byte, so no frame byte is consumed.
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut b)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        head.push(b[0]);
    }
    if !head.starts_with(b"HTTP/1.1 101") {
        return Err(std::io::Error::other(String::from_utf8_lossy(&head).into_owned()));
    }
    Ok(s)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn open_files_limit() -> u64 {
    std::fs::read_to_string("/proc/self/limits")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3)?.parse().ok())
        .unwrap_or(0)
}

fn main() {
    if std::env::var_os(SERVER_ENV).is_some() {
        server::run();
    }
    let o = opts();
    let need = (o.conns + 2 * o.non_readers + o.readers + 64) as u64;
    let limit = open_files_limit();
    if limit < need {
        eprintln!("warning: open-file limit {limit} < {need} needed; raise it (ulimit -n)");
    }
    let mut p = Proc::start(o.conns);
    let size = o.bcast_kib * KIB;

    // Connect everything, then start the storm and the echo traffic together.
    let t_connect = Instant::now();
    let start = Arc::new(Barrier::new(o.conns + 1));
    let deadline = Arc::new(Mutex::new(Instant::now()));
    let echo_threads: Vec<JoinHandle<EchoCount>> = (0..o.conns)
        .map(|i| {
            let (start, deadline, addr) = (start.clone(), deadline.clone(), p.echo);
            std::thread::Builder::new()
                .stack_size(128 * KIB)
                .spawn(move || echo_client(i, addr, start, deadline))
                .expect("spawn echo client")
        })
        .collect();
    let expect = Arc::new(AtomicU64::new(u64::MAX));
    let storm_over = Arc::new(AtomicBool::new(false));
    let readers: Vec<JoinHandle<ReaderCount>> = (0..o.readers)
        .map(|_| {
            let (addr, expect, done) = (p.storm, expect.clone(), storm_over.clone());
            std::thread::spawn(move || storm_reader(addr, size, expect, done))
        })
        .collect();
    let non_reader_stop = Arc::new(AtomicBool::new(false));
    let generations = Arc::new(AtomicU64::new(0));
    let nr_failed = Arc::new(AtomicU64::new(0));
    let first_generation = Arc::new(Barrier::new(2));
    let churn = {
        let (stop, gens, failed, first) = (
            non_reader_stop.clone(),
            generations.clone(),
            nr_failed.clone(),
            first_generation.clone(),
        );
        let (addr, count, every) = (p.storm, o.non_readers, Duration::from_millis(o.churn_ms));
        std::thread::spawn(move || {
            let mut current: Vec<TcpStream> = Vec::new();
            let mut first = Some(first);
            while !stop.load(Relaxed) {
                let fresh: Vec<TcpStream> = (0..count)
                    .filter_map(|_| {
                        non_reader(addr)
                            .map_err(|e| {
                                eprintln!("non-reader: {e}");
                                failed.fetch_add(1, Relaxed);
                            })
                            .ok()
                    })
                    .collect();
                current = fresh; // the old generation is dropped (closed unread)
                gens.fetch_add(1, Relaxed);
                if let Some(b) = first.take() {
                    b.wait();
                }
                let t0 = Instant::now();
                while t0.elapsed() < every && !stop.load(Relaxed) {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
            drop(current);
        })
    };
    first_generation.wait();
    p.wait_for("the storm clients", |s| {
        (s.peaks.storm_open >= (o.readers + o.non_readers) as u64).then_some(())
    });
    p.seen.lock().unwrap().storming = true;
    p.command(&format!("storm {size} {}", o.bcast_ms));
    let t0 = Instant::now();
    *deadline.lock().unwrap() = t0 + Duration::from_secs_f64(o.secs);
    start.wait();
    let connect_time = t0 - t_connect;

    let mut echo = EchoCount::default();
    for t in echo_threads {
        let c = t.join().expect("echo client");
        echo.sent += c.sent;
        echo.echoed += c.echoed;
        echo.mismatched += c.mismatched;
        echo.failed += c.failed;
        echo.connect_failed += c.connect_failed;
    }
    let elapsed = t0.elapsed().as_secs_f64();
    p.seen.lock().unwrap().storming = false;
    p.command("stop");
    non_reader_stop.store(true, Relaxed);
    churn.join().expect("churn");
    let (broadcasts, handed) = p.wait_for("storm_done", |s| s.storm_done);
    expect.store(broadcasts, Relaxed);
    storm_over.store(true, Relaxed);
    let mut rd = ReaderCount::default();
    for t in readers {
        let c = t.join().expect("storm reader");
        rd.received += c.received;
        rd.gaps += c.gaps;
        rd.damaged += c.damaged;
        rd.failed += c.failed;
    }
    let fin = p.finish();
    let pk = fin.peaks;
    let hwm = fin.final_line.map_or(pk.hwm_kib, |f| f.0.max(pk.hwm_kib));
    let lost = echo.sent - echo.echoed - echo.mismatched;

    println!();
    println!(
        "soak: {} echo connections x {:.0} s, {} non-readers (renewed every {} ms) + {} readers \
         under a {} KiB broadcast every {} ms",
        o.conns, o.secs, o.non_readers, o.churn_ms, o.readers, o.bcast_kib, o.bcast_ms
    );
    println!();
    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| echo connections connected (peak open) | {} ({:.1} s to connect) |",
        pk.echo_open,
        connect_time.as_secs_f64()
    );
    println!(
        "| echo messages sent / echoed | {} / {} |",
        echo.sent, echo.echoed
    );
    println!("| echo messages/s | {:.0} |", echo.echoed as f64 / elapsed);
    println!("| lost / mismatched | {lost} / {} |", echo.mismatched);
    println!(
        "| echo client errors (connect, connection) | {} ({} , {}) |",
        echo.connect_failed + echo.failed,
        echo.connect_failed,
        echo.failed
    );
    println!(
        "| echo disconnects other than a client close (server side) | {} |",
        pk.echo_abnormal
    );
    println!(
        "| broadcasts / deliveries handed / per s | {broadcasts} / {handed} / {:.0} |",
        handed as f64 / elapsed
    );
    println!(
        "| storm readers: received / expected, gaps, damaged, failed | {} / {}, {}, {}, {} |",
        rd.received,
        broadcasts * o.readers as u64,
        rd.gaps,
        rd.damaged,
        rd.failed
    );
    println!(
        "| non-reader generations (failed connects) | {} ({}) |",
        generations.load(Relaxed),
        nr_failed.load(Relaxed)
    );
    println!(
        "| storm disconnects: overflow / write timeout / budget / client gone / other | {} / {} / {} / {} / {} |",
        pk.drop_overflow, pk.drop_write_timeout, pk.drop_budget, pk.drop_gone, pk.drop_other
    );
    println!(
        "| storm connections open: peak / fewest during the storm | {} / {} |",
        pk.storm_open,
        pk.storm_open_min_during.unwrap_or(0)
    );
    println!(
        "| peak outbound_queued_bytes storm / echo | {:.1} MiB / {:.2} MiB |",
        mib(pk.storm_outbound / 1024),
        mib(pk.echo_outbound / 1024)
    );
    println!(
        "| peak inbound_held_bytes echo / storm | {:.2} MiB / {:.2} MiB |",
        mib(pk.echo_inbound / 1024),
        mib(pk.storm_inbound / 1024)
    );
    println!(
        "| peak event_queue_bytes (echo) | {} KiB |",
        pk.echo_events / 1024
    );
    println!(
        "| server peak RSS (VmHWM) / peak VmRSS sampled | {:.1} MiB / {:.1} MiB |",
        mib(hwm),
        mib(pk.rss_kib)
    );
    println!("| server peak threads | {} |", pk.threads);
    println!(
        "| load generator peak RSS (VmHWM) | {:.1} MiB |",
        mib(status_value("self", "VmHWM"))
    );
    let bad = lost + echo.mismatched + echo.failed + echo.connect_failed + rd.gaps + rd.damaged + rd.failed;
    println!();
    println!(
        "{}",
        if bad == 0 {
            "result: OK, 0 lost or mismatched"
        } else {
            "result: ERRORS (see above)"
        }
    );
}
