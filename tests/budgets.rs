//! Hostile traffic against the memory budgets and deadlines of `ServerConfig`: each test is one
//! attack, bounded in clients and time, on loopback, measured with the server's own counters
//! (`Messenger::stats`) and, where memory is the point, with this process's resident set (the
//! server runs in-process). The tests take a process-wide lock so that their measurements do
//! not overlap (and the 2-core CI machine is not swamped).
//!
//! Non-reading clients are raw sockets with a small receive buffer, upgraded by hand and
//! never read (until a test decides to look at what arrived).

mod common;

use std::collections::HashMap;
use std::io::Write as _;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::*;
use crossbeam_channel::{Receiver, Sender};
use syncws::{
    CloseCode, Connection, ConnectionId, Handler, HeartbeatConfig, Messenger, OverflowPolicy, SendError,
    Server, StatsSnapshot,
};
use syncws_protocol::frame::OpCode;

const KIB: usize = 1 << 10;
const MIB: usize = 1 << 20;
/// The receive buffer of a non-reading client.
const SMALL_RCVBUF: usize = 4 * KIB;

/// One test at a time: RSS and the counters are per process, and the attacks are heavy.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / MIB as f64
}

/// The largest values of the budget counters (and of the RSS) seen while it ran.
#[derive(Debug, Default, Clone, Copy)]
struct Peaks {
    outbound: u64,
    inbound: u64,
    events: u64,
    rss_kib: u64,
}

/// Samples `Messenger::stats` (and the RSS) every millisecond on its own thread.
struct Sampler {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Peaks>,
}

impl Sampler {
    fn start(m: Messenger) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut p = Peaks::default();
            let mut n = 0u64;
            while !flag.load(Relaxed) {
                let s = m.stats();
                p.outbound = p.outbound.max(s.outbound_queued_bytes);
                p.inbound = p.inbound.max(s.inbound_held_bytes);
                p.events = p.events.max(s.event_queue_bytes);
                // Reading /proc costs more than a snapshot: every 10th round.
                if n.is_multiple_of(10) {
                    p.rss_kib = p.rss_kib.max(rss_kib());
                }
                n += 1;
                std::thread::sleep(Duration::from_millis(1));
            }
            p
        });
        Self { stop, thread }
    }

    fn finish(self) -> Peaks {
        self.stop.store(true, Relaxed);
        self.thread.join().expect("sampler")
    }
}

/// Connects `n` non-reading raw clients; returns them with their server-side connections (in
/// the same order).
fn non_readers(srv: &TestServer, n: usize, rcvbuf: usize) -> (Vec<RawClient>, Vec<Connection>) {
    let mut clients = Vec::with_capacity(n);
    let mut conns = Vec::with_capacity(n);
    for _ in 0..n {
        let c = raw_connect_small(srv.local_addr(), "/", rcvbuf);
        let local = c.sock.local_addr().unwrap();
        let conn = srv.expect_connect();
        assert_eq!(conn.peer_addr(), local, "connect events in order");
        clients.push(c);
        conns.push(conn);
    }
    srv.wait_connections(n);
    (clients, conns)
}

/// Waits for the disconnects of every id in `ids` (other events are skipped), sampling `f`
/// meanwhile; returns the disconnects by id and how long they took.
fn disconnects_of(
    srv: &TestServer,
    ids: &[ConnectionId],
    ceiling: Duration,
) -> (HashMap<ConnectionId, syncws::Disconnect>, Duration) {
    let t0 = Instant::now();
    let mut got = HashMap::new();
    while got.len() < ids.len() {
        let left = ceiling.checked_sub(t0.elapsed()).unwrap_or_else(|| {
            panic!(
                "only {} of {} disconnects within {ceiling:?}",
                got.len(),
                ids.len()
            )
        });
        match srv.events.recv_timeout(left) {
            Ok(Ev::Disconnect(c, d)) if ids.contains(&c.id()) => {
                got.insert(c.id(), d);
            }
            Ok(_) => {}
            Err(e) => panic!("waiting for disconnects ({} of {}): {e:?}", got.len(), ids.len()),
        }
    }
    (got, t0.elapsed())
}

fn stats(srv: &TestServer) -> StatsSnapshot {
    srv.stats()
}

// ---------------------------------------------------------------------------------------------
// a. Broadcast amplification

/// 100 clients that never read, 12 broadcasts of 1 MiB: the frames are shared, so the server
/// holds about 12 MiB, not 1.2 GiB; after `write_timeout` every one of them is dropped and
/// the queues are empty again.
#[test]
fn broadcast_to_non_readers_is_held_once_and_dropped_after_write_timeout() {
    let _g = serial();
    const CLIENTS: usize = 100;
    const BROADCASTS: usize = 12;
    let server = Server::new(config().write_timeout(Duration::from_secs(2)));
    let srv = start_with(&server, Mode::Async, false);
    let (clients, conns) = non_readers(&srv, CLIENTS, SMALL_RCVBUF);
    let m = srv.messenger();
    let payload = vec![0xA5u8; MIB];
    let rss0 = rss_kib();
    // Phase 1, the broadcasts: what sharing the frames is about.
    let sampler = Sampler::start(m.clone());
    let t0 = Instant::now();
    for _ in 0..BROADCASTS {
        assert_eq!(
            m.broadcast_binary(&payload, None),
            CLIENTS,
            "every client takes the frame"
        );
    }
    let sent_in = t0.elapsed();
    let after = m.stats();
    let rss1 = rss_kib();
    let mut peaks = sampler.finish();
    peaks.outbound = peaks.outbound.max(after.outbound_queued_bytes);
    assert_eq!(
        srv.connection_count(),
        CLIENTS,
        "a client was dropped during the broadcasts"
    );
    // Phase 2, the write deadline.
    let sampler = Sampler::start(m.clone());
    let ids: Vec<ConnectionId> = conns.iter().map(Connection::id).collect();
    let (ds, dropped_in) = disconnects_of(&srv, &ids, Duration::from_secs(15));
    let emptied_in = wait_until_within(Duration::from_secs(5), "outbound queues empty", || {
        m.stats().outbound_queued_bytes == 0
    });
    let drop_peaks = sampler.finish();
    let rss_growth = peaks.rss_kib.max(rss1).saturating_sub(rss0);
    eprintln!(
        "broadcast: {BROADCASTS} x 1 MiB to {CLIENTS} non-readers in {sent_in:?}; queued after: \
         {:.1} MiB, peak {:.1} MiB; RSS +{:.1} MiB (peak); all dropped {dropped_in:?} after the \
         last broadcast, queues empty {emptied_in:?} later; peak queued while dropping {:.1} MiB, \
         RSS +{:.1} MiB",
        mib(after.outbound_queued_bytes),
        mib(peaks.outbound),
        rss_growth as f64 / 1024.0,
        mib(drop_peaks.outbound),
        drop_peaks.rss_kib.saturating_sub(rss0) as f64 / 1024.0,
    );
    // 12 MiB of frames, each held once by all 100 queues.
    let bound = 40 * MIB as u64;
    assert!(peaks.outbound < bound, "peak outbound {} bytes", peaks.outbound);
    // Most of the 12 MiB cannot have left (the clients hold a few KiB, the kernel a few MiB).
    assert!(
        peaks.outbound >= 4 * MIB as u64,
        "the attack queued little: {peaks:?}"
    );
    assert!(rss_growth < 40 * 1024, "RSS grew {rss_growth} KiB");
    for (id, d) in &ds {
        assert_eq!(d.code, CloseCode(1008), "{id:?}: {d:?}");
        assert!(d.reason.starts_with("write timeout"), "{id:?}: {d:?}");
    }
    // The deadline is 2 s without progress; all 100 within a generous bound of it.
    assert!(dropped_in < Duration::from_secs(12), "{dropped_in:?}");
    assert_eq!(m.stats().outbound_queued_bytes, 0);
    // (What the aborts themselves hold: see the next test.)
    drop(clients);
}

/// When non-readers are aborted (here by the write deadline) while a broadcast frame is
/// partly on their wire, each keeps the rest of that frame (so its close frame follows a whole
/// frame) as a reference to the one shared copy: about one frame is held, within
/// `outbound_budget`, not one copy per aborted connection.
#[test]
fn aborting_non_readers_keeps_a_broadcast_frame_shared() {
    let _g = serial();
    const CLIENTS: usize = 20;
    const FRAME: usize = 8 * MIB;
    let budget = 32 * MIB;
    let server = Server::new(
        config()
            .write_timeout(Duration::from_secs(1))
            .outbound_budget(budget),
    );
    let srv = start_with(&server, Mode::Async, false);
    let (clients, conns) = non_readers(&srv, CLIENTS, SMALL_RCVBUF);
    let m = srv.messenger();
    let rss0 = rss_kib();
    let sampler = Sampler::start(m.clone());
    assert_eq!(m.broadcast_binary(&vec![1u8; FRAME], None), CLIENTS);
    let after = m.stats().outbound_queued_bytes;
    let ids: Vec<ConnectionId> = conns.iter().map(Connection::id).collect();
    let (ds, _) = disconnects_of(&srv, &ids, Duration::from_secs(15));
    wait_until("outbound queues empty", || m.stats().outbound_queued_bytes == 0);
    let peaks = sampler.finish();
    eprintln!(
        "abort of {CLIENTS} non-readers holding one {} MiB broadcast: queued {:.1} MiB after the \
         broadcast, peak {:.1} MiB during the aborts (budget {} MiB); RSS +{:.1} MiB",
        FRAME / MIB,
        mib(after),
        mib(peaks.outbound),
        budget / MIB,
        peaks.rss_kib.saturating_sub(rss0) as f64 / 1024.0
    );
    assert!(ds.values().all(|d| d.code == CloseCode(1008)), "{ds:?}");
    assert!(
        peaks.outbound <= (FRAME + MIB) as u64,
        "the aborts held {:.1} MiB for one {} MiB frame",
        mib(peaks.outbound),
        FRAME / MIB
    );
    drop(clients);
}

// ---------------------------------------------------------------------------------------------
// b. A message larger than the per-connection limit

/// A 4 MiB message with `max_send_queue` 1 MiB, to 60 clients that do not read: every send is
/// refused with `TooLong` at once, nothing is queued, the connections stay open.
#[test]
fn message_larger_than_max_send_queue_is_refused_without_queueing() {
    let _g = serial();
    const CLIENTS: usize = 60;
    let server = Server::new(config().max_send_queue(MIB));
    let srv = start_with(&server, Mode::Async, false);
    let (mut clients, conns) = non_readers(&srv, CLIENTS, SMALL_RCVBUF);
    let m = srv.messenger();
    let big = vec![7u8; 4 * MIB];
    let rss0 = rss_kib();
    let t0 = Instant::now();
    for c in &conns {
        assert_eq!(c.send_binary(&big), Err(SendError::TooLong));
        assert_eq!(m.send_binary(&c.id(), &big), Err(SendError::TooLong));
        assert_eq!(c.queued_bytes(), 0);
    }
    assert_eq!(
        m.broadcast_binary(&big, None),
        0,
        "a broadcast is refused by every queue"
    );
    let took = t0.elapsed();
    let s = m.stats();
    let rss_growth = rss_kib().saturating_sub(rss0);
    eprintln!(
        "too long: {} refusals in {took:?}, outbound queued {} bytes, RSS +{rss_growth} KiB",
        CLIENTS * 2 + 1,
        s.outbound_queued_bytes
    );
    assert_eq!(s.outbound_queued_bytes, 0);
    assert!(rss_growth < 16 * 1024, "RSS grew {rss_growth} KiB");
    assert_eq!(srv.connection_count(), CLIENTS);
    // Still usable: a small message goes through.
    for (c, raw) in conns.iter().zip(&mut clients).take(3) {
        assert!(c.is_open());
        c.send_text("still here").unwrap();
        let f = raw.read_frame();
        assert_eq!(
            (f.opcode, f.payload.as_slice()),
            (OpCode::Text, &b"still here"[..])
        );
    }
}

// ---------------------------------------------------------------------------------------------
// c. A client that talks but never listens

/// Sends a small text every 100 ms, never reads, to an echoing server with a heartbeat of
/// 500 ms / 1 s: the heartbeat counts pongs only, so the client is closed (1008) although it
/// is anything but quiet.
#[test]
fn sender_that_never_reads_is_caught() {
    let _g = serial();
    let hb = HeartbeatConfig::new(Duration::from_millis(500), Duration::from_secs(1));
    let server = Server::new(config().heartbeat(hb));
    let srv = start(&server, Mode::Async);
    let (mut clients, conns) = non_readers(&srv, 1, SMALL_RCVBUF);
    let mut raw = clients.pop().unwrap();
    let conn = conns[0].clone();
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let mut w = raw.sock.try_clone().unwrap();
    let talker = {
        let (stop, sent) = (stop.clone(), sent.clone());
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Relaxed) {
                let f = frame(true, OpCode::Text, format!("tick {i}").as_bytes(), true);
                if w.write_all(&f).is_err() {
                    break;
                }
                sent.fetch_add(1, Relaxed);
                i += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let t0 = Instant::now();
    let (ds, took) = disconnects_of(&srv, &[conn.id()], Duration::from_secs(15));
    stop.store(true, Relaxed);
    talker.join().unwrap();
    let d = &ds[&conn.id()];
    let s = stats(&srv);
    eprintln!(
        "talker: {} texts sent, closed after {took:?} with {} {:?}; heartbeat_timeouts {}",
        sent.load(Relaxed),
        d.code.0,
        d.reason,
        s.heartbeat_timeouts
    );
    assert_eq!(d.code, CloseCode(1008), "{d:?}");
    assert!(
        d.reason == "heartbeat timeout" || d.reason.starts_with("write timeout"),
        "{d:?}"
    );
    assert!(sent.load(Relaxed) >= 5, "the client kept talking");
    assert!(t0.elapsed() < Duration::from_secs(15));
    // What the client would have read: echoes and pings, then that close frame.
    let (code, reason) = raw.read_close();
    assert_eq!((code, reason.as_str()), (1008, d.reason.as_str()));
}

// ---------------------------------------------------------------------------------------------
// d. Unfinished messages

/// 16 clients each begin a message and then trickle continuation frames without FIN: with
/// `message_timeout` 2 s each is closed with 1008 "message timeout", and what they held is
/// given back.
#[test]
fn unfinished_messages_are_closed_by_message_timeout() {
    let _g = serial();
    const CLIENTS: usize = 16;
    let server = Server::new(config().message_timeout(Some(Duration::from_secs(2))));
    let srv = start_with(&server, Mode::Async, false);
    let (clients, conns) = non_readers(&srv, CLIENTS, 64 * KIB);
    let done: Arc<Vec<AtomicBool>> = Arc::new((0..CLIENTS).map(|_| AtomicBool::new(false)).collect());
    let mut writers: Vec<TcpStream> = clients.iter().map(|c| c.sock.try_clone().unwrap()).collect();
    let t0 = Instant::now();
    for w in &mut writers {
        w.write_all(&frame(false, OpCode::Binary, &[1u8; 4 * KIB], true))
            .unwrap();
    }
    let trickle = {
        let done = done.clone();
        std::thread::spawn(move || {
            let piece = frame(false, OpCode::Continuation, &[2u8; 16], true);
            let mut rounds = 0;
            while done.iter().any(|d| !d.load(Relaxed)) && rounds < 100 {
                for (w, d) in writers.iter_mut().zip(done.iter()) {
                    if !d.load(Relaxed) {
                        let _ = w.write_all(&piece);
                    }
                }
                rounds += 1;
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };
    let held_during = stats(&srv).inbound_held_bytes;
    let mut closed_at = Vec::new();
    for (i, mut c) in clients.into_iter().enumerate() {
        let (code, reason) = c.read_close();
        closed_at.push(t0.elapsed());
        done[i].store(true, Relaxed);
        assert_eq!((code, reason.as_str()), (1008, "message timeout"), "client {i}");
    }
    trickle.join().unwrap();
    let ids: Vec<ConnectionId> = conns.iter().map(Connection::id).collect();
    let (ds, _) = disconnects_of(&srv, &ids, WAIT);
    for d in ds.values() {
        assert_eq!((d.code, d.reason.as_str()), (CloseCode(1008), "message timeout"));
    }
    let m = srv.messenger();
    let freed_in = wait_until_within(Duration::from_secs(5), "inbound bytes given back", || {
        m.stats().inbound_held_bytes < 16 * KIB as u64
    });
    let first = closed_at.iter().min().unwrap();
    let last = closed_at.iter().max().unwrap();
    eprintln!(
        "unfinished: {CLIENTS} clients held {} KiB; closes at {first:?}..{last:?}; inbound \
         {} bytes {freed_in:?} after the last disconnect",
        held_during / 1024,
        m.stats().inbound_held_bytes
    );
    assert!(
        *first >= Duration::from_millis(1900),
        "closed before the deadline: {first:?}"
    );
    assert!(*last < Duration::from_secs(8), "{last:?}");
}

/// A pushing client, and the close frame it read if it was refused.
type Pushed = (RawClient, Option<(u16, String)>);

/// A small `inbound_budget` (8 MiB) and 4 clients pushing 4 MiB unfinished messages as fast as
/// they can: whoever pushes the total past the budget is closed with 1009, the held bytes
/// never go far past the budget, and the others get their messages through.
#[test]
fn inbound_budget_fails_the_connection_that_pushes_past_it() {
    let _g = serial();
    const CLIENTS: usize = 4;
    const BUDGET: usize = 8 * MIB;
    const PIECE: usize = 256 * KIB;
    const PIECES: usize = 16;
    let server = Server::new(config().inbound_budget(BUDGET));
    let srv = start_with(&server, Mode::Inline, false);
    let (clients, conns) = non_readers(&srv, CLIENTS, 64 * KIB);
    let sampler = Sampler::start(srv.messenger());
    let start = Arc::new(std::sync::Barrier::new(CLIENTS));
    let pushers: Vec<JoinHandle<Pushed>> = clients
        .into_iter()
        .map(|mut c| {
            let start = start.clone();
            std::thread::spawn(move || {
                let mut w = c.sock.try_clone().unwrap();
                start.wait();
                let body = vec![3u8; PIECE];
                let mut ok = true;
                for i in 0..PIECES {
                    let op = if i == 0 {
                        OpCode::Binary
                    } else {
                        OpCode::Continuation
                    };
                    if w.write_all(&frame(false, op, &body, true)).is_err() {
                        ok = false;
                        break;
                    }
                }
                if ok
                    && w.write_all(&frame(true, OpCode::Continuation, b"", true))
                        .is_err()
                {
                    ok = false;
                }
                // A client whose message was refused reads the close frame (if the reset
                // after it did not swallow it); the others read nothing (no echo).
                let close = if ok {
                    None
                } else {
                    c.try_read_frame().map(|f| f.close())
                };
                (c, close)
            })
        })
        .collect();
    let results: Vec<Pushed> = pushers.into_iter().map(|t| t.join().unwrap()).collect();
    // Every connection either delivered its 4 MiB message or was failed.
    let ids: Vec<ConnectionId> = conns.iter().map(Connection::id).collect();
    let mut delivered = 0;
    let mut failed = HashMap::new();
    let deadline = Instant::now() + WAIT;
    while delivered + failed.len() < CLIENTS {
        let left = deadline.saturating_duration_since(Instant::now());
        match srv.events.recv_timeout(left) {
            Ok(Ev::Binary(c, data)) if ids.contains(&c.id()) => {
                assert_eq!(data.len(), PIECE * PIECES);
                delivered += 1;
            }
            Ok(Ev::Disconnect(c, d)) if ids.contains(&c.id()) => {
                failed.insert(c.id(), d);
            }
            Ok(_) => {}
            Err(e) => panic!("{delivered} delivered, {} failed: {e:?}", failed.len()),
        }
    }
    let peaks = sampler.finish();
    let client_closes: Vec<_> = results.iter().filter_map(|(_, c)| c.clone()).collect();
    eprintln!(
        "inbound budget {} MiB: {delivered} delivered, {} failed ({:?}); client-side closes \
         {client_closes:?}; peak inbound held {:.2} MiB",
        BUDGET / MIB,
        failed.len(),
        failed
            .values()
            .map(|d| (d.code.0, d.reason.clone()))
            .collect::<Vec<_>>(),
        mib(peaks.inbound)
    );
    assert!(
        !failed.is_empty(),
        "16 MiB pushed against an 8 MiB budget and nobody failed"
    );
    for d in failed.values() {
        assert_eq!(d.code, CloseCode(1009), "{d:?}");
    }
    for (code, _) in &client_closes {
        assert_eq!(*code, 1009);
    }
    // Slack: one connection's read buffer and message growth step past the line.
    let slack = 4 * MIB as u64;
    assert!(
        peaks.inbound <= BUDGET as u64 + slack,
        "peak inbound held {} bytes",
        peaks.inbound
    );
}

// ---------------------------------------------------------------------------------------------
// e. A big read buffer kept by an idle connection

/// After a 4 MiB message a connection goes quiet: the big buffers are given back within about
/// a second (polled for 5 s), in both delivery modes.
#[test]
fn idle_connection_gives_back_its_big_read_buffer() {
    let _g = serial();
    for mode in [Mode::Async, Mode::Inline] {
        let server = Server::new(config());
        let srv = start_with(&server, mode, false);
        let m = srv.messenger();
        let mut raw = raw_connect(srv.local_addr(), "/");
        let conn = srv.expect_connect();
        let idle0 = m.stats().inbound_held_bytes;
        raw.send(true, OpCode::Binary, &vec![9u8; 4 * MIB]);
        let n = srv.wait_for("binary", |ev| match ev {
            Ev::Binary(c, d) if c.id() == conn.id() => Some(d.len()),
            _ => None,
        });
        assert_eq!(n, 4 * MIB);
        let held = m.stats().inbound_held_bytes;
        let t0 = Instant::now();
        wait_until_within(Duration::from_secs(5), "the read buffer given back", || {
            m.stats().inbound_held_bytes < 256 * KIB as u64
        });
        eprintln!(
            "{mode:?}: inbound held {idle0} bytes idle, {:.2} MiB after the message, {} bytes \
             {:?} later",
            mib(held),
            m.stats().inbound_held_bytes,
            t0.elapsed()
        );
        assert!(conn.is_open());
    }
}

// ---------------------------------------------------------------------------------------------
// f. Pings from a client that does not read their pongs

/// A non-reading client floods pings: the pongs stay within `max_send_queue` (the connection's
/// thread stops reading instead of queueing more), and after `write_timeout` the client is
/// dropped.
#[test]
fn ping_flood_without_reading_is_bounded_and_dropped() {
    let _g = serial();
    let max = 64 * KIB;
    let server = Server::new(config().max_send_queue(max).write_timeout(Duration::from_secs(2)));
    let srv = start_with(&server, Mode::Async, false);
    let (clients, conns) = non_readers(&srv, 1, SMALL_RCVBUF);
    let conn = conns[0].clone();
    let mut w = clients[0].sock.try_clone().unwrap();
    w.set_write_timeout(Some(Duration::from_millis(200))).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let pings = Arc::new(AtomicU64::new(0));
    let flooder = {
        let (stop, pings) = (stop.clone(), pings.clone());
        std::thread::spawn(move || {
            let one = frame(true, OpCode::Ping, &[0x50; 125], true);
            let batch: Vec<u8> = one.iter().copied().cycle().take(one.len() * 500).collect();
            while !stop.load(Relaxed) {
                match w.write(&batch) {
                    Ok(n) => {
                        pings.fetch_add((n / one.len()) as u64, Relaxed);
                        // A partial write leaves a partial ping: finish it.
                        let rest = n % one.len();
                        if rest != 0 && w.write_all(&one[rest..]).is_err() {
                            break;
                        }
                    }
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) => {}
                    Err(_) => break,
                }
            }
        })
    };
    let sampler = Sampler::start(srv.messenger());
    let mut conn_peak = 0;
    let t0 = Instant::now();
    let d = loop {
        conn_peak = conn_peak.max(conn.queued_bytes());
        if let Ok(Ev::Disconnect(c, d)) = srv.events.recv_timeout(Duration::from_millis(2)) {
            if c.id() == conn.id() {
                break d;
            }
        }
        assert!(t0.elapsed() < Duration::from_secs(15), "not dropped");
    };
    let took = t0.elapsed();
    stop.store(true, Relaxed);
    flooder.join().unwrap();
    let peaks = sampler.finish();
    eprintln!(
        "ping flood: {} pings written, dropped after {took:?} ({} {:?}); peak queued {} bytes \
         (connection), {} bytes (server)",
        pings.load(Relaxed),
        d.code.0,
        d.reason,
        conn_peak,
        peaks.outbound
    );
    assert_eq!(
        (d.code, d.reason.as_str()),
        (CloseCode(1008), "write timeout: client is not reading")
    );
    assert!(pings.load(Relaxed) > 1000, "the flood was small");
    assert!(conn_peak <= max, "{conn_peak}");
    // The server-wide counter also holds the written part of a partly written 64 KiB copy
    // buffer (its memory is still held): at most one such buffer more.
    assert!(peaks.outbound <= (max + 64 * KIB) as u64, "{peaks:?}");
    assert!(took < Duration::from_secs(12), "{took:?}");
    wait_until("queue empty", || srv.stats().outbound_queued_bytes == 0);
}

// ---------------------------------------------------------------------------------------------
// g. The overflow close arrives

/// Payload of the `seq`-th frame of the overflow tests.
fn numbered(seq: u32, len: usize) -> Vec<u8> {
    seq.to_be_bytes().iter().copied().cycle().take(len).collect()
}

/// Sends numbered 8 KiB frames from this thread (not the connection's) until the queue is full;
/// returns how many were accepted.
fn send_until_overflow(conn: &Connection) -> u32 {
    let mut seq = 0u32;
    loop {
        match conn.send_binary(&numbered(seq, 8 * KIB)) {
            Ok(()) => seq += 1,
            Err(SendError::QueueFull) => return seq,
            Err(e) => panic!("after {seq} frames: {e:?}"),
        }
        assert!(seq < 100_000, "the queue never filled");
    }
}

/// A client stops reading until the overflow policy closes it, then reads everything: whole
/// frames, in order, a prefix of what was sent, then the close frame (1008 "send queue
/// overflow") and the end of the stream, with no partial frame.
#[test]
fn overflow_close_arrives_whole() {
    let _g = serial();
    let server = Server::new(config().max_send_queue(64 * KIB));
    let srv = start_with(&server, Mode::Async, false);
    let (mut clients, conns) = non_readers(&srv, 1, 16 * KIB);
    let mut raw = clients.pop().unwrap();
    let t0 = Instant::now();
    let accepted = send_until_overflow(&conns[0]);
    let overflow_at = t0.elapsed();
    let mut next = 0u32;
    let close = loop {
        let f = raw
            .try_read_frame()
            .unwrap_or_else(|| panic!("stream ended after {next} frames, before the close"));
        assert!(f.fin && !f.masked);
        match f.opcode {
            OpCode::Binary => {
                assert_eq!(f.payload, numbered(next, 8 * KIB), "frame {next}");
                next += 1;
            }
            OpCode::Close => break f.close(),
            op => panic!("unexpected {op:?}"),
        }
    };
    let read_in = t0.elapsed() - overflow_at;
    assert!(raw.try_read_frame().is_none(), "a frame after the close");
    let trailing = raw.pending_bytes();
    eprintln!(
        "overflow (plain): {accepted} frames accepted in {overflow_at:?}, {next} received whole, \
         then close {close:?} ({read_in:?} to read); {trailing} trailing bytes"
    );
    assert_eq!(close, (1008, "send queue overflow".to_string()));
    assert_eq!(trailing, 0, "a truncated frame");
    assert!(next <= accepted);
    let d = srv.expect_disconnect(conns[0].id());
    assert_eq!(
        (d.code, d.reason.as_str()),
        (CloseCode(1008), "send queue overflow")
    );
}

/// The same over TLS, with a tungstenite client over rustls: every message whole and in order,
/// then the close frame with 1008.
#[cfg(feature = "tls")]
#[test]
fn overflow_close_arrives_whole_over_tls() {
    use common::tls::{fixture, Wss};
    let _g = serial();
    let fx = fixture();
    let server = Server::new(config().max_send_queue(64 * KIB)).tls(fx.server_config());
    let srv = start_with(&server, Mode::Async, false);
    let addr = srv.local_addr();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let session = rustls::ClientConnection::new(fx.client_config(), name).unwrap();
    let stream = rustls::StreamOwned::new(session, tcp_small_rcvbuf(addr, 16 * KIB));
    let (mut ws, _): (Wss, _) =
        tungstenite::client(format!("wss://localhost:{}/", addr.port()), stream).expect("wss handshake");
    let conn = srv.expect_connect();
    let t0 = Instant::now();
    let accepted = send_until_overflow(&conn);
    let overflow_at = t0.elapsed();
    let mut next = 0u32;
    let close = loop {
        match ws.read() {
            Ok(tungstenite::Message::Binary(b)) => {
                assert_eq!(&b[..], &numbered(next, 8 * KIB)[..], "message {next}");
                next += 1;
            }
            Ok(tungstenite::Message::Close(f)) => break f.expect("a close frame with a code"),
            Ok(m) => panic!("unexpected {m:?}"),
            Err(e) => panic!("after {next} messages, before the close: {e}"),
        }
    };
    eprintln!(
        "overflow (TLS): {accepted} frames accepted in {overflow_at:?}, {next} received whole, \
         then close {} {:?}",
        code_of(&close),
        close.reason.as_str()
    );
    assert_eq!(
        (code_of(&close), close.reason.as_str()),
        (1008, "send queue overflow")
    );
    assert!(next <= accepted);
    let d = srv.expect_disconnect(conn.id());
    assert_eq!(d.code, CloseCode(1008), "{d:?}");
}

// ---------------------------------------------------------------------------------------------
// h. The event queue counted in bytes

/// A handler that blocks on its first message until the test lets it go, then forwards every
/// message.
struct Gated {
    gate: Receiver<()>,
    first: bool,
    out: Sender<Vec<u8>>,
}

impl Handler for Gated {
    fn on_binary(&mut self, _conn: &Connection, data: syncws::Payload) {
        if self.first {
            self.first = false;
            let _ = self.gate.recv_timeout(LONG_WAIT);
        }
        let _ = self.out.send(data.into_vec());
    }
}

/// Asynchronous mode with `event_queue_bytes` 1 MiB and a stuck handler, a client sending 32
/// messages of 256 KiB: the bytes waiting for the dispatch thread stay within 1 MiB plus one
/// message; once the handler goes on, every message arrives, in order.
#[test]
fn event_queue_bytes_bound_the_backlog_of_a_stuck_handler() {
    let _g = serial();
    const MSGS: u32 = 32;
    const SIZE: usize = 256 * KIB;
    let limit = MIB;
    let (gate_tx, gate) = crossbeam_channel::bounded(1);
    let (out, received) = crossbeam_channel::unbounded();
    let server = Server::new(config().event_queue_bytes(limit));
    let handle = server
        .start(Gated {
            gate,
            first: true,
            out,
        })
        .expect("start");
    let m = handle.messenger();
    let addr: SocketAddr = handle.local_addr();
    let mut raw = raw_connect(addr, "/");
    let mut w = raw.sock.try_clone().unwrap();
    w.set_write_timeout(Some(LONG_WAIT)).unwrap();
    let sender = std::thread::spawn(move || {
        for seq in 0..MSGS {
            w.write_all(&frame(true, OpCode::Binary, &numbered(seq, SIZE), true))
                .expect("client write");
        }
    });
    let sampler = Sampler::start(m.clone());
    // Let the backlog build up against the stuck handler.
    std::thread::sleep(Duration::from_millis(1500));
    let stuck = m.stats();
    gate_tx.send(()).unwrap();
    let t0 = Instant::now();
    for seq in 0..MSGS {
        let data = received.recv_timeout(WAIT).expect("message after release");
        assert_eq!(data, numbered(seq, SIZE), "message {seq} out of order or damaged");
    }
    let drained_in = t0.elapsed();
    sender.join().unwrap();
    wait_until("event queue empty", || m.stats().event_queue_bytes == 0);
    let peaks = sampler.finish();
    eprintln!(
        "event queue bytes: {} KiB waiting while stuck ({} messages in), peak {} KiB; {MSGS} \
         messages in order {drained_in:?} after the release",
        stuck.event_queue_bytes / 1024,
        stuck.messages_in,
        peaks.events / 1024
    );
    assert!(peaks.events <= (limit + SIZE) as u64, "{peaks:?}");
    assert!(
        stuck.event_queue_bytes >= (limit / 2) as u64,
        "the backlog did not build: {stuck:?}"
    );
    assert!(
        stuck.messages_in < u64::from(MSGS),
        "nothing was held back: {stuck:?}"
    );
    raw.send(true, OpCode::Close, &close_payload(1000, ""));
    handle.stop();
}

// ---------------------------------------------------------------------------------------------
// i. Pings from other threads

/// `Messenger::ping` in a loop to a client that does not read, with `DropMessage`: once the
/// queue is full the pings are refused with `QueueFull`, the queued bytes stay within
/// `max_send_queue`, and the connection stays open.
#[test]
fn messenger_pings_to_a_non_reader_stop_at_the_queue_limit() {
    let _g = serial();
    let max = 4 * KIB;
    let server = Server::new(
        config()
            .max_send_queue(max)
            .overflow_policy(OverflowPolicy::DropMessage),
    );
    let srv = start_with(&server, Mode::Async, false);
    let (mut clients, conns) = non_readers(&srv, 1, SMALL_RCVBUF);
    let id = conns[0].id();
    let m = srv.messenger();
    let t0 = Instant::now();
    let mut ok = 0u64;
    let mut peak = 0usize;
    loop {
        match m.ping(&id, &[0x11; 125]) {
            Ok(()) => ok += 1,
            Err(SendError::QueueFull) => break,
            Err(e) => panic!("after {ok} pings: {e:?}"),
        }
        peak = peak.max(conns[0].queued_bytes());
        assert!(ok < 2_000_000, "the queue never filled");
    }
    let took = t0.elapsed();
    let mut refused = 0;
    for _ in 0..1000 {
        if m.ping(&id, &[0x11; 125]) == Err(SendError::QueueFull) {
            refused += 1;
        }
        peak = peak.max(conns[0].queued_bytes());
    }
    let queued = m.stats().outbound_queued_bytes;
    eprintln!(
        "pings: {ok} accepted in {took:?} before QueueFull, {refused}/1000 refused after; \
         queued {queued} bytes (peak {peak})"
    );
    assert!(peak <= max && queued <= max as u64, "{peak} {queued}");
    assert!(refused >= 990, "{refused}");
    assert!(conns[0].is_open(), "DropMessage keeps the connection");
    // The pings that were queued arrive whole.
    let raw = &mut clients[0];
    for _ in 0..10 {
        let f = raw.read_frame();
        assert_eq!((f.opcode, f.payload.len()), (OpCode::Ping, 125));
    }
}

// ---------------------------------------------------------------------------------------------
// Broadcast of 1 MiB to 1,000 clients that do not read

/// Once 1,000 non-readers' sockets are full, one more 1 MiB broadcast adds about 1 MiB of
/// queued memory (one shared copy), not 1 GiB.
#[test]
fn broadcast_of_1_mib_to_1000_non_readers_adds_one_copy() {
    let _g = serial();
    const CLIENTS: usize = 1000;
    let server = Server::new(config().max_connections_per_ip(2 * CLIENTS));
    let srv = start_with(&server, Mode::Async, false);
    let (clients, conns) = non_readers(&srv, CLIENTS, SMALL_RCVBUF);
    let m = srv.messenger();
    // Fill every socket so that what follows is queued, not taken by the kernel.
    let filler = vec![0u8; 64 * KIB];
    for _ in 0..200 {
        if conns.iter().all(|c| c.queued_bytes() > 0) {
            break;
        }
        m.broadcast_binary(&filler, None);
    }
    assert!(conns.iter().all(|c| c.queued_bytes() > 0), "sockets not full");
    let before = m.stats().outbound_queued_bytes;
    let rss0 = rss_kib();
    assert_eq!(m.broadcast_binary(&vec![1u8; MIB], None), CLIENTS);
    let added = m.stats().outbound_queued_bytes - before;
    let rss_growth = rss_kib().saturating_sub(rss0);
    eprintln!(
        "1 MiB broadcast to {CLIENTS} full non-readers: +{:.2} MiB queued, RSS +{:.1} MiB",
        mib(added),
        rss_growth as f64 / 1024.0
    );
    assert!(
        conns.iter().all(|c| c.queued_bytes() > MIB),
        "every queue holds the frame"
    );
    assert!(
        added <= (MIB + 64 * KIB) as u64,
        "added {added} bytes for one 1 MiB frame"
    );
    assert!(rss_growth < 16 * 1024, "RSS grew {rss_growth} KiB");
    drop(clients);
}
