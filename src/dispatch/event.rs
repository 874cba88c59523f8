//! What happens, as events: [`Event`] (one connection's, or the server's) and [`ServerEvent`].

use std::panic::{catch_unwind, AssertUnwindSafe};

use syncws_protocol::{CloseCode, Payload, TextPayload};

use super::handler::Handler;
use crate::connection::{Connection, Disconnect};
use crate::error::{panic_message, Error};

/// Server-wide happenings: listener failures, the watchdog's work, the cluster's link.
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
    /// The cluster lost Redis (or could not reach it at start): cross-node messages are
    /// dropped until [`ServerEvent::ClusterUp`]; local delivery goes on. The cluster retries
    /// with backoff.
    ClusterDown {
        /// What failed.
        error: String,
    },
    /// The cluster reached Redis (again): subscribed, presence published.
    ClusterUp,
}

/// An event, as carried to the dispatch thread in asynchronous mode.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// A client completed the upgrade.
    Connect(Connection),
    /// A text message.
    Text(Connection, TextPayload),
    /// A binary message.
    Binary(Connection, Payload),
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
    ///
    /// Matching on events directly (from [`crate::Dispatcher::receiver`]) is just as good:
    /// nothing here is needed for the connection to work. (The close frame of a protocol
    /// failure waits until the event reporting it is dropped, so that replies to the
    /// messages before it go out first; drop events once handled.)
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
            c.context().stats.handler_panic();
            let _ = c.close(CloseCode::INTERNAL_ERROR, "internal error");
            let _ = catch_unwind(AssertUnwindSafe(|| {
                handler.on_error(&c, Error::HandlerPanic(msg))
            }));
        }
    }
}
