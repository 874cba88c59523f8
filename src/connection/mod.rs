//! One WebSocket connection as the rest of the crate and the application see it: the public
//! [`Connection`] handle, its id, the outbound path every sender shares, the close state
//! machine, and the registry of open connections.
//!
//! # Who writes, and what is locked
//!
//! Each connection has one outbound lock (private to `outbound.rs`): the queue of bytes not
//! yet on the wire, the close state and, over TLS, the rustls session. A sender (any thread)
//! takes the lock, encodes the frame and, if nothing is queued, writes it straight to the
//! socket with a **non-blocking** `sendmsg` (header and payload as two slices); whatever does
//! not fit is queued, and the connection is handed to the service thread, which waits for the
//! socket to become writable and drains the queue, again without blocking. The lock is never
//! held across a blocking call, so a client that stopped reading can fill only its own bounded
//! queue: senders and other clients never wait for it. Frames are written whole under the
//! lock, so they never interleave, and a close frame is queued after the data before it.
//!
//! The connection's own thread (the one reading) is the exception that gets back-pressure:
//! when it replies (pongs, or handlers in inline mode) into a full queue, it waits — without
//! the lock — for the socket to drain, so it stops reading from a client that does not read.
//!
//! Over TLS the reader reads ciphertext from the socket **without** the lock, then takes it
//! only to feed those bytes to rustls and take plaintext out (`tls_read.rs`); records reach
//! the socket in the order rustls produced them.
//!
//! # Files, lowest first
//!
//! `id`, `close` (the state machine), `queue` (bytes), `liveness` (heartbeat state) know
//! nothing of the rest; this file is the handle; `context` and `registry` are what a run's
//! connections share; `cork` and `outbound` are the write path; `tls_read` the TLS read side.

mod close;
mod context;
mod cork;
mod deflate;
mod id;
mod liveness;
mod outbound;
mod queue;
mod registry;
mod ticket;
#[cfg(feature = "tls")]
mod tls_read;
mod topics;

use std::fmt;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use syncws_protocol::frame::OpCode;
use syncws_protocol::CloseCode;

pub use close::Disconnect;
pub(crate) use context::{Context, Relay, Scheduler};
pub(crate) use cork::Cork;
pub(crate) use deflate::Broadcast;
pub use id::ConnectionId;
pub(crate) use liveness::Liveness;
pub(crate) use outbound::{encode_frame, set_own_thread, Outbound};
pub(crate) use queue::Budget;
pub(crate) use registry::Registry;
pub(crate) use ticket::{EventCharge, EventMeter, Ticket};
#[cfg(feature = "tls")]
pub(crate) use tls_read::TlsReader;
pub(crate) use topics::{SubscribeHook, Topics};

use crate::error::SendError;

/// What the client asked for in its upgrade request, kept for the connection's life.
#[derive(Debug, Clone)]
pub(crate) struct ConnInfo {
    pub(crate) target: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) protocol: Option<String>,
    pub(crate) user: Option<String>,
    /// permessage-deflate, when agreed.
    pub(crate) deflate: Option<syncws_protocol::deflate::DeflateParams>,
}

struct ConnInner {
    id: ConnectionId,
    peer: SocketAddr,
    info: ConnInfo,
    sock: Arc<TcpStream>,
    out: Outbound,
    ctx: Arc<Context>,
    live: Liveness,
    deflate: Option<deflate::Deflate>,
}

/// A handle to one WebSocket connection: its id, what the client asked for, and methods to
/// send to it and close it. Cheap to clone; usable from any thread, also after the handler
/// that received it has returned. Once the connection is gone, sends return
/// [`SendError::Closed`]. [`Connection::server`] reaches the whole server (broadcast, other
/// connections) from a handler.
pub struct Connection {
    inner: Arc<ConnInner>,
    /// Set only on the handle carried by an event in asynchronous mode (see `ticket.rs`):
    /// released when the event is dropped. Clones do not carry it.
    ticket: Option<Ticket>,
}

impl Clone for Connection {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            ticket: None,
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        match self.ticket.take() {
            None => {}
            Some(Ticket::DeferredClose) => self.run_deferred_close(),
            Some(Ticket::EventBytes(charge)) => drop(charge),
        }
    }
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("id", &self.inner.id)
            .field("peer", &self.inner.peer)
            .field("path", &self.path())
            .finish()
    }
}

impl PartialEq for Connection {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl Eq for Connection {}

impl Connection {
    pub(crate) fn new(
        peer: SocketAddr,
        info: ConnInfo,
        sock: Arc<TcpStream>,
        ctx: Arc<Context>,
        out: Outbound,
    ) -> Self {
        let live = Liveness::new(ctx.now_ms());
        let deflate = match (info.deflate, &ctx.config.deflate) {
            (Some(p), Some(cfg)) => Some(deflate::Deflate::new(p, cfg)),
            _ => None,
        };
        let inner = ConnInner {
            id: ConnectionId::new(),
            peer,
            info,
            sock,
            out,
            ctx,
            live,
            deflate,
        };
        Self {
            inner: Arc::new(inner),
            ticket: None,
        }
    }

    /// A handle for an event, carrying `ticket` to its drop.
    pub(crate) fn with_ticket(&self, ticket: Ticket) -> Self {
        Self {
            inner: self.inner.clone(),
            ticket: Some(ticket),
        }
    }

    /// The connection's id.
    pub fn id(&self) -> ConnectionId {
        self.inner.id
    }

    /// The client's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.inner.peer
    }

    /// The request target of the upgrade (path and query), e.g. `/chat?room=1`.
    pub fn target(&self) -> &str {
        &self.inner.info.target
    }

    /// The path of the upgrade request, without the query.
    pub fn path(&self) -> &str {
        self.target().split('?').next().unwrap_or("")
    }

    /// The query of the upgrade request (after `?`), if any.
    pub fn query(&self) -> Option<&str> {
        self.target().split_once('?').map(|(_, q)| q)
    }

    /// The upgrade request's header fields, in order (values that are not UTF-8 are dropped).
    pub fn headers(&self) -> &[(String, String)] {
        &self.inner.info.headers
    }

    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers()
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The subprotocol chosen in the handshake, if any.
    pub fn protocol(&self) -> Option<&str> {
        self.inner.info.protocol.as_deref()
    }

    /// The authenticated user name, if the connection authenticated.
    pub fn user(&self) -> Option<&str> {
        self.inner.info.user.as_deref()
    }

    /// The last heartbeat round-trip time, once a heartbeat pong has come back.
    pub fn rtt(&self) -> Option<Duration> {
        self.inner.live.rtt()
    }

    /// Whether the connection is still open for sending.
    pub fn is_open(&self) -> bool {
        self.state_is_open()
    }

    /// Bytes queued for this client and not yet written to its socket.
    pub fn queued_bytes(&self) -> usize {
        self.queued()
    }

    /// Sends a text message (compressed when permessage-deflate was agreed and it is at
    /// least [`DeflateConfig::threshold`](crate::DeflateConfig::threshold) bytes long).
    pub fn send_text(&self, text: &str) -> Result<(), SendError> {
        self.send_data(OpCode::Text, text.as_bytes())
    }

    /// Sends a binary message (compressed as [`Connection::send_text`] says).
    pub fn send_binary(&self, data: &[u8]) -> Result<(), SendError> {
        self.send_data(OpCode::Binary, data)
    }

    /// Subscribes this connection to `topic` ([`Messenger::publish_text`](crate::Messenger::publish_text)
    /// reaches it from then on, until [`Connection::unsubscribe`] or the connection's end).
    /// Returns whether it is subscribed now: `false` when the subscribe hook refused, the
    /// connection has ended, or a limit ([`crate::ServerConfig::max_subscriptions`],
    /// [`crate::ServerConfig::max_topic_len`]) was hit.
    pub fn subscribe(&self, topic: &str) -> bool {
        let ctx = &self.inner.ctx;
        let open = || ctx.registry.get(&self.id()).is_some();
        match ctx.topics.subscribe(self, topic, open) {
            Ok(_) => true,
            Err(why) => {
                log::debug!(
                    "connection {}: subscription to {topic:?} refused ({why:?})",
                    self.id()
                );
                false
            }
        }
    }

    /// Ends this connection's subscription to `topic`; whether it had one.
    pub fn unsubscribe(&self, topic: &str) -> bool {
        self.inner.ctx.topics.unsubscribe(self.id(), topic)
    }

    /// The topics this connection subscribes to, in order.
    pub fn subscriptions(&self) -> Vec<String> {
        self.inner.ctx.topics.of(self.id())
    }

    /// The permessage-deflate parameters agreed with this client, if any.
    pub fn deflate(&self) -> Option<&syncws_protocol::deflate::DeflateParams> {
        self.inner.deflate.as_ref().map(|d| d.params())
    }

    /// Sends a ping with `payload` (at most 125 bytes, else [`SendError::TooLong`]).
    pub fn ping(&self, payload: &[u8]) -> Result<(), SendError> {
        if payload.len() > 125 {
            return Err(SendError::TooLong);
        }
        self.send_frame(OpCode::Ping, payload)
    }

    /// Starts the closing handshake: queues a close frame with `code` and `reason` (cut to fit
    /// 123 bytes) after any queued data. The connection ends when the client answers, or after
    /// `close_timeout`. Closing a connection that is already closing does nothing. A code that
    /// may not be sent ([`CloseCode::is_sendable`]) is refused with
    /// [`SendError::InvalidCloseCode`] and nothing is sent.
    pub fn close(&self, code: CloseCode, reason: &str) -> Result<(), SendError> {
        if !code.is_sendable() {
            return Err(SendError::InvalidCloseCode(code.0));
        }
        self.close_gracefully(code, reason)
    }

    /// What every connection of this run shares.
    pub(crate) fn context(&self) -> &Arc<Context> {
        &self.inner.ctx
    }

    /// The heartbeat state.
    pub(crate) fn liveness(&self) -> &Liveness {
        &self.inner.live
    }

    /// The socket (for polling; all writes go through the outbound path).
    pub(crate) fn socket(&self) -> &TcpStream {
        &self.inner.sock
    }
}
