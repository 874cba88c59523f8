//! The README's demo: a chat room. Serves its page at `/` over plain HTTP(S) and the chat
//! over WebSocket on the same port; every message goes to everyone, with join and leave
//! notices.
//!
//! ```text
//! cargo run --release --example chat -- [--addr HOST:PORT] [--tls-cert FILE --tls-key FILE]
//! cargo run --example chat -- --help     # every flag, with its unit and default
//! ```
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

use syncws::{Accept, Connection, ConnectionId, Disconnect, Handler, HttpResponse, ServerConfig};

const PAGE: &str = include_str!("index.html");

#[derive(Default)]
struct Chat {
    names: HashMap<ConnectionId, String>,
    next: u32,
}

/// To everyone in the room (the server `conn` belongs to).
fn say(conn: &Connection, msg: &serde_json::Value) {
    conn.server().broadcast_text(&msg.to_string(), None);
}

fn notice(conn: &Connection, text: &str) {
    say(conn, &json!({"kind": "notice", "text": text}));
}

impl Handler for Chat {
    fn on_connect(&mut self, conn: &Connection) {
        self.next += 1;
        let name = format!("guest{}", self.next);
        let welcome = json!({"kind": "notice", "text": format!("welcome, you are {name}")});
        let _ = conn.send_text(&welcome.to_string());
        notice(conn, &format!("{name} joined"));
        self.names.insert(conn.id(), name);
    }

    fn on_text(&mut self, conn: &Connection, text: String) {
        let from = self.names.get(&conn.id()).cloned().unwrap_or_default();
        say(conn, &json!({"kind": "msg", "from": from, "text": text}));
    }

    fn on_disconnect(&mut self, conn: &Connection, _info: Disconnect) {
        if let Some(name) = self.names.remove(&conn.id()) {
            notice(conn, &format!("{name} left"));
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
