//! The service thread: one per running server. It drains the outbound queues of clients whose
//! socket was full (waiting for writability with `poll`), enforces closing-handshake
//! deadlines, and runs the heartbeat. It never blocks on a socket.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use syncws_protocol::CloseCode;

use crate::server::Shared;
use crate::Connection;

pub(crate) fn timespec(d: Duration) -> Timespec {
    Timespec {
        tv_sec: d.as_secs() as _,
        tv_nsec: d.subsec_nanos() as _,
    }
}

enum Job {
    Flush(Connection),
    Deadline(Instant, Connection),
    Linger(Instant, TcpStream),
}

/// Most refused sockets kept lingering at once; beyond it they are closed at once.
const MAX_LINGER: usize = 1024;

/// The handle other threads use to give work to the service thread.
pub(crate) struct Service {
    inbox: Mutex<Vec<Job>>,
    wake_tx: UnixStream,
    wake_rx: UnixStream,
}

impl Service {
    pub(crate) fn new() -> std::io::Result<Self> {
        let (wake_tx, wake_rx) = UnixStream::pair()?;
        wake_tx.set_nonblocking(true)?;
        wake_rx.set_nonblocking(true)?;
        Ok(Self {
            inbox: Mutex::new(Vec::new()),
            wake_tx,
            wake_rx,
        })
    }

    fn push(&self, job: Job) {
        self.inbox.lock().unwrap_or_else(|e| e.into_inner()).push(job);
        self.wake();
    }

    pub(crate) fn wake(&self) {
        // A full pipe means a wake-up is already pending.
        let _ = (&self.wake_tx).write(&[1]);
    }

    /// Drain `conn`'s queue when its socket becomes writable.
    pub(crate) fn flush(&self, conn: Connection) {
        self.push(Job::Flush(conn));
    }

    /// Keep a refused socket (its response written, write side shut) open until the client
    /// closes or `at`, reading and discarding what it sends: closing a socket with unread input
    /// resets the connection, which can destroy the response before the client reads it.
    pub(crate) fn linger(&self, at: Instant, sock: TcpStream) {
        if sock.set_nonblocking(true).is_ok() {
            self.push(Job::Linger(at, sock));
        }
    }

    /// Shut `conn` down at `at` unless it has ended by then.
    pub(crate) fn deadline(&self, at: Instant, conn: Connection) {
        self.push(Job::Deadline(at, conn));
    }
}

/// The service thread's loop; returns when the server stops.
pub(crate) fn run(shared: Arc<Shared>) {
    let svc = &shared.service;
    let mut flushing: Vec<Connection> = Vec::new();
    let mut deadlines: Vec<(Instant, Connection)> = Vec::new();
    let mut lingering: Vec<(Instant, TcpStream)> = Vec::new();
    let hb = shared.config.heartbeat;
    let mut next_beat = hb.enabled.then(|| Instant::now() + hb.interval);
    let mut drain = [0u8; 64];
    loop {
        if shared.service_stop.load(Ordering::Acquire) {
            break;
        }
        for job in std::mem::take(&mut *svc.inbox.lock().unwrap_or_else(|e| e.into_inner())) {
            match job {
                Job::Flush(c) => flushing.push(c),
                Job::Deadline(at, c) => deadlines.push((at, c)),
                Job::Linger(at, sock) => {
                    if lingering.len() < MAX_LINGER {
                        lingering.push((at, sock));
                    }
                }
            }
        }
        let now = Instant::now();
        // Expired closing handshakes.
        deadlines.retain(|(at, c)| {
            if *at <= now {
                if !c.lock_out().dead {
                    c.kill(CloseCode::ABNORMAL, "closing handshake timed out");
                }
                false
            } else {
                !c.lock_out().dead
            }
        });
        if let Some(nb) = next_beat {
            if nb <= now {
                heartbeat(&shared);
                next_beat = Some(nb + hb.interval).map(|t| if t <= now { now + hb.interval } else { t });
            }
        }
        lingering.retain(|(at, _)| *at > now);
        let mut wait = Duration::from_secs(1);
        for t in deadlines
            .iter()
            .map(|(t, _)| *t)
            .chain(lingering.iter().map(|(t, _)| *t))
            .chain(next_beat)
        {
            wait = wait.min(t.saturating_duration_since(now));
        }
        {
            let mut fds = Vec::with_capacity(flushing.len() + 1);
            fds.push(PollFd::new(&svc.wake_rx, PollFlags::IN));
            for c in &flushing {
                fds.push(PollFd::new(&c.0.sock, PollFlags::OUT));
            }
            for (_, sock) in &lingering {
                fds.push(PollFd::new(sock, PollFlags::IN));
            }
            let _ = poll(&mut fds, Some(&timespec(wait)));
            let ready: Vec<bool> = fds[1..].iter().map(|f| !f.revents().is_empty()).collect();
            drop(fds);
            let (ready, ready_linger) = ready.split_at(flushing.len());
            let mut j = 0;
            lingering.retain(|(_, sock)| {
                let r = ready_linger[j];
                j += 1;
                // Keep until EOF or error; discard what arrives.
                !r || loop {
                    match (&*sock).read(&mut drain) {
                        Ok(0) => break false,
                        Ok(_) => continue,
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break true,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        Err(_) => break false,
                    }
                }
            });
            let mut i = 0;
            flushing.retain(|c| {
                let r = ready[i];
                i += 1;
                !(r && c.service_flush())
            });
        }
        while let Ok(n) = (&svc.wake_rx).read(&mut drain) {
            if n == 0 {
                break;
            }
        }
    }
}

/// One heartbeat tick: ping everyone, and close those who have not answered in time.
fn heartbeat(shared: &Arc<Shared>) {
    let timeout_ms = shared.config.heartbeat.timeout.as_millis() as u64;
    let now_ms = shared.now_ms();
    let conns: Vec<Connection> = shared.registry_snapshot();
    for c in conns {
        let seen = c.0.last_seen_ms.load(Ordering::Relaxed);
        let out = c.0.ping_out_ms.load(Ordering::Relaxed);
        if out != 0 && seen < out {
            if timeout_ms > 0 && now_ms.saturating_sub(out) >= timeout_ms {
                log::info!("connection {}: heartbeat timeout", c.id());
                shared.stats.heartbeat_timeout();
                c.fail(CloseCode::POLICY_VIOLATION, "heartbeat timeout");
                continue;
            }
        } else {
            c.0.ping_out_ms.store(now_ms.max(1), Ordering::Relaxed);
        }
        // The payload carries the send time so the pong gives the round-trip time.
        let stamp = shared.now_us().to_be_bytes();
        let _ = c.ping(&stamp);
    }
}
