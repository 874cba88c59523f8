//! What every connection of one server run shares: the configuration, the counters, the
//! clock, the registry, the listening addresses, and the service thread that writes queues
//! whose socket was full. Created once per run; each connection holds it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use super::deflate::CompressorPool;
use super::queue::Budget;
use super::{Connection, EventMeter, Registry, Topics};
use crate::config::ServerConfig;
use crate::stats::Stats;

/// Work a connection hands to the service thread (implemented by `service::Service`).
pub(crate) trait Scheduler: Send + Sync {
    /// Write `conn`'s queue as its socket becomes writable.
    fn flush_when_writable(&self, conn: Connection);
    /// Abort `conn` at `at` unless it has ended by then (a closing handshake's deadline).
    fn close_deadline(&self, at: Instant, conn: Connection);
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
            scheduler,
            local_addrs,
            epoch: Instant::now(),
        }
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
