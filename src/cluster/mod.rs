//! The cluster over Redis ([`crate::ClusterConfig`]): broadcasts, publishes and sends by id
//! that reach the connections of every node sharing one Redis server.
//!
//! Two threads per node, both with their own Redis connection (the `redis` crate's blocking
//! API):
//!
//! ```text
//!  Messenger ──try_send──► bounded queue ──► publisher thread ──PUBLISH──► Redis
//!  (never waits; full:                        presence every refresh      │
//!   dropped, counted)                                                     │ SUBSCRIBE
//!                          local connections ◄── subscriber thread ◄──────┘
//!                                                 (all, own node, the topics held here)
//! ```
//!
//! Channels: `{prefix}:all` (broadcasts), `{prefix}:node:{node}` (sends and closes by id for
//! connections of that node), `{prefix}:topic:{topic}` (publishes; a node subscribes only to
//! the topics its clients hold). Each message is one envelope (`envelope.rs`, versioned). A
//! node does not deliver its own broadcasts or publishes twice: it delivers them locally at
//! once and ignores them when Redis echoes them back.
//!
//! Delivery across nodes is at most once: a message dropped (queue full, Redis down) is
//! counted in the stats and never retried. Presence is in `presence.rs`; the link's up/down
//! state and backoff in `link.rs`.

mod envelope;
mod link;
mod presence;
mod publisher;
mod subscriber;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crossbeam_channel::{Sender, TrySendError};
use syncws_protocol::frame::OpCode;
use syncws_protocol::CloseCode;

use self::envelope::{Envelope, Kind};
use self::link::Link;
pub(crate) use self::link::Report;
use self::presence::{Directory, Keys};
use crate::config::ClusterConfig;
use crate::connection::{ConnectionId, Context, Relay};
use crate::error::{Error, SendError};

/// One node's part of the cluster: the queue to the publisher, the directory, the threads.
pub(crate) struct Cluster {
    keys: Keys,
    tx: Sender<publisher::Item>,
    dir: Arc<Directory>,
    up: Arc<AtomicBool>,
    max_payload: usize,
    ctx_stats: Arc<crate::stats::Stats>,
    link: Arc<Link>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Cluster {
    /// Starts the cluster threads for `ctx`'s run and makes it the run's relay. Fails only on
    /// a URL the `redis` crate cannot use; an unreachable Redis is retried in the background.
    pub(crate) fn start(
        cfg: &ClusterConfig,
        ctx: &Arc<Context>,
        report: Box<Report>,
    ) -> crate::Result<Arc<Self>> {
        let link = Arc::new(Link::new(cfg, report).map_err(|e| Error::Config(format!("cluster url: {e}")))?);
        let (tx, rx) = crossbeam_channel::bounded(cfg.queue);
        let dir = Arc::new(Directory::default());
        let cluster = Arc::new(Self {
            keys: Keys::new(cfg),
            tx,
            dir: dir.clone(),
            up: link.up.clone(),
            max_payload: cfg.max_payload,
            ctx_stats: ctx.stats.clone(),
            link: link.clone(),
            threads: Mutex::default(),
        });
        let p = publisher::Publisher::new(cfg, link.clone(), ctx.clone(), dir, rx);
        let s = subscriber::Subscriber {
            link,
            ctx: ctx.clone(),
            keys: Keys::new(cfg),
        };
        let mut threads = cluster.threads.lock().unwrap_or_else(|e| e.into_inner());
        threads.push(spawn("syncws-cluster-pub", move || p.run())?);
        threads.push(spawn("syncws-cluster-sub", move || s.run())?);
        drop(threads);
        let _ = ctx.relay.set(cluster.clone());
        log::info!("cluster node {} on {}", cfg.node, redacted(&cfg.url));
        Ok(cluster)
    }

    /// Stops and joins the cluster threads (the publisher withdraws this node's presence).
    pub(crate) fn stop(&self) {
        self.link.stop.store(true, Ordering::Release);
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        for t in threads {
            let _ = t.join();
        }
    }

    /// Queues one envelope for `channel`; dropped (and counted) when the queue is full, Redis
    /// is down, or the payload is too long.
    fn enqueue(&self, channel: String, env: &Envelope<'_>) {
        if env.payload.len() > self.max_payload || !self.up.load(Ordering::Acquire) {
            self.ctx_stats.cluster_dropped(1);
            return;
        }
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
            self.tx.try_send((channel, env.encode()))
        {
            self.ctx_stats.cluster_dropped(1);
        }
    }

    fn envelope<'a>(
        &'a self,
        kind: Kind,
        op: OpCode,
        target: &'a str,
        except: &'a str,
        payload: &'a [u8],
    ) -> Envelope<'a> {
        Envelope {
            kind,
            op,
            origin: &self.keys.node,
            target,
            except,
            payload,
        }
    }

    /// The channel of the node holding `id`, or `UnknownConnection`.
    fn route(&self, id: &ConnectionId) -> Result<String, SendError> {
        let node = self.dir.node_of(id).ok_or(SendError::UnknownConnection)?;
        Ok(self.keys.node_channel(&node))
    }
}

impl Relay for Cluster {
    fn broadcast(&self, op: OpCode, data: &[u8], except: Option<&ConnectionId>) {
        let except = except.map(ToString::to_string).unwrap_or_default();
        self.enqueue(
            self.keys.all(),
            &self.envelope(Kind::Broadcast, op, "", &except, data),
        );
    }

    fn publish(&self, topic: &str, op: OpCode, data: &[u8], except: Option<&ConnectionId>) {
        let except = except.map(ToString::to_string).unwrap_or_default();
        self.enqueue(
            self.keys.topic(topic),
            &self.envelope(Kind::Publish, op, topic, &except, data),
        );
    }

    fn send(&self, id: &ConnectionId, op: OpCode, data: &[u8]) -> Result<(), SendError> {
        let channel = self.route(id)?;
        let target = id.to_string();
        self.enqueue(channel, &self.envelope(Kind::Send, op, &target, "", data));
        Ok(())
    }

    fn close(&self, id: &ConnectionId, code: CloseCode, reason: &str) -> Result<(), SendError> {
        let channel = self.route(id)?;
        let target = id.to_string();
        let mut payload = code.0.to_be_bytes().to_vec();
        payload.extend_from_slice(reason.as_bytes());
        self.enqueue(
            channel,
            &self.envelope(Kind::Close, OpCode::Close, &target, "", &payload),
        );
        Ok(())
    }

    fn remote_connections(&self) -> usize {
        self.dir.total()
    }

    fn remote_subscribers(&self, topic: &str) -> usize {
        self.dir.subscribers(topic)
    }

    fn node(&self) -> &str {
        &self.keys.node
    }

    fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }
}

/// `url` without its password, for the log.
fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***@{}", &url[..s], &url[at + 1..]),
        _ => url.to_string(),
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> crate::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .map_err(Error::Io)
}
