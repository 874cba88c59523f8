//! The open WebSocket connections of one server run, by id, and whether the run is stopping
//! (after which no connection is added).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::RwLock;

use super::{Connection, ConnectionId};

/// See the module docs.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    map: RwLock<HashMap<ConnectionId, Connection>>,
    stopping: AtomicBool,
}

impl Registry {
    /// Every open connection, as of now.
    pub(crate) fn snapshot(&self) -> Vec<Connection> {
        self.read().values().cloned().collect()
    }

    pub(crate) fn get(&self, id: &ConnectionId) -> Option<Connection> {
        self.read().get(id).cloned()
    }

    pub(crate) fn len(&self) -> usize {
        self.read().len()
    }

    /// Adds an upgraded connection; `false` (not added) once the run is stopping.
    pub(crate) fn insert(&self, conn: &Connection) -> bool {
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        if self.is_stopping() {
            return false;
        }
        map.insert(conn.id(), conn.clone());
        true
    }

    /// Removes a connection; whether it was there.
    pub(crate) fn remove(&self, id: &ConnectionId) -> bool {
        self.map
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id)
            .is_some()
    }

    /// From now on nothing is added. Taken under the write lock, so a connection is either in
    /// the snapshot a stopping server closes, or refused.
    pub(crate) fn stop(&self) {
        let _map = self.map.write().unwrap_or_else(|e| e.into_inner());
        self.stopping.store(true, Ordering::Release);
    }

    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<ConnectionId, Connection>> {
        self.map.read().unwrap_or_else(|e| e.into_inner())
    }
}
