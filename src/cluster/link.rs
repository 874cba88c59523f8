//! The cluster's link to Redis: connecting (with timeouts), the backoff between attempts,
//! and the up/down state of the two threads, reported once per change as
//! [`ServerEvent::ClusterDown`] / [`ServerEvent::ClusterUp`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::config::ClusterConfig;
use crate::dispatch::ServerEvent;

/// How long connecting, and each read or write of a command, may take.
pub(crate) const IO_TIMEOUT: Duration = Duration::from_secs(2);

/// The first wait after a failure; it doubles up to `ClusterConfig::max_backoff`.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// Delivers a server event (the run's sink).
pub(crate) type Report = dyn Fn(ServerEvent) + Send + Sync;

/// Which of the two threads is connected, and the stop flag they both watch.
pub(crate) struct Link {
    pub(crate) client: redis::Client,
    report: Box<Report>,
    /// Publisher, subscriber: connected?
    state: Mutex<([bool; 2], Option<bool>)>,
    /// Both threads connected (read by senders, without the lock).
    pub(crate) up: Arc<AtomicBool>,
    pub(crate) stop: AtomicBool,
    max_backoff: Duration,
}

/// The two threads, as `Link` knows them.
#[derive(Clone, Copy)]
pub(crate) enum Side {
    Publisher = 0,
    Subscriber = 1,
}

impl Link {
    pub(crate) fn new(cfg: &ClusterConfig, report: Box<Report>) -> redis::RedisResult<Self> {
        Ok(Self {
            client: redis::Client::open(cfg.url.as_str())?,
            report,
            state: Mutex::new(([false; 2], None)),
            up: Arc::new(AtomicBool::new(false)),
            stop: AtomicBool::new(false),
            max_backoff: cfg.max_backoff,
        })
    }

    pub(crate) fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    /// A new connection to Redis, with the I/O timeouts set.
    pub(crate) fn connect(&self) -> redis::RedisResult<redis::Connection> {
        let con = self.client.get_connection_with_timeout(IO_TIMEOUT)?;
        con.set_read_timeout(Some(IO_TIMEOUT))?;
        con.set_write_timeout(Some(IO_TIMEOUT))?;
        Ok(con)
    }

    /// Records that `side` is connected (`Ok`) or lost Redis (`Err`), and reports a change of
    /// the whole link: up when both are connected, down as soon as one is not.
    pub(crate) fn set(&self, side: Side, result: Result<(), String>) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.0[side as usize] = result.is_ok();
        let now_up = st.0 == [true, true];
        let event = match (st.1, now_up, result) {
            (Some(true) | None, false, Err(error)) => Some(ServerEvent::ClusterDown { error }),
            (Some(false) | None, true, _) => Some(ServerEvent::ClusterUp),
            _ => None,
        };
        if event.is_some() {
            st.1 = Some(now_up);
        }
        self.up.store(now_up, Ordering::Release);
        drop(st);
        if let Some(ev) = event {
            match &ev {
                ServerEvent::ClusterDown { error } => log::warn!("cluster down: {error}"),
                _ => log::info!("cluster up"),
            }
            (self.report)(ev);
        }
    }

    /// A cluster thread's loop: connect, `serve` until an error, report it, `on_down`, back
    /// off, again — until stop, when `on_stop` gets the connection still open (if any).
    pub(crate) fn keep_serving(
        &self,
        side: Side,
        mut serve: impl FnMut(&mut redis::Connection) -> redis::RedisResult<()>,
        on_stop: impl FnOnce(&mut redis::Connection),
        mut on_down: impl FnMut(),
    ) {
        let mut attempt = 0;
        while !self.stopping() {
            let err = match self.connect() {
                Ok(mut con) => {
                    let r = serve(&mut con);
                    if self.stopping() {
                        on_stop(&mut con);
                        return;
                    }
                    attempt = 0;
                    r.err().map_or_else(|| "closed".to_string(), |e| e.to_string())
                }
                Err(e) => e.to_string(),
            };
            self.set(side, Err(err));
            on_down();
            self.backoff(attempt);
            attempt += 1;
        }
    }

    /// Sleeps for the `attempt`th backoff (100 ms doubling, capped), waking early on stop.
    pub(crate) fn backoff(&self, attempt: u32) {
        let wait = FIRST_BACKOFF
            .saturating_mul(1 << attempt.min(16))
            .min(self.max_backoff);
        let until = Instant::now() + wait;
        while !self.stopping() {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            std::thread::sleep(left.min(Duration::from_millis(50)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn up_and_down_are_reported_once_per_change() {
        let (tx, rx) = crossbeam_channel::unbounded();
        let cfg = ClusterConfig::new("redis://127.0.0.1:1");
        let link = Link::new(&cfg, Box::new(move |ev| tx.send(ev).unwrap())).unwrap();
        let down = || Err("gone".to_string());
        link.set(Side::Publisher, down());
        link.set(Side::Subscriber, down());
        link.set(Side::Publisher, Ok(()));
        assert!(!link.up.load(Ordering::Acquire));
        link.set(Side::Subscriber, Ok(()));
        assert!(link.up.load(Ordering::Acquire));
        link.set(Side::Publisher, Ok(()));
        link.set(Side::Subscriber, down());
        link.set(Side::Publisher, down());
        let events: Vec<ServerEvent> = rx.try_iter().collect();
        let down = ServerEvent::ClusterDown { error: "gone".into() };
        assert_eq!(events, [down.clone(), ServerEvent::ClusterUp, down]);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_stop_cuts_it_short() {
        let cfg = ClusterConfig::new("redis://127.0.0.1:1");
        let link = Link::new(&cfg, Box::new(|_| {})).unwrap();
        let t0 = Instant::now();
        link.backoff(1);
        assert!(t0.elapsed() >= Duration::from_millis(200));
        link.stop.store(true, Ordering::Release);
        let t0 = Instant::now();
        link.backoff(10);
        assert!(t0.elapsed() < Duration::from_millis(100));
    }
}
