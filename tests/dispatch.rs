//! Notify modes: the manual `Dispatcher` pumped from the test thread, the library's dispatch
//! thread, and inline handlers on connection threads.

mod common;

use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use common::*;
use syncws::{CloseCode, Connection, Disconnect, Dispatcher, Event, Handler, InlineHandler, Server};
use syncws_protocol::frame::OpCode;
use tungstenite::Message;

/// A handler that is deliberately not `Send` (it lives on the pumping thread).
#[derive(Default)]
struct Local {
    log: Rc<RefCell<Vec<String>>>,
    conns: Rc<RefCell<Vec<Connection>>>,
}

impl Handler for Local {
    fn on_connect(&mut self, conn: &Connection) {
        self.log.borrow_mut().push(format!("connect {}", conn.path()));
        self.conns.borrow_mut().push(conn.clone());
    }
    fn on_text(&mut self, conn: &Connection, text: syncws::TextPayload) {
        conn.send_text(&format!("echo {text}")).unwrap();
        self.log.borrow_mut().push(format!("text {text}"));
    }
    fn on_disconnect(&mut self, conn: &Connection, info: Disconnect) {
        self.log
            .borrow_mut()
            .push(format!("disconnect {} {}", conn.path(), info.code));
    }
}

/// Pumps with `dispatch_timeout` until `cond` holds (bounded by [`WAIT`]).
fn pump_until<H: Handler>(d: &Dispatcher, h: &mut H, what: &str, mut cond: impl FnMut(&H) -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond(h) {
        assert!(Instant::now() < deadline, "pumping: timed out waiting for {what}");
        d.dispatch_timeout(h, Duration::from_millis(50));
    }
}

#[test]
fn manual_dispatcher_pumped_from_the_test_thread() {
    let server = Server::new(config());
    let (handle, dispatcher) = server.start_manual().unwrap();
    let mut h = Local::default();
    let log = h.log.clone();

    let mut ws = connect(handle.local_addr(), "/manual");
    // Nothing reaches the handler until the application pumps.
    assert!(log.borrow().is_empty());
    pump_until(&dispatcher, &mut h, "connect", |h| !h.conns.borrow().is_empty());
    assert_eq!(log.borrow()[0], "connect /manual");

    ws.send(Message::text("one")).unwrap();
    pump_until(&dispatcher, &mut h, "text", |h| h.log.borrow().len() == 2);
    assert_eq!(read_text(&mut ws), "echo one");

    // Several messages, handled in order by dispatch_pending once they are all queued.
    for i in 0..20 {
        ws.send(Message::text(format!("m{i}"))).unwrap();
    }
    wait_until("20 events queued", || dispatcher.receiver().len() >= 20);
    assert_eq!(dispatcher.dispatch_pending(&mut h), 20);
    assert_eq!(dispatcher.dispatch_pending(&mut h), 0);
    for i in 0..20 {
        assert_eq!(read_text(&mut ws), format!("echo m{i}"));
    }
    let texts: Vec<String> = log.borrow()[2..].to_vec();
    assert_eq!(texts, (0..20).map(|i| format!("text m{i}")).collect::<Vec<_>>());

    // Idle: dispatch_timeout waits and returns 0.
    assert_eq!(dispatcher.dispatch_timeout(&mut h, Duration::from_millis(20)), 0);

    drop(ws);
    pump_until(&dispatcher, &mut h, "disconnect", |h| {
        h.log.borrow().last().is_some_and(|l| l.starts_with("disconnect"))
    });
    assert_eq!(log.borrow().last().unwrap(), "disconnect /manual 1006");

    // A client still attached at stop: its disconnect is delivered after stop returns, then
    // the dispatcher runs dry.
    let _ws2 = connect(handle.local_addr(), "/late");
    pump_until(&dispatcher, &mut h, "connect", |h| h.conns.borrow().len() == 2);
    handle.stop();
    dispatcher.run(&mut h); // returns: the server is gone
    assert!(
        log.borrow().last().unwrap().starts_with("disconnect /late"),
        "{:?}",
        log.borrow()
    );
    assert_eq!(dispatcher.dispatch_timeout(&mut h, Duration::from_secs(5)), 0);
}

#[test]
fn manual_dispatch_with_a_tiny_event_queue_loses_nothing() {
    let server = Server::new(config().event_queue(2));
    let (handle, dispatcher) = server.start_manual().unwrap();
    let mut h = Local::default();
    let mut ws = connect(handle.local_addr(), "/");
    for i in 0..200 {
        ws.send(Message::text(format!("{i}"))).unwrap();
    }
    // The connection thread waits for room (back-pressure); pumping drains everything in order.
    pump_until(&dispatcher, &mut h, "200 texts", |h| h.log.borrow().len() == 201);
    let log = h.log.borrow().clone();
    assert_eq!(log[0], "connect /");
    for (i, l) in log[1..].iter().enumerate() {
        assert_eq!(l, &format!("text {i}"));
    }
    for i in 0..200 {
        assert_eq!(read_text(&mut ws), format!("echo {i}"));
    }
    drop(ws);
    handle.stop();
}

#[test]
fn receiver_works_with_select() {
    let server = Server::new(config());
    let (handle, dispatcher) = server.start_manual().unwrap();
    let (other_tx, other_rx) = crossbeam_channel::unbounded::<&str>();
    let mut ws = connect(handle.local_addr(), "/sel");
    ws.send(Message::text("via select")).unwrap();
    other_tx.send("tick").unwrap();
    let mut got_tick = false;
    let mut got_text = None;
    let deadline = Instant::now() + WAIT;
    while !(got_tick && got_text.is_some()) {
        assert!(Instant::now() < deadline);
        crossbeam_channel::select! {
            recv(dispatcher.receiver()) -> ev => match ev.unwrap() {
                Event::Text(c, t) => {
                    c.send_text(&t).unwrap();
                    got_text = Some(t);
                }
                Event::Connect(c) => assert_eq!(c.path(), "/sel"),
                e => panic!("unexpected {e:?}"),
            },
            recv(other_rx) -> t => { assert_eq!(t.unwrap(), "tick"); got_tick = true; }
            default(Duration::from_millis(100)) => {}
        }
    }
    assert_eq!(got_text.as_deref(), Some("via select"));
    assert_eq!(read_text(&mut ws), "via select");
    drop(ws);
    handle.stop();
}

/// What ran, on which thread (id and name).
type Seen = Vec<(String, ThreadId, Option<String>)>;

/// Records the thread every callback runs on.
#[derive(Clone, Default)]
struct Threads {
    seen: Arc<Mutex<Seen>>,
}

impl Threads {
    fn note(&self, what: &str) {
        let t = std::thread::current();
        self.seen
            .lock()
            .unwrap()
            .push((what.to_string(), t.id(), t.name().map(str::to_string)));
    }
}

impl Handler for Threads {
    fn on_text(&mut self, conn: &Connection, text: syncws::TextPayload) {
        self.note(&text);
        conn.send_text(&text).unwrap();
    }
}

impl InlineHandler for Threads {
    fn on_text(&self, conn: &Connection, text: &str) {
        self.note(text);
        conn.send_text(text).unwrap();
    }
}

#[test]
fn async_mode_runs_every_handler_on_one_dispatch_thread() {
    let h = Threads::default();
    let handle = Server::new(config()).start(h.clone()).unwrap();
    let mut clients: Vec<_> = (0..3).map(|_| connect(handle.local_addr(), "/")).collect();
    for (i, ws) in clients.iter_mut().enumerate() {
        ws.send(Message::text(format!("c{i}"))).unwrap();
        assert_eq!(read_text(ws), format!("c{i}"));
    }
    let seen = h.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3);
    let ids: HashSet<_> = seen.iter().map(|(_, id, _)| *id).collect();
    assert_eq!(ids.len(), 1, "one dispatch thread: {seen:?}");
    assert_ne!(seen[0].1, std::thread::current().id());
    drop(clients);
    handle.stop();
}

#[test]
fn inline_mode_runs_handlers_on_connection_threads() {
    let h = Threads::default();
    let handle = Server::new(config()).start_inline(h.clone()).unwrap();
    let mut clients: Vec<_> = (0..3).map(|_| connect(handle.local_addr(), "/")).collect();
    for (i, ws) in clients.iter_mut().enumerate() {
        for j in 0..2 {
            ws.send(Message::text(format!("c{i}-{j}"))).unwrap();
            assert_eq!(read_text(ws), format!("c{i}-{j}"));
        }
    }
    let seen = h.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 6);
    // One thread per connection: the two messages of a client share it, clients differ.
    for i in 0..3 {
        assert_eq!(seen[2 * i].1, seen[2 * i + 1].1, "{seen:?}");
    }
    let ids: HashSet<_> = seen.iter().map(|(_, id, _)| *id).collect();
    assert_eq!(ids.len(), 3, "{seen:?}");
    drop(clients);
    handle.stop();
}

#[test]
fn a_slow_async_handler_does_not_stop_pongs() {
    // The dispatch thread is busy; connection threads still answer pings on their own. The
    // handler stays busy until the test has its pong, so no clock is involved: a pong that
    // waited for the handler would never come (the raw client's read times out).
    struct Slow {
        busy: crossbeam_channel::Sender<()>,
        release: crossbeam_channel::Receiver<()>,
    }
    impl Handler for Slow {
        fn on_text(&mut self, _c: &Connection, _t: syncws::TextPayload) {
            let _ = self.busy.send(());
            // Bounded: the test releases it long before.
            let _ = self.release.recv_timeout(2 * WAIT);
        }
    }
    let (busy_tx, busy_rx) = crossbeam_channel::unbounded();
    let (release_tx, release_rx) = crossbeam_channel::unbounded();
    let handle = Server::new(config())
        .start(Slow {
            busy: busy_tx,
            release: release_rx,
        })
        .unwrap();
    let mut raw = raw_connect(handle.local_addr(), "/");
    raw.send(true, OpCode::Text, b"take your time");
    busy_rx
        .recv_timeout(WAIT)
        .expect("the handler never got the text");
    raw.send(true, OpCode::Ping, b"quick");
    let f = raw.read_frame();
    assert_eq!((f.opcode, &f.payload[..]), (OpCode::Pong, &b"quick"[..]));
    // Only now is the handler let go.
    release_tx.send(()).unwrap();
    drop(raw);
    handle.stop();
}

#[test]
fn closing_from_a_manual_dispatcher_thread() {
    let server = Server::new(config());
    let (handle, dispatcher) = server.start_manual().unwrap();
    let mut h = Local::default();
    let mut ws = connect(handle.local_addr(), "/bye");
    pump_until(&dispatcher, &mut h, "connect", |h| !h.conns.borrow().is_empty());
    let conn = h.conns.borrow()[0].clone();
    conn.close(CloseCode::NORMAL, "pumped").unwrap();
    let f = read_close(&mut ws).unwrap();
    assert_eq!((code_of(&f), f.reason.as_str()), (1000, "pumped"));
    drain_until_closed(&mut ws);
    pump_until(&dispatcher, &mut h, "disconnect", |h| {
        h.log.borrow().last().is_some_and(|l| l.starts_with("disconnect"))
    });
    assert_eq!(h.log.borrow().last().unwrap(), "disconnect /bye 1000");
    handle.stop();
}

/// A user of the raw receiver who matches events and never calls `Event::dispatch` still gets
/// the close frame of a protocol failure promptly, after the reply to the message before it.
#[test]
fn raw_receiver_users_get_a_prompt_close_after_earlier_replies() {
    let server = Server::new(config());
    let (handle, dispatcher) = server.start_manual().unwrap();
    let rx = dispatcher.receiver().clone();
    let pump = std::thread::spawn(move || {
        let mut errors = 0;
        while let Ok(ev) = rx.recv_timeout(WAIT) {
            match ev {
                Event::Text(c, t) => c.send_text(&format!("re: {t}")).unwrap(),
                Event::Error(_, e) => {
                    assert!(matches!(e, syncws::Error::Protocol(_)), "{e}");
                    errors += 1;
                }
                Event::Disconnect(..) => return errors,
                _ => {}
            }
        }
        panic!("no disconnect event");
    });
    let mut raw = raw_connect(handle.local_addr(), "/raw");
    raw.send(true, OpCode::Text, b"before");
    // A reserved opcode: the connection fails with 1002.
    let started = Instant::now();
    let mut bad = frame(true, OpCode::Binary, b"", true);
    bad[0] = (bad[0] & 0xF0) | 0x3;
    raw.send_raw(&bad);
    let reply = raw.read_frame();
    assert_eq!(
        (reply.opcode, &reply.payload[..]),
        (OpCode::Text, &b"re: before"[..])
    );
    assert_eq!(raw.read_close().0, 1002);
    let took = started.elapsed();
    // The server's fallback, for a dispatcher that never lets go of the event, is 1 s; a raw
    // receiver that drops events once handled must not wait for it.
    assert!(took < Duration::from_millis(800), "close frame took {took:?}");
    assert_eq!(pump.join().unwrap(), 1);
    handle.stop();
}

/// The payload of message `i` of the test below: a size from a spread (empty to 300 KiB, so
/// some share a read buffer and some need a large one), bytes derived from `i`.
fn nth_payload(i: usize) -> Vec<u8> {
    let size = [0, 1, 100, 5 << 10, 70 << 10, 300 << 10, 16][i % 7];
    (0..size).map(|k| (i * 31 + k * 7) as u8 % 128).collect()
}

/// Asynchronous mode hands messages over as slices of the buffers they were read into, and
/// reuses those buffers once dropped: 300 pipelined messages (text and binary), half kept by
/// the handler to the end and half dropped at once (so their buffers are reused meanwhile),
/// all equal what was sent; once all are dropped nothing is left in the event queue's count.
#[test]
fn kept_messages_stay_intact_while_their_buffers_are_reused() {
    let server = Server::new(config());
    let (handle, dispatcher) = server.start_manual().unwrap();
    #[derive(Default)]
    struct Keeper {
        kept: Vec<(usize, Vec<u8>, Result<syncws::TextPayload, syncws::Payload>)>,
        seen: usize,
    }
    impl Handler for Keeper {
        fn on_text(&mut self, _c: &Connection, text: syncws::TextPayload) {
            self.take(Ok(text));
        }
        fn on_binary(&mut self, _c: &Connection, data: syncws::Payload) {
            self.take(Err(data));
        }
    }
    impl Keeper {
        fn take(&mut self, m: Result<syncws::TextPayload, syncws::Payload>) {
            let i = self.seen;
            self.seen += 1;
            let bytes = match &m {
                Ok(t) => t.as_bytes().to_vec(),
                Err(b) => b.to_vec(),
            };
            assert_eq!(bytes, nth_payload(i), "message {i} on arrival");
            if i.is_multiple_of(2) {
                self.kept.push((i, bytes, m));
            }
        }
    }
    let mut ws = connect(handle.local_addr(), "/keep");
    let writer = std::thread::spawn(move || {
        for i in 0..300 {
            let p = nth_payload(i);
            let m = if i.is_multiple_of(3) {
                Message::text(String::from_utf8(p).unwrap())
            } else {
                Message::binary(p)
            };
            ws.write(m).unwrap();
        }
        ws.flush().unwrap();
        ws
    });
    let mut h = Keeper::default();
    pump_until(&dispatcher, &mut h, "300 messages", |h| h.seen == 300);
    for (i, bytes, m) in &h.kept {
        let now = match m {
            Ok(t) => t.as_bytes(),
            Err(b) => &b[..],
        };
        assert_eq!(
            now,
            &bytes[..],
            "kept message {i} changed after its buffer was shared"
        );
    }
    h.kept.clear();
    assert_eq!(handle.stats().event_queue_bytes, 0, "every buffer given back");
    drop(writer.join().unwrap());
    handle.stop();
    dispatcher.dispatch_pending(&mut h);
}
