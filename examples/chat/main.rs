//! The README's demo: a chat room. Serves its page at `/` over plain HTTP(S) and the chat
//! over WebSocket on the same port; every message goes to everyone, with join and leave
//! notices.
//!
//! ```text
//! cargo run --release --example chat -- [--addr HOST:PORT] [--tls-cert FILE --tls-key FILE]
//! ```

#[path = "../support/logger.rs"]
mod logger;
#[path = "../support/tls_flags.rs"]
mod tls_flags;

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::process::exit;

use syncws::{
    Accept, Connection, ConnectionId, Disconnect, Handler, HttpResponse, Messenger, Server, ServerConfig,
};

const PAGE: &str = include_str!("index.html");

struct Chat {
    room: Option<Messenger>,
    names: HashMap<ConnectionId, String>,
    next: u32,
}

/// A JSON string literal (quotes and escapes) for `s`.
fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl Chat {
    fn say(&self, json: &str) {
        if let Some(room) = &self.room {
            room.broadcast_text(json, None);
        }
    }
    fn notice(&self, text: &str) {
        self.say(&format!("{{\"kind\":\"notice\",\"text\":{}}}", json_str(text)));
    }
}

impl Handler for Chat {
    fn on_connect(&mut self, conn: &Connection) {
        self.next += 1;
        let name = format!("guest{}", self.next);
        let _ = conn.send_text(&format!(
            "{{\"kind\":\"notice\",\"text\":{}}}",
            json_str(&format!("welcome, you are {name}"))
        ));
        self.notice(&format!("{name} joined"));
        self.names.insert(conn.id(), name);
    }

    fn on_text(&mut self, conn: &Connection, text: String) {
        let from = self.names.get(&conn.id()).cloned().unwrap_or_default();
        self.say(&format!(
            "{{\"kind\":\"msg\",\"from\":{},\"text\":{}}}",
            json_str(&from),
            json_str(&text)
        ));
    }

    fn on_disconnect(&mut self, conn: &Connection, _info: Disconnect) {
        if let Some(name) = self.names.remove(&conn.id()) {
            self.notice(&format!("{name} left"));
        }
    }
}

fn usage(why: &str) -> ! {
    eprintln!(
        "chat: {why}\nusage: chat [--addr HOST:PORT] [--tls-cert FILE --tls-key FILE [--tls-chain FILE]]"
    );
    exit(2)
}

fn main() {
    logger::init();
    let mut addr: SocketAddr = "127.0.0.1:8080".parse().expect("default address");
    let (mut cert, mut key, mut chain) = (None, None, None);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut val = || {
            args.next()
                .unwrap_or_else(|| usage(&format!("{flag} needs a value")))
        };
        match flag.as_str() {
            "--addr" => {
                addr = val()
                    .parse()
                    .unwrap_or_else(|e| usage(&format!("bad --addr: {e}")))
            }
            "--tls-cert" => cert = Some(val()),
            "--tls-key" => key = Some(val()),
            "--tls-chain" => chain = Some(val()),
            "-h" | "--help" => usage("help"),
            other => usage(&format!("unknown flag {other}")),
        }
    }
    #[allow(unused_mut)]
    let mut server = Server::new(ServerConfig::new(addr))
        .on_http(|req| match req.path() {
            "/" | "/index.html" => HttpResponse::html(PAGE),
            _ => HttpResponse::text(404, "not found\n"),
        })
        .on_handshake(|req| match req.path() {
            "/chat" => Ok(Accept::new()),
            _ => Err(HttpResponse::text(404, "no chat here; try /chat\n")),
        });
    let scheme = match tls_flags::tls_config(cert, key, chain) {
        #[cfg(feature = "tls")]
        Ok(Some(tls)) => {
            server = server.tls(tls);
            "https"
        }
        #[cfg(not(feature = "tls"))]
        Ok(Some(never)) => match never {},
        Ok(None) => "http",
        Err(why) => usage(&why),
    };
    // The handler needs the server's messenger to broadcast, so pump events ourselves.
    let (handle, dispatcher) = match server.start_manual() {
        Ok(x) => x,
        Err(e) => {
            eprintln!("chat: {e}");
            exit(1);
        }
    };
    let mut chat = Chat {
        room: Some(handle.messenger()),
        names: HashMap::new(),
        next: 0,
    };
    println!("open {scheme}://{}/ in a browser", handle.local_addr());
    let _ = std::io::stdout().flush();
    dispatcher.run(&mut chat);
}
