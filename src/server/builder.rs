//! [`Server`]: configuration and hooks, and starting a run (binding, then the service,
//! listener and dispatch threads).

use std::fmt;
use std::sync::Arc;

use super::handle::ServerHandle;
use super::messenger::Messenger;
use crate::cluster::Cluster;
use crate::config::ServerConfig;
use crate::connection::{Connection, Context, SubscribeHook};
use crate::dispatch::{Dispatcher, Handler, InlineHandler, Sink, SinkSlot, Waker};
use crate::error::{Error, Result};
use crate::handshake::{Gate, Hooks};
use crate::http::{Accept, HttpResponse, Request};
use crate::listener::{Intake, PerIp, Sockets, Threads};
use crate::platform::bind_listener;
use crate::service::Service;
use crate::stats::Stats;

/// A WebSocket server: configuration plus hooks. Start it with one of the `start*` methods,
/// which bind the listeners and return a [`ServerHandle`]; stop it with
/// [`ServerHandle::stop`] (or by dropping the handle); start it again as often as needed.
pub struct Server {
    config: ServerConfig,
    hooks: Hooks,
    subscribe: Option<Arc<SubscribeHook>>,
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
            subscribe: None,
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
    /// (see [`crate::HandshakeHook`]). It runs before the connect event, in both notify modes.
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

    /// What this run's connections share, with the subscribe hook in place.
    fn context(&self, service: Arc<Service>, addrs: Vec<std::net::SocketAddr>) -> Arc<Context> {
        let config = Arc::new(self.config.clone());
        let ctx = Arc::new(Context::new(config, self.stats.clone(), service, addrs));
        if let Some(h) = &self.subscribe {
            ctx.topics.set_hook(h.clone());
        }
        ctx
    }

    /// Sets the subscribe hook, asked (on the subscribing thread) before
    /// [`Connection::subscribe`] adds a subscription: `(connection, topic) -> allow?`. A hook
    /// that panics refuses.
    pub fn on_subscribe<F>(mut self, hook: F) -> Self
    where
        F: Fn(&Connection, &str) -> bool + Send + Sync + 'static,
    {
        self.subscribe = Some(Arc::new(hook));
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
        let (handle, dispatcher) = self.start_manual()?;
        let mut handle = handle;
        let mut handler = handler;
        handle.dispatch = Some(spawn("syncws-dispatch", move || dispatcher.run(&mut handler))?);
        Ok(handle)
    }

    /// Starts in asynchronous mode; the application pumps events from its own thread with the
    /// returned [`Dispatcher`] (e.g. from a GUI or game loop). Handlers need not be `Send`.
    pub fn start_manual(&self) -> Result<(ServerHandle, Dispatcher)> {
        let (tx, rx) = crossbeam_channel::bounded(self.config.event_queue);
        let waker = Arc::<Waker>::default();
        let handle = self.launch(Sink::Channel(tx, waker.clone()))?;
        Ok((
            handle,
            Dispatcher {
                rx,
                waker,
                spin: self.config.dispatch_spin,
            },
        ))
    }

    /// Starts in inline mode (sgcWebSockets' "NoSync"): `handler` runs on every
    /// connection's own thread.
    pub fn start_inline<H: InlineHandler>(&self, handler: H) -> Result<ServerHandle> {
        self.launch(Sink::Inline(Arc::new(handler)))
    }

    /// The cluster's threads, when configured, reporting through the run's sink.
    fn start_cluster(&self, ctx: &Arc<Context>, intake: &Arc<Intake>) -> Result<Option<Arc<Cluster>>> {
        let Some(cfg) = &self.config.cluster else {
            return Ok(None);
        };
        // A weak reference: the cluster is the context's relay, and the context the intake's.
        let weak = Arc::downgrade(intake);
        let report = Box::new(move |ev| {
            if let Some(i) = weak.upgrade() {
                i.sink.server_event(ev);
            }
        });
        Cluster::start(cfg, ctx, report).map(Some)
    }

    fn launch(&self, sink: Sink) -> Result<ServerHandle> {
        self.config.validate()?;
        #[cfg(feature = "tls")]
        let tls = match &self.tls {
            Some(t) => Some(Arc::new(crate::tls::TlsAcceptor::new(t)?)),
            None => None,
        };
        let mut listeners = Vec::new();
        let mut addrs = Vec::new();
        for addr in &self.config.bind {
            let l = bind_listener(*addr, self.config.backlog)
                .map_err(|source| Error::Bind { addr: *addr, source })?;
            addrs.push(l.local_addr()?);
            listeners.push(l);
        }
        let service = Arc::new(Service::new()?);
        let ctx = self.context(service.clone(), addrs.clone());
        let intake = Arc::new(Intake {
            gate: Gate {
                ctx: ctx.clone(),
                hooks: self.hooks.clone(),
                sessions: Default::default(),
                throttle: crate::auth::Throttle::new(self.config.ipv6_prefix),
                #[cfg(feature = "tls")]
                tls,
            },
            sink: SinkSlot::new(sink),
            service: service.clone(),
            threads: Threads::default(),
            per_ip: PerIp::new(&self.config),
            sockets: Sockets::new(&listeners, addrs.clone()),
        });
        let mut handle = ServerHandle::new(Messenger::new(ctx.clone()), intake.clone());
        handle.cluster = self.start_cluster(&ctx, &intake)?;
        handle.service = Some(spawn("syncws-service", move || {
            crate::service::run(service, ctx)
        })?);
        for (i, l) in listeners.into_iter().enumerate() {
            let intake = intake.clone();
            let t = spawn("syncws-listener", move || crate::listener::run(intake, i, l))?;
            handle.accept_threads.push(t);
        }
        log::info!("listening on {addrs:?}");
        Ok(handle)
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .map_err(Error::Io)
}
