//! Where a run's events go, and how a connection thread delivers them: over the channel to
//! the one dispatch thread (the library's own, [`crate::Server::start`], or the
//! application's, [`crate::Server::start_manual`]) or inline to an [`InlineHandler`] on the
//! connection's own thread ([`crate::Server::start_inline`]).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::{SendTimeoutError, Sender};
use syncws_protocol::{CloseCode, KeptMessage, ProtocolError};

use super::event::{Event, ServerEvent};
use super::handler::InlineHandler;
use super::waker::Waker;
use crate::connection::{Connection, Disconnect, EventCharge, Ticket};
use crate::error::{panic_message, Error};

/// The two delivery paths.
#[derive(Clone)]
pub(crate) enum Sink {
    /// Asynchronous mode: to the dispatch thread, waking it through the waker when the
    /// application pumps it (see [`crate::Dispatcher::set_waker`]).
    Channel(Sender<Event>, Arc<Waker>),
    /// Inline mode: called on the delivering thread.
    Inline(Arc<dyn InlineHandler>),
}

/// A run's sink, emptied when the run stops (which ends the dispatch thread once it has
/// handled what is queued).
pub(crate) struct SinkSlot(Mutex<Option<Sink>>);

impl SinkSlot {
    pub(crate) fn new(sink: Sink) -> Self {
        Self(Mutex::new(Some(sink)))
    }

    pub(crate) fn get(&self) -> Option<Sink> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Drops the run's own reference to the sink.
    pub(crate) fn close(&self) {
        drop(self.0.lock().unwrap_or_else(|e| e.into_inner()).take());
    }

    /// Delivers a server-wide event (waiting at most a second for room in the channel).
    pub(crate) fn server_event(&self, ev: ServerEvent) {
        match self.get() {
            Some(Sink::Channel(tx, waker)) => {
                let sent = tx.send_timeout(Event::Server(ev), Duration::from_secs(1));
                let _ = sent.map(|()| waker.queued());
            }
            Some(Sink::Inline(h)) => {
                let _ = catch_unwind(AssertUnwindSafe(|| h.on_server_event(ev)));
            }
            None => {}
        }
    }
}

/// A connection thread's way to deliver its connection's events, in order.
pub(crate) struct Emitter {
    sink: Option<Sink>,
}

impl Emitter {
    pub(crate) fn new(sink: Option<Sink>) -> Self {
        Self { sink }
    }

    /// Asynchronous mode: waits for room in the channel (back-pressure on reading), giving up
    /// only when the server stops or the dispatcher is gone.
    fn send(&self, conn: &Connection, ev: Event) {
        if self.enqueue(conn, ev) {
            self.wake();
        }
    }

    /// [`Emitter::send`] without the waker: `true` when the event was queued.
    fn enqueue(&self, conn: &Connection, ev: Event) -> bool {
        let Some(Sink::Channel(tx, _)) = &self.sink else {
            return false;
        };
        let mut ev = ev;
        loop {
            match tx.send_timeout(ev, Duration::from_millis(100)) {
                Ok(()) => return true,
                Err(SendTimeoutError::Timeout(e)) if !conn.context().registry.is_stopping() => ev = e,
                Err(_) => return false,
            }
        }
    }

    /// Events were queued: wakes an idle application loop (see `Waker::queued`).
    fn wake(&self) {
        if let Some(Sink::Channel(_, waker)) = &self.sink {
            waker.queued();
        }
    }

    /// Inline mode: runs `f` on the handler, catching a panic (close 1011, report it).
    /// `false` in asynchronous mode (nothing run).
    fn inline(&self, conn: &Connection, f: impl FnOnce(&dyn InlineHandler)) -> bool {
        let Some(Sink::Inline(h)) = &self.sink else {
            return false;
        };
        if let Err(p) = catch_unwind(AssertUnwindSafe(|| f(&**h))) {
            let msg = panic_message(&*p);
            log::error!("connection {}: handler panicked: {msg}", conn.id());
            conn.context().stats.handler_panic();
            let _ = conn.close(CloseCode::INTERNAL_ERROR, "internal error");
            let _ = catch_unwind(AssertUnwindSafe(|| h.on_error(conn, Error::HandlerPanic(msg))));
        }
        true
    }

    pub(crate) fn connect(&self, conn: &Connection) {
        if !self.inline(conn, |h| h.on_connect(conn)) {
            self.send(conn, Event::Connect(conn.clone()));
        }
    }

    /// Whether messages go to the dispatch thread (as kept payloads: see [`Emitter::kept`])
    /// rather than to an inline handler.
    pub(crate) fn keeps(&self) -> bool {
        matches!(self.sink, Some(Sink::Channel(..)))
    }

    /// Inline mode: a text message, borrowed from the read buffer.
    pub(crate) fn text(&self, conn: &Connection, text: &str) {
        self.inline(conn, |h| h.on_text(conn, text));
    }

    /// Inline mode: a binary message, borrowed from the read buffer.
    pub(crate) fn binary(&self, conn: &Connection, data: &[u8]) {
        self.inline(conn, |h| h.on_binary(conn, data));
    }

    /// Asynchronous mode: the messages of one read (taken out of `messages`), in order,
    /// sharing the buffer they were read into (no copy). First waits for room for the
    /// `footprint` they hold in the event queue (back-pressure on reading); the last of their
    /// events to be dropped gives it back. Dropped when the server stops meanwhile. One wake
    /// of an idle application loop for them all.
    pub(crate) fn kept(&self, conn: &Connection, messages: &mut Vec<KeptMessage>, footprint: usize) {
        if messages.is_empty() {
            return;
        }
        let ctx = conn.context();
        let Some(charge) = EventCharge::take(&ctx.events, footprint, || ctx.registry.is_stopping()) else {
            messages.clear();
            return;
        };
        let mut queued = false;
        for m in messages.drain(..) {
            let c = conn.with_ticket(Ticket::EventBytes(charge.clone()));
            queued |= self.enqueue(
                conn,
                match m {
                    KeptMessage::Text(t) => Event::Text(c, t),
                    KeptMessage::Binary(b) => Event::Binary(c, b),
                },
            );
        }
        if queued {
            self.wake();
        }
    }

    pub(crate) fn disconnect(&self, conn: &Connection, info: Disconnect) {
        if !self.inline(conn, |h| h.on_disconnect(conn, info.clone())) {
            self.send(conn, Event::Disconnect(conn.clone(), info));
        }
    }

    /// The peer broke the protocol: close with the error's code and report it. In
    /// asynchronous mode the close frame waits (at most `wait`) until the error event has
    /// been handled, so replies to the messages before it go out first.
    pub(crate) fn protocol_failure(&self, conn: &Connection, e: ProtocolError, wait: Duration) {
        let (code, reason) = (e.close_code(), e.to_string());
        if let Some(Sink::Channel(..)) = &self.sink {
            let (carrier, done) = conn.defer_close(code, &reason);
            self.send(conn, Event::Error(carrier, Error::Protocol(e)));
            let _ = done.recv_timeout(wait);
            conn.run_deferred_close();
            return;
        }
        let _ = conn.close(code, &reason);
        let _ = self.inline(conn, |h| h.on_error(conn, Error::Protocol(e)));
    }
}
