//! The handler traits: [`Handler`] (asynchronous mode, one dispatch thread) and
//! [`InlineHandler`] (inline mode, each connection's own thread).

use syncws_protocol::{Payload, TextPayload};

use super::event::ServerEvent;
use crate::connection::{Connection, Disconnect};
use crate::error::Error;

/// Handlers for asynchronous mode: called one at a time, in arrival order, on the dispatch
/// thread. Every method has an empty default; implement the ones you need.
///
/// Messages arrive as [`TextPayload`] and [`Payload`]: slices of the buffer they were read
/// into, handed over without a copy and given back for reuse when dropped. They deref to
/// `str` and `[u8]`; a handler can keep them as they are (`into_string` / `into_vec` make
/// owned copies).
pub trait Handler {
    /// A client completed the upgrade.
    fn on_connect(&mut self, conn: &Connection) {
        let _ = conn;
    }
    /// A text message arrived.
    fn on_text(&mut self, conn: &Connection, text: TextPayload) {
        let _ = (conn, text);
    }
    /// A binary message arrived.
    fn on_binary(&mut self, conn: &Connection, data: Payload) {
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
    fn on_text(&mut self, conn: &Connection, text: TextPayload) {
        (**self).on_text(conn, text)
    }
    fn on_binary(&mut self, conn: &Connection, data: Payload) {
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

/// Handlers for inline mode (sgcWebSockets' "NoSync"): called inline on each connection's thread, concurrently for
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
