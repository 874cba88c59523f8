//! The application-pumped dispatcher's waker ([`crate::Dispatcher::set_waker`]): how a
//! library thread that queues an event tells a sleeping GUI loop to run.
//!
//! One flag, `armed`, is shared by the senders and the dispatcher. The dispatcher sets it
//! when it has emptied the queue (it is about to go idle); the first sender that then queues
//! an event takes it back down and calls the callback. So the callback runs once per idle
//! spell of the pumping loop, not once per event.
//!
//! The race between "the dispatcher found the queue empty" and "a sender queued an event" is
//! closed the way a Dekker lock closes it: each side writes its own half (the dispatcher the
//! flag, the sender the queue), then a sequentially consistent fence, then reads the other
//! half. At least one of them sees the other's write: either the dispatcher sees the event
//! (and handles it before going idle) or the sender sees the flag (and calls the callback).

use std::fmt;
use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// The application's callback.
type Callback = Arc<dyn Fn() + Send + Sync>;

/// The waker slot shared by a run's channel senders and its [`crate::Dispatcher`].
#[derive(Default)]
pub(crate) struct Waker {
    /// Set by the dispatcher when the queue was found empty; taken by the sender that queues
    /// the next event (which calls the callback).
    armed: AtomicBool,
    /// Read only by the sender that took `armed`: never on the per-event path.
    callback: Mutex<Option<Callback>>,
}

impl fmt::Debug for Waker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Waker")
            .field("armed", &self.armed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Waker {
    /// Installs (or replaces) the callback. Does not arm: the caller does, with
    /// [`Waker::idle`], so that events already queued get their wake too.
    pub(crate) fn set(&self, callback: Callback) {
        *self.callback.lock().unwrap_or_else(|e| e.into_inner()) = Some(callback);
    }

    /// A sender has just queued an event: wakes the dispatcher if it had gone idle. The
    /// per-event cost is a fence and a load of a flag that stays in the cache while the
    /// dispatcher is busy.
    pub(crate) fn queued(&self) {
        fence(Ordering::SeqCst);
        if self.armed.load(Ordering::Relaxed) && self.armed.swap(false, Ordering::AcqRel) {
            self.call();
        }
    }

    /// The dispatcher found the queue empty and is about to return: arms the waker, then
    /// looks again (`is_empty`). `true` when an event slipped in meanwhile and the dispatcher
    /// should go on handling events instead of going idle (the flag is taken back down if no
    /// sender has taken it; if one has, its callback is a harmless extra wake).
    pub(crate) fn idle(&self, is_empty: impl FnOnce() -> bool) -> bool {
        if self.callback.lock().unwrap_or_else(|e| e.into_inner()).is_none() {
            return false;
        }
        self.armed.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        if is_empty() {
            return false;
        }
        self.armed.store(false, Ordering::Relaxed);
        true
    }

    /// Calls the callback (if any), containing a panic.
    pub(crate) fn call(&self) {
        let cb = self.callback.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(cb) = cb {
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cb())).is_err() {
                log::error!("the dispatcher's waker panicked");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn counted() -> (Waker, Arc<AtomicUsize>) {
        let w = Waker::default();
        let n = Arc::new(AtomicUsize::new(0));
        let c = n.clone();
        w.set(Arc::new(move || {
            c.fetch_add(1, Ordering::Relaxed);
        }));
        (w, n)
    }

    #[test]
    fn one_call_per_idle_spell() {
        let (w, n) = counted();
        w.queued();
        assert_eq!(n.load(Ordering::Relaxed), 0, "not armed yet: no call");
        assert!(!w.idle(|| true));
        for _ in 0..100 {
            w.queued();
        }
        assert_eq!(n.load(Ordering::Relaxed), 1, "one wake for a burst");
        assert!(!w.idle(|| true));
        w.queued();
        assert_eq!(n.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn an_event_seen_on_the_second_look_keeps_the_dispatcher_busy() {
        let (w, n) = counted();
        assert!(w.idle(|| false), "the queue is not empty: go on");
        w.queued();
        assert_eq!(
            n.load(Ordering::Relaxed),
            0,
            "disarmed again: the dispatcher is busy"
        );
    }

    #[test]
    fn without_a_callback_nothing_is_armed() {
        let w = Waker::default();
        assert!(!w.idle(|| false));
        w.queued();
        assert!(!w.armed.load(Ordering::Relaxed));
    }

    /// The drain-then-sleep race, many times over: a sender queues one event at a time, each
    /// just as the receiver may be finding the queue empty and going to sleep. A lost wake-up
    /// leaves the receiver asleep with an event queued (the test then fails on its bound).
    #[test]
    fn no_wake_up_is_lost_between_the_drain_and_the_sleep() {
        use std::sync::Condvar;
        use std::time::Duration;
        const N: usize = 20_000;
        let (tx, rx) = crossbeam_channel::bounded::<usize>(4);
        let bell = Arc::new((Mutex::new(false), Condvar::new()));
        let w = Arc::new(Waker::default());
        let b = bell.clone();
        w.set(Arc::new(move || {
            *b.0.lock().unwrap() = true;
            b.1.notify_one();
        }));
        let sw = w.clone();
        let sender = std::thread::spawn(move || {
            for i in 0..N {
                tx.send(i).unwrap();
                sw.queued();
                if i % 7 == 0 {
                    std::thread::yield_now();
                }
            }
        });
        let mut next = 0;
        while next < N {
            // dispatch_pending: drain, then arm and look again.
            loop {
                while let Ok(i) = rx.try_recv() {
                    assert_eq!(i, next);
                    next += 1;
                }
                if !w.idle(|| rx.is_empty()) {
                    break;
                }
            }
            if next == N {
                break;
            }
            let rung = bell.0.lock().unwrap();
            let (mut rung, t) = bell
                .1
                .wait_timeout_while(rung, Duration::from_secs(10), |r| !*r)
                .unwrap();
            assert!(
                !t.timed_out(),
                "asleep with {} event(s) queued: a lost wake-up",
                rx.len()
            );
            *rung = false;
        }
        sender.join().unwrap();
    }

    #[test]
    fn a_panicking_callback_is_contained() {
        let w = Waker::default();
        w.set(Arc::new(|| panic!("waker")));
        assert!(!w.idle(|| true));
        w.queued();
        assert!(!w.armed.load(Ordering::Relaxed));
    }
}
