//! The chat's handler and its once-a-second tick, pumped on one thread by [`serve`]: the
//! members this node holds, what they say, and what the pages are told about the room and the
//! counters. The wire messages are listed in the module doc of `main.rs`. (Also compiled into
//! `tests/cluster.rs`, which runs two chat nodes over a real Redis.)

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use syncws::{Connection, ConnectionId, Disconnect, Dispatcher, Handler, Messenger, SendError};

/// How often every node sends its counters and re-sends its part of every room's members.
const TICK: Duration = Duration::from_secs(1);

/// A chatter held by this node: name and room.
struct Member {
    name: String,
    room: String,
}

/// The chat's state on this node. It only ever knows its own members: each node tells every
/// room its part of the member list, and the pages put the parts together.
struct Chat {
    /// This node's name (`single` outside a cluster).
    node: String,
    members: HashMap<ConnectionId, Member>,
    /// For the default names `guestN`.
    next: u32,
    /// Chat messages (room messages and direct ones) handled since the last tick.
    handled: u64,
}

/// Runs the chat on this thread until the server stops: handles its events as they come and
/// ticks every [`TICK`] in between.
pub(crate) fn serve(dispatcher: &Dispatcher, server: &Messenger) {
    let mut chat = Chat {
        node: server.node().unwrap_or("single").to_string(),
        members: HashMap::new(),
        next: 0,
        handled: 0,
    };
    let mut last = Instant::now();
    while server.is_active() {
        let wait = (last + TICK).saturating_duration_since(Instant::now());
        dispatcher.dispatch_timeout(&mut chat, wait);
        let elapsed = last.elapsed();
        if elapsed >= TICK {
            chat.tick(server, elapsed);
            last = Instant::now();
        }
    }
}

/// The value of `key` in a query string (no percent-decoding beyond `+`; names are kept short).
fn param(query: Option<&str>, key: &str) -> Option<String> {
    let v = query?
        .split('&')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))?;
    let v: String = v
        .replace('+', " ")
        .chars()
        .filter(|c| !c.is_control())
        .take(32)
        .collect();
    (!v.is_empty()).then_some(v)
}

/// To everyone in `room`, on every node.
fn to_room(server: &Messenger, room: &str, msg: &Value) {
    server.publish_text(&format!("room:{room}"), &msg.to_string(), None);
}

fn notice(server: &Messenger, room: &str, text: &str) {
    to_room(server, room, &json!({"kind": "notice", "text": text}));
}

impl Chat {
    /// `/dm ID TEXT` from `conn`.
    fn dm(&self, conn: &Connection, from: &str, rest: &str) {
        let (id, text) = rest.split_once(' ').unwrap_or((rest, ""));
        let msg = json!({"kind": "dm", "from": from, "id": conn.id().to_string(), "text": text});
        let sent = match id.parse::<ConnectionId>() {
            Ok(id) => conn.server().send_text(&id, &msg.to_string()),
            Err(_) => Err(SendError::UnknownConnection),
        };
        if sent.is_err() {
            let error = json!({"kind": "error", "text": format!("no one has the id {id}")});
            let _ = conn.send_text(&error.to_string());
        }
    }

    /// This node's members, grouped by room, each as `{"id","name","node"}` (by name).
    fn rooms(&self) -> BTreeMap<&str, Vec<Value>> {
        let mut rooms: BTreeMap<&str, Vec<(&str, String)>> = BTreeMap::new();
        for (id, m) in &self.members {
            rooms.entry(&m.room).or_default().push((&m.name, id.to_string()));
        }
        let entry = |(name, id): (&str, String)| json!({"id": id, "name": name, "node": self.node});
        rooms
            .into_iter()
            .map(|(room, mut list)| {
                list.sort();
                (room, list.into_iter().map(entry).collect())
            })
            .collect()
    }

    /// Tells `room` which of its members this node holds (all of them: the list replaces
    /// this node's previous one; empty when the last one left).
    fn send_part(&self, server: &Messenger, room: &str, members: Vec<Value>) {
        let part = json!({"kind": "members", "room": room, "node": self.node, "members": members});
        to_room(server, room, &part);
    }

    /// [`Chat::send_part`] for `room`, now (after a join or a leave).
    fn send_part_of(&self, server: &Messenger, room: &str) {
        let members = self.rooms().remove(room).unwrap_or_default();
        self.send_part(server, room, members);
    }

    /// Once a [`TICK`]: this node's counters to every page of the cluster, and its part of
    /// every room it holds members of (so that pages opened since learn it, and forget a node
    /// that stopped sending).
    fn tick(&mut self, server: &Messenger, elapsed: Duration) {
        let rate = self.handled as f64 / elapsed.as_secs_f64();
        self.handled = 0;
        let stats = json!({
            "kind": "stats",
            "node": self.node,
            "connections": server.connection_count(),
            "cluster_connections": server.cluster_connection_count(),
            "msgs_per_sec": (rate * 10.0).round() / 10.0,
        });
        server.broadcast_text(&stats.to_string(), None);
        for (room, members) in self.rooms() {
            self.send_part(server, room, members);
        }
    }
}

impl Handler for Chat {
    fn on_connect(&mut self, conn: &Connection) {
        self.next += 1;
        let name = param(conn.query(), "name").unwrap_or_else(|| format!("guest{}", self.next));
        let room = param(conn.query(), "room").unwrap_or_else(|| "lobby".into());
        let welcome = json!({"kind": "welcome", "id": conn.id().to_string(), "name": name, "room": room, "node": self.node});
        let _ = conn.send_text(&welcome.to_string());
        conn.subscribe(&format!("room:{room}"));
        let server = conn.server();
        notice(&server, &room, &format!("{name} joined"));
        self.members.insert(
            conn.id(),
            Member {
                name,
                room: room.clone(),
            },
        );
        self.send_part_of(&server, &room);
    }

    fn on_text(&mut self, conn: &Connection, text: syncws::TextPayload) {
        let Some(m) = self.members.get(&conn.id()) else {
            return;
        };
        self.handled += 1;
        if let Some(rest) = text.strip_prefix("/dm ") {
            return self.dm(conn, &m.name, rest);
        }
        let msg = json!({"kind": "msg", "from": m.name, "id": conn.id().to_string(), "room": m.room, "text": text.as_str()});
        to_room(&conn.server(), &m.room, &msg);
    }

    fn on_disconnect(&mut self, conn: &Connection, _info: Disconnect) {
        if let Some(m) = self.members.remove(&conn.id()) {
            let server = conn.server();
            notice(&server, &m.room, &format!("{} left", m.name));
            self.send_part_of(&server, &m.room);
        }
    }
}
