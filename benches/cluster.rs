//! Cluster: broadcast latency (p50/p99) and throughput on one node against two nodes sharing a
//! real `redis-server`, and Redis CPU per message.
//!
//! ```text
//! cargo bench --bench cluster -- [--clients N] [--msgs N] [--size BYTES]
//! ```
//!
//! Defaults: 20 clients (split 10/10 on two nodes), 5 000 messages of 256 bytes. It starts its
//! own `redis-server` on a free 127.0.0.1 port (no persistence) and its servers in this
//! process; clients are tungstenite threads. Latency: each message carries the time it was
//! broadcast (one clock: one process); paced at one message per 200 µs. Throughput: the same
//! number of messages as fast as `broadcast_text` takes them (cross-node copies over the
//! queue are dropped and counted, at most once); the rate is messages received per client per
//! second, from the first send to the last receipt. Not run in CI (`cargo bench --no-run` builds
//! it).

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use syncws::{ClusterConfig, Handler, Server, ServerConfig, ServerHandle};
use tungstenite::Message;

struct Nothing;
impl Handler for Nothing {}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(default)
}

fn redis() -> (Child, u16) {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("redis-server")
        .args([
            "--bind",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server (apt-get install redis-server)");
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        std::thread::sleep(Duration::from_millis(20));
    }
    (child, port)
}

/// User+system CPU of `pid` in clock ticks (1/100 s).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    fields
        .get(11..13)
        .map_or(0, |f| f.iter().filter_map(|v| v.parse::<u64>().ok()).sum())
}

fn node(port: Option<u16>, name: &str) -> ServerHandle {
    let mut config = ServerConfig::new(([127, 0, 0, 1], 0));
    if let Some(p) = port {
        config = config.cluster(ClusterConfig::new(format!("redis://127.0.0.1:{p}")).node(name));
    }
    let h = Server::new(config).start(Nothing).expect("start");
    while port.is_some() && h.cluster_is_up() != Some(true) {
        std::thread::sleep(Duration::from_millis(10));
    }
    h
}

/// What a client reports: the latency of each message (µs), and when the last arrived.
type Report = (Vec<u64>, Instant);

/// `n` clients on `h`, each reporting when `msgs` arrived or 2 s passed without one.
fn clients(h: &ServerHandle, n: usize, msgs: usize, epoch: Instant, tx: &mpsc::Sender<Report>) {
    for _ in 0..n {
        let addr = h.local_addr();
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let (mut ws, _) = tungstenite::client(format!("ws://{addr}/"), s).unwrap();
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut lat = Vec::with_capacity(msgs);
            let mut last = Instant::now();
            while lat.len() < msgs {
                let Ok(Message::Text(t)) = ws.read() else { break };
                last = Instant::now();
                let sent: u64 = t.split(' ').next().and_then(|v| v.parse().ok()).unwrap_or(0);
                lat.push((epoch.elapsed().as_micros() as u64).saturating_sub(sent));
            }
            let _ = tx.send((lat, last));
        });
    }
    while h.connection_count() < n {
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Broadcasts `msgs` messages of `size` bytes from `from` (paced every `gap`, or not at all),
/// waits for the `n` clients, returns (p50, p99 µs, received, seconds to the last receipt).
fn run(
    from: &ServerHandle,
    rx: &mpsc::Receiver<Report>,
    n: usize,
    msgs: usize,
    size: usize,
    gap: Option<Duration>,
    epoch: Instant,
) -> (u64, u64, usize, f64) {
    let pad = "x".repeat(size.saturating_sub(24));
    let t0 = Instant::now();
    for i in 0..msgs {
        from.broadcast_text(&format!("{} {pad}", epoch.elapsed().as_micros()), None);
        if let Some(g) = gap {
            let until = t0 + g * (i as u32 + 1);
            while Instant::now() < until {
                std::hint::spin_loop();
            }
        }
    }
    let reports: Vec<Report> = (0..n)
        .filter_map(|_| rx.recv_timeout(Duration::from_secs(30)).ok())
        .collect();
    let last = reports.iter().map(|r| r.1).max().unwrap_or(t0);
    let secs = last.duration_since(t0).as_secs_f64();
    let mut all: Vec<u64> = reports.into_iter().flat_map(|r| r.0).collect();
    all.sort_unstable();
    let pct = |p: usize| {
        all.get(all.len().saturating_sub(1) * p / 100)
            .copied()
            .unwrap_or(0)
    };
    (pct(50), pct(99), all.len(), secs)
}

fn main() {
    let (n, msgs, size) = (arg("--clients", 20), arg("--msgs", 5000), arg("--size", 256));
    let (mut child, port) = redis();
    let epoch = Instant::now();
    println!("{n} clients, {msgs} broadcasts of {size} B; p50/p99 in µs");
    for (label, gap) in [
        ("latency (paced 200 µs)", Some(Duration::from_micros(200))),
        ("throughput", None),
    ] {
        let one = node(None, "");
        let (tx, rx) = mpsc::channel();
        clients(&one, n, msgs, epoch, &tx);
        let (p50, p99, got, secs) = run(&one, &rx, n, msgs, size, gap, epoch);
        println!(
            "one node   {label:24} p50 {p50:6} p99 {p99:6}  {got}/{} delivered, {:.0} msg/s per client",
            n * msgs,
            got as f64 / n as f64 / secs
        );
        one.stop();

        let (a, b) = (node(Some(port), "a"), node(Some(port), "b"));
        let (tx, rx) = mpsc::channel();
        clients(&b, n / 2, msgs, epoch, &tx);
        while a.cluster_connection_count() < n / 2 {
            std::thread::sleep(Duration::from_millis(10));
        }
        let cpu0 = cpu_ticks(child.id());
        let (p50, p99, got, secs) = run(&a, &rx, n / 2, msgs, size, gap, epoch);
        let cpu = (cpu_ticks(child.id()) - cpu0) as f64 * 10_000.0 / msgs as f64;
        let dropped = a.stats().cluster_dropped;
        println!("cross-node {label:24} p50 {p50:6} p99 {p99:6}  {got}/{} delivered ({dropped} dropped), {:.0} msg/s per client, Redis {cpu:.1} µs CPU/msg", n / 2 * msgs, got as f64 / (n / 2) as f64 / secs);
        a.stop();
        b.stop();
    }
    let _ = child.kill();
    let _ = child.wait();
}
