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
//! The page shows the room, the node it is connected to, who is in the room (on every node),
//! and live counters with a chart of their last minute.
//!
//! The protocol (JSON texts, `kind` first):
//! - first to a client: `{"kind":"welcome","id":ID,"name":NAME,"room":ROOM,"node":NODE}`;
//! - a client's text goes to its room on every node, the sender included:
//!   `{"kind":"msg","from":NAME,"id":SENDER_ID,"room":ROOM,"text":TEXT}`; joins and leaves
//!   as `{"kind":"notice","text":...}` to the room;
//! - `/dm ID TEXT` goes to connection ID only, whichever node holds it:
//!   `{"kind":"dm","from":NAME,"id":SENDER_ID,"text":TEXT}`; to an id no node holds, the
//!   sender gets `{"kind":"error","text":...}`;
//! - who is in the room, one node's part at a time:
//!   `{"kind":"members","room":ROOM,"node":NODE,"members":[{"id":ID,"name":NAME,"node":NODE},..]}`
//!   lists every member of ROOM that NODE holds, and replaces NODE's previous list (an empty
//!   one: none left there). A node sends it to the room at once on each join and leave, and
//!   again every second while it holds members of the room. A page's member list is the
//!   union of the latest part of each node, where a part not refreshed for 3.5 s is dropped:
//!   a newcomer learns the members on other nodes within a second, and the members of a
//!   node that died disappear within about 4.5 s (its last part was up to a second old, and
//!   the page checks every second). No node needs to hear another (nodes only reach
//!   clients), and a part lost on the way (the cluster delivers at most once) is made good
//!   by the next;
//! - every second, each node to every client of the cluster:
//!   `{"kind":"stats","node":NODE,"connections":N,"cluster_connections":M,"msgs_per_sec":R}`:
//!   N connections open on NODE, M in the whole cluster (as of the last presence refresh),
//!   R chat messages (room and direct) NODE handled per second over the last second. A page
//!   shows its own node's N and M, and the sum of the latest R of every node heard from in
//!   the last 3.5 s as the cluster's messages per second.
//!
//! It takes every `ServerConfig` setting as a flag (`examples/support/flags.rs`). When ready it
//! prints one line on stdout, `open http://HOST:PORT/ in a browser` (or `https://`).

#[path = "../support/flags.rs"]
mod flags;
mod rooms;

use std::io::Write;
use std::net::SocketAddr;
use std::process::exit;

use syncws::{Accept, HttpResponse, ServerConfig};

const PAGE: &str = include_str!("index.html");

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
    // The handler and the counters' tick share this thread (rooms::serve pumps the events).
    let (handle, dispatcher) = match server.start_manual() {
        Ok(x) => x,
        Err(e) => {
            eprintln!("chat: {e}");
            exit(1);
        }
    };
    println!("open {scheme}://{}/ in a browser", handle.local_addr());
    let _ = std::io::stdout().flush();
    rooms::serve(&dispatcher, &handle.messenger()); // until killed
}
