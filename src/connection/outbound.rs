//! The outbound path: the connection's lock (queue, close state, TLS session) and everything
//! done under it — sending a frame, flushing, the two close verbs. The lock is private to
//! this file; the rest of the crate calls the methods. See the room's docs for the design.
//!
//! Limits, all checked before anything is queued: a frame whose payload is larger than
//! `max_send_queue` is refused; a frame that does not fit behind what is queued gets the
//! overflow policy (close 1008) or, on the connection's own thread, back-pressure; bytes that
//! the server-wide outbound budget cannot take get the overflow policy too (close 1013). A
//! queue that makes no progress for `write_timeout` is aborted by the service thread.

use std::cell::Cell;
use std::io;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use syncws_protocol::close::close_payload;
use syncws_protocol::frame::{write_frame, FrameHeader, OpCode, MAX_HEADER_LEN};
use syncws_protocol::CloseCode;

use super::close::{CloseState, Disconnect};
use super::cork::{Cork, CORK_MAX_FRAME};
use super::queue::{Budget, Queue, SharedFrame};
use super::Connection;
use crate::config::OverflowPolicy;
use crate::error::SendError;
use crate::platform::{send_nb, wait_writable, Sent};

/// How long an aborted connection's last close frame may take to leave before the socket is
/// shut.
pub(crate) const ABORT_GRACE: Duration = Duration::from_secs(1);
/// TLS: plaintext handed to rustls at a time; what rustls holds encrypted and unsent stays
/// below about this much per connection.
#[cfg(feature = "tls")]
const TLS_FEED: usize = 16 << 10;

thread_local! {
    /// The connection whose thread this is (address of its shared state), if any.
    static OWN_CONN: Cell<usize> = const { Cell::new(0) };
}

/// Marks the current thread as `conn`'s own (reader) thread: its sends get back-pressure
/// instead of the overflow policy.
pub(crate) fn set_own_thread(conn: &Connection) {
    OWN_CONN.with(|c| c.set(std::sync::Arc::as_ptr(&conn.inner) as usize));
}

pub(super) fn own_thread(conn: &Connection) -> bool {
    OWN_CONN.with(|c| c.get() == std::sync::Arc::as_ptr(&conn.inner) as usize)
}

/// A protocol failure's close frame, held back until the events before it are handled.
struct Deferred {
    code: CloseCode,
    reason: String,
    ack: Sender<()>,
}

/// What the lock guards.
struct Out {
    queue: Queue,
    close: CloseState,
    /// Registered with the service thread for flushing.
    in_service: bool,
    /// In the current thread's cork list.
    in_cork: bool,
    /// When bytes last left the queue (or it last became non-empty).
    last_progress: Instant,
    /// Aborted: shut the socket once the queue (ending with the close frame) drains, or then.
    shut_at: Option<Instant>,
    deferred: Option<Deferred>,
    #[cfg(feature = "tls")]
    tls: Option<Box<rustls::ServerConnection>>,
}

/// The connection's outbound state behind its lock.
pub(crate) struct Outbound(Mutex<Out>);

impl Outbound {
    /// Plain TCP; queued bytes are charged to `budget`.
    pub(crate) fn plain(budget: std::sync::Arc<Budget>) -> Self {
        Self(Mutex::new(Out {
            queue: Queue::new(budget),
            close: CloseState::default(),
            in_service: false,
            in_cork: false,
            last_progress: Instant::now(),
            shut_at: None,
            deferred: None,
            #[cfg(feature = "tls")]
            tls: None,
        }))
    }

    /// Over an established TLS session.
    #[cfg(feature = "tls")]
    pub(crate) fn tls(budget: std::sync::Arc<Budget>, session: Box<rustls::ServerConnection>) -> Self {
        let o = Self::plain(budget);
        o.lock().tls = Some(session);
        o
    }

    fn lock(&self) -> MutexGuard<'_, Out> {
        // A panic while holding this lock cannot leave `Out` inconsistent in a way that
        // matters more than losing the connection; keep going.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A frame to send: header and payload borrowed from the caller, or a shared frame.
#[derive(Clone, Copy)]
enum Frame<'a> {
    Parts(&'a [u8], &'a [u8]),
    Shared(&'a SharedFrame),
}

impl<'a> Frame<'a> {
    fn parts(self) -> [&'a [u8]; 2] {
        match self {
            Self::Parts(h, p) => [h, p],
            Self::Shared(f) => [f.bytes(), &[]],
        }
    }

    fn len(self) -> usize {
        self.parts().iter().map(|p| p.len()).sum()
    }
}

/// What a send does when the queue cannot take its frame.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Full {
    /// The connection's own thread waits for room; others get the overflow policy.
    Wait,
    /// Everyone gets the overflow policy.
    Refuse,
    /// Queued anyway (small heartbeat pings).
    Exempt,
}

/// How a write under the lock went.
enum Wrote {
    Ok,
    /// The outbound budget could not take the bytes: nothing was queued, or the rest of a
    /// frame already partly on the wire was queued anyway (the connection is then shed).
    OverBudget,
}

/// Encodes a whole frame (for broadcasting); `compressed` sets RSV1 (permessage-deflate).
pub(crate) fn encode_frame(opcode: OpCode, payload: &[u8], compressed: bool) -> Vec<u8> {
    let mut frame = Vec::with_capacity(MAX_HEADER_LEN + payload.len());
    let mut h = FrameHeader::new(opcode, payload.len() as u64, None);
    h.rsv1 = compressed;
    write_frame(&mut frame, h, payload);
    frame
}

/// A close frame (header and payload) for `code` and `reason`; 1005 gives an empty payload.
fn close_frame(code: CloseCode, reason: &str) -> Vec<u8> {
    let mut payload = Vec::with_capacity(125);
    if code != CloseCode::NO_STATUS {
        close_payload(code, reason, &mut payload);
    }
    encode_frame(OpCode::Close, &payload, false)
}

/// The parts of `parts` not yet covered by the first `written` bytes.
fn skip_written(parts: [&[u8]; 2], mut written: usize) -> ([&[u8]; 2], usize) {
    let mut v: [&[u8]; 2] = [&[], &[]];
    let mut n = 0;
    for p in parts {
        if written >= p.len() {
            written -= p.len();
        } else {
            v[n] = &p[written..];
            n += 1;
            written = 0;
        }
    }
    (v, n.max(1))
}

/// State queries.
impl Connection {
    fn out(&self) -> MutexGuard<'_, Out> {
        self.inner.out.lock()
    }

    pub(crate) fn state_is_open(&self) -> bool {
        self.out().close.is_open()
    }

    pub(crate) fn is_dead(&self) -> bool {
        self.out().close.is_dead()
    }

    pub(crate) fn close_sent(&self) -> bool {
        self.out().close.close_sent()
    }

    pub(crate) fn queued(&self) -> usize {
        self.out().queue.len()
    }

    /// The bytes queued, or `None` once the connection is aborted or failed (one lock).
    pub(crate) fn queued_unless_dead(&self) -> Option<usize> {
        let out = self.out();
        (!out.close.is_dead()).then(|| out.queue.len())
    }

    /// What to report as this connection's end (see `CloseState::disconnect`).
    pub(crate) fn disconnect_info(&self, dropped: &str) -> Disconnect {
        self.out().close.disconnect(dropped)
    }

    #[cfg(feature = "tls")]
    pub(crate) fn is_tls(&self) -> bool {
        self.out().tls.is_some()
    }
}

/// Sending.
impl Connection {
    /// Sends one frame, header and payload from the caller's buffer.
    pub(crate) fn send_frame(&self, opcode: OpCode, payload: &[u8]) -> Result<(), SendError> {
        self.send_frame_rsv1(opcode, payload, false, true)
    }

    /// Sends one frame with RSV1 as given (set: a compressed message's only frame). With
    /// `may_wait` false even the connection's own thread gets the overflow policy instead of
    /// waiting for a full queue (it holds a lock others may need).
    pub(crate) fn send_frame_rsv1(
        &self,
        opcode: OpCode,
        payload: &[u8],
        rsv1: bool,
        may_wait: bool,
    ) -> Result<(), SendError> {
        let mut hdr = [0u8; MAX_HEADER_LEN];
        let mut h = FrameHeader::new(opcode, payload.len() as u64, None);
        h.rsv1 = rsv1;
        let hlen = h.encode(&mut hdr);
        let frame = Frame::Parts(&hdr[..hlen], payload);
        self.send(
            frame,
            payload.len(),
            if may_wait { Full::Wait } else { Full::Refuse },
        )
    }

    /// Sends a frame encoded once for many connections (a broadcast); `payload_len` is its
    /// payload's length.
    pub(crate) fn send_shared(&self, frame: &SharedFrame, payload_len: usize) -> Result<(), SendError> {
        self.send(Frame::Shared(frame), payload_len, Full::Wait)
    }

    /// A heartbeat ping: small, from the service thread, exempt from the queue limit.
    pub(crate) fn send_heartbeat(&self, payload: &[u8]) -> Result<(), SendError> {
        let mut hdr = [0u8; MAX_HEADER_LEN];
        let hlen = FrameHeader::new(OpCode::Ping, payload.len() as u64, None).encode(&mut hdr);
        self.send(Frame::Parts(&hdr[..hlen], payload), payload.len(), Full::Exempt)
    }

    /// The limits, then the write. See the module docs.
    fn send(&self, frame: Frame<'_>, payload_len: usize, full: Full) -> Result<(), SendError> {
        let max = self.inner.ctx.config.max_send_queue;
        if payload_len > max {
            return Err(SendError::TooLong);
        }
        let total = frame.len();
        let mut out = self.out();
        loop {
            if !out.close.is_open() {
                return Err(SendError::Closed);
            }
            let pending = out.queue.len();
            if full == Full::Exempt || pending == 0 || pending + total <= max {
                break;
            }
            drop(out);
            if full == Full::Refuse || !own_thread(self) {
                return Err(self.overflow(CloseCode::POLICY_VIOLATION, "send queue overflow"));
            }
            // Back-pressure for the connection's own thread: wait, without the lock.
            self.wait_drained(max.saturating_sub(total))?;
            out = self.out();
        }
        self.inner.ctx.stats.frame_out(payload_len);
        let wrote = self.write_locked(&mut out, frame, true, false)?;
        drop(out);
        match wrote {
            Wrote::Ok => Ok(()),
            Wrote::OverBudget => Err(self.overflow(
                CloseCode::TRY_AGAIN_LATER,
                "server busy: outbound budget exhausted",
            )),
        }
    }

    /// A limit was hit: the overflow policy.
    fn overflow(&self, code: CloseCode, reason: &str) -> SendError {
        if self.inner.ctx.config.overflow_policy == OverflowPolicy::Close {
            log::warn!("connection {}: {reason}, closing", self.id());
            self.abort(code, reason);
        }
        SendError::QueueFull
    }

    /// Writes one whole frame with the lock held: directly if nothing is queued, else into
    /// the queue (`force`: whatever the budget says, for close frames).
    fn write_locked(
        &self,
        out: &mut Out,
        frame: Frame<'_>,
        may_cork: bool,
        force: bool,
    ) -> Result<Wrote, SendError> {
        #[cfg(feature = "tls")]
        if out.tls.is_some() {
            return self.write_tls(out, frame, force);
        }
        let total = frame.len();
        let corked = may_cork && total <= CORK_MAX_FRAME && Cork::active();
        if !out.queue.is_empty() || corked {
            if self.enqueue(out, frame, 0, force).is_ok() {
                if corked && !out.in_cork {
                    out.in_cork = true;
                    Cork::add(self.clone());
                } else if !corked {
                    self.register_flush(out);
                }
                return Ok(Wrote::Ok);
            }
            if !out.queue.is_empty() {
                return Ok(Wrote::OverBudget);
            }
            // Corked but the budget is full: a direct write needs no budget.
        }
        self.write_direct(out, frame)
    }

    /// Nothing is queued: write what the socket takes now, queue the rest.
    fn write_direct(&self, out: &mut Out, frame: Frame<'_>) -> Result<Wrote, SendError> {
        let total = frame.len();
        let mut written = 0;
        loop {
            let (rest, n) = skip_written(frame.parts(), written);
            match send_nb(&*self.inner.sock, &rest[..n]) {
                Ok(Sent::Bytes(k)) => {
                    written += k;
                    if written == total {
                        return Ok(Wrote::Ok);
                    }
                }
                Ok(Sent::WouldBlock) => break,
                Err(e) => return Err(self.broken(out, e)),
            }
        }
        let wrote = self.queue_rest(out, frame, written);
        self.register_flush(out);
        Ok(wrote)
    }

    /// Queues the rest of a frame partly on the wire: it cannot be refused any more, so past
    /// the budget it is queued anyway and the connection is shed (`OverBudget`).
    fn queue_rest(&self, out: &mut Out, frame: Frame<'_>, written: usize) -> Wrote {
        let over = self.enqueue(out, frame, written, false).is_err();
        if over {
            let _ = self.enqueue(out, frame, written, true);
        }
        if written > 0 {
            out.queue.mark_front_begun();
        }
        if over {
            Wrote::OverBudget
        } else {
            Wrote::Ok
        }
    }

    /// Queues `frame` from byte `from` on. A queue that was empty starts its write-progress
    /// clock now.
    fn enqueue(&self, out: &mut Out, frame: Frame<'_>, from: usize, force: bool) -> Result<(), ()> {
        let was_empty = out.queue.is_empty();
        let r = match frame {
            Frame::Parts(..) => {
                let (rest, n) = skip_written(frame.parts(), from);
                out.queue.push_owned(&rest[..n], force)
            }
            Frame::Shared(f) => out.queue.push_shared(f, from, force),
        };
        if was_empty && r.is_ok() {
            out.last_progress = Instant::now();
        }
        r
    }

    /// TLS: the first bytes of a frame go to rustls at once when nothing waits; the rest is
    /// queued as plaintext (shared frames stay shared) and encrypted as the socket drains.
    #[cfg(feature = "tls")]
    fn write_tls(&self, out: &mut Out, frame: Frame<'_>, force: bool) -> Result<Wrote, SendError> {
        let idle = out.queue.is_empty() && out.tls.as_ref().is_some_and(|t| !t.wants_write());
        let wrote = if idle {
            let fed = self.feed_tls(out, frame.parts());
            if fed < frame.len() {
                self.queue_rest(out, frame, fed)
            } else {
                Wrote::Ok
            }
        } else if self.enqueue(out, frame, 0, force).is_ok() {
            Wrote::Ok
        } else {
            return Ok(Wrote::OverBudget);
        };
        match self.flush_locked(out) {
            Ok(true) => {}
            Ok(false) => self.register_flush(out),
            Err(e) => return Err(self.broken(out, e)),
        }
        Ok(wrote)
    }

    /// Hands up to `TLS_FEED` bytes of `parts` to rustls; returns how many.
    #[cfg(feature = "tls")]
    fn feed_tls(&self, out: &mut Out, parts: [&[u8]; 2]) -> usize {
        let Some(tls) = out.tls.as_mut() else { return 0 };
        let mut fed = 0;
        for p in parts {
            let n = p.len().min(TLS_FEED - fed);
            fed += io::Write::write(&mut tls.writer(), &p[..n]).unwrap_or(0);
            if fed >= TLS_FEED {
                break;
            }
        }
        fed
    }

    /// Writes what is queued without blocking; `Ok(true)` when nothing is left (over TLS:
    /// nothing queued and nothing encrypted unsent).
    fn flush_locked(&self, out: &mut Out) -> io::Result<bool> {
        let mut moved = false;
        #[cfg(feature = "tls")]
        let r = if out.tls.is_some() {
            self.flush_tls(out, &mut moved)
        } else {
            out.queue.flush(&*self.inner.sock, &mut moved)
        };
        #[cfg(not(feature = "tls"))]
        let r = out.queue.flush(&*self.inner.sock, &mut moved);
        if moved {
            out.last_progress = Instant::now();
        }
        r
    }

    #[cfg(feature = "tls")]
    fn flush_tls(&self, out: &mut Out, moved: &mut bool) -> io::Result<bool> {
        let Out { queue, tls, .. } = out;
        let Some(tls) = tls.as_mut() else { return Ok(true) };
        let mut sock = crate::platform::NonBlocking(&self.inner.sock);
        loop {
            while tls.wants_write() {
                match tls.write_tls(&mut sock) {
                    Ok(n) => *moved |= n > 0,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                    Err(e) => return Err(e),
                }
            }
            if queue.is_empty() {
                return Ok(true);
            }
            let front = queue.front();
            let n = io::Write::write(&mut tls.writer(), &front[..front.len().min(TLS_FEED)])?;
            queue.advance(n);
        }
    }

    /// Runs `f` on the TLS session under the lock, then sends what it produced (alerts, key
    /// updates, tickets). `NotConnected` on a plain connection.
    #[cfg(feature = "tls")]
    pub(crate) fn with_session<R>(
        &self,
        f: impl FnOnce(&mut rustls::ServerConnection) -> io::Result<R>,
    ) -> io::Result<R> {
        let mut out = self.out();
        let Some(tls) = out.tls.as_mut() else {
            return Err(io::ErrorKind::NotConnected.into());
        };
        let r = f(tls);
        if tls.wants_write() && self.flush_locked(&mut out).is_ok_and(|done| !done) {
            self.register_flush(&mut out);
        }
        r
    }

    fn register_flush(&self, out: &mut Out) {
        if !out.in_service {
            out.in_service = true;
            self.inner.ctx.scheduler.flush_when_writable(self.clone());
        }
    }

    /// The end of this thread's cork: write what was batched.
    pub(super) fn end_cork(&self) {
        let mut out = self.out();
        out.in_cork = false;
        if out.queue.is_empty() || (out.close.is_dead() && out.shut_at.is_none()) {
            return;
        }
        match self.flush_locked(&mut out) {
            Ok(true) => {}
            Ok(false) => self.register_flush(&mut out),
            Err(e) => {
                self.broken(&mut out, e);
            }
        }
    }
}

/// What the service thread does for a connection it flushes.
impl Connection {
    /// Called by the service thread when the socket is writable. `true` when the connection
    /// no longer needs the service (drained, or gone).
    pub(crate) fn flush_ready(&self) -> bool {
        let mut out = self.out();
        let gone = out.close.is_dead() && out.shut_at.is_none();
        let done = gone
            || match self.flush_locked(&mut out) {
                Ok(done) => done,
                Err(e) => {
                    self.broken(&mut out, e);
                    true
                }
            };
        if done {
            out.in_service = false;
            if out.shut_at.take().is_some() {
                self.shut();
            }
        }
        done
    }

    /// The service thread's deadlines for a connection it flushes: an aborted connection's
    /// grace for its last frame, and `write_timeout` without progress. Returns when to look
    /// again, or `None` when the connection no longer needs the service.
    pub(crate) fn flush_deadline(&self, now: Instant) -> Option<Instant> {
        let mut out = self.out();
        if let Some(at) = out.shut_at {
            if now < at {
                return Some(at);
            }
            out.shut_at = None;
            out.in_service = false;
            drop(out);
            self.shut();
            return None;
        }
        if out.close.is_dead() || out.queue.is_empty() {
            return if out.in_service {
                Some(now + Duration::from_secs(1))
            } else {
                None
            };
        }
        let stall = out.last_progress + self.inner.ctx.config.write_timeout;
        if now < stall {
            return Some(stall);
        }
        drop(out);
        log::info!("connection {}: no write progress, dropping it", self.id());
        self.abort(
            CloseCode::POLICY_VIOLATION,
            "write timeout: client is not reading",
        );
        Some(now + ABORT_GRACE)
    }

    /// Waits (without the lock) until at most `target` bytes are queued, flushing as the socket
    /// drains. Gives up after `write_timeout` and aborts the connection.
    pub(crate) fn wait_drained(&self, target: usize) -> Result<(), SendError> {
        let deadline = Instant::now() + self.inner.ctx.config.write_timeout;
        loop {
            {
                let mut out = self.out();
                if out.close.is_dead() {
                    return Err(SendError::Closed);
                }
                match self.flush_locked(&mut out) {
                    Ok(_) if out.queue.len() <= target => return Ok(()),
                    Ok(_) => {}
                    Err(e) => return Err(self.broken(&mut out, e)),
                }
            }
            let now = Instant::now();
            if now >= deadline {
                self.abort(
                    CloseCode::POLICY_VIOLATION,
                    "write timeout: client is not reading",
                );
                return Err(SendError::Closed);
            }
            wait_writable(&self.inner.sock, deadline - now);
        }
    }

    /// The connection is ending: lets queued data (our close frame included) reach the
    /// client — for at most `timeout`, or until an abort's grace ends — then marks the
    /// connection dead. Returns whether it was dead (aborted or failed) already.
    pub(crate) fn drain_and_end(&self, timeout: Duration) -> bool {
        let (was_dead, until) = {
            let out = self.out();
            let dead = out.close.is_dead();
            let until = match out.shut_at {
                Some(at) => Some(at),
                None if dead => None,
                None => Some(Instant::now() + timeout),
            };
            (dead, until)
        };
        if let Some(deadline) = until {
            loop {
                let done = {
                    let mut out = self.out();
                    self.flush_locked(&mut out).unwrap_or(true)
                };
                let now = Instant::now();
                if done || now >= deadline {
                    break;
                }
                wait_writable(&self.inner.sock, deadline - now);
            }
        }
        let mut out = self.out();
        out.close.broken();
        out.shut_at = None;
        out.queue.clear();
        was_dead
    }
}

/// Closing: the two verbs, the peer's close, and the held-back close of a protocol failure.
impl Connection {
    /// Close gracefully: queue a close frame after the data already queued; the connection is
    /// aborted if the peer has not answered within `close_timeout`.
    pub(crate) fn close_gracefully(&self, code: CloseCode, reason: &str) -> Result<(), SendError> {
        let mut out = self.out();
        if out.close.is_dead() {
            return Err(SendError::Closed);
        }
        if !out.close.close(code, reason) {
            return Ok(());
        }
        let frame = close_frame(code, reason);
        let r = self.write_locked(&mut out, Frame::Parts(&frame, &[]), false, true);
        drop(out);
        let at = Instant::now() + self.inner.ctx.config.close_timeout;
        self.inner.ctx.scheduler.close_deadline(at, self.clone());
        r.map(|_| ())
    }

    /// The peer's close frame arrived: answer it (echoing its code) unless we closed first.
    pub(crate) fn peer_closed(&self, code: CloseCode, reason: &str) {
        let mut out = self.out();
        if out.close.peer_closed(code, reason) {
            let frame = close_frame(code, "");
            let _ = self.write_locked(&mut out, Frame::Parts(&frame, &[]), false, true);
        }
    }

    /// Abort now for a local reason: frames the client has not begun to receive are dropped,
    /// a last close frame follows the one on the wire (if any), and the socket is shut once
    /// that has gone or after [`ABORT_GRACE`]; the reader then wakes and reports the
    /// disconnect with the first local reason recorded.
    pub(crate) fn abort(&self, code: CloseCode, reason: &str) {
        let mut out = self.out();
        if !out.close.abort(code, reason) {
            out.queue.clear();
            drop(out);
            self.shut();
            return;
        }
        out.queue.keep_front_frame();
        let _ = out.queue.push_owned(&[&close_frame(code, reason)], true);
        match self.flush_locked(&mut out) {
            Ok(false) => {
                out.shut_at = Some(Instant::now() + ABORT_GRACE);
                self.register_flush(&mut out);
            }
            Ok(true) | Err(_) => {
                out.queue.clear();
                drop(out);
                self.shut();
            }
        }
    }

    /// Shuts the socket down both ways (the reader wakes from its read).
    fn shut(&self) {
        let _ = self.inner.sock.shutdown(std::net::Shutdown::Both);
    }

    /// The socket failed: mark the connection dead and shut the socket (the reader wakes and
    /// reports the disconnect).
    fn broken(&self, out: &mut Out, e: io::Error) -> SendError {
        log::debug!("connection {}: write failed: {e}", self.id());
        out.close.broken();
        out.shut_at = None;
        out.queue.clear();
        self.shut();
        SendError::Closed
    }

    /// Asynchronous mode, protocol failure: record the reason now, but hold the close frame
    /// back until the event reporting the failure has been handled (so replies to the
    /// messages before it go out first). Returns the handle to put in that event (dropping it
    /// sends the close frame) and a receiver that hears when it has been sent.
    pub(crate) fn defer_close(&self, code: CloseCode, reason: &str) -> (Connection, Receiver<()>) {
        let (ack, done) = crossbeam_channel::bounded(1);
        let mut out = self.out();
        out.close.note_reason(code, reason);
        out.deferred = Some(Deferred {
            code,
            reason: reason.to_string(),
            ack,
        });
        drop(out);
        (self.with_ticket(super::Ticket::DeferredClose), done)
    }

    /// Sends the held-back close frame, if it has not gone yet.
    pub(crate) fn run_deferred_close(&self) {
        let deferred = self.out().deferred.take();
        if let Some(d) = deferred {
            let _ = self.close_gracefully(d.code, &d.reason);
            let _ = d.ack.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::net::{SocketAddr, TcpListener, TcpStream};
    use std::sync::{Arc, Mutex};

    use syncws_protocol::{Decoder, Limits, Message, Role};

    use super::*;
    use crate::config::ServerConfig;
    use crate::connection::{ConnInfo, Context, Scheduler};
    use crate::stats::Stats;

    /// Records what the connection asks of the service thread.
    #[derive(Default)]
    struct Recorder {
        flushes: Mutex<usize>,
        deadlines: Mutex<usize>,
    }

    impl Scheduler for Recorder {
        fn flush_when_writable(&self, _conn: Connection) {
            *self.flushes.lock().unwrap() += 1;
        }
        fn close_deadline(&self, _at: Instant, _conn: Connection) {
            *self.deadlines.lock().unwrap() += 1;
        }
    }

    /// A connection over a loopback socket pair, and the client's end.
    fn conn(config: ServerConfig) -> (Connection, TcpStream, Arc<Recorder>) {
        let rec = Arc::new(Recorder::default());
        let ctx = Arc::new(Context::new(
            Arc::new(config),
            Arc::new(Stats::default()),
            rec.clone(),
            Vec::new(),
        ));
        let (c, client) = conn_in(&ctx);
        (c, client, rec)
    }

    /// Another connection of the same run.
    fn conn_in(ctx: &Arc<Context>) -> (Connection, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (server, peer): (TcpStream, SocketAddr) = l.accept().unwrap();
        let info = ConnInfo {
            target: "/".into(),
            headers: Vec::new(),
            protocol: None,
            user: None,
            deflate: None,
        };
        let out = Outbound::plain(ctx.outbound.clone());
        (
            Connection::new(peer, info, Arc::new(server), ctx.clone(), out),
            client,
        )
    }

    /// Fills `c`'s queue with `chunk`-sized binary frames until `stop` says so.
    fn fill(c: &Connection, chunk: usize, stop: impl Fn(&Connection) -> bool) {
        let data = vec![3u8; chunk];
        for _ in 0..100_000 {
            if stop(c) {
                return;
            }
            c.send_binary(&data).unwrap();
        }
        panic!("never filled");
    }

    /// Decodes server frames from `client` until `n` messages (data or close) have arrived.
    fn read_messages(client: &mut TcpStream, n: usize) -> Vec<(u8, Vec<u8>)> {
        let limits = Limits::default()
            .max_message_size(64 << 20)
            .max_frame_size(64 << 20);
        let mut d = Decoder::new(Role::Client, limits);
        let mut out = Vec::new();
        client.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        loop {
            while let Some(m) = d.next().unwrap() {
                out.push(match m {
                    Message::Text(t) => (1, t.as_bytes().to_vec()),
                    Message::Binary(b) => (2, b.to_vec()),
                    Message::Close(f) => (8, f.map(|f| f.code.0.to_be_bytes().to_vec()).unwrap_or_default()),
                    Message::Ping(p) => (9, p.to_vec()),
                    Message::Pong(p) => (10, p.to_vec()),
                });
            }
            if out.len() >= n {
                return out;
            }
            let k = client.read(d.read_buf()).unwrap();
            assert!(k > 0, "server side closed after {} messages", out.len());
            d.commit(k);
        }
    }

    #[test]
    fn a_frame_goes_straight_out_when_nothing_is_queued() {
        let (c, mut client, rec) = conn(ServerConfig::default());
        c.send_text("hello").unwrap();
        assert_eq!(c.queued(), 0);
        assert_eq!(*rec.flushes.lock().unwrap(), 0, "no service work");
        assert_eq!(read_messages(&mut client, 1), [(1, b"hello".to_vec())]);
    }

    #[test]
    fn a_full_socket_queues_in_order_and_the_service_drains_it() {
        let (c, mut client, rec) = conn(ServerConfig::default().max_send_queue(64 << 20));
        let big = vec![7u8; 8 << 20];
        c.send_binary(&big).unwrap();
        assert!(c.queued() > 0, "8 MiB fit an unread socket");
        c.send_text("after").unwrap();
        c.close(CloseCode::NORMAL, "bye").unwrap();
        assert_eq!(
            *rec.flushes.lock().unwrap(),
            1,
            "registered with the service once"
        );
        assert_eq!(*rec.deadlines.lock().unwrap(), 1, "the close has a deadline");
        assert_eq!(c.send_text("late"), Err(SendError::Closed));
        // The client reads while "the service" flushes on writability.
        let reader = std::thread::spawn(move || read_messages(&mut client, 3));
        while !c.flush_ready() {
            wait_writable(c.socket(), Duration::from_millis(100));
        }
        let got = reader.join().unwrap();
        assert_eq!(got[0], (2, big));
        assert_eq!(got[1], (1, b"after".to_vec()));
        assert_eq!(
            got[2],
            (8, 1000u16.to_be_bytes().to_vec()),
            "close after the data"
        );
    }

    #[test]
    fn overflow_drop_message_keeps_the_connection() {
        let cfg = ServerConfig::default()
            .max_send_queue(1 << 20)
            .overflow_policy(OverflowPolicy::DropMessage);
        let (c, _client, _) = conn(cfg);
        let chunk = vec![1u8; 256 << 10];
        let mut full = false;
        for _ in 0..1024 {
            match c.send_binary(&chunk) {
                Ok(()) => {}
                Err(SendError::QueueFull) => {
                    full = true;
                    break;
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert!(full, "256 MiB queued under a 1 MiB limit");
        assert!(c.is_open(), "dropping a message keeps the connection");
        assert!(c.queued() <= 1 << 20);
    }

    #[test]
    fn overflow_close_aborts_with_1008() {
        let cfg = ServerConfig::default().max_send_queue(1 << 20);
        let (c, _client, _) = conn(cfg);
        let chunk = vec![1u8; 256 << 10];
        let r = (0..1024).map(|_| c.send_binary(&chunk)).find(|r| r.is_err());
        assert_eq!(r, Some(Err(SendError::QueueFull)));
        assert!(c.is_dead());
        assert_eq!(c.send_text("x"), Err(SendError::Closed));
        let d = c.disconnect_info("eof");
        assert_eq!(
            (d.code, d.reason.as_str(), d.clean),
            (CloseCode::POLICY_VIOLATION, "send queue overflow", false)
        );
    }

    #[test]
    fn pings_are_bounded_in_size() {
        let (c, mut client, _) = conn(ServerConfig::default());
        assert_eq!(c.ping(&[0; 126]), Err(SendError::TooLong));
        c.ping(&[0; 125]).unwrap();
        assert_eq!(read_messages(&mut client, 1), [(9, vec![0; 125])]);
    }

    #[test]
    fn a_deferred_close_goes_when_its_carrier_is_dropped() {
        let (c, mut client, _) = conn(ServerConfig::default());
        let (carrier, done) = c.defer_close(CloseCode::PROTOCOL_ERROR, "bad frame");
        c.send_text("reply first").unwrap();
        assert!(done.try_recv().is_err(), "not yet");
        let clone = carrier.clone();
        drop(clone);
        assert!(done.try_recv().is_err(), "a clone does not carry it");
        drop(carrier);
        assert!(done.try_recv().is_ok(), "sent on drop");
        let got = read_messages(&mut client, 2);
        assert_eq!(got[0], (1, b"reply first".to_vec()));
        assert_eq!(got[1], (8, 1002u16.to_be_bytes().to_vec()));
        c.run_deferred_close(); // a second run does nothing
    }

    #[test]
    fn a_payload_larger_than_the_queue_is_refused() {
        let (c, _client, _) = conn(ServerConfig::default().max_send_queue(64 << 10));
        assert_eq!(c.send_binary(&vec![0; (64 << 10) + 1]), Err(SendError::TooLong));
        assert!(c.is_open(), "refusing it changes nothing");
        c.send_binary(&vec![0; 64 << 10]).unwrap();
    }

    #[test]
    fn a_shared_frame_is_one_copy_for_every_queue() {
        let cfg = ServerConfig::default().max_send_queue(64 << 20);
        let (a, _ca, rec) = conn(cfg);
        let ctx = a.context().clone();
        let (b, _cb) = conn_in(&ctx);
        let _ = rec;
        // Fill both sockets so that what follows is queued.
        for c in [&a, &b] {
            fill(c, 64 << 10, |c| c.queued() > 0);
        }
        let before = ctx.outbound.used();
        let frame = SharedFrame::new(
            encode_frame(OpCode::Binary, &vec![9u8; 1 << 20], false),
            ctx.outbound.clone(),
        );
        a.send_shared(&frame, 1 << 20).unwrap();
        b.send_shared(&frame, 1 << 20).unwrap();
        drop(frame);
        let added = ctx.outbound.used() - before;
        assert!(
            added < (1 << 20) + 64,
            "two queues, one copy: {added} bytes charged"
        );
        assert!(a.queued() > 1 << 20 && b.queued() > 1 << 20);
    }

    #[test]
    fn the_outbound_budget_sheds_the_connection_that_asks_for_more() {
        let cfg = ServerConfig::default()
            .max_send_queue(4 << 20)
            .outbound_budget(6 << 20);
        let (a, _ca, _) = conn(cfg);
        let ctx = a.context().clone();
        let (b, _cb) = conn_in(&ctx);
        fill(&a, 256 << 10, |c| c.queued() > 3 << 20);
        let chunk = vec![5u8; 256 << 10];
        let r = (0..100).map(|_| b.send_binary(&chunk)).find(|r| r.is_err());
        assert_eq!(r, Some(Err(SendError::QueueFull)));
        let d = b.disconnect_info("eof");
        assert_eq!(
            (d.code, d.reason.as_str()),
            (
                CloseCode::TRY_AGAIN_LATER,
                "server busy: outbound budget exhausted"
            )
        );
        assert!(a.is_open(), "the other connection carries on");
        assert!(
            ctx.outbound.used() <= (6 << 20) + (256 << 10) + 64,
            "{}",
            ctx.outbound.used()
        );
    }

    #[test]
    fn an_abort_drops_whole_frames_and_its_close_frame_arrives() {
        let cfg = ServerConfig::default().max_send_queue(64 << 20);
        let (c, mut client, _) = conn(cfg);
        let big = vec![1u8; 4 << 20];
        c.send_binary(&big).unwrap(); // partly on the wire, the rest queued
        c.send_binary(&big).unwrap(); // queued, not begun
        assert!(c.queued() > 4 << 20);
        c.abort(CloseCode::POLICY_VIOLATION, "send queue overflow");
        assert_eq!(c.send_text("x"), Err(SendError::Closed));
        // The client reads a valid stream: the first frame whole, then the close frame.
        let reader = std::thread::spawn(move || read_messages(&mut client, 2));
        while !c.flush_ready() {
            wait_writable(c.socket(), Duration::from_millis(100));
        }
        let got = reader.join().unwrap();
        assert_eq!(got[0].0, 2);
        assert_eq!(got[0].1.len(), 4 << 20);
        assert_eq!(got[1], (8, 1008u16.to_be_bytes().to_vec()));
        assert_eq!(c.queued(), 0);
    }

    #[test]
    fn pings_from_other_threads_count_heartbeats_do_not() {
        let cfg = ServerConfig::default()
            .max_send_queue(64 << 10)
            .overflow_policy(OverflowPolicy::DropMessage);
        let (c, _client, _) = conn(cfg);
        fill(&c, 16 << 10, |c| c.queued() > 32 << 10);
        let r = (0..1000).map(|_| c.ping(&[0; 125])).find(|r| r.is_err());
        assert_eq!(
            r,
            Some(Err(SendError::QueueFull)),
            "pings fill the queue like data"
        );
        for _ in 0..10 {
            c.send_heartbeat(b"stamp123").unwrap();
        }
    }

    #[test]
    fn a_stalled_queue_is_aborted_after_the_write_timeout() {
        let cfg = ServerConfig::default()
            .max_send_queue(64 << 20)
            .write_timeout(Duration::from_secs(30));
        let (c, _client, _) = conn(cfg);
        fill(&c, 256 << 10, |c| c.queued() > 0);
        let now = Instant::now();
        let next = c.flush_deadline(now).expect("a deadline while bytes wait");
        assert!(next > now + Duration::from_secs(29));
        assert!(c.is_open());
        c.flush_deadline(now + Duration::from_secs(31));
        let d = c.disconnect_info("eof");
        assert_eq!(
            (d.code.0, d.reason.as_str()),
            (1008, "write timeout: client is not reading")
        );
    }
}
