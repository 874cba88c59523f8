//! [`Messenger`]: sending from anywhere — to one connection by id, to all, closing, pinging —
//! and [`Connection::server`], which gives one to a handler.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use syncws_protocol::frame::OpCode;
use syncws_protocol::CloseCode;

use crate::connection::{Connection, ConnectionId, Context};
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

    /// Sends to `id`, which this node does not hold (`local` says why): to the node that
    /// does, in a cluster.
    fn send_remote(
        &self,
        local: SendError,
        id: &ConnectionId,
        op: OpCode,
        data: &[u8],
    ) -> Result<(), SendError> {
        match (local, self.ctx.relay.get()) {
            (SendError::UnknownConnection, Some(relay)) => relay.send(id, op, data),
            (e, _) => Err(e),
        }
    }

    /// This node's name in its cluster ([`crate::ClusterConfig::node`]); `None` without one.
    pub fn node(&self) -> Option<&str> {
        self.ctx.relay.get().map(|r| r.node())
    }

    /// Whether the cluster is connected to Redis now (cross-node messages go out); `None`
    /// without a cluster. Changes are also reported as [`crate::ServerEvent::ClusterDown`] and
    /// [`crate::ServerEvent::ClusterUp`].
    pub fn cluster_is_up(&self) -> Option<bool> {
        self.ctx.relay.get().map(|r| r.is_up())
    }

    /// Connections open on every node of the cluster, as of the last presence refresh (at
    /// most [`crate::ClusterConfig::presence_refresh`] old, and only what Redis last said
    /// while it is unreachable); without a cluster, [`Messenger::connection_count`].
    pub fn cluster_connection_count(&self) -> usize {
        match self.ctx.relay.get() {
            Some(r) => self.connection_count() + r.remote_connections(),
            None => self.connection_count(),
        }
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

    /// Sends a text message to one connection (sgcWebSockets' `WriteData`). In a cluster, an
    /// id this node does not hold goes to the node that holds it (`Ok` once queued for Redis:
    /// at most once); `UnknownConnection` when no node holds it, as presence last said.
    pub fn send_text(&self, id: &ConnectionId, text: &str) -> Result<(), SendError> {
        match self.get(id) {
            Ok(c) => c.send_text(text),
            Err(e) => self.send_remote(e, id, OpCode::Text, text.as_bytes()),
        }
    }

    /// Sends a binary message to one connection (on any node of the cluster, as
    /// [`Messenger::send_text`]).
    pub fn send_binary(&self, id: &ConnectionId, data: &[u8]) -> Result<(), SendError> {
        match self.get(id) {
            Ok(c) => c.send_binary(data),
            Err(e) => self.send_remote(e, id, OpCode::Binary, data),
        }
    }

    /// Sends a text message to every open connection except `except`; returns how many
    /// connections **of this node** it was handed to. A slow client's full queue is handled by
    /// its overflow policy and never delays the others. In a cluster the message also goes to
    /// every other node (at most once; see [`crate::ClusterConfig`]).
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
        if let Some(relay) = self.ctx.relay.get() {
            relay.broadcast(op, data, except);
        }
        self.ctx.broadcast_local(op, data, except)
    }

    /// Publishes a text message to every subscriber of `topic` except `except`; returns how
    /// many **of this node's** it was handed to. Encoded (and compressed) once for all of
    /// them, like a broadcast. In a cluster it also goes to the subscribers on other nodes.
    pub fn publish_text(&self, topic: &str, text: &str, except: Option<&ConnectionId>) -> usize {
        self.publish(topic, OpCode::Text, text.as_bytes(), except)
    }

    /// Publishes a binary message to every subscriber of `topic` except `except`.
    pub fn publish_binary(&self, topic: &str, data: &[u8], except: Option<&ConnectionId>) -> usize {
        self.publish(topic, OpCode::Binary, data, except)
    }

    fn publish(&self, topic: &str, op: OpCode, data: &[u8], except: Option<&ConnectionId>) -> usize {
        if let Some(relay) = self.ctx.relay.get() {
            relay.publish(topic, op, data, except);
        }
        self.ctx.publish_local(topic, op, data, except)
    }

    /// How many connections subscribe to `topic` (0: the topic does not exist).
    pub fn subscribers(&self, topic: &str) -> usize {
        self.ctx.topics.count(topic)
    }

    /// How many connections subscribe to `topic` on every node of the cluster, as of the last
    /// presence refresh for the other nodes; without a cluster, [`Messenger::subscribers`].
    pub fn cluster_subscribers(&self, topic: &str) -> usize {
        let remote = self.ctx.relay.get().map_or(0, |r| r.remote_subscribers(topic));
        self.subscribers(topic) + remote
    }

    /// Every topic that has subscribers now, in no particular order.
    pub fn topics(&self) -> Vec<String> {
        self.ctx.topics.names()
    }

    /// Starts the closing handshake with one connection (see [`Connection::close`]), on any
    /// node of the cluster (as [`Messenger::send_text`]).
    pub fn close(&self, id: &ConnectionId, code: CloseCode, reason: &str) -> Result<(), SendError> {
        match (self.get(id), self.ctx.relay.get()) {
            (Ok(c), _) => c.close(code, reason),
            (Err(SendError::UnknownConnection), Some(relay)) if code.is_sendable() => {
                relay.close(id, code, reason)
            }
            (Err(SendError::UnknownConnection), Some(_)) => Err(SendError::InvalidCloseCode(code.0)),
            (Err(e), _) => Err(e),
        }
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
