//! The reader's deadlines, folded into one socket read timeout: the idle timeout, the time a
//! client has to finish a message once begun (`message_timeout`), and the moment a quiet
//! connection gives back the large buffers a big message left. Pure: the time is passed in.

use std::time::{Duration, Instant};

/// A connection that holds more than this in read buffers while quiet gives it back.
pub(crate) const RELEASE_ABOVE: usize = 64 << 10;
/// ... after being quiet for this long.
pub(crate) const RELEASE_AFTER: Duration = Duration::from_secs(1);
/// The socket's timeout is lowered only when it is this much too long (fewer system calls
/// while a message's deadline approaches).
const SLACK: Duration = Duration::from_millis(100);

/// Which deadline a timed-out read met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expired {
    /// The message begun has not been finished in time.
    Message,
    /// Quiet long enough: give the large buffers back.
    Release,
    /// Nothing arrived for the idle timeout.
    Idle,
    /// Nothing is due yet: the socket's timeout (kept when close enough, to save a system
    /// call) was shorter than the deadline it stands for. Read again.
    Early,
}

/// See the module docs.
#[derive(Debug)]
pub(crate) struct ReadClock {
    idle: Option<Duration>,
    message: Option<Duration>,
    started: Option<Instant>,
    release_at: Option<Instant>,
    /// The timeout the socket has now.
    set: Option<Duration>,
    /// When the last `before_read` ran: the idle timeout counts from there.
    read_from: Option<Instant>,
    /// A read timed out since the last `before_read`.
    woke: bool,
}

impl ReadClock {
    /// `set` is the timeout the socket has to begin with.
    pub(crate) fn new(idle: Option<Duration>, message: Option<Duration>, set: Option<Duration>) -> Self {
        Self {
            idle,
            message,
            started: None,
            release_at: None,
            set,
            read_from: None,
            woke: false,
        }
    }

    /// Whether [`ReadClock::before_read`] has anything to do: a message in progress, large
    /// buffers held, a deadline of either still running, or the socket's timeout still one
    /// of theirs (after `expired` ended a deadline, the next call sets the idle one back).
    /// Without an idle timeout a deadline's timeout left on the socket is harmless until it
    /// wakes a read (see `before_read`), so it is set back only then.
    pub(crate) fn needs_clock(&self, in_message: bool, holds_big: bool) -> bool {
        in_message
            || holds_big
            || self.started.is_some()
            || self.release_at.is_some()
            || (self.set != self.idle && (self.idle.is_some() || self.woke))
    }

    /// Whether a message deadline is running (so data arriving must be checked against it).
    pub(crate) fn message_timed(&self) -> bool {
        self.started.is_some() && self.message.is_some()
    }

    /// Before a read at `now`: is a message in progress, are large buffers held while
    /// quiet? Returns the socket's new timeout when it must change.
    pub(crate) fn before_read(
        &mut self,
        now: Instant,
        in_message: bool,
        holds_big: bool,
    ) -> Option<Option<Duration>> {
        self.read_from = Some(now);
        self.started = if in_message {
            Some(self.started.unwrap_or(now))
        } else {
            None
        };
        self.release_at = if holds_big && !in_message {
            Some(self.release_at.unwrap_or(now + RELEASE_AFTER))
        } else {
            None
        };
        let mut want = self.idle;
        let deadlines = self.message_deadline().into_iter().chain(self.release_at);
        for at in deadlines {
            let left = at.saturating_duration_since(now).max(Duration::from_millis(1));
            want = Some(want.map_or(left, |w| w.min(left)));
        }
        let change = match (self.set, want) {
            (Some(set), Some(w)) => w > set || set > w + SLACK,
            // Nothing to time and no idle timeout: the deadline's timeout stays until it
            // wakes a read (`Expired::Early`, which reads again) rather than cost two system
            // calls per message that ends a read (set back now, set again for the next one).
            (Some(_), None) => self.woke,
            (a, b) => a != b,
        };
        self.woke = false;
        if change {
            self.set = want;
            return Some(want);
        }
        None
    }

    fn message_deadline(&self) -> Option<Instant> {
        Some(self.started? + self.message?)
    }

    /// After data arrived at `now`: whether the message begun is already overdue.
    pub(crate) fn message_overdue(&self, now: Instant) -> bool {
        self.message_deadline().is_some_and(|d| now >= d)
    }

    /// A read timed out at `now`: which deadline it met.
    pub(crate) fn expired(&mut self, now: Instant) -> Expired {
        self.woke = true;
        if self.message_overdue(now) {
            return Expired::Message;
        }
        if self.release_at.is_some_and(|r| now >= r) {
            self.release_at = None;
            return Expired::Release;
        }
        // Without `before_read` since (no deadline running) the socket had the idle timeout
        // itself, so `read_from` is older than that and it really is idle.
        match (self.idle, self.read_from) {
            (Some(idle), Some(from)) if now < from + idle => Expired::Early,
            (Some(_), _) => Expired::Idle,
            (None, _) => Expired::Early,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn no_deadlines_blocks() {
        let t0 = Instant::now();
        let mut c = ReadClock::new(None, Some(60 * S), None);
        assert_eq!(c.before_read(t0, false, false), None, "blocking read, unchanged");
        assert_eq!(
            c.expired(t0 + 1000 * S),
            Expired::Early,
            "no idle timeout: never idle"
        );
    }

    #[test]
    fn after_the_release_the_idle_timeout_is_set_back() {
        let t0 = Instant::now();
        let mut c = ReadClock::new(None, Some(60 * S), None);
        assert_eq!(c.before_read(t0, false, true), Some(Some(S)));
        assert_eq!(c.expired(t0 + S), Expired::Release);
        // Buffers given back, nothing running: the socket must block again.
        assert!(c.needs_clock(false, false));
        assert_eq!(c.before_read(t0 + S, false, false), Some(None));
        assert!(!c.needs_clock(false, false));
    }

    #[test]
    fn an_early_wake_for_a_deadline_is_not_idleness() {
        // The release deadline is 1 s away, but the socket kept a slightly shorter timeout
        // from before: waking before the deadline is not the idle timeout, whatever it is.
        let t0 = Instant::now();
        let mut c = ReadClock::new(None, Some(60 * S), None);
        c.before_read(t0, false, true);
        assert_eq!(c.expired(t0 + S / 2), Expired::Early);
        let mut c = ReadClock::new(Some(30 * S), Some(60 * S), Some(30 * S));
        c.before_read(t0, false, true);
        assert_eq!(c.expired(t0 + S / 2), Expired::Early);
        assert_eq!(c.expired(t0 + 2 * S), Expired::Release);
        assert_eq!(c.expired(t0 + 31 * S), Expired::Idle);
    }

    #[test]
    fn a_message_gets_its_deadline_and_keeps_it() {
        let t0 = Instant::now();
        let mut c = ReadClock::new(None, Some(60 * S), None);
        assert_eq!(c.before_read(t0, true, false), Some(Some(60 * S)));
        // 30 s later, still in the same message: the deadline is 30 s away.
        assert_eq!(c.before_read(t0 + 30 * S, true, false), Some(Some(30 * S)));
        assert!(!c.message_overdue(t0 + 59 * S));
        assert!(c.message_overdue(t0 + 60 * S));
        assert_eq!(c.expired(t0 + 60 * S), Expired::Message);
        // The message ends: back to blocking; the next one starts afresh.
        assert_eq!(c.before_read(t0 + 61 * S, false, false), Some(None));
        assert_eq!(c.before_read(t0 + 70 * S, true, false), Some(Some(60 * S)));
        assert!(!c.message_overdue(t0 + 129 * S));
    }

    #[test]
    fn without_an_idle_timeout_a_message_timeout_stays_until_it_wakes_a_read() {
        let t0 = Instant::now();
        let mut c = ReadClock::new(None, Some(60 * S), None);
        assert_eq!(c.before_read(t0, true, false), Some(Some(60 * S)));
        // The message ends with the read: the socket keeps its timeout, no system call.
        assert!(c.needs_clock(false, false), "the deadline just ended");
        assert_eq!(c.before_read(t0 + S, false, false), None);
        assert!(!c.needs_clock(false, false) && !c.message_timed());
        // The next message finds the timeout it wants already set.
        assert_eq!(c.before_read(t0 + 2 * S, true, false), None);
        assert!(!c.message_overdue(t0 + 61 * S), "timed from its own start");
        assert_eq!(c.before_read(t0 + 3 * S, false, false), None);
        // Quiet: the stale timeout wakes a read, which is no deadline; then the socket blocks.
        assert_eq!(c.expired(t0 + 63 * S), Expired::Early);
        assert!(c.needs_clock(false, false));
        assert_eq!(c.before_read(t0 + 63 * S, false, false), Some(None));
        assert!(!c.needs_clock(false, false));
    }

    #[test]
    fn small_changes_cost_no_system_call() {
        let t0 = Instant::now();
        let mut c = ReadClock::new(None, Some(60 * S), None);
        c.before_read(t0, true, false);
        assert_eq!(c.before_read(t0 + Duration::from_millis(50), true, false), None);
    }

    #[test]
    fn idle_and_message_take_the_sooner() {
        let t0 = Instant::now();
        let mut c = ReadClock::new(Some(10 * S), Some(60 * S), Some(10 * S));
        assert_eq!(c.before_read(t0, false, false), None, "idle timeout already set");
        assert_eq!(
            c.before_read(t0, true, false),
            None,
            "idle is sooner than the message deadline"
        );
        assert_eq!(c.expired(t0 + 10 * S), Expired::Idle);
        assert_eq!(c.before_read(t0 + 55 * S, true, false), Some(Some(5 * S)));
    }

    #[test]
    fn big_quiet_buffers_are_released_after_a_second() {
        let t0 = Instant::now();
        let mut c = ReadClock::new(None, None, None);
        assert_eq!(c.before_read(t0, false, true), Some(Some(RELEASE_AFTER)));
        assert_eq!(c.expired(t0 + RELEASE_AFTER), Expired::Release);
        assert_eq!(
            c.before_read(t0 + RELEASE_AFTER, false, false),
            Some(None),
            "blocking again"
        );
        // Not while a message is in progress (its buffers are in use).
        assert_eq!(c.before_read(t0, true, true), None);
    }

    #[test]
    fn the_clock_is_needed_only_while_a_deadline_runs() {
        let t0 = Instant::now();
        let mut c = ReadClock::new(Some(10 * S), Some(60 * S), Some(10 * S));
        assert!(
            !c.needs_clock(false, false),
            "between messages: the idle timeout is set"
        );
        assert!(c.needs_clock(true, false) && c.needs_clock(false, true));
        c.before_read(t0, true, false);
        assert!(c.message_timed());
        assert!(
            c.needs_clock(false, false),
            "the message just ended: reset the timeout"
        );
        assert_eq!(
            c.before_read(t0 + S, false, false),
            None,
            "back to the idle timeout"
        );
        assert!(!c.needs_clock(false, false) && !c.message_timed());
    }

    #[test]
    fn no_message_timeout_means_none() {
        let t0 = Instant::now();
        let mut c = ReadClock::new(None, None, None);
        assert_eq!(c.before_read(t0, true, false), None);
        assert!(!c.message_overdue(t0 + 10_000 * S));
    }
}
