//! Events, the handler traits, and the dispatcher for asynchronous mode.

use std::any::Any;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, TryRecvError};
use syncws_protocol::CloseCode;

use crate::connection::Cork;
use crate::{Connection, Error};

/// Most events handled under one write batch (see `Cork`): bounds the delay of the first
/// reply in a batch.
const BATCH: usize = 64;

/// Why and how a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disconnect {
    /// The close code: the one in the close frame that ended the connection (1005 if it had
    /// none), the one the server sent when it closed for its own reason, or 1006 when the
    /// connection dropped without a closing handshake.
    pub code: CloseCode,
    /// The close reason, or a description of why the connection dropped.
    pub reason: String,
    /// Whether the closing handshake completed (both close frames exchanged).
    pub clean: bool,
}

/// Server-wide happenings: listener failures and the watchdog's work.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerEvent {
    /// A listener stopped unexpectedly (the error says why). Existing connections go on.
    ListenerFailed {
        /// The address it was bound to.
        addr: std::net::SocketAddr,
        /// What failed.
        error: String,
    },
    /// The watchdog is trying to bring a listener back (attempt numbers start at 1).
    WatchdogAttempt {
        /// The address.
        addr: std::net::SocketAddr,
        /// Which attempt this is.
        attempt: u32,
    },
    /// The watchdog brought the listener back.
    WatchdogRestarted {
        /// The address.
        addr: std::net::SocketAddr,
        /// The attempt that succeeded.
        attempt: u32,
    },
    /// The watchdog gave up after its configured number of attempts.
    WatchdogGaveUp {
        /// The address.
        addr: std::net::SocketAddr,
        /// Attempts made.
        attempts: u32,
    },
}

/// An event, as carried to the dispatch thread in asynchronous mode.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// A client completed the upgrade.
    Connect(Connection),
    /// A text message.
    Text(Connection, String),
    /// A binary message.
    Binary(Connection, Vec<u8>),
    /// A connection ended. Always the last event of a connection.
    Disconnect(Connection, Disconnect),
    /// Something went wrong on a connection (a protocol error, a handler panic); a
    /// `Disconnect` follows when the connection ends because of it.
    Error(Connection, Error),
    /// A server-wide event.
    Server(ServerEvent),
}

impl Event {
    /// Calls the matching method of `handler`. A panic in the handler is caught: the
    /// connection concerned is closed with 1011 and the panic is reported to
    /// [`Handler::on_error`].
    pub fn dispatch<H: Handler + ?Sized>(self, handler: &mut H) {
        // Each arm keeps the connection (no clone) for the panic report below.
        let (c, r) = match self {
            Event::Connect(c) => {
                let r = catch_unwind(AssertUnwindSafe(|| handler.on_connect(&c)));
                (c, r)
            }
            Event::Text(c, t) => {
                let r = catch_unwind(AssertUnwindSafe(|| handler.on_text(&c, t)));
                (c, r)
            }
            Event::Binary(c, b) => {
                let r = catch_unwind(AssertUnwindSafe(|| handler.on_binary(&c, b)));
                (c, r)
            }
            Event::Disconnect(c, d) => {
                let r = catch_unwind(AssertUnwindSafe(|| handler.on_disconnect(&c, d)));
                (c, r)
            }
            Event::Error(c, e) => {
                c.run_pending_fail();
                let r = catch_unwind(AssertUnwindSafe(|| handler.on_error(&c, e)));
                (c, r)
            }
            Event::Server(e) => {
                let _ = catch_unwind(AssertUnwindSafe(|| handler.on_server_event(e)));
                return;
            }
        };
        if let Err(p) = r {
            let msg = panic_message(&*p);
            log::error!("connection {}: handler panicked: {msg}", c.id());
            c.0.shared.stats.handler_panic();
            let _ = c.close(CloseCode::INTERNAL_ERROR, "internal error");
            let _ = catch_unwind(AssertUnwindSafe(|| {
                handler.on_error(&c, Error::HandlerPanic(msg))
            }));
        }
    }
}

pub(crate) fn panic_message(p: &(dyn Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".to_string()
    }
}

/// Handlers for asynchronous mode: called one at a time, in arrival order, on the dispatch
/// thread. Every method has an empty default; implement the ones you need.
///
/// Messages arrive owned, so a handler can keep them without copying.
pub trait Handler {
    /// A client completed the upgrade.
    fn on_connect(&mut self, conn: &Connection) {
        let _ = conn;
    }
    /// A text message arrived.
    fn on_text(&mut self, conn: &Connection, text: String) {
        let _ = (conn, text);
    }
    /// A binary message arrived.
    fn on_binary(&mut self, conn: &Connection, data: Vec<u8>) {
        let _ = (conn, data);
    }
    /// A connection ended (always its last event).
    fn on_disconnect(&mut self, conn: &Connection, info: Disconnect) {
        let _ = (conn, info);
    }
    /// An error on a connection.
    fn on_error(&mut self, conn: &Connection, error: Error) {
        let _ = (conn, error);
    }
    /// A server-wide event (listener failure, watchdog).
    fn on_server_event(&mut self, event: ServerEvent) {
        let _ = event;
    }
}

impl<H: Handler + ?Sized> Handler for Box<H> {
    fn on_connect(&mut self, conn: &Connection) {
        (**self).on_connect(conn)
    }
    fn on_text(&mut self, conn: &Connection, text: String) {
        (**self).on_text(conn, text)
    }
    fn on_binary(&mut self, conn: &Connection, data: Vec<u8>) {
        (**self).on_binary(conn, data)
    }
    fn on_disconnect(&mut self, conn: &Connection, info: Disconnect) {
        (**self).on_disconnect(conn, info)
    }
    fn on_error(&mut self, conn: &Connection, error: Error) {
        (**self).on_error(conn, error)
    }
    fn on_server_event(&mut self, event: ServerEvent) {
        (**self).on_server_event(event)
    }
}

/// Handlers for no-sync mode: called inline on each connection's thread, concurrently for
/// different connections (in order for one connection). Messages are borrowed from the
/// connection's buffer: no copy unless the handler makes one.
pub trait InlineHandler: Send + Sync + 'static {
    /// A client completed the upgrade.
    fn on_connect(&self, conn: &Connection) {
        let _ = conn;
    }
    /// A text message arrived.
    fn on_text(&self, conn: &Connection, text: &str) {
        let _ = (conn, text);
    }
    /// A binary message arrived.
    fn on_binary(&self, conn: &Connection, data: &[u8]) {
        let _ = (conn, data);
    }
    /// A connection ended (always its last event).
    fn on_disconnect(&self, conn: &Connection, info: Disconnect) {
        let _ = (conn, info);
    }
    /// An error on a connection.
    fn on_error(&self, conn: &Connection, error: Error) {
        let _ = (conn, error);
    }
    /// A server-wide event (listener failure, watchdog), called on the listener's thread.
    fn on_server_event(&self, event: ServerEvent) {
        let _ = event;
    }
}

/// The receiving end of asynchronous mode when the application pumps events itself
/// ([`crate::Server::start_manual`]): from a GUI or game loop with
/// [`Dispatcher::dispatch_pending`], or forever with [`Dispatcher::run`]. The handler lives on
/// the pumping thread and need not be `Send`.
pub struct Dispatcher {
    pub(crate) rx: Receiver<Event>,
}

impl fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dispatcher")
            .field("pending", &self.rx.len())
            .finish()
    }
}

impl Dispatcher {
    /// Handles events until the server stops (after the last connection's disconnect).
    pub fn run<H: Handler + ?Sized>(&self, handler: &mut H) {
        while let Ok(ev) = self.rx.recv() {
            let _cork = Cork::new();
            ev.dispatch(handler);
            self.batch(handler, BATCH - 1);
        }
    }

    /// Handles up to `max` waiting events; returns how many.
    fn batch<H: Handler + ?Sized>(&self, handler: &mut H, max: usize) -> usize {
        let mut n = 0;
        while n < max {
            match self.rx.try_recv() {
                Ok(ev) => {
                    ev.dispatch(handler);
                    n += 1;
                }
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        n
    }

    /// Handles the events already waiting, without blocking; returns how many.
    pub fn dispatch_pending<H: Handler + ?Sized>(&self, handler: &mut H) -> usize {
        let mut total = 0;
        loop {
            let _cork = Cork::new();
            let n = self.batch(handler, BATCH);
            total += n;
            if n < BATCH {
                return total;
            }
        }
    }

    /// Waits up to `timeout` for at least one event, then handles all waiting events; returns
    /// how many.
    pub fn dispatch_timeout<H: Handler + ?Sized>(&self, handler: &mut H, timeout: Duration) -> usize {
        match self.rx.recv_timeout(timeout) {
            Ok(ev) => {
                {
                    let _cork = Cork::new();
                    ev.dispatch(handler);
                }
                1 + self.dispatch_pending(handler)
            }
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => 0,
        }
    }

    /// The raw event receiver, for `crossbeam_channel::select!` with other channels. Call
    /// [`Event::dispatch`] on what it yields, or match on the events directly.
    pub fn receiver(&self) -> &Receiver<Event> {
        &self.rx
    }
}
