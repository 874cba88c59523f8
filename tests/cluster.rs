//! The cluster over a REAL `redis-server`: each test starts its own on a free loopback port
//! (no persistence), runs two server instances in this process sharing it, and stops it.
//! Cross-node broadcast, topic publish, send and close by id, unknown ids, presence expiry
//! (a stopped node, and a node that vanished without a word), Redis killed and restarted
//! mid-run, and garbage on the channels. And the chat example's members and counters across
//! two chat nodes (its handler compiled in from `examples/chat/rooms.rs`).
//!
//! Without `redis-server` on the PATH the tests say so loudly and pass, unless
//! `SYNCWS_REQUIRE_REDIS=1` (as `.ci/run` sets after installing it).

mod common;
#[path = "../examples/chat/rooms.rs"]
mod rooms;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
use syncws::{CloseCode, ClusterConfig, ConnectionId, SendError, Server, ServerEvent, ServerHandle};

/// A `redis-server` child process on 127.0.0.1.
struct Redis {
    child: Option<Child>,
    port: u16,
}

impl Redis {
    /// Starts one on a free port; `None` (after a loud message) when it is not installed.
    fn start() -> Option<Self> {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut r = Self { child: None, port };
        if Command::new("redis-server").arg("--version").output().is_err() {
            assert!(
                std::env::var("SYNCWS_REQUIRE_REDIS").is_err(),
                "redis-server not found and SYNCWS_REQUIRE_REDIS is set"
            );
            eprintln!("!!! SKIPPED: redis-server not found (apt-get install redis-server)");
            return None;
        }
        r.restart();
        Some(r)
    }

    /// (Re)starts the server on its port and waits for PING.
    fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        self.child = Some(child);
        wait_until("redis-server answers PING", || {
            std::thread::sleep(Duration::from_millis(20));
            TcpStream::connect(("127.0.0.1", self.port)).is_ok() && self.cmd(&["PING"]).contains("PONG")
        });
    }

    /// Kills the server (SIGKILL) and reaps it.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Runs one command over a raw RESP connection; the reply as text ("" on failure).
    fn cmd(&self, args: &[&str]) -> String {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return String::new();
        };
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut req = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            req.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
        }
        let _ = s.write_all(&req);
        let mut buf = [0u8; 4096];
        let n = s.read(&mut buf).unwrap_or(0);
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    /// Publishes raw bytes (given as text) on `channel`.
    fn publish(&self, channel: &str, bytes: &str) {
        self.cmd(&["PUBLISH", channel, bytes]);
    }

    /// How many subscribers `channel` has.
    fn numsub(&self, channel: &str) -> usize {
        let r = self.cmd(&["PUBSUB", "NUMSUB", channel]);
        r.lines()
            .last()
            .and_then(|l| l.strip_prefix(':'))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A node on `redis` named `name`, presence refreshed every 100 ms, expiring after 1 s.
fn node(redis: &Redis, name: &str) -> TestServer {
    let cluster = ClusterConfig::new(redis.url())
        .node(name)
        .presence(Duration::from_millis(100), Duration::from_secs(1));
    let ts = start_with(&Server::new(config().cluster(cluster)), Mode::Async, false);
    expect_up(&ts);
    ts
}

fn expect_up(ts: &TestServer) {
    ts.wait_for("ClusterUp", |e| {
        matches!(e, Ev::Server(ServerEvent::ClusterUp)).then_some(())
    });
}

fn expect_down(ts: &TestServer) {
    ts.wait_for("ClusterDown", |e| {
        matches!(e, Ev::Server(ServerEvent::ClusterDown { .. })).then_some(())
    });
}

/// Two nodes sharing `redis`, both subscribed to the broadcast channel.
fn two_nodes(redis: &Redis) -> (TestServer, TestServer) {
    let (a, b) = (node(redis, "a"), node(redis, "b"));
    wait_until("both nodes subscribed", || redis.numsub("syncws:all") == 2);
    (a, b)
}

#[test]
fn broadcast_publish_send_and_close_cross_nodes() {
    let Some(redis) = Redis::start() else { return };
    let t0 = Instant::now();
    let (a, b) = two_nodes(&redis);
    let (mut ca, conn_a) = connect_pair(&a, "/");
    let (mut cb, conn_b) = connect_pair(&b, "/");
    assert_eq!((a.node(), b.node()), (Some("a"), Some("b")));

    // Broadcast: local at once, and across (not twice on the sending node).
    assert_eq!(a.broadcast_text("hello all", None), 1);
    assert_eq!(read_text(&mut ca), "hello all");
    assert_eq!(read_text(&mut cb), "hello all");
    b.broadcast_binary(&[1, 2], Some(&conn_a.id()));
    b.broadcast_text("second", None);
    assert_eq!(
        read_text(&mut ca),
        "second",
        "the excepted id got nothing, and nothing twice"
    );
    assert_eq!(
        read_data(&mut cb),
        tungstenite::Message::Binary(vec![1, 2].into())
    );
    assert_eq!(read_text(&mut cb), "second");

    // Publish: only the node whose clients hold the topic subscribes to it.
    assert!(conn_b.subscribe("room"));
    wait_until("b subscribed to the topic", || {
        redis.numsub("syncws:topic:room") == 1
    });
    wait_until("a counts b's subscriber", || a.cluster_subscribers("room") == 1);
    assert_eq!((a.subscribers("room"), b.cluster_subscribers("room")), (0, 1));
    assert_eq!(a.publish_text("room", "to the room", None), 0);
    assert_eq!(read_text(&mut cb), "to the room");
    assert!(conn_b.unsubscribe("room"));
    wait_until("b unsubscribed", || redis.numsub("syncws:topic:room") == 0);
    wait_until("a counts no subscriber", || a.cluster_subscribers("room") == 0);

    // Send and close by id, through presence.
    wait_until("presence", || {
        a.cluster_connection_count() == 2 && b.cluster_connection_count() == 2
    });
    a.send_text(&conn_b.id(), "just you")
        .expect("send to the other node");
    assert_eq!(read_text(&mut cb), "just you");
    b.send_binary(&conn_a.id(), b"bin")
        .expect("binary to the other node");
    assert_eq!(
        read_data(&mut ca),
        tungstenite::Message::Binary(b"bin".to_vec().into())
    );
    let nobody: ConnectionId = "0b7c1f4e-5d2a-4c3b-9e8f-1a2b3c4d5e6f".parse().unwrap();
    assert_eq!(a.send_text(&nobody, "x"), Err(SendError::UnknownConnection));
    assert_eq!(
        a.close(&nobody, CloseCode::NORMAL, "x"),
        Err(SendError::UnknownConnection)
    );
    a.close(&conn_b.id(), CloseCode::NORMAL, "bye from a").unwrap();
    let f = read_close(&mut cb).expect("close frame");
    assert_eq!((code_of(&f), f.reason.as_str()), (1000, "bye from a"));
    // (The publisher counts after Redis answered, which may be after the delivery.)
    wait_until("a's four sends counted", || a.stats().cluster_sent == 4);
    assert_eq!(a.stats().cluster_dropped, 0);
    drop((ca, cb));
    a.stop();
    b.stop();
    eprintln!("cross-node test: {:?}", t0.elapsed());
}

#[test]
fn presence_expires_for_stopped_and_vanished_nodes() {
    let Some(redis) = Redis::start() else { return };
    let (a, b) = two_nodes(&redis);
    let (_cb, conn_b) = connect_pair(&b, "/");
    wait_until("a knows b's connection", || a.cluster_connection_count() == 1);
    b.stop();
    // A clean stop withdraws presence: unknown at the next refresh.
    wait_until_within(Duration::from_secs(3), "b's id forgotten", || {
        a.send_text(&conn_b.id(), "x") == Err(SendError::UnknownConnection)
    });
    assert_eq!(a.cluster_connection_count(), 0);

    // A node that vanishes (crash, cut) leaves what it last wrote; it expires after the TTL.
    let ghost = "7d3e2c1b-4a5f-4e6d-8c7b-9a0b1c2d3e4f".to_string();
    redis.cmd(&["SADD", "syncws:nodes", "ghost"]);
    redis.cmd(&["PSETEX", "syncws:alive:ghost", "1000", "1"]);
    redis.cmd(&["SADD", "syncws:ids:ghost", &ghost]);
    redis.cmd(&["PEXPIRE", "syncws:ids:ghost", "1000"]);
    let id: ConnectionId = ghost.parse().unwrap();
    wait_until("the ghost's id is known", || a.send_text(&id, "boo").is_ok());
    assert_eq!(a.cluster_connection_count(), 1);
    let took = wait_until_within(Duration::from_secs(4), "the ghost's id expired", || {
        a.send_text(&id, "boo") == Err(SendError::UnknownConnection)
    });
    assert!(took <= Duration::from_millis(2500), "{took:?}");
    wait_until("the ghost left the node set", || {
        !redis.cmd(&["SMEMBERS", "syncws:nodes"]).contains("ghost")
    });
}

#[test]
fn redis_killed_and_restarted_mid_run() {
    let Some(mut redis) = Redis::start() else { return };
    let (a, b) = two_nodes(&redis);
    let (mut ca, _) = connect_pair(&a, "/");
    let (mut cb, _) = connect_pair(&b, "/");
    a.broadcast_text("before", None);
    assert_eq!(read_text(&mut ca), "before");
    assert_eq!(read_text(&mut cb), "before");

    redis.kill();
    expect_down(&a);
    expect_down(&b);
    // Local delivery never stops; cross-node messages are dropped and counted.
    assert_eq!(a.broadcast_text("while down", None), 1);
    assert_eq!(read_text(&mut ca), "while down");
    assert!(a.stats().cluster_dropped >= 1);

    let t0 = Instant::now();
    redis.restart();
    expect_up(&a);
    expect_up(&b);
    wait_until("re-subscribed", || redis.numsub("syncws:all") == 2);
    let resumed = t0.elapsed();
    assert!(resumed < Duration::from_secs(5), "resumed after {resumed:?}");
    a.broadcast_text("after", None);
    assert_eq!(read_text(&mut ca), "after");
    assert_eq!(
        read_text(&mut cb),
        "after",
        "nothing from the outage arrives late"
    );
    wait_until("presence re-published", || a.cluster_connection_count() == 2);
    a.stop();
    b.stop();
}

#[test]
fn garbage_on_the_channels_is_ignored() {
    let Some(redis) = Redis::start() else { return };
    let (a, b) = two_nodes(&redis);
    let (mut cb, conn_b) = connect_pair(&b, "/");
    assert!(conn_b.subscribe("t"));
    wait_until("b subscribed to the topic", || {
        redis.numsub("syncws:topic:t") == 1
    });
    redis.publish("syncws:all", "garbage");
    redis.publish("syncws:node:b", "SWS\u{1}\u{3}\u{1}\u{0}");
    redis.publish("syncws:topic:t", "");
    redis.publish("syncws:all", "SWS\u{1}\u{9}\u{1}\u{0}\u{1}x\u{0}\u{0}\u{0}\u{0}");
    wait_until("four malformed envelopes counted", || {
        b.stats().cluster_malformed == 4
    });
    a.broadcast_text("still fine", None);
    assert_eq!(read_text(&mut cb), "still fine");
    a.publish_text("t", "topic fine", None);
    assert_eq!(read_text(&mut cb), "topic fine");
    assert_eq!(
        a.stats().cluster_malformed,
        2,
        "a ignores its own channels' garbage too"
    );
}

#[test]
fn a_node_starts_without_redis_and_joins_when_it_comes() {
    let Some(mut redis) = Redis::start() else { return };
    redis.kill();
    let cluster = ClusterConfig::new(redis.url()).node("early");
    let a = start_with(&Server::new(config().cluster(cluster)), Mode::Inline, false);
    expect_down(&a);
    assert_eq!(a.cluster_is_up(), Some(false));
    let (mut ca, _) = connect_pair(&a, "/");
    assert_eq!(a.broadcast_text("local only", None), 1);
    assert_eq!(read_text(&mut ca), "local only");
    assert!(a.stats().cluster_dropped >= 1);
    redis.restart();
    expect_up(&a);
    assert_eq!(a.cluster_is_up(), Some(true));
    wait_until("subscribed", || redis.numsub("syncws:all") == 1);
    let t0 = Instant::now();
    a.stop();
    assert!(
        t0.elapsed() < Duration::from_secs(3),
        "stop took {:?}",
        t0.elapsed()
    );
}

#[test]
fn a_bad_url_fails_the_start() {
    let cluster = ClusterConfig::new("http://not-redis");
    let err = Server::new(config().cluster(cluster)).start_inline(Recorder {
        tx: crossbeam_channel::unbounded().0,
        echo: false,
    });
    assert!(err.is_err());
}

#[test]
fn without_a_cluster_everything_is_local() {
    let ts = start_with(&Server::new(config()), Mode::Async, false);
    let (_c, conn) = connect_pair(&ts, "/");
    assert_eq!((ts.node(), ts.cluster_is_up()), (None, None));
    assert_eq!(ts.cluster_connection_count(), 1);
    let nobody: ConnectionId = "0b7c1f4e-5d2a-4c3b-9e8f-1a2b3c4d5e6f".parse().unwrap();
    assert_eq!(ts.send_text(&nobody, "x"), Err(SendError::UnknownConnection));
    assert!(ts.send_text(&conn.id(), "local").is_ok());
}

#[test]
fn large_messages_cross_and_oversized_ones_stay_local() {
    let Some(redis) = Redis::start() else { return };
    let (a, b) = two_nodes(&redis);
    let (mut ca, _) = connect_pair(&a, "/");
    let (mut cb, _) = connect_pair(&b, "/");
    let big = "x".repeat(700 << 10);
    a.broadcast_text(&big, None);
    assert_eq!(read_text(&mut ca).len(), big.len());
    assert_eq!(read_text(&mut cb).len(), big.len(), "700 KiB crossed");
    let huge = vec![7u8; 2 << 20];
    a.broadcast_binary(&huge, None);
    assert_eq!(
        read_data(&mut ca),
        tungstenite::Message::Binary(huge.clone().into())
    );
    assert_eq!(
        a.stats().cluster_dropped,
        1,
        "over max_payload (1 MiB): local only, counted"
    );
    a.broadcast_text("next", None);
    assert_eq!(read_text(&mut cb), "next", "the 2 MiB one never reached b");
}

/// A node of the chat example on `redis`: its handler and tick pumped on a thread of their
/// own, as the example's `main` does.
struct ChatNode {
    name: &'static str,
    handle: ServerHandle,
    pump: std::thread::JoinHandle<()>,
}

impl ChatNode {
    fn start(redis: &Redis, name: &'static str) -> Self {
        let cluster = ClusterConfig::new(redis.url())
            .node(name)
            .presence(Duration::from_millis(100), Duration::from_secs(1));
        let (handle, dispatcher) = Server::new(config().cluster(cluster)).start_manual().unwrap();
        let server = handle.messenger();
        let pump = std::thread::spawn(move || rooms::serve(&dispatcher, &server));
        wait_until("the chat node is up", || {
            handle.messenger().cluster_is_up() == Some(true)
        });
        Self { name, handle, pump }
    }

    /// A client named `name` in the room `r`, past its welcome; and its id.
    fn join(&self, name: &str) -> (Client, String) {
        let mut ws = connect(self.handle.local_addr(), &format!("/chat?room=r&name={name}"));
        let welcome = next_json(&mut ws, "welcome", "the welcome", |_| true);
        assert_eq!(
            (
                welcome["name"].as_str(),
                welcome["room"].as_str(),
                welcome["node"].as_str()
            ),
            (Some(name), Some("r"), Some(self.name))
        );
        (ws, welcome["id"].as_str().unwrap().to_string())
    }

    fn stop(self) {
        self.handle.stop();
        self.pump.join().expect("the chat's pump thread");
    }
}

/// Reads JSON texts from `ws` until one of `kind` satisfies `pred` ([`LONG_WAIT`] at most).
fn next_json(ws: &mut Client, kind: &str, what: &str, mut pred: impl FnMut(&Value) -> bool) -> Value {
    let t0 = Instant::now();
    loop {
        assert!(t0.elapsed() < LONG_WAIT, "timed out waiting for {what}");
        let msg: Value = serde_json::from_str(&read_text(ws)).expect("the chat sends JSON");
        if msg["kind"] == kind && pred(&msg) {
            return msg;
        }
    }
}

/// The names in a `members` message, as `name@node`.
fn member_names(msg: &Value) -> Vec<String> {
    let list = msg["members"].as_array().expect("a members list");
    let name = |m: &Value| format!("{}@{}", m["name"].as_str().unwrap(), m["node"].as_str().unwrap());
    list.iter().map(name).collect()
}

/// Bob (on b) learns alice from node a's part (sent at a's next tick: she joined before him),
/// and himself from b's.
fn expect_members(bob: &mut Client, alice_id: &str) {
    let part = next_json(bob, "members", "node a's part", |m| m["node"] == "a");
    assert_eq!(part["room"].as_str(), Some("r"));
    assert_eq!(member_names(&part), ["alice@a"]);
    assert_eq!(part["members"][0]["id"].as_str(), Some(alice_id));
    let own = next_json(bob, "members", "node b's part", |m| m["node"] == "b");
    assert_eq!(member_names(&own), ["bob@b"]);
}

/// Bob's node counts 1 connection on it and 2 in the cluster; a message alice sends shows in
/// a's rate, none in b's.
fn expect_counters(alice: &mut Client, bob: &mut Client) {
    next_json(bob, "stats", "b's stats with 2 in the cluster", |m| {
        m["node"] == "b" && m["cluster_connections"] == 2
    });
    let stats = next_json(bob, "stats", "b's stats", |m| m["node"] == "b");
    assert_eq!(stats["connections"].as_u64(), Some(1));
    assert_eq!(stats["cluster_connections"].as_u64(), Some(2));

    alice.send(tungstenite::Message::text("hello from a")).unwrap();
    let msg = next_json(bob, "msg", "alice's message", |_| true);
    assert_eq!(msg["text"].as_str(), Some("hello from a"));
    next_json(bob, "stats", "a's rate above 0", |m| {
        m["node"] == "a" && m["msgs_per_sec"].as_f64().unwrap() > 0.0
    });
    let stats = next_json(bob, "stats", "b's stats", |m| m["node"] == "b");
    assert_eq!(stats["msgs_per_sec"].as_f64(), Some(0.0));
}

/// Alice leaves: a tells the room at once that it holds no one there any more, and then says
/// nothing more about the room (while its stats keep coming).
fn expect_leave(mut alice: Client, bob: &mut Client) {
    alice.close(None).unwrap();
    let _ = alice.flush();
    next_json(bob, "members", "node a's empty part", |m| {
        m["node"] == "a" && m["members"].as_array().is_some_and(Vec::is_empty)
    });
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_millis(2500) {
        let m: Value = serde_json::from_str(&read_text(bob)).unwrap();
        assert!(
            m["kind"] != "members" || m["node"] != "a",
            "a still sends a part: {m}"
        );
    }
}

#[test]
fn chat_members_and_counters_across_nodes() {
    let Some(redis) = Redis::start() else { return };
    let (a, b) = (ChatNode::start(&redis, "a"), ChatNode::start(&redis, "b"));
    wait_until("both nodes subscribed", || redis.numsub("syncws:all") == 2);
    let (mut alice, alice_id) = a.join("alice");
    let (mut bob, _) = b.join("bob");
    expect_members(&mut bob, &alice_id);
    expect_counters(&mut alice, &mut bob);
    expect_leave(alice, &mut bob);
    drop(bob);
    a.stop();
    b.stop();
}
