//! Counters a program can read at runtime ([`crate::Messenger::stats`]).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Live counters, shared by every run of a [`crate::Server`].
#[derive(Debug, Default)]
pub(crate) struct Stats {
    open: AtomicU64,
    total: AtomicU64,
    msgs_in: AtomicU64,
    bytes_in: AtomicU64,
    msgs_out: AtomicU64,
    bytes_out: AtomicU64,
    protocol_errors: AtomicU64,
    heartbeat_timeouts: AtomicU64,
    handler_panics: AtomicU64,
    rejected_handshakes: AtomicU64,
    cluster_sent: AtomicU64,
    cluster_received: AtomicU64,
    cluster_dropped: AtomicU64,
    cluster_malformed: AtomicU64,
}

/// A snapshot of the server's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StatsSnapshot {
    /// WebSocket connections open now.
    pub connections_open: u64,
    /// WebSocket connections accepted since the server was created.
    pub connections_total: u64,
    /// Messages received (text and binary).
    pub messages_in: u64,
    /// Payload bytes received in messages.
    pub bytes_in: u64,
    /// Frames sent (messages and control frames).
    pub frames_out: u64,
    /// Payload bytes sent.
    pub bytes_out: u64,
    /// Connections failed for a protocol error.
    pub protocol_errors: u64,
    /// Connections closed by the heartbeat for not answering.
    pub heartbeat_timeouts: u64,
    /// Handler panics caught.
    pub handler_panics: u64,
    /// Upgrade requests refused (bad request, hook rejection, over capacity).
    pub rejected_handshakes: u64,
    /// Bytes held by all outbound queues now (a broadcast frame counted once; a queue's copy
    /// buffer counted whole until it is freed); bounded by `ServerConfig::outbound_budget`.
    pub outbound_queued_bytes: u64,
    /// Bytes held for reading now (read buffers, partial messages); bounded by
    /// `ServerConfig::inbound_budget`.
    pub inbound_held_bytes: u64,
    /// Message bytes waiting for the dispatch thread now; bounded by
    /// `ServerConfig::event_queue_bytes`.
    pub event_queue_bytes: u64,
    /// Cluster: messages published to Redis for other nodes.
    pub cluster_sent: u64,
    /// Cluster: messages received from other nodes (well-formed envelopes).
    pub cluster_received: u64,
    /// Cluster: messages for other nodes dropped (queue full, Redis unreachable, payload over
    /// `ClusterConfig::max_payload`): delivery across nodes is at most once.
    pub cluster_dropped: u64,
    /// Cluster: malformed envelopes received on the cluster's channels, and ignored.
    pub cluster_malformed: u64,
}

impl Stats {
    pub(crate) fn opened(&self) {
        self.open.fetch_add(1, Relaxed);
        self.total.fetch_add(1, Relaxed);
    }
    pub(crate) fn closed(&self) {
        self.open.fetch_sub(1, Relaxed);
    }
    pub(crate) fn message_in(&self, len: usize) {
        self.msgs_in.fetch_add(1, Relaxed);
        self.bytes_in.fetch_add(len as u64, Relaxed);
    }
    pub(crate) fn frame_out(&self, len: usize) {
        self.msgs_out.fetch_add(1, Relaxed);
        self.bytes_out.fetch_add(len as u64, Relaxed);
    }
    pub(crate) fn protocol_error(&self) {
        self.protocol_errors.fetch_add(1, Relaxed);
    }
    pub(crate) fn heartbeat_timeout(&self) {
        self.heartbeat_timeouts.fetch_add(1, Relaxed);
    }
    pub(crate) fn handler_panic(&self) {
        self.handler_panics.fetch_add(1, Relaxed);
    }
    pub(crate) fn rejected(&self) {
        self.rejected_handshakes.fetch_add(1, Relaxed);
    }
    pub(crate) fn cluster_sent(&self, n: u64) {
        self.cluster_sent.fetch_add(n, Relaxed);
    }
    pub(crate) fn cluster_received(&self) {
        self.cluster_received.fetch_add(1, Relaxed);
    }
    pub(crate) fn cluster_dropped(&self, n: u64) {
        self.cluster_dropped.fetch_add(n, Relaxed);
    }
    pub(crate) fn cluster_malformed(&self) {
        self.cluster_malformed.fetch_add(1, Relaxed);
    }
    pub(crate) fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            connections_open: self.open.load(Relaxed),
            connections_total: self.total.load(Relaxed),
            messages_in: self.msgs_in.load(Relaxed),
            bytes_in: self.bytes_in.load(Relaxed),
            frames_out: self.msgs_out.load(Relaxed),
            bytes_out: self.bytes_out.load(Relaxed),
            protocol_errors: self.protocol_errors.load(Relaxed),
            heartbeat_timeouts: self.heartbeat_timeouts.load(Relaxed),
            handler_panics: self.handler_panics.load(Relaxed),
            rejected_handshakes: self.rejected_handshakes.load(Relaxed),
            outbound_queued_bytes: 0,
            inbound_held_bytes: 0,
            event_queue_bytes: 0,
            cluster_sent: self.cluster_sent.load(Relaxed),
            cluster_received: self.cluster_received.load(Relaxed),
            cluster_dropped: self.cluster_dropped.load(Relaxed),
            cluster_malformed: self.cluster_malformed.load(Relaxed),
        }
    }
}
