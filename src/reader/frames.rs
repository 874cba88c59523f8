//! The frame loop: decode what has arrived, deliver messages, answer pings and the peer's
//! close, then read more — with back-pressure when replies pile up, the read deadlines of
//! `clock.rs` (idle, unfinished message, giving large buffers back), and the decoder's
//! memory charged to the server's inbound budget.

use std::io::{self, Read};
use std::time::{Duration, Instant};

use syncws_protocol::{CloseCode, Decoder, KeptMessage, Message, ProtocolError};

use super::clock::{Expired, ReadClock, RELEASE_ABOVE};
use crate::connection::{set_own_thread, Connection, Cork};
use crate::dispatch::Emitter;
use crate::service::pong_rtt;

/// What one step of the loop says about the connection.
enum Step {
    /// Go on reading.
    More,
    /// The loop is over; the text says why the socket ended when nothing else does.
    End(String),
}

pub(crate) struct Reader<'a> {
    conn: &'a Connection,
    decoder: Decoder,
    em: &'a Emitter,
    clock: ReadClock,
    /// Decoder memory charged to the inbound budget.
    charged: usize,
    /// Inbound budget taken for inflating during one `decode_buffered` (given back, and the
    /// memory actually used charged, by `charge_memory`).
    reserved: usize,
    /// Messages on their way to the dispatch thread (reused read after read).
    kept: Vec<KeptMessage>,
    #[cfg(feature = "tls")]
    tls: Option<crate::connection::TlsReader>,
}

impl Drop for Reader<'_> {
    fn drop(&mut self) {
        self.conn.context().inbound.give(self.charged + self.reserved);
    }
}

impl<'a> Reader<'a> {
    pub(crate) fn new(conn: &'a Connection, decoder: Decoder, em: &'a Emitter) -> Self {
        let cfg = &conn.context().config;
        Self {
            conn,
            decoder,
            em,
            clock: ReadClock::new(cfg.idle_timeout, cfg.message_timeout, cfg.idle_timeout),
            charged: 0,
            reserved: 0,
            kept: Vec::new(),
            #[cfg(feature = "tls")]
            tls: conn.is_tls().then(crate::connection::TlsReader::new),
        }
    }

    /// Runs until the connection ends; returns why the socket ended (for the report when no
    /// close frame or local reason says more).
    pub(crate) fn run(mut self) -> String {
        set_own_thread(self.conn);
        self.em.connect(self.conn);
        loop {
            if let Step::End(why) = self.decode_buffered() {
                return why;
            }
            if let Step::End(why) = self.back_pressure() {
                return why;
            }
            if let Step::End(why) = self.charge_memory() {
                return why;
            }
            if let Step::End(why) = self.read_more() {
                return why;
            }
        }
    }

    /// Handles every message already buffered; replies go out together at the end (one write).
    /// In asynchronous mode the data messages are kept, and go to the dispatch thread
    /// together, sharing the buffer they were read into, before anything ends the loop.
    fn decode_buffered(&mut self) -> Step {
        let _cork = Cork::new();
        if self.decoder.inflates() {
            // Inflating grows the message only into inbound budget taken beforehand.
            self.decoder.set_inflate_headroom(0);
        }
        let keeps = self.em.keeps();
        loop {
            let step = match self.decoder.next() {
                Ok(None) => {
                    if !self.decoder.wants_memory() {
                        Step::More
                    } else if let Step::End(why) = self.reserve_inflate() {
                        Step::End(why)
                    } else {
                        continue;
                    }
                }
                Ok(Some(msg)) => match data_len(&msg) {
                    Some(n) if keeps => {
                        self.conn.context().stats.message_in(n);
                        self.decoder.keep();
                        continue;
                    }
                    // Control frames are answered at once (a pong may pass kept messages).
                    _ => match handle(self.conn, self.em, msg) {
                        Some(end) => end,
                        None => continue,
                    },
                },
                Err(e) => {
                    // The messages before the error go first.
                    self.hand_over();
                    return fail(self.conn, self.em, e);
                }
            };
            self.hand_over();
            return step;
        }
    }

    /// Asynchronous mode: the messages kept since the last call, to the dispatch thread.
    fn hand_over(&mut self) {
        let footprint = self.decoder.take_kept_into(&mut self.kept);
        self.em.kept(self.conn, &mut self.kept, footprint);
    }

    /// Takes inbound budget for a compressed message to inflate into, geometrically (as much
    /// again as it holds, 64 KiB at least); past the budget the connection is failed (1009).
    fn reserve_inflate(&mut self) -> Step {
        let cap = self.decoder.message_capacity();
        let max = usize::try_from(self.conn.context().config.limits.max_message_size).unwrap_or(usize::MAX);
        let step = cap
            .max(64 << 10)
            .min(max.saturating_add(1).saturating_sub(cap))
            .max(1);
        if self.conn.context().inbound.try_take(step) {
            self.reserved += step;
            self.decoder.set_inflate_headroom(step);
            return Step::More;
        }
        self.budget_exhausted()
    }

    fn budget_exhausted(&self) -> Step {
        log::warn!(
            "connection {}: inbound budget exhausted, failing it",
            self.conn.id()
        );
        self.conn
            .abort(CloseCode::TOO_BIG, "server busy: inbound budget exhausted");
        Step::End("inbound budget exhausted".into())
    }

    /// Do not read more from a client whose replies are piling up, nor from one that has
    /// been aborted.
    fn back_pressure(&self) -> Step {
        let Some(queued) = self.conn.queued_unless_dead() else {
            return Step::End("aborted".into());
        };
        let max = self.conn.context().config.max_send_queue;
        if queued > max / 2 && self.conn.wait_drained(max / 4).is_err() {
            return Step::End("write timeout".into());
        }
        Step::More
    }

    /// Charges what the decoder holds to the inbound budget. Past the budget, a connection
    /// in the middle of a message is failed (1009); one between messages gives its buffers
    /// back.
    fn charge_memory(&mut self) -> Step {
        let inbound = &self.conn.context().inbound;
        inbound.give(std::mem::take(&mut self.reserved));
        let cap = self.decoder.capacity();
        match cap.cmp(&self.charged) {
            std::cmp::Ordering::Greater => inbound.force_take(cap - self.charged),
            std::cmp::Ordering::Less => inbound.give(self.charged - cap),
            std::cmp::Ordering::Equal => {}
        }
        self.charged = cap;
        if inbound.used() <= inbound.limit() {
            return Step::More;
        }
        if !self.decoder.in_message() {
            let freed = self.decoder.release_idle();
            inbound.give(freed);
            self.charged -= freed;
            return Step::More;
        }
        self.budget_exhausted()
    }

    /// One read from the socket into the decoder, under the reader's deadlines.
    fn read_more(&mut self) -> Step {
        let holds_big = self.decoder.capacity() > RELEASE_ABOVE;
        let in_message = self.decoder.in_message();
        // Between small messages no deadline but the idle one is running: no clock read.
        if self.clock.needs_clock(in_message, holds_big) {
            if let Some(t) = self.clock.before_read(Instant::now(), in_message, holds_big) {
                if self.conn.socket().set_read_timeout(t).is_err() {
                    return Step::End("cannot set the read timeout".into());
                }
            }
        }
        let buf = self.decoder.read_buf();
        #[cfg(feature = "tls")]
        let r = match &mut self.tls {
            Some(t) => t.read(self.conn, buf),
            None => self.conn.socket().read(buf),
        };
        #[cfg(not(feature = "tls"))]
        let r = self.conn.socket().read(buf);
        match r {
            Ok(0) => Step::End("connection closed without a close frame".into()),
            Ok(n) => {
                self.decoder.commit(n);
                if self.clock.message_timed() && self.clock.message_overdue(Instant::now()) {
                    return self.message_timeout();
                }
                Step::More
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Step::More,
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                match self.clock.expired(Instant::now()) {
                    Expired::Message => self.message_timeout(),
                    Expired::Release => {
                        self.decoder.release_idle();
                        Step::More
                    }
                    Expired::Idle => self.idle(),
                    Expired::Early => Step::More,
                }
            }
            Err(e) => Step::End(e.to_string()),
        }
    }

    /// A message begun was not finished within `message_timeout`.
    fn message_timeout(&self) -> Step {
        log::info!("connection {}: message not finished in time", self.conn.id());
        self.conn.abort(CloseCode::POLICY_VIOLATION, "message timeout");
        Step::End("message timeout".into())
    }

    /// The idle timeout passed without a byte: close politely; the loop goes on until the
    /// reply or the close deadline.
    fn idle(&self) -> Step {
        if !self.conn.close_sent() {
            log::info!("connection {}: idle timeout", self.conn.id());
            let _ = self.conn.close(CloseCode::NORMAL, "idle timeout");
        } else if self.conn.is_dead() {
            return Step::End("closed".into());
        }
        Step::More
    }
}

/// A data message's length; `None` for a control frame.
fn data_len(msg: &Message<'_>) -> Option<usize> {
    match msg {
        Message::Text(t) => Some(t.len()),
        Message::Binary(b) => Some(b.len()),
        _ => None,
    }
}

/// One decoded message; `Some` when it ends the loop (the peer's close).
fn handle(conn: &Connection, em: &Emitter, msg: Message<'_>) -> Option<Step> {
    let ctx = conn.context();
    match msg {
        Message::Text(t) => {
            ctx.stats.message_in(t.len());
            em.text(conn, t);
        }
        Message::Binary(b) => {
            ctx.stats.message_in(b.len());
            em.binary(conn, b);
        }
        Message::Ping(p) => {
            let _ = conn.send_frame(syncws_protocol::frame::OpCode::Pong, p);
        }
        Message::Pong(p) => {
            if let Some(rtt) = pong_rtt(p, ctx.now_us()) {
                conn.liveness().pong(ctx.now_ms(), rtt);
            }
        }
        Message::Close(frame) => {
            let (code, reason) = frame.map_or((CloseCode::NO_STATUS, ""), |f| (f.code, f.reason));
            conn.peer_closed(code, reason);
            return Some(Step::End("closed by the peer".into()));
        }
    }
    None
}

/// The peer broke the protocol: close with the error's code, report it, end the loop.
fn fail(conn: &Connection, em: &Emitter, e: ProtocolError) -> Step {
    log::info!(
        "connection {}: protocol error: {e} (closing with {})",
        conn.id(),
        e.close_code()
    );
    let ctx = conn.context();
    ctx.stats.protocol_error();
    let wait = ctx.config.close_timeout.min(Duration::from_secs(1));
    em.protocol_failure(conn, e, wait);
    Step::End("protocol error".into())
}
