//! Write batching for one thread ([`Cork`]).

use std::cell::RefCell;

use super::Connection;

thread_local! {
    /// Connections written to inside this thread's current [`Cork`] scope.
    static CORK: RefCell<Option<Vec<Connection>>> = const { RefCell::new(None) };
}

/// Frames larger than this are written directly even inside a [`Cork`].
pub(crate) const CORK_MAX_FRAME: usize = 64 << 10;

/// While a `Cork` lives, plain-TCP frames this thread sends are queued, and they go out when
/// it is dropped, one write per connection. The connection thread corks while it handles the
/// messages of one read, the dispatch thread while it handles a batch of waiting events: N
/// replies cost one system call instead of N. Sends from other threads are not delayed: they
/// find bytes queued and hand the connection to the service thread, which writes at once (the
/// socket is writable), keeping the order. Nested corks are one: the outermost flushes.
#[derive(Debug)]
pub(crate) struct Cork {
    outermost: bool,
}

impl Cork {
    pub(crate) fn new() -> Self {
        let outermost = CORK.with(|c| {
            let mut c = c.borrow_mut();
            let fresh = c.is_none();
            if fresh {
                *c = Some(Vec::new());
            }
            fresh
        });
        Self { outermost }
    }

    /// Whether this thread is inside a cork now.
    pub(super) fn active() -> bool {
        CORK.with(|c| c.borrow().is_some())
    }

    /// Remembers that `conn` has corked bytes (called once per connection per cork).
    pub(super) fn add(conn: Connection) {
        CORK.with(|c| {
            if let Some(list) = c.borrow_mut().as_mut() {
                list.push(conn);
            }
        });
    }
}

impl Drop for Cork {
    fn drop(&mut self) {
        if !self.outermost {
            return;
        }
        let list = CORK.with(|c| c.borrow_mut().take()).unwrap_or_default();
        for conn in list {
            conn.end_cork();
        }
    }
}
