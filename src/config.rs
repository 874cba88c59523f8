//! Server configuration: [`ServerConfig`] and its parts.

use std::net::SocketAddr;
use std::time::Duration;

use syncws_protocol::deflate::DeflateConfig;
use syncws_protocol::Limits;

/// What happens when a connection's outbound queue is full (the client is not reading), or
/// when the server-wide `outbound_budget` cannot take what it would queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OverflowPolicy {
    /// Close the connection (close code 1008, reason "send queue overflow"; 1013 "server busy:
    /// outbound budget exhausted" for the budget) and report the disconnect; the send returns
    /// [`crate::SendError::QueueFull`]. The frames the client has not begun to receive are
    /// dropped and the close frame follows the one on the wire, so it arrives whole. The
    /// default: a client that cannot keep up is cut off instead of growing memory or stalling
    /// anyone.
    #[default]
    Close,
    /// Drop the message being sent, keep the connection; the send returns
    /// [`crate::SendError::QueueFull`].
    DropMessage,
}

/// Which web pages may open a WebSocket to the server: the defence against cross-site
/// WebSocket hijacking, where a page on another site opens a connection with the user's
/// cookies or cached credentials. Browsers always send `Origin`; other clients usually do
/// not. An upgrade whose `Origin` is not allowed is refused with 403 before authentication or
/// any hook runs (the handshake hook still sees `Origin`, for rules of its own).
///
/// Default ([`OriginPolicy::default`]): the server's own host (an `Origin` whose host and
/// port are those of the request's `Host`), and requests without `Origin`. A page served by
/// the server itself can connect; a page on any other site cannot, whether or not
/// authentication is on. Add the sites of your own pages with [`OriginPolicy::allow`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OriginPolicy {
    /// Allowed origins besides the server's own host, as `scheme://host[:port]` (compared
    /// without case; a default port may be given or left out).
    pub allowed: Vec<String>,
    /// Allow any origin. Default `false`.
    pub any: bool,
    /// Allow an `Origin` naming the host and port of the request's `Host`. Default `true`.
    pub same_host: bool,
    /// Allow requests without `Origin` (clients that are not browsers). Default `true`.
    pub allow_missing: bool,
}

impl Default for OriginPolicy {
    fn default() -> Self {
        Self {
            allowed: Vec::new(),
            any: false,
            same_host: true,
            allow_missing: true,
        }
    }
}

impl OriginPolicy {
    /// Any origin may connect (for a public API that uses no ambient credentials).
    pub fn any() -> Self {
        Self {
            any: true,
            ..Self::default()
        }
    }

    /// Only the listed origins (not even the server's own host), and clients without `Origin`.
    pub fn only<S: Into<String>>(origins: impl IntoIterator<Item = S>) -> Self {
        Self {
            allowed: origins.into_iter().map(Into::into).collect(),
            same_host: false,
            ..Self::default()
        }
    }

    /// Also allows `origin` (`scheme://host[:port]`).
    pub fn allow(mut self, origin: impl Into<String>) -> Self {
        self.allowed.push(origin.into());
        self
    }

    /// Sets [`OriginPolicy::allow_missing`].
    pub fn allow_missing(mut self, v: bool) -> Self {
        self.allow_missing = v;
        self
    }

    /// Sets [`OriginPolicy::same_host`].
    pub fn same_host(mut self, v: bool) -> Self {
        self.same_host = v;
        self
    }
}

/// Configuration of a [`crate::Server`]. Build it with [`ServerConfig::new`] and the chainable
/// setters; every field has a documented, safe default.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Addresses to listen on. Default: `127.0.0.1:9001`. Port 0 lets the OS choose
    /// (see [`crate::Messenger::local_addr`]).
    pub bind: Vec<SocketAddr>,
    /// Frame and message size limits (defaults: 16 MiB frame, 64 MiB message, 8 KiB initial
    /// read buffer). Larger frames or messages are refused with close code 1009 as soon as
    /// their header arrives.
    pub limits: Limits,
    /// Largest HTTP request head (request line plus headers) accepted in the upgrade.
    /// Default 16 KiB; larger gets HTTP 431.
    pub max_handshake_bytes: usize,
    /// Most header fields in the upgrade request. Default 64; more gets HTTP 431.
    pub max_headers: usize,
    /// Time a client has to complete its TLS handshake and send its upgrade request
    /// (slowloris defence). Default 10 s; the connection is then dropped.
    pub handshake_timeout: Duration,
    /// Close a connection that sends nothing for this long (close code 1000, reason
    /// "idle timeout"). Default `None`: WebSocket connections are long-lived and often quiet
    /// by design (a dashboard, a game lobby), so silence alone is not misbehaviour; an idle
    /// connection holds about 20 KiB, capped by `max_connections`, and dead peers are found by
    /// the heartbeat. Set it when clients are expected to talk.
    pub idle_timeout: Option<Duration>,
    /// Time a client has to finish a message (all its fragments) once its first frame has
    /// arrived; then the connection is closed with 1008 ("message timeout"). Bounds how long
    /// a client can keep a partial message in memory. Default 60 s; `None`: no limit.
    pub message_timeout: Option<Duration>,
    /// How long a closing handshake may take: the wait for the peer's close reply, and for
    /// queued data to drain before the socket is shut. Default 5 s.
    pub close_timeout: Duration,
    /// A connection whose outbound queue makes no progress for this long (the client does not
    /// read) is dropped (close 1008, "write timeout"), whoever queued the data. Default 30 s.
    pub write_timeout: Duration,
    /// Most simultaneous connections, in their handshake or open. Default 10 000; excess
    /// clients get HTTP 503 before the upgrade, without a thread being spent on them.
    pub max_connections: usize,
    /// Most connections (handshaking and open) from one client address. Default 256: users
    /// behind one NAT share an address; lower it when they do not. Excess clients get HTTP
    /// 429 before a thread is spent on them.
    pub max_connections_per_ip: usize,
    /// IPv6 clients count per network of this prefix length (one customer usually has a
    /// whole /64). Default 64.
    pub ipv6_prefix: u8,
    /// Most new connections per second from one client address; 0 = no limit (the
    /// default). Excess clients get HTTP 429.
    pub new_connections_per_ip: u32,
    /// Most connections still in their handshake (TLS and the upgrade request) at once,
    /// counted within `max_connections`. Default 1 024; excess clients get HTTP 503.
    pub max_handshakes: usize,
    /// The listen backlog: connections the kernel completes before `accept()` takes them.
    /// Default 1 024 (the kernel may cap it, e.g. Linux at `net.core.somaxconn`).
    pub backlog: u32,
    /// Hard limit of the bytes waiting in one connection's outbound queue. A frame whose
    /// payload is larger is refused ([`crate::SendError::TooLong`]); a frame that does not fit
    /// behind what is queued gets the `overflow_policy` (or back-pressure on the connection's
    /// own thread). Default 16 MiB.
    pub max_send_queue: usize,
    /// Server-wide limit of the bytes waiting in all outbound queues together, a broadcast
    /// frame counted once however many queues hold it. A connection whose queue would grow
    /// past it gets the `overflow_policy` (close 1013, "server busy"). Default 256 MiB.
    pub outbound_budget: usize,
    /// Server-wide limit of the bytes held for reading: read buffers and partial messages of
    /// all connections. A connection whose message would grow past it is closed with 1009;
    /// read buffers stop growing at it. Default 256 MiB.
    pub inbound_budget: usize,
    /// What to do when the outbound queue is full. Default [`OverflowPolicy::Close`].
    pub overflow_policy: OverflowPolicy,
    /// Capacity of the event channel to the dispatch thread (asynchronous mode), in events.
    /// When it is full, connection threads wait (back-pressure on reading), senders never do.
    /// Default 4096 events.
    pub event_queue: usize,
    /// The same channel's limit in bytes: the memory held by messages waiting for the
    /// dispatch thread (or held by their events until the handler is done), that is the
    /// buffers they lie in, each counted once (see [`crate::Payload`]). A connection thread
    /// whose messages do not fit waits (back-pressure on reading); one read's messages are
    /// always let in when nothing is waiting. Default 64 MiB.
    pub event_queue_bytes: usize,
    /// How long the library's dispatch thread ([`crate::Server::start`], or
    /// [`crate::Dispatcher::run`]) keeps looking for the next event once the queue is empty,
    /// yielding the CPU in between, before it sleeps. About a loopback round trip: a busy
    /// server's dispatch thread then finds the next messages awake instead of every one paying
    /// a sleep and a wake-up (on a virtual machine, where waking an idle CPU is slow, this
    /// tripled the 1-connection ping-pong rate). It costs up to this much CPU time each time
    /// the queue runs dry. `Duration::ZERO` sleeps at once (for a laptop on battery). Not
    /// used by `dispatch_pending` / `dispatch_timeout`. Default 50 µs.
    pub dispatch_spin: Duration,
    /// Stack size of each connection thread. Default 256 KiB: the frame loop needs little, the
    /// rest is headroom for inline handlers in inline mode. Only touched pages cost memory.
    pub thread_stack_size: usize,
    /// Heartbeat: periodic pings and dead-peer detection. Default disabled.
    pub heartbeat: HeartbeatConfig,
    /// Watchdog: restart the listener after an unexpected failure. Default disabled.
    pub watchdog: WatchdogConfig,
    /// Authentication (Basic, URL, Session). Default disabled.
    pub auth: crate::auth::AuthConfig,
    /// Which web pages may connect ([`OriginPolicy`]). Default: the server's own host, and
    /// clients that send no `Origin`.
    pub origins: OriginPolicy,
    /// Set `TCP_NODELAY` on accepted sockets. Default `true` (WebSocket messages are
    /// latency-sensitive and already written whole).
    pub nodelay: bool,
    /// permessage-deflate (RFC 7692): `None` (the default, as in sgcWebSockets and Node `ws`)
    /// never negotiates it; `Some` accepts a client's offer with these settings. Memory per
    /// connection and the choices behind the defaults are in the README's limits table.
    pub deflate: Option<DeflateConfig>,
    /// Most topics one connection may subscribe to ([`crate::Connection::subscribe`]); more
    /// are refused. Default 1 024.
    pub max_subscriptions: usize,
    /// Longest topic name in bytes; longer ones are refused. Default 256.
    pub max_topic_len: usize,
    /// Run as one node of a cluster over Redis: broadcasts, publishes and sends by id reach
    /// the connections of every node sharing the Redis server. Default `None` (one node).
    pub cluster: Option<ClusterConfig>,
}

/// Clustering over Redis pub/sub ([`ServerConfig::cluster`]).
///
/// Delivery across nodes is **at most once**: cross-node messages go through a bounded queue
/// to this node's Redis threads; when the queue is full or Redis is unreachable they are
/// dropped (and counted in [`crate::StatsSnapshot::cluster_dropped`]) while local delivery goes
/// on. Presence (which node holds which connection id) is refreshed every `presence_refresh`
/// and expires after `presence_ttl`, so a node learns of a connection opened or closed on
/// another node at most about `presence_refresh` late, and a crashed node's connections vanish
/// from the cluster after at most `presence_ttl`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClusterConfig {
    /// The Redis server: `redis://[user:password@]host[:port][/db]`, or `rediss://` for TLS
    /// (with the `tls` feature; the system's root certificates).
    pub url: String,
    /// This node's name, unique in the cluster. Default: `node-` and 8 random hex digits.
    pub node: String,
    /// Prefix of every Redis channel and key this library uses, so that several clusters
    /// (or other programs) can share one Redis. Default `"syncws"`.
    pub prefix: String,
    /// Cross-node messages waiting for the publisher thread; more are dropped. Default 4 096.
    pub queue: usize,
    /// Largest message payload sent across nodes; longer ones stay local (and are counted as
    /// dropped). Default 1 MiB.
    pub max_payload: usize,
    /// How often this node re-publishes its presence and reads the others'. Default 1 s.
    pub presence_refresh: Duration,
    /// How long a node's presence lives in Redis without a refresh. Default 5 s; at least
    /// twice `presence_refresh`.
    pub presence_ttl: Duration,
    /// Longest wait between two attempts to reach Redis again (backoff from 100 ms, doubling).
    /// Default 2 s.
    pub max_backoff: Duration,
}

impl ClusterConfig {
    /// A cluster over the Redis at `url`, with the defaults above.
    pub fn new(url: impl Into<String>) -> Self {
        let id = uuid::Uuid::new_v4().simple().to_string();
        Self {
            url: url.into(),
            node: format!("node-{}", &id[..8]),
            prefix: "syncws".into(),
            queue: 4096,
            max_payload: 1 << 20,
            presence_refresh: Duration::from_secs(1),
            presence_ttl: Duration::from_secs(5),
            max_backoff: Duration::from_secs(2),
        }
    }

    /// Sets [`ClusterConfig::node`].
    pub fn node(mut self, name: impl Into<String>) -> Self {
        self.node = name.into();
        self
    }

    /// Sets [`ClusterConfig::prefix`].
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Sets [`ClusterConfig::queue`].
    pub fn queue(mut self, n: usize) -> Self {
        self.queue = n;
        self
    }

    /// Sets [`ClusterConfig::presence_refresh`] and [`ClusterConfig::presence_ttl`].
    pub fn presence(mut self, refresh: Duration, ttl: Duration) -> Self {
        self.presence_refresh = refresh;
        self.presence_ttl = ttl;
        self
    }

    fn validate(&self) -> Result<(), String> {
        if self.node.is_empty() || self.node.len() > 200 || self.prefix.is_empty() {
            return Err("cluster node name and prefix must be 1 to 200 bytes".into());
        }
        if self.queue == 0 {
            return Err("cluster queue must be at least 1".into());
        }
        if self.presence_refresh.is_zero() || self.presence_ttl < 2 * self.presence_refresh {
            return Err("cluster presence_ttl must be at least twice presence_refresh (> 0)".into());
        }
        if self.max_backoff.is_zero() {
            return Err("cluster max_backoff must be positive".into());
        }
        Ok(())
    }
}

/// Heartbeat settings (see [`ServerConfig::heartbeat`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct HeartbeatConfig {
    /// Whether the heartbeat runs. Default `false`.
    pub enabled: bool,
    /// Time between pings to every client. Default 30 s.
    pub interval: Duration,
    /// A client that has not answered a heartbeat ping with a pong within this long is
    /// closed (1008, "heartbeat timeout"). Only pongs count: a client that sends but never
    /// reads is caught too. `Duration::ZERO` never closes. Default 0.
    pub timeout: Duration,
}

impl HeartbeatConfig {
    /// An enabled heartbeat with the given interval and timeout (zero: never close).
    pub fn new(interval: Duration, timeout: Duration) -> Self {
        Self {
            enabled: true,
            interval,
            timeout,
        }
    }
}

/// Watchdog settings (see [`ServerConfig::watchdog`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct WatchdogConfig {
    /// Whether the watchdog runs. Default `false`.
    pub enabled: bool,
    /// Time between restart attempts. Default 10 s.
    pub interval: Duration,
    /// Most restart attempts after one failure; 0 = unlimited. Default 0.
    pub attempts: u32,
}

impl WatchdogConfig {
    /// An enabled watchdog.
    pub fn new(interval: Duration, attempts: u32) -> Self {
        Self {
            enabled: true,
            interval,
            attempts,
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            bind: vec![SocketAddr::from(([127, 0, 0, 1], 9001))],
            limits: Limits::default(),
            max_handshake_bytes: 16 << 10,
            max_headers: 64,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: None,
            message_timeout: Some(Duration::from_secs(60)),
            close_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(30),
            max_connections: 10_000,
            max_handshakes: 1024,
            max_connections_per_ip: 256,
            ipv6_prefix: 64,
            new_connections_per_ip: 0,
            backlog: 1024,
            max_send_queue: 16 << 20,
            outbound_budget: 256 << 20,
            inbound_budget: 256 << 20,
            overflow_policy: OverflowPolicy::Close,
            event_queue: 4096,
            event_queue_bytes: 64 << 20,
            dispatch_spin: Duration::from_micros(50),
            thread_stack_size: 256 << 10,
            heartbeat: HeartbeatConfig {
                enabled: false,
                interval: Duration::from_secs(30),
                timeout: Duration::ZERO,
            },
            watchdog: WatchdogConfig {
                enabled: false,
                interval: Duration::from_secs(10),
                attempts: 0,
            },
            auth: crate::auth::AuthConfig::default(),
            origins: OriginPolicy::default(),
            nodelay: true,
            deflate: None,
            max_subscriptions: 1024,
            max_topic_len: 256,
            cluster: None,
        }
    }
}

macro_rules! setter {
    ($(#[$doc:meta])* $name:ident: $ty:ty) => {
        $(#[$doc])*
        pub fn $name(mut self, v: $ty) -> Self {
            self.$name = v;
            self
        }
    };
}

impl ServerConfig {
    /// The default configuration, listening on `addr`.
    pub fn new(addr: impl Into<SocketAddr>) -> Self {
        Self {
            bind: vec![addr.into()],
            ..Self::default()
        }
    }

    /// Adds another address to listen on.
    pub fn also_bind(mut self, addr: impl Into<SocketAddr>) -> Self {
        self.bind.push(addr.into());
        self
    }

    /// Sets [`ServerConfig::limits`]'s largest frame.
    pub fn max_frame_size(mut self, v: u64) -> Self {
        self.limits = self.limits.max_frame_size(v);
        self
    }

    /// Sets [`ServerConfig::limits`]'s largest message.
    pub fn max_message_size(mut self, v: u64) -> Self {
        self.limits = self.limits.max_message_size(v);
        self
    }

    setter!(/// Sets [`ServerConfig::limits`].
        limits: Limits);
    setter!(/// Sets [`ServerConfig::max_handshake_bytes`].
        max_handshake_bytes: usize);
    setter!(/// Sets [`ServerConfig::max_headers`].
        max_headers: usize);
    setter!(/// Sets [`ServerConfig::handshake_timeout`].
        handshake_timeout: Duration);
    setter!(/// Sets [`ServerConfig::idle_timeout`].
        idle_timeout: Option<Duration>);
    setter!(/// Sets [`ServerConfig::message_timeout`].
        message_timeout: Option<Duration>);
    setter!(/// Sets [`ServerConfig::close_timeout`].
        close_timeout: Duration);
    setter!(/// Sets [`ServerConfig::write_timeout`].
        write_timeout: Duration);
    setter!(/// Sets [`ServerConfig::max_connections`].
        max_connections: usize);
    setter!(/// Sets [`ServerConfig::max_connections_per_ip`].
        max_connections_per_ip: usize);
    setter!(/// Sets [`ServerConfig::ipv6_prefix`].
        ipv6_prefix: u8);
    setter!(/// Sets [`ServerConfig::new_connections_per_ip`].
        new_connections_per_ip: u32);
    setter!(/// Sets [`ServerConfig::max_handshakes`].
        max_handshakes: usize);
    setter!(/// Sets [`ServerConfig::backlog`].
        backlog: u32);
    setter!(/// Sets [`ServerConfig::max_send_queue`].
        max_send_queue: usize);
    setter!(/// Sets [`ServerConfig::outbound_budget`].
        outbound_budget: usize);
    setter!(/// Sets [`ServerConfig::inbound_budget`].
        inbound_budget: usize);
    setter!(/// Sets [`ServerConfig::overflow_policy`].
        overflow_policy: OverflowPolicy);
    setter!(/// Sets [`ServerConfig::event_queue`].
        event_queue: usize);
    setter!(/// Sets [`ServerConfig::event_queue_bytes`].
        event_queue_bytes: usize);
    setter!(/// Sets [`ServerConfig::dispatch_spin`].
        dispatch_spin: Duration);
    setter!(/// Sets [`ServerConfig::thread_stack_size`].
        thread_stack_size: usize);
    setter!(/// Sets [`ServerConfig::heartbeat`].
        heartbeat: HeartbeatConfig);
    setter!(/// Sets [`ServerConfig::watchdog`].
        watchdog: WatchdogConfig);
    setter!(/// Sets [`ServerConfig::nodelay`].
        nodelay: bool);
    setter!(/// Sets [`ServerConfig::auth`].
        auth: crate::auth::AuthConfig);
    setter!(/// Sets [`ServerConfig::origins`].
        origins: OriginPolicy);
    setter!(/// Sets [`ServerConfig::deflate`].
        deflate: Option<DeflateConfig>);
    setter!(/// Sets [`ServerConfig::max_subscriptions`].
        max_subscriptions: usize);
    setter!(/// Sets [`ServerConfig::max_topic_len`].
        max_topic_len: usize);

    /// Sets [`ServerConfig::cluster`].
    pub fn cluster(mut self, v: ClusterConfig) -> Self {
        self.cluster = Some(v);
        self
    }

    /// Checks the configuration for values that cannot work.
    pub fn validate(&self) -> Result<(), crate::error::Error> {
        let bad = |why: &str| Err(crate::error::Error::Config(why.to_string()));
        if self.bind.is_empty() {
            return bad("no address to bind");
        }
        if self.max_connections == 0 {
            return bad("max_connections must be at least 1");
        }
        if self.event_queue == 0 {
            return bad("event_queue must be at least 1");
        }
        if self.max_connections_per_ip == 0 || self.ipv6_prefix > 128 {
            return bad("max_connections_per_ip must be at least 1 and ipv6_prefix at most 128");
        }
        if self.max_handshakes == 0 || self.backlog == 0 {
            return bad("max_handshakes and backlog must be at least 1");
        }
        if self.max_send_queue < 1024 {
            return bad("max_send_queue must be at least 1 KiB");
        }
        if self.outbound_budget < self.max_send_queue {
            return bad("outbound_budget must be at least max_send_queue");
        }
        if self.inbound_budget < 64 << 10 {
            return bad("inbound_budget must be at least 64 KiB");
        }
        if self.max_handshake_bytes < 256 {
            return bad("max_handshake_bytes must be at least 256");
        }
        if self.thread_stack_size < 64 << 10 {
            return bad("thread_stack_size must be at least 64 KiB");
        }
        if self.heartbeat.enabled && self.heartbeat.interval.is_zero() {
            return bad("heartbeat interval must be positive");
        }
        if self.watchdog.enabled && self.watchdog.interval.is_zero() {
            return bad("watchdog interval must be positive");
        }
        if let Some(d) = &self.deflate {
            let bits = 9..=15;
            if !bits.contains(&d.server_max_window_bits) || !bits.contains(&d.client_max_window_bits) {
                return bad("deflate window bits must be 9 to 15");
            }
            if d.level > 9 {
                return bad("deflate level must be 0 to 9");
            }
        }
        let cluster = self.cluster.as_ref().map_or(Ok(()), ClusterConfig::validate);
        cluster.map_err(crate::error::Error::Config)
    }
}
