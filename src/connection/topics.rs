//! Topics (publish/subscribe) on one node: which connections subscribe to which topic. A
//! topic exists while it has subscribers; a connection's subscriptions end with it. Publishing
//! takes a snapshot of a topic's subscribers and hands them one shared frame (`Broadcast`).
//!
//! The table is what a run's connections share, like the registry; a cluster layer above
//! learns from it which topics this node needs.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use super::{Connection, ConnectionId};

/// The subscribe hook: may `conn` subscribe to `topic`?
pub(crate) type SubscribeHook = dyn Fn(&Connection, &str) -> bool + Send + Sync;

#[derive(Default)]
struct Table {
    by_topic: HashMap<String, HashMap<ConnectionId, Connection>>,
    by_conn: HashMap<ConnectionId, BTreeSet<String>>,
}

/// See the module docs.
pub(crate) struct Topics {
    table: RwLock<Table>,
    hook: OnceLock<Arc<SubscribeHook>>,
    /// Bumped whenever a topic appears or disappears (the cluster re-subscribes on a change).
    generation: AtomicU64,
    max_per_connection: usize,
    max_len: usize,
}

/// Why a subscription was not made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    Limit,
    Hook,
    Closed,
}

impl Topics {
    pub(crate) fn new(max_per_connection: usize, max_len: usize) -> Self {
        Self {
            table: RwLock::default(),
            hook: OnceLock::new(),
            generation: AtomicU64::new(0),
            max_per_connection,
            max_len,
        }
    }

    /// Sets the subscribe hook (once, when the run starts).
    pub(crate) fn set_hook(&self, hook: Arc<SubscribeHook>) {
        let _ = self.hook.set(hook);
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Table> {
        self.table.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Table> {
        self.table.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Subscribes `conn` to `topic`; `Ok(true)` if it was not subscribed before. `open` says
    /// whether the connection is still registered; it is asked under the table's lock, so a
    /// connection that has ended (and had `remove_all`) is never added back.
    pub(crate) fn subscribe(
        &self,
        conn: &Connection,
        topic: &str,
        open: impl Fn() -> bool,
    ) -> Result<bool, Refusal> {
        if topic.len() > self.max_len {
            return Err(Refusal::Limit);
        }
        let id = conn.id();
        {
            let t = self.read();
            let mine = t.by_conn.get(&id);
            if mine.is_some_and(|m| m.contains(topic)) {
                return Ok(false);
            }
            if mine.map_or(0, |m| m.len()) >= self.max_per_connection {
                return Err(Refusal::Limit);
            }
        }
        // The hook runs without the lock: it may look at the table itself.
        if let Some(h) = self.hook.get() {
            let allowed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| h(conn, topic)));
            if !matches!(allowed, Ok(true)) {
                return Err(Refusal::Hook);
            }
        }
        let mut t = self.write();
        if !open() {
            return Err(Refusal::Closed);
        }
        let mine = t.by_conn.entry(id).or_default();
        if mine.len() >= self.max_per_connection {
            return Err(Refusal::Limit);
        }
        if !mine.insert(topic.to_string()) {
            return Ok(false);
        }
        let subs = t.by_topic.entry(topic.to_string()).or_default();
        if subs.is_empty() {
            self.generation.fetch_add(1, Ordering::Release);
        }
        subs.insert(id, conn.clone());
        Ok(true)
    }

    /// Unsubscribes `id` from `topic`; whether it was subscribed.
    pub(crate) fn unsubscribe(&self, id: ConnectionId, topic: &str) -> bool {
        let mut t = self.write();
        let Some(mine) = t.by_conn.get_mut(&id) else {
            return false;
        };
        if !mine.remove(topic) {
            return false;
        }
        if mine.is_empty() {
            t.by_conn.remove(&id);
        }
        self.leave(&mut t, id, topic);
        true
    }

    fn leave(&self, t: &mut Table, id: ConnectionId, topic: &str) {
        if let Some(subs) = t.by_topic.get_mut(topic) {
            subs.remove(&id);
            if subs.is_empty() {
                t.by_topic.remove(topic);
                self.generation.fetch_add(1, Ordering::Release);
            }
        }
    }

    /// Changes whenever a topic appears or disappears.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Ends every subscription of `id` (the connection ended).
    pub(crate) fn remove_all(&self, id: ConnectionId) {
        let mut t = self.write();
        let Some(mine) = t.by_conn.remove(&id) else {
            return;
        };
        for topic in mine {
            self.leave(&mut t, id, &topic);
        }
    }

    /// The topics `id` subscribes to, in order.
    pub(crate) fn of(&self, id: ConnectionId) -> Vec<String> {
        self.read()
            .by_conn
            .get(&id)
            .map_or_else(Vec::new, |m| m.iter().cloned().collect())
    }

    /// The subscribers of `topic`, as of now.
    pub(crate) fn subscribers(&self, topic: &str) -> Vec<Connection> {
        self.read()
            .by_topic
            .get(topic)
            .map_or_else(Vec::new, |s| s.values().cloned().collect())
    }

    /// How many connections subscribe to `topic`.
    pub(crate) fn count(&self, topic: &str) -> usize {
        self.read().by_topic.get(topic).map_or(0, HashMap::len)
    }

    /// Every topic with its number of subscribers, in no order.
    pub(crate) fn counts(&self) -> Vec<(String, usize)> {
        self.read()
            .by_topic
            .iter()
            .map(|(t, s)| (t.clone(), s.len()))
            .collect()
    }

    /// Every topic with subscribers, in no order.
    pub(crate) fn names(&self) -> Vec<String> {
        self.read().by_topic.keys().cloned().collect()
    }
}
