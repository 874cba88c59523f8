//! The subscriber thread: `SUBSCRIBE`s to the broadcast channel, this node's own channel and
//! one channel per topic that this node's clients hold (following the topic table as topics
//! appear and disappear), and delivers what arrives to local connections. After losing Redis
//! it reconnects with backoff and subscribes again.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use syncws_protocol::frame::OpCode;
use syncws_protocol::CloseCode;

use super::envelope::{self, Envelope, Kind};
use super::link::{Link, Side, IO_TIMEOUT};
use super::presence::Keys;
use crate::connection::{ConnectionId, Context};

/// How long one wait for a message lasts before the thread looks at stop and the topics: a
/// topic new on this node is subscribed to within about this long (a publish from another
/// node before that is not seen here: at most once).
const TICK: Duration = Duration::from_millis(25);

/// What the thread works with.
pub(crate) struct Subscriber {
    pub(crate) link: Arc<Link>,
    pub(crate) ctx: Arc<Context>,
    pub(crate) keys: Keys,
}

impl Subscriber {
    /// The thread's body: until stop, connect, subscribe and deliver.
    pub(crate) fn run(self) {
        self.link
            .keep_serving(Side::Subscriber, |con| self.serve(con), |_| {}, || {});
    }

    fn serve(&self, con: &mut redis::Connection) -> redis::RedisResult<()> {
        let mut ps = con.as_pubsub();
        ps.subscribe(&[self.keys.all(), self.keys.node_channel(&self.keys.node)])?;
        ps.set_read_timeout(Some(TICK))?;
        let mut held: HashSet<String> = HashSet::new();
        let mut seen = None;
        self.link.set(Side::Subscriber, Ok(()));
        while !self.link.stopping() {
            let generation = self.ctx.topics.generation();
            if seen != Some(generation) {
                self.follow_topics(&mut ps, &mut held)?;
                seen = Some(generation);
            }
            match ps.get_message() {
                Ok(msg) => self.deliver(msg.get_channel_name(), msg.get_payload_bytes()),
                Err(e) if e.is_timeout() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Subscribes to the topics this node's clients hold now, and unsubscribes from the rest.
    fn follow_topics(
        &self,
        ps: &mut redis::PubSub<'_>,
        held: &mut HashSet<String>,
    ) -> redis::RedisResult<()> {
        let now: HashSet<String> = self.ctx.topics.names().into_iter().collect();
        let add: Vec<String> = now.difference(held).map(|t| self.keys.topic(t)).collect();
        let gone: Vec<String> = held.difference(&now).map(|t| self.keys.topic(t)).collect();
        if add.is_empty() && gone.is_empty() {
            return Ok(());
        }
        // The replies may take longer than a tick: wait for them as for any command.
        ps.set_read_timeout(Some(IO_TIMEOUT))?;
        if !add.is_empty() {
            ps.subscribe(&add)?;
        }
        if !gone.is_empty() {
            ps.unsubscribe(&gone)?;
        }
        ps.set_read_timeout(Some(TICK))?;
        *held = now;
        Ok(())
    }

    /// Delivers one message from a channel; a malformed one is logged and dropped.
    fn deliver(&self, channel: &str, bytes: &[u8]) {
        let env = match envelope::decode(bytes) {
            Ok(env) => env,
            Err(why) => {
                self.ctx.stats.cluster_malformed();
                log::warn!(
                    "cluster: dropped a malformed envelope on {channel:?} ({} bytes): {why}",
                    bytes.len()
                );
                return;
            }
        };
        // This node delivered its own broadcasts and publishes locally already.
        if env.origin == self.keys.node {
            return;
        }
        self.ctx.stats.cluster_received();
        let except = env.except.parse::<ConnectionId>().ok();
        match env.kind {
            Kind::Broadcast => {
                self.ctx.broadcast_local(env.op, env.payload, except.as_ref());
            }
            Kind::Publish => {
                if self.keys.topic_of(channel) == Some(env.target) {
                    self.ctx
                        .publish_local(env.target, env.op, env.payload, except.as_ref());
                }
            }
            Kind::Send | Kind::Close => self.deliver_to_one(&env),
        }
    }

    fn deliver_to_one(&self, env: &Envelope<'_>) {
        let Some(conn) = env
            .target
            .parse::<ConnectionId>()
            .ok()
            .and_then(|id| self.ctx.registry.get(&id))
        else {
            return;
        };
        let _ = match env.op {
            OpCode::Text => conn.send_text(std::str::from_utf8(env.payload).unwrap_or_default()),
            OpCode::Binary => conn.send_binary(env.payload),
            _ => {
                let code = CloseCode(u16::from_be_bytes([env.payload[0], env.payload[1]]));
                let reason = String::from_utf8_lossy(&env.payload[2..]);
                conn.close(code, &reason)
            }
        };
    }
}
