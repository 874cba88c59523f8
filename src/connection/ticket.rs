//! What an event's connection handle can carry to its drop: the byte count it holds in the
//! event queue's budget, or the held-back close frame of a protocol failure. Clones carry
//! nothing, so the ticket is released exactly once — when whoever took the event (the
//! dispatcher after the handler, or an application matching events itself) drops it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// The bytes of message payloads waiting for the dispatch thread (`event_queue_bytes`): a
/// connection thread waits for room before queuing a message; one message is always let in
/// when nothing is waiting, whatever its size.
#[derive(Debug)]
pub(crate) struct EventMeter {
    used: AtomicUsize,
    limit: usize,
    waiters: AtomicUsize,
    lock: Mutex<()>,
    room: Condvar,
}

impl EventMeter {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            used: AtomicUsize::new(0),
            limit,
            waiters: AtomicUsize::new(0),
            lock: Mutex::new(()),
            room: Condvar::new(),
        }
    }

    fn try_take(&self, n: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                (u == 0 || u.saturating_add(n) <= self.limit).then(|| u + n)
            })
            .is_ok()
    }

    /// Takes `n` bytes, waiting for room; gives up (returns `false`) when `give_up` says so,
    /// checked every 100 ms.
    pub(crate) fn take(&self, n: usize, give_up: impl Fn() -> bool) -> bool {
        if self.try_take(n) {
            return true;
        }
        self.waiters.fetch_add(1, Ordering::AcqRel);
        let mut g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let ok = loop {
            if self.try_take(n) {
                break true;
            }
            if give_up() {
                break false;
            }
            g = self
                .room
                .wait_timeout(g, Duration::from_millis(100))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        };
        drop(g);
        self.waiters.fetch_sub(1, Ordering::AcqRel);
        ok
    }

    pub(crate) fn give(&self, n: usize) {
        self.used.fetch_sub(n, Ordering::AcqRel);
        if self.waiters.load(Ordering::Acquire) > 0 {
            let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
            self.room.notify_all();
        }
    }

    /// Bytes waiting now.
    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }
}

/// Bytes taken from the event queue's budget, given back when the last event holding them is
/// dropped (the messages of one read share one charge: the buffer they lie in).
#[derive(Debug)]
pub(crate) struct EventCharge {
    meter: Arc<EventMeter>,
    n: usize,
}

impl EventCharge {
    /// Takes `n` bytes of `meter`, waiting for room (see [`EventMeter::take`]).
    pub(crate) fn take(meter: &Arc<EventMeter>, n: usize, give_up: impl Fn() -> bool) -> Option<Arc<Self>> {
        meter.take(n, give_up).then(|| {
            Arc::new(Self {
                meter: meter.clone(),
                n,
            })
        })
    }
}

impl Drop for EventCharge {
    fn drop(&mut self) {
        self.meter.give(self.n);
    }
}

/// See the module docs.
#[derive(Debug)]
pub(crate) enum Ticket {
    /// Send the held-back close frame.
    DeferredClose,
    /// A share of bytes held in the event queue's budget.
    EventBytes(Arc<EventCharge>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_message_always_fits_an_empty_queue() {
        let m = EventMeter::new(10);
        assert!(m.take(100, || true), "alone, even over the limit");
        assert!(!m.take(1, || true), "but nothing joins it");
        m.give(100);
        assert!(m.take(6, || true) && m.take(4, || true));
        assert!(!m.take(1, || true));
        assert_eq!(m.used(), 10);
    }

    #[test]
    fn a_waiter_wakes_when_room_is_given() {
        let m = Arc::new(EventMeter::new(10));
        assert!(m.take(10, || true));
        let m2 = m.clone();
        let t = std::thread::spawn(move || m2.take(5, || false));
        std::thread::sleep(Duration::from_millis(50));
        m.give(10);
        assert!(t.join().unwrap());
        assert_eq!(m.used(), 5);
    }
}
