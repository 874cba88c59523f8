//! Echo server: sends every text and binary message back. The target of the Autobahn
//! conformance suite and of the load generator.
//!
//! ```text
//! cargo run --release --example echo -- [--addr HOST:PORT] [--notify async|inline]
//!     [--max-message-size BYTES] [--tls-cert FILE --tls-key FILE [--tls-chain FILE]]
//!     [--heartbeat-interval SECS --heartbeat-timeout SECS]
//!     [--auth basic,url,session] [--user NAME --password PASS]... [--users FILE] ...
//! cargo run --example echo -- --help     # every flag, with its unit and default
//! ```
//!
//! Every `ServerConfig` setting is a flag (`examples/support/flags.rs`).
//!
//! When ready it prints exactly one line on stdout, `listening on ws://HOST:PORT` (or
//! `wss://`), and nothing else. Logs go to stderr: `RUST_LOG=syncws=debug` for more.

#[path = "support/flags.rs"]
mod flags;

use std::io::Write;
use std::process::exit;

use syncws::{Connection, Handler, InlineHandler, ServerConfig, ServerEvent};

struct Echo;

impl Handler for Echo {
    fn on_text(&mut self, conn: &Connection, text: syncws::TextPayload) {
        let _ = conn.send_text(&text);
    }
    fn on_binary(&mut self, conn: &Connection, data: syncws::Payload) {
        let _ = conn.send_binary(&data);
    }
    fn on_server_event(&mut self, event: ServerEvent) {
        eprintln!("server event: {event:?}");
    }
}

struct InlineEcho;

impl InlineHandler for InlineEcho {
    fn on_text(&self, conn: &Connection, text: &str) {
        let _ = conn.send_text(text);
    }
    fn on_binary(&self, conn: &Connection, data: &[u8]) {
        let _ = conn.send_binary(data);
    }
    fn on_server_event(&self, event: ServerEvent) {
        eprintln!("server event: {event:?}");
    }
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("syncws=info")).init();
    let defaults = ServerConfig::default();
    let cli = flags::Cli::<flags::Args<bool>>::new(
        "echo",
        "echo: an echo server, every text and binary message sent back (the Autobahn target).",
    )
    .heading("echo")
    .flag(
        "notify",
        "async|inline",
        "async",
        "how handlers run: async = on one dispatch thread, inline = on each connection's thread",
        |a, v| {
            a.own = match v {
                "async" => false,
                "inline" => true,
                _ => return Err(format!("{v:?} is neither async nor inline")),
            };
            Ok(())
        },
    )
    .server_flags(&defaults);
    let args = cli.parse(flags::Args::new(defaults, false));
    let inline = args.own;
    let (server, tls) = args.server.build().unwrap_or_else(|why| cli.fail(&why));
    let started = if inline {
        server.start_inline(InlineEcho)
    } else {
        server.start(Echo)
    };
    let handle = match started {
        Ok(h) => h,
        Err(e) => {
            eprintln!("echo: {e}");
            exit(1);
        }
    };
    let scheme = if tls { "wss" } else { "ws" };
    println!("listening on {scheme}://{}", handle.local_addr());
    let _ = std::io::stdout().flush();
    loop {
        std::thread::park();
    }
}
