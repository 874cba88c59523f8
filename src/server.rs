//! The server: [`Server`] (configuration and hooks), [`ServerHandle`] (a running server) and
//! [`Messenger`] (sending from anywhere).

use std::collections::HashMap;
use std::fmt;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use syncws_protocol::frame::OpCode;
use syncws_protocol::CloseCode;

use crate::config::ServerConfig;
use crate::connection::{Connection, ConnectionId};
use crate::handler::{Dispatcher, Event, Handler, InlineHandler, ServerEvent};
use crate::http::{Accept, HttpResponse, Request};
use crate::service::Service;
use crate::stats::{Stats, StatsSnapshot};
use crate::{Error, Result};

/// The handshake hook: sees each upgrade request; returns `Ok(Accept)` (optionally choosing a
/// subprotocol and adding response headers) or `Err(HttpResponse)` to refuse it.
pub type HandshakeHook = dyn Fn(&Request) -> std::result::Result<Accept, HttpResponse> + Send + Sync;
/// The plain-HTTP hook: answers requests that are not WebSocket upgrades.
pub type HttpHook = dyn Fn(&Request) -> HttpResponse + Send + Sync;

#[derive(Clone, Default)]
pub(crate) struct Hooks {
    pub(crate) handshake: Option<Arc<HandshakeHook>>,
    pub(crate) http: Option<Arc<HttpHook>>,
    pub(crate) auth: Option<Arc<crate::auth::AuthHook>>,
}

/// Where connection threads deliver events.
#[derive(Clone)]
pub(crate) enum Sink {
    Channel(Sender<Event>),
    Inline(Arc<dyn InlineHandler>),
}

/// State shared by every thread of one run of the server.
pub(crate) struct Shared {
    pub(crate) config: ServerConfig,
    pub(crate) hooks: Hooks,
    pub(crate) stats: Arc<Stats>,
    pub(crate) service: Service,
    pub(crate) service_stop: AtomicBool,
    pub(crate) sessions: crate::auth::Sessions,
    pub(crate) stopping: AtomicBool,
    registry: RwLock<HashMap<ConnectionId, Connection>>,
    /// Sockets still in their handshake (shut down on stop).
    handshaking: Mutex<HashMap<u64, Arc<TcpStream>>>,
    /// Connection threads alive.
    live: AtomicUsize,
    next_key: AtomicU64,
    epoch: Instant,
    sink: Mutex<Option<Sink>>,
    stop_tx: Mutex<Option<Sender<()>>>,
    stop_rx: Receiver<()>,
    threads: Mutex<HashMap<u64, JoinHandle<()>>>,
    done_tx: Sender<u64>,
    done_rx: Receiver<u64>,
    listeners: Mutex<Vec<Option<TcpListener>>>,
    local_addrs: Vec<SocketAddr>,
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<Arc<crate::tls::TlsAcceptor>>,
}

impl Shared {
    pub(crate) fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    pub(crate) fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    pub(crate) fn sink(&self) -> Option<Sink> {
        self.sink.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn registry_snapshot(&self) -> Vec<Connection> {
        self.registry
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    pub(crate) fn lookup(&self, id: &ConnectionId) -> Option<Connection> {
        self.registry
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    /// Adds an upgraded connection; refused while the server stops.
    pub(crate) fn register(&self, conn: &Connection) -> bool {
        let mut reg = self.registry.write().unwrap_or_else(|e| e.into_inner());
        if self.stopping.load(Ordering::Acquire) {
            return false;
        }
        reg.insert(conn.id(), conn.clone());
        self.stats.opened();
        true
    }

    pub(crate) fn unregister(&self, conn: &Connection) {
        let mut reg = self.registry.write().unwrap_or_else(|e| e.into_inner());
        if reg.remove(&conn.id()).is_some() {
            self.stats.closed();
        }
    }

    pub(crate) fn handshake_done(&self, key: u64) {
        self.handshaking
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key);
    }

    /// Delivers a server-wide event.
    pub(crate) fn server_event(&self, ev: ServerEvent) {
        match self.sink() {
            Some(Sink::Channel(tx)) => {
                let _ = tx.send_timeout(Event::Server(ev), Duration::from_secs(1));
            }
            Some(Sink::Inline(h)) => {
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| h.on_server_event(ev)));
            }
            None => {}
        }
    }
}

/// A WebSocket server: configuration plus hooks. Start it with one of the `start*` methods,
/// which bind the listeners and return a [`ServerHandle`]; stop it with
/// [`ServerHandle::stop`] (or by dropping the handle); start it again as often as needed.
pub struct Server {
    config: ServerConfig,
    hooks: Hooks,
    stats: Arc<Stats>,
    #[cfg(feature = "tls")]
    tls: Option<crate::tls::TlsConfig>,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// A server with `config`.
    pub fn new(config: ServerConfig) -> Self {
        Self {
            config,
            hooks: Hooks::default(),
            stats: Arc::default(),
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// Sets the handshake hook, called on the connection's thread for every upgrade request
    /// (see [`HandshakeHook`]). It runs before the connect event, in both notify modes.
    pub fn on_handshake<F>(mut self, hook: F) -> Self
    where
        F: Fn(&Request) -> std::result::Result<Accept, HttpResponse> + Send + Sync + 'static,
    {
        self.hooks.handshake = Some(Arc::new(hook));
        self
    }

    /// Sets the plain-HTTP hook, which answers requests without `Upgrade: websocket` (to serve
    /// a page, say). Without it they get `426 Upgrade Required`.
    pub fn on_http<F>(mut self, hook: F) -> Self
    where
        F: Fn(&Request) -> HttpResponse + Send + Sync + 'static,
    {
        self.hooks.http = Some(Arc::new(hook));
        self
    }

    /// Sets the authentication hook, consulted (on the connection's thread) for user names
    /// that are not in [`crate::AuthConfig::users`]: `(request, user, password) -> accept?`.
    pub fn on_auth<F>(mut self, hook: F) -> Self
    where
        F: Fn(&Request, &str, &str) -> bool + Send + Sync + 'static,
    {
        self.hooks.auth = Some(Arc::new(hook));
        self
    }

    /// Serves wss:// with this TLS configuration (see [`crate::TlsConfig`]). The PEM files are
    /// read and checked at each start.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: crate::tls::TlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Starts in asynchronous mode with the library's own dispatch thread running `handler`.
    pub fn start<H: Handler + Send + 'static>(&self, handler: H) -> Result<ServerHandle> {
        let (tx, rx) = crossbeam_channel::bounded(self.config.event_queue);
        let mut handle = self.launch(Sink::Channel(tx))?;
        let mut handler = handler;
        let t = std::thread::Builder::new()
            .name("syncws-dispatch".into())
            .spawn(move || Dispatcher { rx }.run(&mut handler))
            .map_err(Error::Io)?;
        handle.dispatch = Some(t);
        Ok(handle)
    }

    /// Starts in asynchronous mode; the application pumps events from its own thread with the
    /// returned [`Dispatcher`] (e.g. from a GUI or game loop). Handlers need not be `Send`.
    pub fn start_manual(&self) -> Result<(ServerHandle, Dispatcher)> {
        let (tx, rx) = crossbeam_channel::bounded(self.config.event_queue);
        let handle = self.launch(Sink::Channel(tx))?;
        Ok((handle, Dispatcher { rx }))
    }

    /// Starts in no-sync mode: `handler` runs inline on every connection's thread.
    pub fn start_inline<H: InlineHandler>(&self, handler: H) -> Result<ServerHandle> {
        self.launch(Sink::Inline(Arc::new(handler)))
    }

    fn launch(&self, sink: Sink) -> Result<ServerHandle> {
        self.config.validate()?;
        #[cfg(feature = "tls")]
        let tls = match &self.tls {
            Some(t) => Some(Arc::new(crate::tls::TlsAcceptor::new(t)?)),
            None => None,
        };
        let mut listeners = Vec::new();
        let mut local_addrs = Vec::new();
        for addr in &self.config.bind {
            let l = TcpListener::bind(addr).map_err(|source| Error::Bind { addr: *addr, source })?;
            local_addrs.push(l.local_addr()?);
            listeners.push(l);
        }
        let (stop_tx, stop_rx) = crossbeam_channel::bounded(0);
        let (done_tx, done_rx) = crossbeam_channel::unbounded();
        let shared = Arc::new(Shared {
            config: self.config.clone(),
            hooks: self.hooks.clone(),
            stats: self.stats.clone(),
            service: Service::new()?,
            service_stop: AtomicBool::new(false),
            sessions: crate::auth::Sessions::default(),
            stopping: AtomicBool::new(false),
            registry: RwLock::new(HashMap::new()),
            handshaking: Mutex::new(HashMap::new()),
            live: AtomicUsize::new(0),
            next_key: AtomicU64::new(1),
            epoch: Instant::now(),
            sink: Mutex::new(Some(sink)),
            stop_tx: Mutex::new(Some(stop_tx)),
            stop_rx,
            threads: Mutex::new(HashMap::new()),
            done_tx,
            done_rx,
            listeners: Mutex::new(listeners.iter().map(|l| l.try_clone().ok()).collect()),
            local_addrs: local_addrs.clone(),
            #[cfg(feature = "tls")]
            tls,
        });
        let mut handle = ServerHandle {
            messenger: Messenger {
                shared: shared.clone(),
            },
            accept_threads: Vec::new(),
            service: None,
            dispatch: None,
            stopped: false,
        };
        let s = shared.clone();
        handle.service = Some(
            std::thread::Builder::new()
                .name("syncws-service".into())
                .spawn(move || crate::service::run(s))
                .map_err(Error::Io)?,
        );
        for (i, l) in listeners.into_iter().enumerate() {
            let s = shared.clone();
            let t = std::thread::Builder::new()
                .name(format!("syncws-accept-{}", local_addrs[i]))
                .spawn(move || listener_thread(s, i, l))
                .map_err(Error::Io)?;
            handle.accept_threads.push(t);
        }
        log::info!("listening on {local_addrs:?}");
        Ok(handle)
    }
}

/// The accept loop, with the watchdog around it.
fn listener_thread(shared: Arc<Shared>, index: usize, mut listener: TcpListener) {
    let addr = shared.local_addrs[index];
    loop {
        let err = accept_loop(&shared, &listener);
        if shared.stopping.load(Ordering::Acquire) {
            return;
        }
        log::error!("listener {addr} failed: {err}");
        shared.server_event(ServerEvent::ListenerFailed {
            addr,
            error: err.to_string(),
        });
        let wd = shared.config.watchdog;
        if !wd.enabled {
            return;
        }
        drop(listener);
        let mut attempt = 0u32;
        listener = loop {
            // Sleep for the interval, waking at once if the server stops.
            if shared
                .stop_rx
                .recv_timeout(wd.interval)
                .is_err_and(|e| e.is_disconnected())
            {
                return;
            }
            attempt += 1;
            log::info!("watchdog: restarting listener {addr} (attempt {attempt})");
            shared.server_event(ServerEvent::WatchdogAttempt { addr, attempt });
            match TcpListener::bind(addr) {
                Ok(l) => {
                    let mut slots = shared.listeners.lock().unwrap_or_else(|e| e.into_inner());
                    if shared.stopping.load(Ordering::Acquire) {
                        return;
                    }
                    slots[index] = l.try_clone().ok();
                    drop(slots);
                    log::info!("watchdog: listener {addr} restarted");
                    shared.server_event(ServerEvent::WatchdogRestarted { addr, attempt });
                    break l;
                }
                Err(e) => {
                    log::warn!("watchdog: cannot bind {addr}: {e}");
                    if wd.attempts != 0 && attempt >= wd.attempts {
                        shared.server_event(ServerEvent::WatchdogGaveUp {
                            addr,
                            attempts: attempt,
                        });
                        return;
                    }
                }
            }
        };
    }
}

/// Accepts until the listener fails for good (or the server stops); returns the error.
fn accept_loop(shared: &Arc<Shared>, listener: &TcpListener) -> std::io::Error {
    loop {
        // Reap connection threads that have finished.
        while let Ok(k) = shared.done_rx.try_recv() {
            let h = shared
                .threads
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&k);
            if let Some(h) = h {
                let _ = h.join();
            }
        }
        match listener.accept() {
            Ok((stream, peer)) => {
                if shared.stopping.load(Ordering::Acquire) {
                    return std::io::Error::other("stopping");
                }
                spawn_connection(shared, stream, peer);
            }
            Err(e) => {
                if shared.stopping.load(Ordering::Acquire) {
                    return e;
                }
                match e.raw_os_error().map(rustix::io::Errno::from_raw_os_error) {
                    // Transient: the connection went away before accept, or a signal.
                    Some(
                        rustix::io::Errno::CONNABORTED | rustix::io::Errno::INTR | rustix::io::Errno::PROTO,
                    ) => {}
                    // Out of descriptors or memory: wait a little, then carry on.
                    Some(
                        rustix::io::Errno::MFILE
                        | rustix::io::Errno::NFILE
                        | rustix::io::Errno::NOBUFS
                        | rustix::io::Errno::NOMEM,
                    ) => {
                        log::warn!("accept: {e}; retrying");
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    _ if e.kind() == std::io::ErrorKind::Interrupted => {}
                    // Anything else (EINVAL after a shutdown, EBADF...): this listener is dead.
                    _ => return e,
                }
            }
        }
    }
}

fn spawn_connection(shared: &Arc<Shared>, stream: TcpStream, peer: SocketAddr) {
    if shared.live.load(Ordering::Acquire) >= shared.config.max_connections {
        log::warn!("{peer}: over max_connections, answering 503");
        shared.stats.rejected();
        let resp = HttpResponse::text(503, "server is at capacity\n")
            .header("Retry-After", "1")
            .to_bytes();
        let _ = rustix::net::send(
            &stream,
            &resp,
            rustix::net::SendFlags::DONTWAIT | rustix::net::SendFlags::NOSIGNAL,
        );
        let _ = stream.shutdown(std::net::Shutdown::Write);
        shared
            .service
            .linger(Instant::now() + Duration::from_secs(2), stream);
        return;
    }
    let key = shared.next_key.fetch_add(1, Ordering::Relaxed);
    // One descriptor per connection: the thread, the handshake list (for stop) and later the
    // connection's writers all share this socket.
    let stream = Arc::new(stream);
    shared
        .handshaking
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key, stream.clone());
    shared.live.fetch_add(1, Ordering::AcqRel);
    let s = shared.clone();
    let spawned = std::thread::Builder::new()
        .name("syncws-conn".into())
        .stack_size(shared.config.thread_stack_size)
        .spawn(move || {
            let s2 = s.clone();
            let _guard = Finish { shared: s2, key };
            crate::worker::run(s, key, stream, peer);
        });
    match spawned {
        Ok(h) => {
            shared
                .threads
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(key, h);
        }
        Err(e) => {
            log::error!("cannot spawn a connection thread: {e}");
            shared.live.fetch_sub(1, Ordering::AcqRel);
            shared.handshake_done(key);
        }
    }
}

/// Runs when a connection thread ends, even by panic.
struct Finish {
    shared: Arc<Shared>,
    key: u64,
}

impl Drop for Finish {
    fn drop(&mut self) {
        self.shared.handshake_done(self.key);
        self.shared.live.fetch_sub(1, Ordering::AcqRel);
        let _ = self.shared.done_tx.send(self.key);
    }
}

/// A cheap, cloneable handle for sending from any thread: to one connection by id, to all,
/// closing, pinging. Every method returns at once; none waits for a slow client.
#[derive(Clone)]
pub struct Messenger {
    shared: Arc<Shared>,
}

impl fmt::Debug for Messenger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Messenger")
            .field("addrs", &self.shared.local_addrs)
            .finish()
    }
}

/// An open connection as listed by [`Messenger::connections`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionInfo {
    /// The id.
    pub id: ConnectionId,
    /// The client's address.
    pub peer: SocketAddr,
}

impl Messenger {
    fn get(&self, id: &ConnectionId) -> Result<Connection> {
        if self.shared.stopping.load(Ordering::Acquire) {
            return Err(Error::NotRunning);
        }
        self.shared.lookup(id).ok_or(Error::UnknownConnection)
    }

    /// Whether the server is running (not stopped or stopping).
    pub fn is_active(&self) -> bool {
        !self.shared.stopping.load(Ordering::Acquire)
    }

    /// The first listening address (with the real port when port 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addrs[0]
    }

    /// All listening addresses.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.shared.local_addrs
    }

    /// The open WebSocket connections.
    pub fn connections(&self) -> Vec<ConnectionInfo> {
        self.shared
            .registry_snapshot()
            .iter()
            .map(|c| ConnectionInfo {
                id: c.id(),
                peer: c.peer_addr(),
            })
            .collect()
    }

    /// Number of open WebSocket connections.
    pub fn connection_count(&self) -> usize {
        self.shared
            .registry
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// The connection with `id`, if open.
    pub fn connection(&self, id: &ConnectionId) -> Option<Connection> {
        self.shared.lookup(id)
    }

    /// Sends a text message to one connection (the seed product's `WriteData`).
    pub fn send_text(&self, id: &ConnectionId, text: &str) -> Result<()> {
        self.get(id)?.send_text(text)
    }

    /// Sends a binary message to one connection.
    pub fn send_binary(&self, id: &ConnectionId, data: &[u8]) -> Result<()> {
        self.get(id)?.send_binary(data)
    }

    /// Sends a text message to every open connection except `except`; returns how many
    /// connections it was handed to. A slow client's full queue is handled by its overflow
    /// policy and never delays the others.
    pub fn broadcast_text(&self, text: &str, except: Option<&ConnectionId>) -> usize {
        self.broadcast(OpCode::Text, text.as_bytes(), except)
    }

    /// Sends a binary message to every open connection except `except`.
    pub fn broadcast_binary(&self, data: &[u8], except: Option<&ConnectionId>) -> usize {
        self.broadcast(OpCode::Binary, data, except)
    }

    fn broadcast(&self, op: OpCode, data: &[u8], except: Option<&ConnectionId>) -> usize {
        let mut n = 0;
        for c in self.shared.registry_snapshot() {
            if Some(&c.id()) != except && c.send_frame(op, data).is_ok() {
                n += 1;
            }
        }
        n
    }

    /// Starts the closing handshake with one connection.
    pub fn close(&self, id: &ConnectionId, code: CloseCode, reason: &str) -> Result<()> {
        self.get(id)?.close(code, reason)
    }

    /// Pings one connection.
    pub fn ping(&self, id: &ConnectionId, payload: &[u8]) -> Result<()> {
        self.get(id)?.ping(payload)
    }

    /// The server's counters.
    pub fn stats(&self) -> StatsSnapshot {
        self.shared.stats.snapshot()
    }
}

/// A running server. Sending methods come from [`Messenger`] (through `Deref`); get a
/// cloneable one for other threads with [`ServerHandle::messenger`]. Dropping the handle stops
/// the server.
pub struct ServerHandle {
    messenger: Messenger,
    accept_threads: Vec<JoinHandle<()>>,
    service: Option<JoinHandle<()>>,
    dispatch: Option<JoinHandle<()>>,
    stopped: bool,
}

impl fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerHandle")
            .field("addrs", &self.messenger.shared.local_addrs)
            .finish()
    }
}

impl Deref for ServerHandle {
    type Target = Messenger;
    fn deref(&self) -> &Messenger {
        &self.messenger
    }
}

impl ServerHandle {
    #[cfg(feature = "tls")]
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.messenger.shared
    }

    /// A cloneable sender for other threads.
    pub fn messenger(&self) -> Messenger {
        self.messenger.clone()
    }

    /// Stops the server: closes the listeners, sends close 1001 to every client, waits (up to
    /// `close_timeout`) for their replies, shuts down what remains, joins every thread it
    /// started, and returns. In asynchronous mode the last events (disconnects) are delivered
    /// before the dispatch thread ends.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        let shared = self.messenger.shared.clone();
        shared.stopping.store(true, Ordering::Release);
        // Wake sleepers (watchdog) and stop the listeners: shutdown() makes a blocked accept()
        // return at once.
        drop(shared.stop_tx.lock().unwrap_or_else(|e| e.into_inner()).take());
        for l in shared
            .listeners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .flatten()
        {
            let _ = rustix::net::shutdown(l, rustix::net::Shutdown::Both);
        }
        for t in self.accept_threads.drain(..) {
            let _ = t.join();
        }
        // Close every client (1001), and drop those still in their handshake.
        for c in shared.registry_snapshot() {
            let _ = c.close(CloseCode::GOING_AWAY, "server shutting down");
        }
        for s in shared
            .handshaking
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
        {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
        let deadline = Instant::now() + shared.config.close_timeout + Duration::from_millis(500);
        while shared.live.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        for c in shared.registry_snapshot() {
            c.kill(CloseCode::GOING_AWAY, "server shutting down");
        }
        let threads: Vec<_> = shared
            .threads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .collect();
        for (_, t) in threads {
            let _ = t.join();
        }
        shared.service_stop.store(true, Ordering::Release);
        shared.service.wake();
        if let Some(t) = self.service.take() {
            let _ = t.join();
        }
        // Last: let the dispatch thread finish the events already queued.
        drop(shared.sink.lock().unwrap_or_else(|e| e.into_inner()).take());
        if let Some(t) = self.dispatch.take() {
            if t.thread().id() != std::thread::current().id() {
                let _ = t.join();
            }
        }
        log::info!("server on {:?} stopped", shared.local_addrs);
    }

    /// Test hook: makes the listeners fail as if shut down from outside (not a stop).
    #[doc(hidden)]
    pub fn __break_listeners(&self) {
        for l in self
            .messenger
            .shared
            .listeners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .flatten()
        {
            let _ = rustix::net::shutdown(l, rustix::net::Shutdown::Both);
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[allow(dead_code)]
fn assert_send_sync() {
    fn check<T: Send + Sync>() {}
    check::<ServerHandle>();
    check::<Messenger>();
    check::<Connection>();
    check::<Server>();
}
