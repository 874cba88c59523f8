//! [`Messenger`]: sending from anywhere — to one connection by id, to all, closing, pinging —
//! and [`Connection::server`], which gives one to a handler.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use syncws_protocol::frame::OpCode;
use syncws_protocol::CloseCode;

use crate::connection::{Broadcast, Connection, ConnectionId, Context};
use crate::error::SendError;
use crate::stats::StatsSnapshot;

/// A cheap, cloneable handle for sending from any thread: to one connection by id, to all,
/// closing, pinging. Every method returns at once; none waits for a slow client.
#[derive(Clone)]
pub struct Messenger {
    ctx: Arc<Context>,
}

impl fmt::Debug for Messenger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Messenger")
            .field("addrs", &self.ctx.local_addrs)
            .finish()
    }
}

/// An open connection as listed by [`Messenger::connections`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionInfo {
    /// The id.
    pub id: ConnectionId,
    /// The client's address.
    pub peer: SocketAddr,
}

impl Connection {
    /// The server this connection belongs to: broadcast, or reach other connections, from a
    /// handler (in any notify mode).
    pub fn server(&self) -> Messenger {
        Messenger::new(self.context().clone())
    }
}

impl Messenger {
    pub(crate) fn new(ctx: Arc<Context>) -> Self {
        Self { ctx }
    }

    fn get(&self, id: &ConnectionId) -> Result<Connection, SendError> {
        if self.ctx.registry.is_stopping() {
            return Err(SendError::NotRunning);
        }
        self.ctx.registry.get(id).ok_or(SendError::UnknownConnection)
    }

    /// Whether the server is running (not stopped or stopping).
    pub fn is_active(&self) -> bool {
        !self.ctx.registry.is_stopping()
    }

    /// The first listening address (with the real port when port 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.ctx.local_addrs[0]
    }

    /// All listening addresses.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.ctx.local_addrs
    }

    /// The open WebSocket connections.
    pub fn connections(&self) -> Vec<ConnectionInfo> {
        self.ctx
            .registry
            .snapshot()
            .iter()
            .map(|c| ConnectionInfo {
                id: c.id(),
                peer: c.peer_addr(),
            })
            .collect()
    }

    /// Number of open WebSocket connections.
    pub fn connection_count(&self) -> usize {
        self.ctx.registry.len()
    }

    /// The connection with `id`, if open.
    pub fn connection(&self, id: &ConnectionId) -> Option<Connection> {
        self.ctx.registry.get(id)
    }

    /// Sends a text message to one connection (sgcWebSockets' `WriteData`).
    pub fn send_text(&self, id: &ConnectionId, text: &str) -> Result<(), SendError> {
        self.get(id)?.send_text(text)
    }

    /// Sends a binary message to one connection.
    pub fn send_binary(&self, id: &ConnectionId, data: &[u8]) -> Result<(), SendError> {
        self.get(id)?.send_binary(data)
    }

    /// Sends a text message to every open connection except `except`; returns how many
    /// connections it was handed to. A slow client's full queue is handled by its overflow
    /// policy and never delays the others.
    pub fn broadcast_text(&self, text: &str, except: Option<&ConnectionId>) -> usize {
        self.broadcast(OpCode::Text, text.as_bytes(), except)
    }

    /// Sends a binary message to every open connection except `except`.
    pub fn broadcast_binary(&self, data: &[u8], except: Option<&ConnectionId>) -> usize {
        self.broadcast(OpCode::Binary, data, except)
    }

    /// The frame is encoded once; every queue that cannot write it at once holds the same
    /// copy (charged once to the outbound budget).
    fn broadcast(&self, op: OpCode, data: &[u8], except: Option<&ConnectionId>) -> usize {
        let conns = self.ctx.registry.snapshot();
        if conns.is_empty() {
            return 0;
        }
        let mut message = Broadcast::new(op, data, self.ctx.outbound.clone());
        conns
            .iter()
            .filter(|c| Some(&c.id()) != except && message.send(c).is_ok())
            .count()
    }

    /// Publishes a text message to every subscriber of `topic` except `except`; returns how
    /// many it was handed to. Encoded (and compressed) once for all of them, like a broadcast.
    pub fn publish_text(&self, topic: &str, text: &str, except: Option<&ConnectionId>) -> usize {
        self.publish(topic, OpCode::Text, text.as_bytes(), except)
    }

    /// Publishes a binary message to every subscriber of `topic` except `except`.
    pub fn publish_binary(&self, topic: &str, data: &[u8], except: Option<&ConnectionId>) -> usize {
        self.publish(topic, OpCode::Binary, data, except)
    }

    fn publish(&self, topic: &str, op: OpCode, data: &[u8], except: Option<&ConnectionId>) -> usize {
        let subs = self.ctx.topics.subscribers(topic);
        let mut message = Broadcast::new(op, data, self.ctx.outbound.clone());
        subs.iter()
            .filter(|c| Some(&c.id()) != except && message.send(c).is_ok())
            .count()
    }

    /// How many connections subscribe to `topic` (0: the topic does not exist).
    pub fn subscribers(&self, topic: &str) -> usize {
        self.ctx.topics.count(topic)
    }

    /// Every topic that has subscribers now, in no particular order.
    pub fn topics(&self) -> Vec<String> {
        self.ctx.topics.names()
    }

    /// Starts the closing handshake with one connection (see [`Connection::close`]).
    pub fn close(&self, id: &ConnectionId, code: CloseCode, reason: &str) -> Result<(), SendError> {
        self.get(id)?.close(code, reason)
    }

    /// Pings one connection.
    pub fn ping(&self, id: &ConnectionId, payload: &[u8]) -> Result<(), SendError> {
        self.get(id)?.ping(payload)
    }

    /// The server's counters, and the bytes its budgets hold now.
    pub fn stats(&self) -> StatsSnapshot {
        let mut s = self.ctx.stats.snapshot();
        s.outbound_queued_bytes = self.ctx.outbound.used() as u64;
        s.inbound_held_bytes = self.ctx.inbound.used() as u64;
        s.event_queue_bytes = self.ctx.events.used() as u64;
        s
    }
}
