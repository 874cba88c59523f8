//! The connection threads of one run: spawning one per accepted client (or answering 429
//! over the per-address limits, 503 over `max_connections` or when `max_handshakes` sockets
//! are still in their handshake),
//! the sockets still in their handshake, and joining threads as they end — by the accept loop
//! as it goes, and by `stop()`, which waits on the channel the threads report their end on.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};

use super::per_ip::Refusal;
use super::Intake;
use crate::addr::IpKey;
use crate::config::ServerConfig;
use crate::handshake::{over_capacity, Busy};

/// See the module docs.
pub(crate) struct Threads {
    /// Sockets still in their handshake (shut down on stop).
    handshaking: Mutex<HashMap<u64, Arc<TcpStream>>>,
    /// Connection threads alive.
    live: AtomicUsize,
    next_key: AtomicU64,
    joins: Mutex<HashMap<u64, JoinHandle<()>>>,
    done_tx: Sender<u64>,
    done_rx: Receiver<u64>,
}

impl Default for Threads {
    fn default() -> Self {
        let (done_tx, done_rx) = crossbeam_channel::unbounded();
        Self {
            handshaking: Mutex::default(),
            live: AtomicUsize::new(0),
            next_key: AtomicU64::new(1),
            joins: Mutex::default(),
            done_tx,
            done_rx,
        }
    }
}

impl Threads {
    fn handshake_done(&self, key: u64) {
        self.handshaking
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key);
    }

    /// Counts `stream` as a live connection in its handshake: its key, and the socket shared
    /// from now on. `Err` (nothing counted, the socket handed back) when `max_connections`
    /// threads are alive or `max_handshakes` sockets are already in their handshake.
    /// Checked and counted under the handshake list's lock, so listeners of several
    /// addresses cannot both take the last place.
    fn admit(
        &self,
        stream: TcpStream,
        cfg: &ServerConfig,
    ) -> Result<(u64, Arc<TcpStream>), (TcpStream, Busy)> {
        let mut handshaking = self.handshaking.lock().unwrap_or_else(|e| e.into_inner());
        if self.live.load(Ordering::Acquire) >= cfg.max_connections {
            return Err((stream, Busy::Connections));
        }
        if handshaking.len() >= cfg.max_handshakes {
            return Err((stream, Busy::Handshakes));
        }
        let key = self.next_key.fetch_add(1, Ordering::Relaxed);
        // One descriptor per connection: the thread, the handshake list (for stop) and later
        // the connection's writers all share this socket.
        let stream = Arc::new(stream);
        handshaking.insert(key, stream.clone());
        self.live.fetch_add(1, Ordering::AcqRel);
        Ok((key, stream))
    }

    fn join(&self, key: u64) {
        let h = self.joins.lock().unwrap_or_else(|e| e.into_inner()).remove(&key);
        if let Some(h) = h {
            let _ = h.join();
        }
    }

    /// Joins the threads that have ended so far.
    pub(crate) fn reap(&self) {
        while let Ok(k) = self.done_rx.try_recv() {
            self.join(k);
        }
    }

    /// Shuts down every socket still in its handshake (their threads then end at once).
    pub(crate) fn drop_handshaking(&self) {
        for s in self
            .handshaking
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
        {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }

    /// Joins threads as they end, until none is alive or `deadline`.
    pub(crate) fn wait_ended(&self, deadline: Instant) {
        while self.live.load(Ordering::Acquire) > 0 {
            match self.done_rx.recv_deadline(deadline) {
                Ok(k) => self.join(k),
                Err(_) => return,
            }
        }
    }

    /// Joins every thread left.
    pub(crate) fn join_all(&self) {
        let joins: Vec<_> = self
            .joins
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .collect();
        for (_, t) in joins {
            let _ = t.join();
        }
    }
}

/// Starts the thread for one accepted client, or refuses it (503, no thread spent) over
/// `max_connections` or when `max_handshakes` sockets are already in their handshake.
pub(crate) fn spawn_connection(intake: &Arc<Intake>, stream: TcpStream, peer: SocketAddr) {
    let threads = &intake.threads;
    let ctx = &intake.gate.ctx;
    let cfg = &ctx.config;
    let ip = match intake.per_ip.admit(peer.ip(), Instant::now()) {
        Ok(ip) => ip,
        Err(r) => {
            let why = if r == Refusal::TooMany {
                Busy::PerIp
            } else {
                Busy::Rate
            };
            return over_capacity(&ctx.stats, &intake.service, stream, peer, why);
        }
    };
    let (key, stream) = match threads.admit(stream, cfg) {
        Ok(admitted) => admitted,
        Err((stream, why)) => {
            intake.per_ip.release(ip);
            return over_capacity(&ctx.stats, &intake.service, stream, peer, why);
        }
    };
    let run = intake.clone();
    // Held across the spawn, so a thread that ends at once is joined only once it is listed.
    let mut joins = threads.joins.lock().unwrap_or_else(|e| e.into_inner());
    let spawned = std::thread::Builder::new()
        .name("syncws-conn".into())
        .stack_size(cfg.thread_stack_size)
        .spawn(move || {
            let guard = Ended { intake: run, key, ip };
            let i = &guard.intake;
            crate::reader::run(&i.gate, &i.sink, stream, peer, || i.threads.handshake_done(key));
        });
    match spawned {
        Ok(h) => {
            joins.insert(key, h);
        }
        Err(e) => {
            drop(joins);
            log::error!("cannot spawn a connection thread: {e}");
            threads.live.fetch_sub(1, Ordering::AcqRel);
            threads.handshake_done(key);
            intake.per_ip.release(ip);
        }
    }
}

/// Runs when a connection thread ends, even by panic.
struct Ended {
    intake: Arc<Intake>,
    key: u64,
    ip: IpKey,
}

impl Drop for Ended {
    fn drop(&mut self) {
        self.intake.per_ip.release(self.ip);
        let t = &self.intake.threads;
        t.handshake_done(self.key);
        t.live.fetch_sub(1, Ordering::AcqRel);
        let _ = t.done_tx.send(self.key);
    }
}
