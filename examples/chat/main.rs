//! The README's demo: a chat with rooms. Serves its page at `/` over plain HTTP(S) and the
//! chat over WebSocket at `/chat?room=NAME&name=NICK` (room default `lobby`, name default
//! `guestN`) on the same port. With `--cluster redis://HOST:PORT` several chat processes share
//! their rooms through Redis: start two with two `--addr`s and open one page on each.
//!
//! ```text
//! cargo run --release --example chat -- [--addr HOST:PORT] [--tls-cert FILE --tls-key FILE]
//! cargo run --release --example chat -- --cluster redis://127.0.0.1:6379 --addr 127.0.0.1:8081
//! cargo run --example chat -- --help     # every flag, with its unit and default
//! ```
//!
//! The protocol (JSON texts, `kind` first):
//! - first to a client: `{"kind":"welcome","id":ID,"name":NAME,"room":ROOM,"node":NODE}`;
//! - a client's text goes to its room on every node, the sender included:
//!   `{"kind":"msg","from":NAME,"id":SENDER_ID,"room":ROOM,"text":TEXT}`; joins and leaves
//!   as `{"kind":"notice","text":...}` to the room;
//! - `/dm ID TEXT` goes to connection ID only, whichever node holds it:
//!   `{"kind":"dm","from":NAME,"id":SENDER_ID,"text":TEXT}`; to an id no node holds, the
//!   sender gets `{"kind":"error","text":...}`.
//!
//! It takes every `ServerConfig` setting as a flag (`examples/support/flags.rs`). When ready it
//! prints one line on stdout, `open http://HOST:PORT/ in a browser` (or `https://`).

#[path = "../support/flags.rs"]
mod flags;

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::process::exit;

use serde_json::json;

use syncws::{Accept, Connection, ConnectionId, Disconnect, Handler, HttpResponse, SendError, ServerConfig};

const PAGE: &str = include_str!("index.html");

/// A chatter: name and room.
struct Member {
    name: String,
    room: String,
}

#[derive(Default)]
struct Chat {
    members: HashMap<ConnectionId, Member>,
    next: u32,
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
fn to_room(conn: &Connection, room: &str, msg: &serde_json::Value) {
    conn.server()
        .publish_text(&format!("room:{room}"), &msg.to_string(), None);
}

fn notice(conn: &Connection, room: &str, text: &str) {
    to_room(conn, room, &json!({"kind": "notice", "text": text}));
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
}

impl Handler for Chat {
    fn on_connect(&mut self, conn: &Connection) {
        self.next += 1;
        let name = param(conn.query(), "name").unwrap_or_else(|| format!("guest{}", self.next));
        let room = param(conn.query(), "room").unwrap_or_else(|| "lobby".into());
        let node = conn.server().node().unwrap_or("single").to_string();
        let welcome =
            json!({"kind": "welcome", "id": conn.id().to_string(), "name": name, "room": room, "node": node});
        let _ = conn.send_text(&welcome.to_string());
        conn.subscribe(&format!("room:{room}"));
        notice(conn, &room, &format!("{name} joined"));
        self.members.insert(conn.id(), Member { name, room });
    }

    fn on_text(&mut self, conn: &Connection, text: syncws::TextPayload) {
        let Some(m) = self.members.get(&conn.id()) else {
            return;
        };
        if let Some(rest) = text.strip_prefix("/dm ") {
            return self.dm(conn, &m.name, rest);
        }
        let msg = json!({"kind": "msg", "from": m.name, "id": conn.id().to_string(), "room": m.room, "text": text.as_str()});
        to_room(conn, &m.room, &msg);
    }

    fn on_disconnect(&mut self, conn: &Connection, _info: Disconnect) {
        if let Some(m) = self.members.remove(&conn.id()) {
            notice(conn, &m.room, &format!("{} left", m.name));
        }
    }
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("syncws=info")).init();
    let defaults = ServerConfig::new(SocketAddr::from(([127, 0, 0, 1], 8080)));
    let cli = flags::Cli::<flags::Args<()>>::new(
        "chat",
        "chat: a chat room; its page at / over HTTP(S), the chat over WebSocket at /chat.",
    )
    .server_flags(&defaults);
    let flags::Args { server, own: () } = cli.parse(flags::Args::new(defaults, ()));
    let (server, tls) = server.build().unwrap_or_else(|why| cli.fail(&why));
    let server = server
        .on_http(|req| match req.path() {
            "/" | "/index.html" => HttpResponse::html(PAGE),
            _ => HttpResponse::text(404, "not found\n"),
        })
        .on_handshake(|req| match req.path() {
            "/chat" => Ok(Accept::new()),
            _ => Err(HttpResponse::text(404, "no chat here; try /chat\n")),
        });
    let scheme = if tls { "https" } else { "http" };
    // Handlers run on the library's dispatch thread; they broadcast through conn.server().
    let handle = match server.start(Chat::default()) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("chat: {e}");
            exit(1);
        }
    };
    println!("open {scheme}://{}/ in a browser", handle.local_addr());
    let _ = std::io::stdout().flush();
    loop {
        std::thread::park(); // serve until killed
    }
}
