//! Presence: which node holds which connection id, kept in Redis with expiry.
//!
//! Each node keeps, refreshed every `presence_refresh` by its publisher thread:
//! - `{prefix}:nodes`, a set of node names (shared; a name whose `alive` key has expired is
//!   removed by whichever node notices);
//! - `{prefix}:alive:{node}`, a key that lives `presence_ttl`;
//! - `{prefix}:ids:{node}`, the set of its connection ids, living `presence_ttl`;
//! - `{prefix}:topics:{node}`, a hash of its topics and their subscriber counts, likewise.
//!
//! and reads the other nodes' sets into its [`Directory`], where a send by id looks up the
//! node holding the id without waiting for Redis. So a connection opened on another node is
//! known here at most about `presence_refresh` after it opened, one closed is forgotten as
//! late, and a crashed node's ids vanish at most `presence_ttl` after its last refresh.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::RwLock;

use crate::config::ClusterConfig;
use crate::connection::{ConnectionId, Context};

/// The other nodes' connections, as of the last refresh.
#[derive(Default)]
pub(crate) struct Directory {
    remote: RwLock<HashMap<ConnectionId, String>>,
    /// Connections on the other nodes, at the last refresh.
    total: AtomicUsize,
    /// Subscribers per topic on the other nodes, at the last refresh.
    topics: RwLock<HashMap<String, usize>>,
}

impl Directory {
    /// The node holding `id`, if another node does.
    pub(crate) fn node_of(&self, id: &ConnectionId) -> Option<String> {
        self.remote
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    pub(crate) fn subscribers(&self, topic: &str) -> usize {
        let t = self.topics.read().unwrap_or_else(|e| e.into_inner());
        t.get(topic).copied().unwrap_or(0)
    }

    pub(crate) fn total(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }
}

/// The Redis names of one cluster.
pub(crate) struct Keys {
    prefix: String,
    pub(crate) node: String,
}

impl Keys {
    pub(crate) fn new(cfg: &ClusterConfig) -> Self {
        Self {
            prefix: cfg.prefix.clone(),
            node: cfg.node.clone(),
        }
    }

    pub(crate) fn all(&self) -> String {
        format!("{}:all", self.prefix)
    }

    pub(crate) fn node_channel(&self, node: &str) -> String {
        format!("{}:node:{node}", self.prefix)
    }

    pub(crate) fn topic(&self, topic: &str) -> String {
        format!("{}:topic:{topic}", self.prefix)
    }

    /// The topic a channel name is for, if it is a topic channel.
    pub(crate) fn topic_of<'a>(&self, channel: &'a str) -> Option<&'a str> {
        channel.strip_prefix(&self.prefix)?.strip_prefix(":topic:")
    }

    fn nodes(&self) -> String {
        format!("{}:nodes", self.prefix)
    }

    fn alive(&self, node: &str) -> String {
        format!("{}:alive:{node}", self.prefix)
    }

    fn ids(&self, node: &str) -> String {
        format!("{}:ids:{node}", self.prefix)
    }

    fn topics(&self, node: &str) -> String {
        format!("{}:topics:{node}", self.prefix)
    }
}

/// Publishes this node's presence (atomically), then reads the others' into `dir`.
pub(crate) fn refresh(
    con: &mut redis::Connection,
    keys: &Keys,
    ttl_ms: u64,
    ctx: &Context,
    dir: &Directory,
) -> redis::RedisResult<()> {
    let mine: Vec<String> = ctx
        .registry
        .snapshot()
        .iter()
        .map(|c| c.id().to_string())
        .collect();
    let ids = keys.ids(&keys.node);
    let mut p = redis::pipe();
    p.atomic()
        .sadd(keys.nodes(), &keys.node)
        .ignore()
        .pset_ex(keys.alive(&keys.node), 1, ttl_ms)
        .ignore()
        .del(&ids)
        .ignore();
    if !mine.is_empty() {
        p.sadd(&ids, &mine).ignore().pexpire(&ids, ttl_ms as i64).ignore();
    }
    let topics = keys.topics(&keys.node);
    let counts = ctx.topics.counts();
    p.del(&topics).ignore();
    if !counts.is_empty() {
        p.hset_multiple(&topics, &counts)
            .ignore()
            .pexpire(&topics, ttl_ms as i64)
            .ignore();
    }
    p.exec(con)?;
    read_others(con, keys, dir)
}

/// What one other node wrote: alive, its ids, its topics' subscriber counts.
type NodeReply = (bool, Vec<String>, HashMap<String, usize>);

fn read_others(con: &mut redis::Connection, keys: &Keys, dir: &Directory) -> redis::RedisResult<()> {
    let nodes: Vec<String> = redis::cmd("SMEMBERS").arg(keys.nodes()).query(con)?;
    let others: Vec<&String> = nodes.iter().filter(|n| **n != keys.node).collect();
    let mut p = redis::pipe();
    for n in &others {
        p.exists(keys.alive(n))
            .smembers(keys.ids(n))
            .hgetall(keys.topics(n));
    }
    let replies: Vec<NodeReply> = if others.is_empty() {
        Vec::new()
    } else {
        p.query(con)?
    };
    let mut remote = HashMap::new();
    let mut topics: HashMap<String, usize> = HashMap::new();
    for (n, (alive, ids, counts)) in others.iter().zip(replies) {
        if !alive {
            let _: redis::RedisResult<()> = redis::cmd("SREM").arg(keys.nodes()).arg(n.as_str()).query(con);
            continue;
        }
        remote.extend(
            ids.iter()
                .filter_map(|id| Some((id.parse::<ConnectionId>().ok()?, n.to_string()))),
        );
        for (topic, count) in counts {
            *topics.entry(topic).or_default() += count;
        }
    }
    dir.total.store(remote.len(), Ordering::Relaxed);
    *dir.remote.write().unwrap_or_else(|e| e.into_inner()) = remote;
    *dir.topics.write().unwrap_or_else(|e| e.into_inner()) = topics;
    Ok(())
}

/// Removes this node's presence (a clean stop), so its ids are unknown at once.
pub(crate) fn withdraw(con: &mut redis::Connection, keys: &Keys) -> redis::RedisResult<()> {
    redis::pipe()
        .atomic()
        .srem(keys.nodes(), &keys.node)
        .ignore()
        .del(keys.alive(&keys.node))
        .ignore()
        .del(keys.ids(&keys.node))
        .ignore()
        .del(keys.topics(&keys.node))
        .ignore()
        .exec(con)
}
