//! The heartbeat: every `interval` the service thread pings every client; a client that has
//! sent nothing for `timeout` after a ping is aborted with 1008 ("heartbeat timeout"). The
//! ping carries its send time, so the pong gives the round-trip time.
//!
//! The decisions are pure functions of the time passed in ([`decide`], [`Heartbeat::due`],
//! [`pong_rtt`]); the per-connection state they read lives on the connection
//! (`connection::Liveness`).

use std::time::{Duration, Instant};

use syncws_protocol::CloseCode;

use crate::config::HeartbeatConfig;
use crate::connection::Context;

/// What one tick does to one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Beat {
    /// Ping it; `mark` is the new "oldest unanswered ping" time to record (`None`: keep the
    /// one recorded, an earlier ping is still unanswered).
    Ping { mark: Option<u64> },
    /// It has not answered within the timeout.
    TimedOut,
}

/// The decision for a connection whose last pong came at `seen_ms` and whose oldest
/// unanswered ping went out at `ping_out_ms` (0: none), at `now_ms`, with `timeout_ms` (0:
/// never time out).
pub(crate) fn decide(seen_ms: u64, ping_out_ms: u64, now_ms: u64, timeout_ms: u64) -> Beat {
    let unanswered = ping_out_ms != 0 && seen_ms < ping_out_ms;
    if !unanswered {
        return Beat::Ping {
            mark: Some(now_ms.max(1)),
        };
    }
    if timeout_ms > 0 && now_ms.saturating_sub(ping_out_ms) >= timeout_ms {
        Beat::TimedOut
    } else {
        Beat::Ping { mark: None }
    }
}

/// The payload of a heartbeat ping sent at `now_us` (microseconds since the run's epoch).
pub(crate) fn ping_payload(now_us: u64) -> [u8; 8] {
    now_us.to_be_bytes()
}

/// The round-trip time a pong with `payload` shows at `now_us`, if it answers one of our
/// heartbeat pings (8 bytes, a time not in the future, less than an hour ago).
pub(crate) fn pong_rtt(payload: &[u8], now_us: u64) -> Option<Duration> {
    let sent = u64::from_be_bytes(<[u8; 8]>::try_from(payload).ok()?);
    (sent <= now_us && now_us - sent < 3_600_000_000).then(|| Duration::from_micros(now_us - sent))
}

/// The heartbeat's schedule.
#[derive(Debug)]
pub(crate) struct Heartbeat {
    cfg: HeartbeatConfig,
    next: Option<Instant>,
}

impl Heartbeat {
    pub(crate) fn new(cfg: HeartbeatConfig, now: Instant) -> Self {
        Self {
            cfg,
            next: cfg.enabled.then(|| now + cfg.interval),
        }
    }

    /// When the next tick is due (`None`: disabled).
    pub(crate) fn next(&self) -> Option<Instant> {
        self.next
    }

    pub(crate) fn due(&self, now: Instant) -> bool {
        self.next.is_some_and(|t| t <= now)
    }

    /// One tick at `now`: every open connection pinged or timed out; the next tick is one
    /// interval after this one was due, or after `now` if the service fell behind.
    pub(crate) fn tick(&mut self, ctx: &Context, now: Instant) {
        let Some(due) = self.next else { return };
        let timeout_ms = self.cfg.timeout.as_millis() as u64;
        let now_ms = ctx.now_ms();
        for c in ctx.registry.snapshot() {
            let live = c.liveness();
            match decide(live.last_pong_ms(), live.ping_out_ms(), now_ms, timeout_ms) {
                Beat::TimedOut => {
                    log::info!("connection {}: heartbeat timeout", c.id());
                    ctx.stats.heartbeat_timeout();
                    c.abort(CloseCode::POLICY_VIOLATION, "heartbeat timeout");
                }
                Beat::Ping { mark } => {
                    if let Some(m) = mark {
                        live.set_ping_out_ms(m);
                    }
                    let _ = c.send_heartbeat(&ping_payload(ctx.now_us()));
                }
            }
        }
        self.next = Some(next_tick(due, now, self.cfg.interval));
    }
}

/// The tick after one that was due at `due` and ran at `now`: one interval later, or one
/// interval after `now` when the service fell more than an interval behind.
fn next_tick(due: Instant, now: Instant, interval: Duration) -> Instant {
    let next = due + interval;
    if next <= now {
        now + interval
    } else {
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_ping_marks_the_time() {
        assert_eq!(decide(0, 0, 1000, 500), Beat::Ping { mark: Some(1000) });
        // Time 0 is reserved for "no ping out".
        assert_eq!(decide(0, 0, 0, 500), Beat::Ping { mark: Some(1) });
    }

    #[test]
    fn answered_ping_starts_a_new_round() {
        // Pinged at 1000, heard from at 1200: the next tick marks anew.
        assert_eq!(decide(1200, 1000, 2000, 500), Beat::Ping { mark: Some(2000) });
    }

    #[test]
    fn unanswered_within_timeout_keeps_the_old_mark() {
        assert_eq!(decide(900, 1000, 1400, 500), Beat::Ping { mark: None });
    }

    #[test]
    fn unanswered_past_timeout_times_out() {
        assert_eq!(decide(900, 1000, 1500, 500), Beat::TimedOut);
        assert_eq!(decide(900, 1000, 99_999, 500), Beat::TimedOut);
    }

    #[test]
    fn zero_timeout_never_times_out() {
        assert_eq!(decide(0, 1, u64::MAX / 2, 0), Beat::Ping { mark: None });
    }

    #[test]
    fn rtt_from_our_own_stamp_only() {
        let p = ping_payload(5_000);
        assert_eq!(pong_rtt(&p, 7_500), Some(Duration::from_micros(2_500)));
        assert_eq!(pong_rtt(&p, 4_000), None, "from the future");
        assert_eq!(pong_rtt(&p, 5_000 + 3_600_000_000), None, "an hour old");
        assert_eq!(pong_rtt(b"hello", 7_500), None, "not ours");
    }

    #[test]
    fn schedule_keeps_its_rhythm_and_catches_up() {
        let t0 = Instant::now();
        let cfg = HeartbeatConfig::new(Duration::from_secs(10), Duration::from_secs(5));
        let hb = Heartbeat::new(cfg, t0);
        assert!(!hb.due(t0));
        assert!(!hb.due(t0 + Duration::from_millis(9_999)));
        assert!(hb.due(t0 + Duration::from_secs(10)));
        assert_eq!(hb.next(), Some(t0 + Duration::from_secs(10)));
        let s = Duration::from_secs;
        assert_eq!(
            next_tick(t0 + s(10), t0 + s(11), s(10)),
            t0 + s(20),
            "rhythm kept"
        );
        assert_eq!(
            next_tick(t0 + s(10), t0 + s(35), s(10)),
            t0 + s(45),
            "no burst after a stall"
        );
        let off = Heartbeat::new(HeartbeatConfig::default(), t0);
        assert_eq!(off.next(), None);
        assert!(!off.due(t0 + Duration::from_secs(3600)));
    }
}
