//! The application-pumped dispatcher's waker (`Dispatcher::set_waker`): a loop that sleeps
//! until woken, as a GUI loop does, sees every event in order without polling, and is woken
//! far less often than once per event.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Instant;

use common::*;
use syncws::{Connection, Dispatcher, Handler, Server};
use tungstenite::Message;

/// A sticky wake-up flag, like a GUI's "repaint requested": set by the waker, cleared by the
/// loop when it wakes.
#[derive(Default)]
struct Bell {
    rung: Mutex<bool>,
    cond: Condvar,
    calls: AtomicUsize,
}

impl Bell {
    fn ring(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        *self.rung.lock().unwrap() = true;
        self.cond.notify_one();
    }

    /// Sleeps until rung. The bound is only there to fail a lost wake-up instead of hanging:
    /// it is never a polling interval.
    fn sleep(&self) {
        let rung = self.rung.lock().unwrap();
        let (mut rung, timeout) = self.cond.wait_timeout_while(rung, WAIT, |r| !*r).unwrap();
        assert!(
            !timeout.timed_out(),
            "slept {WAIT:?} with events due: a lost wake-up"
        );
        *rung = false;
    }
}

/// Records each client's messages (the client's number and its sequence number).
#[derive(Default)]
struct Tally {
    seen: Vec<Vec<u32>>,
    texts: usize,
}

impl Handler for Tally {
    fn on_text(&mut self, _conn: &Connection, text: syncws::TextPayload) {
        let (c, n) = text.split_once(' ').expect("client and number");
        let (c, n): (usize, u32) = (c.parse().unwrap(), n.parse().unwrap());
        if self.seen.len() <= c {
            self.seen.resize(c + 1, Vec::new());
        }
        self.seen[c].push(n);
        self.texts += 1;
    }
}

/// A client that sends `count` numbered messages as fast as it can (flushing every 64).
fn pipelined_client(addr: SocketAddr, me: usize, count: u32) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut ws = connect(addr, "/load");
        for n in 0..count {
            ws.write(Message::text(format!("{me} {n}"))).unwrap();
            if n % 64 == 63 {
                ws.flush().unwrap();
            }
        }
        ws.flush().unwrap();
        // Stay connected until the test is done with the server.
        let _ = ws.read();
    })
}

/// Pumps like a GUI loop: handle what is waiting, then sleep until woken.
fn pump_until_woken(d: &Dispatcher, bell: &Bell, tally: &mut Tally, want: usize) {
    while tally.texts < want {
        d.dispatch_pending(tally);
        if tally.texts < want {
            bell.sleep();
        }
    }
}

#[test]
fn a_loop_that_sleeps_until_woken_sees_every_event_in_order() {
    const CLIENTS: usize = 4;
    const EACH: u32 = 2_500;
    let (handle, dispatcher) = Server::new(config()).start_manual().unwrap();
    let bell = Arc::new(Bell::default());
    let b = bell.clone();
    dispatcher.set_waker(move || b.ring());
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| pipelined_client(handle.local_addr(), c, EACH))
        .collect();
    let t0 = Instant::now();
    let mut tally = Tally::default();
    let total = CLIENTS * EACH as usize;
    pump_until_woken(&dispatcher, &bell, &mut tally, total);
    let elapsed = t0.elapsed();
    assert_eq!(tally.texts, total);
    for (c, seen) in tally.seen.iter().enumerate() {
        assert_eq!(
            seen,
            &(0..EACH).collect::<Vec<_>>(),
            "client {c}'s messages in order"
        );
    }
    let calls = bell.calls.load(Ordering::Relaxed);
    let events = total + CLIENTS; // the texts and the connects
    println!(
        "waker: {calls} calls for {events} events ({:.0} per 10,000 events) in {elapsed:?}",
        calls as f64 * 10_000.0 / events as f64
    );
    assert!(calls >= 1, "the loop slept and was woken at least once");
    assert!(
        calls < events / 2,
        "{calls} waker calls for {events} events: not batched"
    );
    handle.stop();
    for c in clients {
        c.join().unwrap();
    }
}

#[test]
fn every_late_event_wakes_a_sleeping_loop() {
    let (handle, dispatcher) = Server::new(config()).start_manual().unwrap();
    let bell = Arc::new(Bell::default());
    let b = bell.clone();
    dispatcher.set_waker(move || b.ring());
    let mut ws = connect(handle.local_addr(), "/slow");
    let mut tally = Tally::default();
    // One message at a time, each sent while the loop sleeps on an empty queue: each one
    // must wake it (the connect wakes it first).
    for n in 0..20u32 {
        ws.send(Message::text(format!("0 {n}"))).unwrap();
        pump_until_woken(&dispatcher, &bell, &mut tally, n as usize + 1);
    }
    assert_eq!(tally.seen[0], (0..20).collect::<Vec<_>>());
    let calls = bell.calls.load(Ordering::Relaxed);
    assert!((1..=21).contains(&calls), "{calls} calls for 21 events");
    drop(ws);
    handle.stop();
}

#[test]
fn set_waker_with_events_already_waiting_wakes_at_once() {
    let (handle, dispatcher) = Server::new(config()).start_manual().unwrap();
    let _ws = connect(handle.local_addr(), "/early");
    wait_until("the connect event is queued", || {
        !dispatcher.receiver().is_empty()
    });
    let bell = Arc::new(Bell::default());
    let b = bell.clone();
    dispatcher.set_waker(move || b.ring());
    assert_eq!(
        bell.calls.load(Ordering::Relaxed),
        1,
        "called by set_waker itself"
    );
    bell.sleep(); // already rung: returns at once
    assert_eq!(dispatcher.dispatch_pending(&mut Tally::default()), 1);
    handle.stop();
}
