//! The publisher thread: drains the bounded queue of cross-node messages into Redis
//! (`PUBLISH`, pipelined), and refreshes presence every `presence_refresh`. While Redis is
//! unreachable it reconnects with backoff and drops what is queued (counted), so senders never
//! wait and the queue never holds stale messages for long.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};

use super::link::{Link, Side};
use super::presence::{self, Directory, Keys};
use crate::config::ClusterConfig;
use crate::connection::Context;

/// One message for Redis: the channel and the envelope.
pub(crate) type Item = (String, Vec<u8>);

/// Most messages sent in one pipeline.
const BATCH: usize = 256;

/// What the thread works with.
pub(crate) struct Publisher {
    pub(crate) link: Arc<Link>,
    pub(crate) ctx: Arc<Context>,
    pub(crate) dir: Arc<Directory>,
    pub(crate) keys: Keys,
    pub(crate) rx: Receiver<Item>,
    pub(crate) refresh: Duration,
    pub(crate) ttl_ms: u64,
}

impl Publisher {
    pub(crate) fn new(
        cfg: &ClusterConfig,
        link: Arc<Link>,
        ctx: Arc<Context>,
        dir: Arc<Directory>,
        rx: Receiver<Item>,
    ) -> Self {
        Self {
            link,
            ctx,
            dir,
            keys: Keys::new(cfg),
            rx,
            refresh: cfg.presence_refresh,
            ttl_ms: cfg.presence_ttl.as_millis() as u64,
        }
    }

    /// The thread's body: until stop, connect and serve; on stop, withdraw presence.
    pub(crate) fn run(self) {
        self.link.keep_serving(
            Side::Publisher,
            |con| self.serve(con),
            |con| {
                let _ = presence::withdraw(con, &self.keys);
            },
            || self.drop_queued(),
        );
    }

    /// Counts and drops every queued message (Redis is unreachable).
    fn drop_queued(&self) {
        let n = self.rx.try_iter().count();
        if n > 0 {
            self.ctx.stats.cluster_dropped(n as u64);
        }
    }

    /// Publishes what comes and refreshes presence, until an error or stop.
    fn serve(&self, con: &mut redis::Connection) -> redis::RedisResult<()> {
        presence::refresh(con, &self.keys, self.ttl_ms, &self.ctx, &self.dir)?;
        self.link.set(Side::Publisher, Ok(()));
        let mut next = Instant::now() + self.refresh;
        while !self.link.stopping() {
            let wait = next
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(100));
            match self.rx.recv_timeout(wait) {
                Ok(first) => self.publish(con, first)?,
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            }
            if Instant::now() >= next {
                presence::refresh(con, &self.keys, self.ttl_ms, &self.ctx, &self.dir)?;
                next = Instant::now() + self.refresh;
            }
        }
        Ok(())
    }

    /// Publishes `first` and whatever else is queued (up to a batch) in one pipeline.
    fn publish(&self, con: &mut redis::Connection, first: Item) -> redis::RedisResult<()> {
        let mut p = redis::pipe();
        let mut n = 1;
        p.publish(first.0, first.1).ignore();
        for (channel, bytes) in self.rx.try_iter().take(BATCH - 1) {
            p.publish(channel, bytes).ignore();
            n += 1;
        }
        match p.exec(con) {
            Ok(()) => {
                self.ctx.stats.cluster_sent(n);
                Ok(())
            }
            Err(e) => {
                self.ctx.stats.cluster_dropped(n);
                Err(e)
            }
        }
    }
}
