//! Topics on one node: subscribe, unsubscribe, publish (to subscribers only, one shared frame),
//! subscriptions ending with the connection, the subscribe hook and the limits. Clients are
//! tungstenite (and raw sockets that never read, for the memory check).

mod common;

use std::time::Duration;

use common::*;
use syncws::{Connection, Server};
use tungstenite::Message;

fn server() -> Server {
    Server::new(config())
}

/// `n` tungstenite clients and their server-side connections.
fn clients(ts: &TestServer, n: usize) -> Vec<(Client, Connection)> {
    (0..n).map(|_| connect_pair(ts, "/")).collect()
}

#[test]
fn a_publish_reaches_the_subscribers_only() {
    for mode in MODES {
        let ts = start_with(&server(), mode, false);
        let mut cs = clients(&ts, 4);
        assert!(cs[0].1.subscribe("news"));
        assert!(cs[1].1.subscribe("news"));
        assert!(cs[1].1.subscribe("sport"));
        assert!(cs[2].1.subscribe("sport"));
        assert!(cs[1].1.subscribe("news"), "subscribing twice is fine");
        let m = ts.messenger();
        assert_eq!(
            (
                m.subscribers("news"),
                m.subscribers("sport"),
                m.subscribers("none")
            ),
            (2, 2, 0)
        );
        let mut topics = m.topics();
        topics.sort();
        assert_eq!(topics, ["news", "sport"]);
        assert_eq!(cs[1].1.subscriptions(), ["news", "sport"]);

        assert_eq!(m.publish_text("news", "headline", None), 2);
        assert_eq!(m.publish_binary("sport", &[1, 2, 3], Some(&cs[2].1.id())), 1);
        assert_eq!(m.publish_text("nobody", "lost", None), 0);
        assert_eq!(read_text(&mut cs[0].0), "headline");
        assert_eq!(read_text(&mut cs[1].0), "headline");
        assert_eq!(read_data(&mut cs[1].0), Message::Binary(vec![1, 2, 3].into()));
        // Client 2 got nothing (excepted); client 3 subscribes to nothing: a broadcast probe
        // is the next thing every client reads.
        m.broadcast_text("probe", None);
        for (c, _) in &mut cs {
            assert_eq!(read_text(c), "probe", "{mode:?}");
        }
        assert!(cs[0].1.unsubscribe("news"));
        assert!(!cs[0].1.unsubscribe("news"));
        assert_eq!(m.publish_text("news", "second", None), 1);
        assert_eq!(read_text(&mut cs[1].0), "second");
    }
}

#[test]
fn subscriptions_end_with_the_connection_and_a_topic_with_them() {
    let ts = start_with(&server(), Mode::Async, false);
    let (mut a, ca) = connect_pair(&ts, "/");
    let (_b, cb) = connect_pair(&ts, "/");
    assert!(ca.subscribe("room") && ca.subscribe("only-a") && cb.subscribe("room"));
    let m = ts.messenger();
    a.close(None).unwrap();
    drain_until_closed(&mut a);
    ts.expect_disconnect(ca.id());
    assert_eq!(m.subscribers("room"), 1);
    assert_eq!(m.subscribers("only-a"), 0);
    assert_eq!(m.topics(), ["room"]);
    // A handle kept after the end cannot subscribe again (nothing would ever remove it).
    assert!(!ca.subscribe("room"));
    assert_eq!(m.subscribers("room"), 1);
    assert!(ca.subscriptions().is_empty());
}

#[test]
fn the_subscribe_hook_and_the_limits_refuse() {
    let server = Server::new(config().max_subscriptions(3).max_topic_len(8)).on_subscribe(|_conn, topic| {
        if topic == "boom" {
            panic!("hook panics");
        }
        !topic.starts_with("secret")
    });
    let ts = start_with(&server, Mode::Inline, false);
    let (_c, conn) = connect_pair(&ts, "/");
    assert!(!conn.subscribe("secret1"), "vetoed by the hook");
    assert!(!conn.subscribe("boom"), "a panicking hook refuses");
    assert!(!conn.subscribe("much-too-long"), "over max_topic_len");
    assert!(conn.subscribe("a") && conn.subscribe("b") && conn.subscribe("c"));
    assert!(!conn.subscribe("d"), "over max_subscriptions");
    assert!(conn.subscribe("a"), "already subscribed is not one more");
    assert_eq!(conn.subscriptions(), ["a", "b", "c"]);
    assert!(ts.messenger().topics().len() == 3);
}

#[test]
fn a_publish_to_clients_that_do_not_read_is_held_once() {
    // 50 subscribers that never read; each 1 MiB publish is one shared frame in every queue
    // (the first ones go into the kernel's socket buffers, the rest wait in the queues).
    let ts = start_with(&server(), Mode::Async, false);
    let addr = ts.local_addr();
    let mut socks = Vec::new();
    for _ in 0..50 {
        let sock = tcp_small_rcvbuf(addr, 4 << 10);
        let (resp, raw) = raw_upgrade_on(sock, &upgrade_request("/", ""));
        assert_eq!(resp.status, 101);
        assert!(ts.expect_connect().subscribe("big"));
        socks.push(raw);
    }
    let m = ts.messenger();
    for _ in 0..8 {
        assert_eq!(m.publish_binary("big", &vec![7u8; 1 << 20], None), 50);
    }
    std::thread::sleep(Duration::from_millis(300));
    let queued = m.stats().outbound_queued_bytes;
    assert!(queued > 1 << 20, "frames are queued: {queued}");
    // Per subscriber it could be up to 50 x 8 MiB.
    assert!(
        queued <= (8 << 20) + (64 << 10),
        "held once, not per subscriber: {queued} bytes"
    );
    drop(socks);
}
