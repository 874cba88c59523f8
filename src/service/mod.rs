//! The service thread, one per running server: it writes the queues of clients whose socket
//! was full (waiting for writability with `poll`), drops those whose queue makes no progress
//! for `write_timeout`, shuts aborted connections once their last close frame has gone (or
//! after a short grace), aborts closing handshakes that pass their deadline, keeps refused
//! sockets lingering until their answer is read, and runs the heartbeat (`heartbeat.rs`). It
//! never blocks on a socket.
//!
//! Other threads hand it work through [`Service`] (the connection room's `Scheduler`).

mod heartbeat;

use std::io::Read;
use std::net::TcpStream;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use syncws_protocol::CloseCode;

pub(crate) use heartbeat::{pong_rtt, Heartbeat};

use crate::connection::{Connection, Context, Scheduler};
use crate::platform::{poll_ready, Interest, Waker};

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
    waker: Waker,
    stop: AtomicBool,
}

impl Scheduler for Service {
    fn flush_when_writable(&self, conn: Connection) {
        self.push(Job::Flush(conn));
    }

    fn close_deadline(&self, at: Instant, conn: Connection) {
        self.push(Job::Deadline(at, conn));
    }
}

impl Service {
    pub(crate) fn new() -> std::io::Result<Self> {
        Ok(Self {
            inbox: Mutex::new(Vec::new()),
            waker: Waker::new()?,
            stop: AtomicBool::new(false),
        })
    }

    fn push(&self, job: Job) {
        self.inbox.lock().unwrap_or_else(|e| e.into_inner()).push(job);
        self.waker.wake();
    }

    /// Keep a refused socket (its response written, write side shut) open until the client
    /// closes or `at`, reading and discarding what it sends: closing a socket with unread input
    /// resets the connection, which can destroy the response before the client reads it.
    pub(crate) fn linger(&self, at: Instant, sock: TcpStream) {
        if sock.set_nonblocking(true).is_ok() {
            self.push(Job::Linger(at, sock));
        }
    }

    /// Ends the service thread (after its current turn).
    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        self.waker.wake();
    }
}

/// The service thread's state between turns.
#[derive(Default)]
struct Work {
    flushing: Vec<Connection>,
    deadlines: Vec<(Instant, Connection)>,
    lingering: Vec<(Instant, TcpStream)>,
}

/// The service thread's loop; returns when [`Service::stop`] is called.
pub(crate) fn run(svc: Arc<Service>, ctx: Arc<Context>) {
    let mut work = Work::default();
    let mut beat = Heartbeat::new(ctx.config.heartbeat, Instant::now());
    while !svc.stop.load(Ordering::Acquire) {
        work.take_jobs(&svc);
        let now = Instant::now();
        work.expire_deadlines(now);
        work.lingering.retain(|(at, _)| *at > now);
        if beat.due(now) {
            beat.tick(&ctx, now);
        }
        let flush_next = work.check_flushing(now);
        let wait = work
            .next_timer(now, beat.next().into_iter().chain(flush_next))
            .unwrap_or(Duration::from_secs(1));
        work.poll_once(&svc, wait.min(Duration::from_secs(1)));
        svc.waker.drain();
    }
}

impl Work {
    fn take_jobs(&mut self, svc: &Service) {
        for job in std::mem::take(&mut *svc.inbox.lock().unwrap_or_else(|e| e.into_inner())) {
            match job {
                Job::Flush(c) => self.flushing.push(c),
                Job::Deadline(at, c) => self.deadlines.push((at, c)),
                Job::Linger(at, sock) if self.lingering.len() < MAX_LINGER => {
                    self.lingering.push((at, sock));
                }
                Job::Linger(..) => {}
            }
        }
    }

    /// Closing handshakes past their deadline are aborted; ended connections forgotten.
    fn expire_deadlines(&mut self, now: Instant) {
        self.deadlines.retain(|(at, c)| {
            if c.is_dead() {
                return false;
            }
            if *at <= now {
                c.abort(CloseCode::ABNORMAL, "closing handshake timed out");
                return false;
            }
            true
        });
    }

    /// The deadlines of the connections being flushed (an abort's grace, write progress);
    /// those that need the service no more are dropped. Returns the earliest.
    fn check_flushing(&mut self, now: Instant) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        self.flushing.retain(|c| match c.flush_deadline(now) {
            Some(t) => {
                next = Some(next.map_or(t, |n| n.min(t)));
                true
            }
            None => false,
        });
        next
    }

    /// Time until the earliest deadline, linger end, heartbeat or flush deadline.
    fn next_timer(&self, now: Instant, more: impl Iterator<Item = Instant>) -> Option<Duration> {
        self.deadlines
            .iter()
            .map(|(t, _)| *t)
            .chain(self.lingering.iter().map(|(t, _)| *t))
            .chain(more)
            .map(|t| t.saturating_duration_since(now))
            .min()
    }

    /// Waits for the waker, writable flush sockets or readable lingering ones, and serves
    /// what is ready.
    fn poll_once(&mut self, svc: &Service, wait: Duration) {
        let mut fds = Vec::with_capacity(1 + self.flushing.len() + self.lingering.len());
        fds.push((svc.waker.fd().as_fd(), Interest::Read));
        fds.extend(
            self.flushing
                .iter()
                .map(|c| (c.socket().as_fd(), Interest::Write)),
        );
        fds.extend(self.lingering.iter().map(|(_, s)| (s.as_fd(), Interest::Read)));
        let ready = poll_ready(&fds, wait);
        drop(fds);
        let (ready_flush, ready_linger) = ready[1..].split_at(self.flushing.len());
        let mut i = 0;
        self.flushing.retain(|c| {
            i += 1;
            !(ready_flush[i - 1] && c.flush_ready())
        });
        let mut j = 0;
        self.lingering.retain(|(_, sock)| {
            j += 1;
            !ready_linger[j - 1] || discard_input(sock)
        });
    }
}

/// Reads and drops what a lingering socket sends; `false` once it is closed or failed.
fn discard_input(mut sock: &TcpStream) -> bool {
    let mut drain = [0u8; 512];
    loop {
        match sock.read(&mut drain) {
            Ok(0) => return false,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return false,
        }
    }
}
