//! What the heartbeat knows of a connection: when a pong last answered our ping, when the oldest
//! unanswered heartbeat ping went out, and the last round-trip time. Only state lives here
//! (atomics, written by the reader and the service thread); the decisions are in
//! `service/heartbeat.rs`.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// See the module docs. Times are milliseconds since the server's epoch.
#[derive(Debug)]
pub(crate) struct Liveness {
    last_pong_ms: AtomicU64,
    /// 0 = no heartbeat ping outstanding.
    ping_out_ms: AtomicU64,
    /// `u64::MAX` = not measured yet.
    rtt_us: AtomicU64,
}

impl Liveness {
    pub(crate) fn new(now_ms: u64) -> Self {
        Self {
            last_pong_ms: AtomicU64::new(now_ms),
            ping_out_ms: AtomicU64::new(0),
            rtt_us: AtomicU64::new(u64::MAX),
        }
    }

    /// A pong answering one of our pings arrived at `now_ms`, showing `rtt`.
    pub(crate) fn pong(&self, now_ms: u64, rtt: Duration) {
        self.last_pong_ms.store(now_ms, Relaxed);
        self.rtt_us.store(rtt.as_micros() as u64, Relaxed);
    }

    pub(crate) fn last_pong_ms(&self) -> u64 {
        self.last_pong_ms.load(Relaxed)
    }

    pub(crate) fn ping_out_ms(&self) -> u64 {
        self.ping_out_ms.load(Relaxed)
    }

    pub(crate) fn set_ping_out_ms(&self, ms: u64) {
        self.ping_out_ms.store(ms, Relaxed);
    }

    pub(crate) fn rtt(&self) -> Option<Duration> {
        match self.rtt_us.load(Relaxed) {
            u64::MAX => None,
            us => Some(Duration::from_micros(us)),
        }
    }
}
