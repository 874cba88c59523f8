//! # syncws
//!
//! A WebSocket server (RFC 6455) for programs that are not async: desktop tools, daemons, game
//! servers, test rigs, gateways. Register a handler, start the server, and clients talk to you
//! over `ws://` or `wss://` — no async runtime anywhere.
//!
//! ```no_run
//! use syncws::{Connection, Handler, Server, ServerConfig};
//!
//! struct Echo;
//!
//! impl Handler for Echo {
//!     fn on_text(&mut self, conn: &Connection, text: syncws::TextPayload) {
//!         let _ = conn.send_text(&text);
//!     }
//! }
//!
//! let server = Server::new(ServerConfig::new(([127, 0, 0, 1], 9001)));
//! let handle = server.start(Echo).expect("listen");
//! println!("listening on ws://{}", handle.local_addr());
//! # handle.stop();
//! ```
//!
//! A complete, self-stopping example (port 0, one client):
//!
//! ```
//! use std::sync::mpsc;
//! use syncws::{Connection, Handler, Server, ServerConfig, TextPayload};
//!
//! // The text arrives as a slice of the buffer it was read into (no copy), and may be kept.
//! struct Echo(mpsc::Sender<TextPayload>);
//! impl Handler for Echo {
//!     fn on_text(&mut self, conn: &Connection, text: TextPayload) {
//!         conn.send_text(&text).unwrap();
//!         self.0.send(text).unwrap();
//!     }
//! }
//!
//! let (tx, rx) = mpsc::channel();
//! let handle = Server::new(ServerConfig::new(([127, 0, 0, 1], 0))).start(Echo(tx)).unwrap();
//! let url = format!("ws://{}/", handle.local_addr());
//! let (mut client, _) = tungstenite::connect(url).unwrap();
//! client.send(tungstenite::Message::text("hello")).unwrap();
//! assert_eq!(client.read().unwrap().into_text().unwrap().as_str(), "hello");
//! assert_eq!(rx.recv().unwrap(), "hello");
//! drop(client);
//! handle.stop(); // close 1001 to any client still there; every thread joined
//! ```
//!
//! Inline mode (sgcWebSockets' "NoSync"): handlers run on each connection's own thread and get borrowed messages (no
//! copy); they must be `Send + Sync`:
//!
//! ```
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use syncws::{Connection, InlineHandler, Server, ServerConfig};
//!
//! struct Echo(AtomicUsize);
//! impl InlineHandler for Echo {
//!     fn on_text(&self, conn: &Connection, text: &str) {
//!         self.0.fetch_add(1, Ordering::Relaxed);
//!         conn.send_text(text).unwrap();
//!     }
//! }
//!
//! let handle = Server::new(ServerConfig::new(([127, 0, 0, 1], 0)))
//!     .start_inline(Echo(AtomicUsize::new(0)))
//!     .unwrap();
//! let (mut client, _) = tungstenite::connect(format!("ws://{}/", handle.local_addr())).unwrap();
//! client.send(tungstenite::Message::text("inline")).unwrap();
//! assert_eq!(client.read().unwrap().into_text().unwrap().as_str(), "inline");
//! drop(client);
//! handle.stop();
//! ```
//!
//! Asynchronous mode pumped by the application's own thread (a GUI or game loop): the handler
//! stays on that thread and need not be `Send`. A loop that sleeps until something wakes it
//! installs a waker ([`Dispatcher::set_waker`], e.g. a GUI's "request repaint") instead of
//! polling as this example does:
//!
//! ```
//! use std::rc::Rc;
//! use std::time::Duration;
//! use syncws::{Connection, Handler, Server, ServerConfig};
//!
//! struct Ui(Rc<std::cell::Cell<u32>>); // Rc: not Send, and that is fine here
//! impl Handler for Ui {
//!     fn on_text(&mut self, conn: &Connection, text: syncws::TextPayload) {
//!         self.0.set(self.0.get() + 1);
//!         conn.send_text(&text.to_uppercase()).unwrap();
//!     }
//! }
//!
//! let (handle, dispatcher) = Server::new(ServerConfig::new(([127, 0, 0, 1], 0))).start_manual().unwrap();
//! let (mut client, _) = tungstenite::connect(format!("ws://{}/", handle.local_addr())).unwrap();
//! client.send(tungstenite::Message::text("pump")).unwrap();
//! let mut ui = Ui(Rc::default());
//! while ui.0.get() == 0 {
//!     // One turn of the application's loop: handle what has arrived, then draw, etc.
//!     dispatcher.dispatch_timeout(&mut ui, Duration::from_millis(10));
//! }
//! assert_eq!(client.read().unwrap().into_text().unwrap().as_str(), "PUMP");
//! drop(client);
//! handle.stop();
//! ```
//!
//! ## Compression
//!
//! permessage-deflate (RFC 7692) is off by default; [`ServerConfig::deflate`] turns it on for
//! every client that offers it ([`DeflateConfig`] has the knobs; the handshake hook sees
//! [`Request::deflate`] and may refuse it with [`Accept::without_compression`]). Sends and
//! broadcasts compress messages of at least [`DeflateConfig::threshold`] bytes; received
//! messages are inflated, under the size limits, before any handler sees them.
//!
//! ```no_run
//! use syncws::{DeflateConfig, Server, ServerConfig};
//! # struct Echo;
//! # impl syncws::Handler for Echo {}
//! let config = ServerConfig::new(([127, 0, 0, 1], 9001))
//!     .deflate(Some(DeflateConfig::default().level(1).threshold(256)));
//! let handle = Server::new(config).start(Echo).expect("listen");
//! # handle.stop();
//! ```
//!
//! ## Clustering
//!
//! [`ServerConfig::cluster`] makes the server one node of a cluster over Redis: broadcasts,
//! topic publishes and sends or closes by id reach the connections of every node, at most
//! once, without a send ever waiting for Redis ([`ClusterConfig`] states the guarantees;
//! [`ServerEvent::ClusterDown`] and [`ServerEvent::ClusterUp`] report the link).
//!
//! ```no_run
//! use syncws::{ClusterConfig, Server, ServerConfig};
//! # struct Echo;
//! # impl syncws::Handler for Echo {}
//! let config = ServerConfig::new(([127, 0, 0, 1], 9001))
//!     .cluster(ClusterConfig::new("redis://127.0.0.1:6379").node("web-1"));
//! let handle = Server::new(config).start(Echo).expect("listen");
//! handle.broadcast_text("to every client on every node", None);
//! # handle.stop();
//! ```
//!
//! ## Threads
//!
//! ```text
//!                   accept()                    one thread per client
//!  listener thread ─────────► spawn ──► [conn thread] read() ─► decode ─► events ──┐
//!   (+ watchdog)                         │  handshake (TLS, HTTP upgrade, hooks)    │
//!                                        │  pongs, close replies                    │
//!                                        ▼                                          ▼
//!  any thread ── Messenger / Connection ──► outbound lock ──► non-blocking send()  async mode:
//!    send_text, broadcast, close, ping      │  (queue what does not fit)         crossbeam channel
//!                                           ▼                                    ─► ONE dispatch
//!  service thread: poll(POLLOUT) drains queues of full sockets,                  thread (the
//!                  close deadlines, heartbeat pings                              library's or yours)
//!                                                                               inline mode:
//!                                                                                handlers on the
//!                                                                                conn thread
//! ```
//!
//! - **Who reads**: each connection's own thread, blocking in `read()` on its socket; it runs
//!   the TLS and HTTP handshakes, decodes frames, answers pings and close frames, and delivers
//!   events.
//! - **Who writes**: whoever sends. A send takes the connection's outbound lock, writes the
//!   frame with a non-blocking `sendmsg`, queues what the socket did not take, and returns; it
//!   never waits for the client. The service thread drains queued bytes as sockets become
//!   writable. The lock is never held across a blocking call.
//! - **Slow and hostile clients**: each connection's queue has a hard limit
//!   ([`ServerConfig::max_send_queue`]) and all queues together a budget
//!   ([`ServerConfig::outbound_budget`]; a broadcast frame is encoded once and shared by every
//!   queue); past them [`OverflowPolicy`] applies (default: close that client, 1008 or 1013).
//!   The connection's own thread instead waits for its queue to drain, so it stops reading
//!   from a client that does not read (back-pressure). A queue that makes no progress for
//!   [`ServerConfig::write_timeout`] is dropped; read buffers and partial messages have their
//!   own budget ([`ServerConfig::inbound_budget`]) and deadline
//!   ([`ServerConfig::message_timeout`]). The README's limits table gives the most memory
//!   hostile clients can make the server hold.
//! - **Notify modes**: asynchronous ([`Server::start`], [`Server::start_manual`]: one
//!   dispatch thread, handlers never concurrent) or inline ([`Server::start_inline`]: handlers
//!   on each connection's thread).
//!
//! ## Architecture
//!
//! The crate is a stack of rooms; a room imports only from rooms below it (checked by
//! `modcheck.py`; see `docs/ARCHITECTURE.md`). From the bottom:
//!
//! | room | what it holds |
//! |---|---|
//! | `platform` | every OS call std lacks: non-blocking send, `poll`, waker, accept errors |
//! | `error`, `http`, `stats`, `addr` | vocabulary: errors, requests and responses, counters, client addresses as the limits count them |
//! | `auth` | Basic / URL / Session checks, session tokens |
//! | `config` | [`ServerConfig`] and its parts |
//! | `tls` | [`TlsConfig`] from PEM files, the TLS handshake |
//! | `connection` | [`Connection`], its outbound path (with compression) and close state machine, the registry |
//! | `service` | the service thread: flushing, close deadlines, linger, heartbeat |
//! | `dispatch` | events, handler traits, [`Dispatcher`], the delivery paths |
//! | `handshake` | request head, plain HTTP, authentication, hooks, `101`, refusals |
//! | `reader` | the connection thread: handshake, frame loop, end of connection |
//! | `listener` | accept loops, spawning, 503, watchdog |
//! | `server` | [`Server`], [`ServerHandle`], [`Messenger`] |
//!
//! ## Platform
//!
//! Unix (Linux, macOS, BSDs): the outbound path uses `poll` and `MSG_DONTWAIT`; all of it is
//! in one file, `platform.rs`. Other targets fail to compile with a message saying so.
//!
//! ## Features
//!
//! - `tls` (default): `wss://` through rustls; see [`TlsConfig`].
//! - `test-hooks`: a hidden hook for the crate's own watchdog tests; not for applications.
#![forbid(unsafe_code)]

#[cfg(not(unix))]
compile_error!("syncws supports Unix targets only (Linux, macOS, the BSDs): its outbound path uses poll() and MSG_DONTWAIT through rustix; see src/platform.rs");

mod addr;
mod auth;
mod cluster;
mod config;
mod connection;
mod dispatch;
mod error;
mod handshake;
mod http;
mod listener;
mod platform;
mod reader;
mod server;
mod service;
mod stats;
#[cfg(feature = "tls")]
mod tls;

pub use auth::{AuthConfig, AuthHook};
pub use config::{
    ClusterConfig, HeartbeatConfig, OriginPolicy, OverflowPolicy, ServerConfig, WatchdogConfig,
};
pub use connection::{Connection, ConnectionId, Disconnect};
pub use dispatch::{Dispatcher, Event, Handler, InlineHandler, ServerEvent};
pub use error::{Error, Result, SendError, TlsError};
pub use http::{Accept, HandshakeHook, HttpHook, HttpResponse, Request};
pub use server::{ConnectionInfo, Messenger, Server, ServerHandle};
pub use stats::StatsSnapshot;
pub use syncws_protocol::deflate::{DeflateConfig, DeflateParams};
pub use syncws_protocol::{CloseCode, Limits, Payload, ProtocolError, TextPayload};
#[cfg(feature = "tls")]
pub use tls::TlsConfig;

/// The README's Rust examples, compiled as doc tests so they stay true (with the `tls`
/// feature, which one of them uses; the crate's own examples above run without it too).
#[cfg(all(doctest, feature = "tls"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
