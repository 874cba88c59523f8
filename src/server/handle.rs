//! [`ServerHandle`]: a running server, and stopping it.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use syncws_protocol::CloseCode;

use super::messenger::Messenger;
use crate::listener::Intake;

/// A running server. Sending methods come from [`Messenger`] (through `Deref`); get a
/// cloneable one for other threads with [`ServerHandle::messenger`]. Dropping the handle stops
/// the server.
pub struct ServerHandle {
    messenger: Messenger,
    intake: Arc<Intake>,
    pub(super) accept_threads: Vec<JoinHandle<()>>,
    pub(super) service: Option<JoinHandle<()>>,
    pub(super) dispatch: Option<JoinHandle<()>>,
    pub(super) cluster: Option<Arc<crate::cluster::Cluster>>,
    stopped: bool,
}

impl fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerHandle")
            .field("addrs", &self.messenger.local_addrs())
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
    pub(super) fn new(messenger: Messenger, intake: Arc<Intake>) -> Self {
        Self {
            messenger,
            intake,
            accept_threads: Vec::new(),
            service: None,
            dispatch: None,
            cluster: None,
            stopped: false,
        }
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
        if std::mem::replace(&mut self.stopped, true) {
            return;
        }
        let intake = &self.intake;
        let ctx = &intake.gate.ctx;
        ctx.registry.stop();
        // Wake sleepers (the watchdog) and make blocked accept() calls return at once.
        intake.sockets.signal_stop();
        intake.sockets.shutdown_all();
        for t in self.accept_threads.drain(..) {
            let _ = t.join();
        }
        // Close every client (1001), and drop those still in their handshake.
        for c in ctx.registry.snapshot() {
            let _ = c.close(CloseCode::GOING_AWAY, "server shutting down");
        }
        intake.threads.drop_handshaking();
        let grace = ctx.config.close_timeout + Duration::from_millis(500);
        intake.threads.wait_ended(Instant::now() + grace);
        for c in ctx.registry.snapshot() {
            c.abort(CloseCode::GOING_AWAY, "server shutting down");
        }
        intake.threads.join_all();
        // The cluster's threads (after the connections: their last broadcasts still go out).
        if let Some(c) = self.cluster.take() {
            c.stop();
        }
        intake.service.stop();
        if let Some(t) = self.service.take() {
            let _ = t.join();
        }
        // Last: let the dispatch thread finish the events already queued.
        intake.sink.close();
        if let Some(t) = self.dispatch.take() {
            if t.thread().id() != std::thread::current().id() {
                let _ = t.join();
            }
        }
        log::info!("server on {:?} stopped", ctx.local_addrs);
    }

    /// Reloads the TLS certificate and key from `tls` (files re-read and checked); new
    /// connections use them, open ones keep theirs. Errors leave the current ones in force.
    #[cfg(feature = "tls")]
    pub fn reload_tls(&self, tls: &crate::TlsConfig) -> crate::Result<()> {
        match &self.intake.gate.tls {
            Some(acc) => Ok(acc.reload(tls)?),
            None => Err(crate::error::TlsError::new("the server was not started with TLS").into()),
        }
    }

    /// Test hook (cargo feature `test-hooks`): makes the listeners fail as if shut down from
    /// outside (not a stop), for testing the watchdog.
    #[cfg(feature = "test-hooks")]
    #[doc(hidden)]
    pub fn __break_listeners(&self) {
        self.intake.sockets.shutdown_all();
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}
