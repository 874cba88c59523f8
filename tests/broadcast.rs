//! Broadcasts: many clients all receive, and a client that stops reading is cut off by the
//! overflow policy without slowing the others or blocking the sender.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::*;
use syncws::{CloseCode, OverflowPolicy, SendError, Server};
use tungstenite::Message;

#[test]
fn broadcast_reaches_fifty_clients() {
    let server = Server::new(config());
    let srv = start_with(&server, Mode::Async, false);
    let mut clients = Vec::new();
    for i in 0..50 {
        clients.push(connect_pair(&srv, &format!("/{i}")));
    }
    srv.wait_connections(50);
    for k in 0..10 {
        assert_eq!(srv.broadcast_text(&format!("news {k}"), None), 50);
    }
    assert_eq!(srv.broadcast_binary(&[1, 2, 3], None), 50);
    let skip = clients[7].1.id();
    assert_eq!(srv.broadcast_text("not for 7", Some(&skip)), 49);
    assert_eq!(srv.broadcast_text("last", None), 50);
    for (i, (ws, _)) in clients.iter_mut().enumerate() {
        for k in 0..10 {
            assert_eq!(read_text(ws), format!("news {k}"), "client {i}");
        }
        assert_eq!(read_data(ws), Message::binary(vec![1, 2, 3]));
        if i != 7 {
            assert_eq!(read_text(ws), "not for 7", "client {i}");
        }
        assert_eq!(read_text(ws), "last", "client {i}");
    }
    drop(clients);
    srv.stop();
}

#[test]
fn broadcast_in_inline_mode_from_a_handler() {
    // A chat room: every text is broadcast to everyone else, from the connection's own thread.
    struct Room(Arc<std::sync::OnceLock<syncws::Messenger>>);
    impl syncws::InlineHandler for Room {
        fn on_text(&self, conn: &syncws::Connection, text: &str) {
            self.0.get().unwrap().broadcast_text(text, Some(&conn.id()));
        }
    }
    let messenger = Arc::new(std::sync::OnceLock::new());
    let handle = Server::new(config())
        .start_inline(Room(messenger.clone()))
        .unwrap();
    messenger.set(handle.messenger()).unwrap();
    let mut clients: Vec<_> = (0..5).map(|_| connect(handle.local_addr(), "/")).collect();
    wait_until("5 connections", || handle.connection_count() == 5);
    clients[0].send(Message::text("hello room")).unwrap();
    for ws in &mut clients[1..] {
        assert_eq!(read_text(ws), "hello room");
    }
    clients[3].send(Message::text("from 3")).unwrap();
    assert_eq!(read_text(&mut clients[0]), "from 3");
    drop(clients);
    handle.stop();
}

/// A client on its own thread that reads `expect` numbered messages in order, counting them.
fn counting_reader(mut ws: Client, count: Arc<AtomicUsize>) -> JoinHandle<Client> {
    std::thread::spawn(move || loop {
        match ws.read() {
            Ok(Message::Text(t)) => {
                if t.as_str() == "end" {
                    return ws;
                }
                let seq: usize = t.split(':').next().unwrap().parse().unwrap();
                let want = count.load(Ordering::Acquire);
                assert_eq!(seq, want, "messages arrive in order, none lost");
                count.store(want + 1, Ordering::Release);
            }
            Ok(_) => {}
            Err(e) => panic!(
                "reader failed after {} messages: {e}",
                count.load(Ordering::Acquire)
            ),
        }
    })
}

#[test]
fn stalled_client_is_cut_off_without_slowing_the_others() {
    const QUEUE: usize = 64 << 10;
    const BATCH: usize = 8;
    let server = Server::new(config().max_send_queue(QUEUE));
    let srv = start_with(&server, Mode::Async, false);

    let mut readers = Vec::new();
    for _ in 0..5 {
        let (ws, _c) = connect_pair(&srv, "/reader");
        let n = Arc::new(AtomicUsize::new(0));
        readers.push((n.clone(), counting_reader(ws, n)));
    }
    // Completes the upgrade, then never reads.
    let stalled = raw_connect(srv.local_addr(), "/stalled");
    let stalled_id = srv.expect_connect().id();
    srv.wait_connections(6);

    let messenger = srv.messenger();
    let pad = "x".repeat(8 << 10);
    let mut seq = 0usize;
    let mut slowest = Duration::ZERO;
    let mut cut_off = None;
    let mut after_cut = 0;
    // Enough to fill any socket buffers many times over; the loop ends well before.
    let cap = (64 << 20) / pad.len();
    while after_cut < 20 {
        for _ in 0..BATCH {
            let msg = format!("{seq}:{pad}");
            let t0 = Instant::now();
            let n = messenger.broadcast_text(&msg, None);
            slowest = slowest.max(t0.elapsed());
            assert!(n >= 5, "a reader was dropped (handed to {n})");
            seq += 1;
        }
        // Pace on the readers (so only the stalled client can fall behind).
        let deadline = Instant::now() + WAIT;
        for (n, _) in &readers {
            while n.load(Ordering::Acquire) < seq {
                assert!(
                    Instant::now() < deadline,
                    "a reader is stuck at {}",
                    n.load(Ordering::Acquire)
                );
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        if cut_off.is_none() {
            for ev in srv.events.try_iter() {
                if let Ev::Disconnect(c, d) = ev {
                    assert_eq!(c.id(), stalled_id, "only the stalled client may go: {d:?}");
                    cut_off = Some(d);
                }
            }
        } else {
            after_cut += 1;
        }
        assert!(seq < cap, "the stalled client was never cut off");
    }
    assert_eq!(messenger.broadcast_text("end", None), 5);
    let mut clients = Vec::new();
    for (n, r) in readers {
        clients.push(r.join().unwrap());
        assert_eq!(n.load(Ordering::Acquire), seq);
    }
    assert_eq!(srv.connection_count(), 5);
    let d = cut_off.unwrap();
    assert_eq!(d.code, CloseCode::POLICY_VIOLATION, "{d:?}");
    assert!(d.reason.contains("overflow"), "{d:?}");
    assert!(!d.clean);
    assert!(
        slowest < Duration::from_secs(1),
        "a broadcast blocked for {slowest:?}"
    );
    drop((stalled, clients));
    srv.stop();
}

#[test]
fn drop_message_policy_keeps_the_stalled_client() {
    const QUEUE: usize = 32 << 10;
    let server = Server::new(
        config()
            .max_send_queue(QUEUE)
            .overflow_policy(OverflowPolicy::DropMessage),
    );
    let srv = start_with(&server, Mode::Inline, false);
    let stalled = raw_connect(srv.local_addr(), "/stalled");
    let conn = srv.expect_connect();
    let pad = "y".repeat(8 << 10);
    let mut dropped = 0;
    let mut sent = 0;
    let cap = (64 << 20) / pad.len();
    while dropped < 10 {
        match conn.send_text(&pad) {
            Ok(()) => sent += 1,
            Err(SendError::QueueFull) => dropped += 1,
            Err(e) => panic!("unexpected {e}"),
        }
        assert!(sent < cap, "the queue never filled");
    }
    assert!(conn.queued_bytes() <= QUEUE, "queue {}", conn.queued_bytes());
    assert!(conn.is_open());
    assert_eq!(srv.connection_count(), 1);
    // Broadcasts skip it (not handed over) while it is full.
    assert_eq!(srv.broadcast_text(&pad, None), 0);
    drop(stalled);
    srv.expect_disconnect(conn.id());
    srv.stop();
}
