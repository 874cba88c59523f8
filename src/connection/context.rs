//! What every connection of one server run shares: the configuration, the counters, the
//! clock, the registry, the listening addresses, and the service thread that writes queues
//! whose socket was full. Created once per run; each connection holds it.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use super::deflate::CompressorPool;
use super::queue::Budget;
use super::{Connection, ConnectionId, EventMeter, Registry, Topics};
use crate::config::ServerConfig;
use crate::error::SendError;
use crate::stats::Stats;
use syncws_protocol::frame::OpCode;
use syncws_protocol::CloseCode;

/// Work a connection hands to the service thread (implemented by `service::Service`).
pub(crate) trait Scheduler: Send + Sync {
    /// Write `conn`'s queue as its socket becomes writable.
    fn flush_when_writable(&self, conn: Connection);
    /// Abort `conn` at `at` unless it has ended by then (a closing handshake's deadline).
    fn close_deadline(&self, at: Instant, conn: Connection);
}

/// Where messages for other nodes go (implemented by the cluster room's `Cluster`). Every
/// method returns at once: it queues, it never waits for the network.
pub(crate) trait Relay: Send + Sync {
    /// To every connection on every other node, except `except`.
    fn broadcast(&self, op: OpCode, data: &[u8], except: Option<&ConnectionId>);
    /// To the subscribers of `topic` on every other node, except `except`.
    fn publish(&self, topic: &str, op: OpCode, data: &[u8], except: Option<&ConnectionId>);
    /// To connection `id`, which this node does not hold; `UnknownConnection` if no node does.
    fn send(&self, id: &ConnectionId, op: OpCode, data: &[u8]) -> Result<(), SendError>;
    /// Closes connection `id` held by another node.
    fn close(&self, id: &ConnectionId, code: CloseCode, reason: &str) -> Result<(), SendError>;
    /// Connections open on the other nodes, as of the last presence refresh.
    fn remote_connections(&self) -> usize;
    /// Subscribers of `topic` on the other nodes, as of the last presence refresh.
    fn remote_subscribers(&self, topic: &str) -> usize;
    /// This node's name.
    fn node(&self) -> &str;
    /// Whether both cluster threads are connected to Redis now.
    fn is_up(&self) -> bool;
}

/// See the module docs.
pub(crate) struct Context {
    pub(crate) config: Arc<ServerConfig>,
    pub(crate) stats: Arc<Stats>,
    pub(crate) registry: Registry,
    pub(crate) scheduler: Arc<dyn Scheduler>,
    pub(crate) local_addrs: Vec<SocketAddr>,
    /// Bytes waiting in all outbound queues (`ServerConfig::outbound_budget`).
    pub(crate) outbound: Arc<Budget>,
    /// Bytes held for reading: read buffers and partial messages (`inbound_budget`).
    pub(crate) inbound: Arc<Budget>,
    /// Message bytes waiting for the dispatch thread (`event_queue_bytes`).
    pub(crate) events: Arc<EventMeter>,
    /// Compressors for messages compressed without context (permessage-deflate).
    pub(crate) compressors: CompressorPool,
    /// Who subscribes to which topic.
    pub(crate) topics: Topics,
    /// The cluster, when this run is one node of one (set once, at start).
    pub(crate) relay: OnceLock<Arc<dyn Relay>>,
    epoch: Instant,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("local_addrs", &self.local_addrs)
            .finish_non_exhaustive()
    }
}

impl Context {
    pub(crate) fn new(
        config: Arc<ServerConfig>,
        stats: Arc<Stats>,
        scheduler: Arc<dyn Scheduler>,
        local_addrs: Vec<SocketAddr>,
    ) -> Self {
        Self {
            outbound: Arc::new(Budget::new(config.outbound_budget)),
            inbound: Arc::new(Budget::new(config.inbound_budget)),
            events: Arc::new(EventMeter::new(config.event_queue_bytes)),
            compressors: CompressorPool::new(config.deflate.as_ref()),
            topics: Topics::new(config.max_subscriptions, config.max_topic_len),
            config,
            stats,
            registry: Registry::default(),
            relay: OnceLock::new(),
            scheduler,
            local_addrs,
            epoch: Instant::now(),
        }
    }

    /// Hands a message to every open connection except `except`, encoded once; how many took it.
    pub(crate) fn broadcast_local(&self, op: OpCode, data: &[u8], except: Option<&ConnectionId>) -> usize {
        let conns = self.registry.snapshot();
        Self::fan_out(&conns, op, data, except, &self.outbound)
    }

    /// Hands a message to every subscriber of `topic` except `except`; how many took it.
    pub(crate) fn publish_local(
        &self,
        topic: &str,
        op: OpCode,
        data: &[u8],
        except: Option<&ConnectionId>,
    ) -> usize {
        let subs = self.topics.subscribers(topic);
        Self::fan_out(&subs, op, data, except, &self.outbound)
    }

    fn fan_out(
        conns: &[Connection],
        op: OpCode,
        data: &[u8],
        except: Option<&ConnectionId>,
        budget: &Arc<Budget>,
    ) -> usize {
        if conns.is_empty() {
            return 0;
        }
        let mut message = super::Broadcast::new(op, data, budget.clone());
        conns
            .iter()
            .filter(|c| Some(&c.id()) != except && message.send(c).is_ok())
            .count()
    }

    /// Milliseconds since the run started.
    pub(crate) fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Microseconds since the run started.
    pub(crate) fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }
}
