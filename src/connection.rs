//! The [`Connection`] handle and the outbound path shared by every sender.
//!
//! # Who writes, and what is locked
//!
//! Each connection has one `Mutex<Out>`: the queue of bytes not yet on the wire and, over TLS,
//! the rustls session. A sender (any thread) takes the lock, encodes the frame and, if nothing
//! is queued, writes it straight to the socket with a **non-blocking** `sendmsg` (header and
//! payload as two slices, `MSG_DONTWAIT`); whatever does not fit is appended to the queue, and
//! the connection is handed to the server's service thread, which waits for the socket to
//! become writable (`poll`) and drains the queue, again without blocking. The lock is never
//! held across a blocking call, so a client that stopped reading can fill only its own bounded
//! queue: senders and other clients never wait for it. Frames are written whole under the lock,
//! so they never interleave, and a close frame is queued after the data before it.
//!
//! The connection's own thread (the one reading) is the exception that gets back-pressure: when
//! it replies (pongs, or handlers in no-sync mode) into a full queue, it waits — without the
//! lock — for the socket to drain, so it stops reading from a client that does not read.

use std::cell::Cell;
use std::fmt;
use std::io::{self, IoSlice};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags};
use rustix::net::{SendAncillaryBuffer, SendFlags};
use syncws_protocol::close::close_payload;
use syncws_protocol::frame::{FrameHeader, OpCode, MAX_HEADER_LEN};
use syncws_protocol::CloseCode;

use crate::config::OverflowPolicy;
use crate::server::Shared;
use crate::{Error, Result};

/// A connection's id: a random (v4) UUID, stable for the connection's life. Its string form is
/// the usual hyphenated one and parses back with [`FromStr`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(uuid::Uuid);

impl ConnectionId {
    pub(crate) fn new() -> Self {
        Self(uuid::Uuid::new_v4())
    }

    /// The UUID.
    pub fn as_uuid(&self) -> &uuid::Uuid {
        &self.0
    }
}

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl fmt::Debug for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConnectionId({self})")
    }
}

impl FromStr for ConnectionId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        uuid::Uuid::parse_str(s).map(Self)
    }
}

/// What the client asked for in its upgrade request, kept for the connection's life.
#[derive(Debug, Clone)]
pub(crate) struct ConnInfo {
    pub(crate) target: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) protocol: Option<String>,
    pub(crate) user: Option<String>,
}

/// Bytes waiting for the socket, and the write-side state. Guarded by `ConnInner::out`.
pub(crate) struct Out {
    buf: Vec<u8>,
    head: usize,
    /// A close frame has been queued: no data may follow.
    pub(crate) close_sent: Option<(CloseCode, String)>,
    /// Why the server closed or dropped this connection, if it did.
    pub(crate) local_reason: Option<(CloseCode, String)>,
    /// The socket has been shut down or failed.
    pub(crate) dead: bool,
    /// Registered with the service thread for flushing.
    in_service: bool,
    /// In the current thread's cork list (see [`Cork`]).
    in_cork: bool,
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<Box<rustls::ServerConnection>>,
}

impl Out {
    pub(crate) fn new() -> Self {
        Self {
            buf: Vec::new(),
            head: 0,
            close_sent: None,
            local_reason: None,
            dead: false,
            in_service: false,
            in_cork: false,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    pub(crate) fn pending(&self) -> usize {
        self.buf.len() - self.head
    }

    fn push(&mut self, parts: &[&[u8]]) {
        if self.head > 0 && self.head >= self.buf.len() / 2 {
            self.buf.drain(..self.head);
            self.head = 0;
        }
        for p in parts {
            self.buf.extend_from_slice(p);
        }
    }

    /// Writes queued bytes without blocking. `Ok(true)` when the queue is empty.
    pub(crate) fn flush_nb(&mut self, sock: &TcpStream) -> io::Result<bool> {
        while self.head < self.buf.len() {
            match rustix::net::send(
                sock,
                &self.buf[self.head..],
                SendFlags::DONTWAIT | SendFlags::NOSIGNAL,
            ) {
                Ok(n) => self.head += n,
                Err(rustix::io::Errno::AGAIN) => return Ok(false),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        self.buf.clear();
        self.head = 0;
        if self.buf.capacity() > 64 << 10 {
            self.buf = Vec::new();
        }
        Ok(true)
    }
}

thread_local! {
    /// Connections written to inside this thread's current [`Cork`] scope.
    static CORK: std::cell::RefCell<Option<Vec<Connection>>> = const { std::cell::RefCell::new(None) };
}

/// Write batching for one thread: while a `Cork` lives, plain-TCP frames this thread sends are
/// queued, and they go out when it is dropped, one write per connection. The connection thread
/// corks while it handles the messages of one read, the dispatch thread while it handles a
/// batch of waiting events: N replies cost one system call instead of N. Sends from other
/// threads are not delayed: they find bytes queued and hand the connection to the service
/// thread, which writes at once (the socket is writable), keeping the order.
pub(crate) struct Cork(());

/// Frames larger than this are written directly even inside a [`Cork`].
const CORK_MAX_FRAME: usize = 64 << 10;

impl Cork {
    pub(crate) fn new() -> Self {
        CORK.with(|c| {
            let mut c = c.borrow_mut();
            if c.is_none() {
                *c = Some(Vec::new());
            }
        });
        Self(())
    }
}

impl Drop for Cork {
    fn drop(&mut self) {
        let list = CORK.with(|c| c.borrow_mut().take()).unwrap_or_default();
        for conn in list {
            let mut out = lock(&conn.0.out);
            out.in_cork = false;
            if out.dead || out.pending() == 0 {
                continue;
            }
            match out.flush_nb(&conn.0.sock) {
                Ok(true) => {}
                Ok(false) => conn.register_flush(&mut out),
                Err(e) => {
                    conn.broken(&mut out, e);
                }
            }
        }
    }
}

thread_local! {
    /// The connection whose thread this is (address of its `ConnInner`), if any.
    static OWN_CONN: Cell<usize> = const { Cell::new(0) };
}

pub(crate) struct ConnInner {
    pub(crate) id: ConnectionId,
    pub(crate) peer: SocketAddr,
    pub(crate) info: ConnInfo,
    pub(crate) sock: Arc<TcpStream>,
    pub(crate) out: Mutex<Out>,
    pub(crate) shared: Arc<Shared>,
    /// Milliseconds since the server's epoch when bytes last arrived.
    pub(crate) last_seen_ms: AtomicU64,
    /// When the oldest unanswered heartbeat ping went out (ms since epoch, 0 = none).
    pub(crate) ping_out_ms: AtomicU64,
    /// Last heartbeat round-trip time in microseconds (`u64::MAX` = not measured yet).
    pub(crate) rtt_us: AtomicU64,
    /// Asynchronous mode: a protocol failure whose close frame the dispatch thread sends once
    /// it has handled the messages that came before it (so their replies go out first).
    pub(crate) pending_fail: Mutex<Option<PendingFail>>,
}

/// See [`ConnInner::pending_fail`].
pub(crate) struct PendingFail {
    pub(crate) code: CloseCode,
    pub(crate) reason: String,
    pub(crate) ack: crossbeam_channel::Sender<()>,
}

/// A handle to one WebSocket connection: its id, what the client asked for, and methods to
/// send to it and close it. Cheap to clone; usable from any thread, also after the handler
/// that received it has returned. Once the connection is gone, sends return
/// [`Error::Closed`].
#[derive(Clone)]
pub struct Connection(pub(crate) Arc<ConnInner>);

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("id", &self.0.id)
            .field("peer", &self.0.peer)
            .field("path", &self.path())
            .finish()
    }
}

impl PartialEq for Connection {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Connection {}

fn lock(m: &Mutex<Out>) -> MutexGuard<'_, Out> {
    // A panic while holding this lock cannot leave `Out` inconsistent in a way that matters
    // more than losing the connection; keep going.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether a send is the connection thread's own (gets back-pressure) or another thread's
/// (gets the overflow policy).
fn own_thread(inner: &ConnInner) -> bool {
    OWN_CONN.with(|c| c.get() == inner as *const ConnInner as usize)
}

pub(crate) fn set_own_thread(conn: &Connection) {
    OWN_CONN.with(|c| c.set(Arc::as_ptr(&conn.0) as usize));
}

impl Connection {
    pub(crate) fn new(
        id: ConnectionId,
        peer: SocketAddr,
        info: ConnInfo,
        sock: Arc<TcpStream>,
        shared: Arc<Shared>,
        out: Out,
    ) -> Self {
        let now = shared.now_ms();
        Self(Arc::new(ConnInner {
            id,
            peer,
            info,
            sock,
            out: Mutex::new(out),
            shared,
            last_seen_ms: AtomicU64::new(now),
            ping_out_ms: AtomicU64::new(0),
            rtt_us: AtomicU64::new(u64::MAX),
            pending_fail: Mutex::new(None),
        }))
    }

    /// The connection's id.
    pub fn id(&self) -> ConnectionId {
        self.0.id
    }

    /// The client's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.0.peer
    }

    /// The request target of the upgrade (path and query), e.g. `/chat?room=1`.
    pub fn target(&self) -> &str {
        &self.0.info.target
    }

    /// The path of the upgrade request, without the query.
    pub fn path(&self) -> &str {
        self.0.info.target.split('?').next().unwrap_or("")
    }

    /// The query of the upgrade request (after `?`), if any.
    pub fn query(&self) -> Option<&str> {
        self.0.info.target.split_once('?').map(|(_, q)| q)
    }

    /// The upgrade request's header fields, in order (values that are not UTF-8 are dropped).
    pub fn headers(&self) -> &[(String, String)] {
        &self.0.info.headers
    }

    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.0
            .info
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The subprotocol chosen in the handshake, if any.
    pub fn protocol(&self) -> Option<&str> {
        self.0.info.protocol.as_deref()
    }

    /// The authenticated user name, if the connection authenticated.
    pub fn user(&self) -> Option<&str> {
        self.0.info.user.as_deref()
    }

    /// The last heartbeat round-trip time, once a heartbeat pong has come back.
    pub fn rtt(&self) -> Option<Duration> {
        match self.0.rtt_us.load(Ordering::Relaxed) {
            u64::MAX => None,
            us => Some(Duration::from_micros(us)),
        }
    }

    /// Whether the connection is still open for sending.
    pub fn is_open(&self) -> bool {
        let out = lock(&self.0.out);
        !out.dead && out.close_sent.is_none()
    }

    /// Bytes queued for this client and not yet written to its socket.
    pub fn queued_bytes(&self) -> usize {
        lock(&self.0.out).pending()
    }

    /// Sends a text message.
    pub fn send_text(&self, text: &str) -> Result<()> {
        self.send_frame(OpCode::Text, text.as_bytes())
    }

    /// Sends a binary message.
    pub fn send_binary(&self, data: &[u8]) -> Result<()> {
        self.send_frame(OpCode::Binary, data)
    }

    /// Sends a ping with `payload` (at most 125 bytes).
    pub fn ping(&self, payload: &[u8]) -> Result<()> {
        if payload.len() > 125 {
            return Err(Error::ControlTooLong);
        }
        self.send_frame(OpCode::Ping, payload)
    }

    /// Starts the closing handshake: queues a close frame with `code` and `reason` (cut to fit
    /// 123 bytes) after any queued data. The connection ends when the client answers, or after
    /// `close_timeout`. Closing a connection that is already closing does nothing.
    pub fn close(&self, code: CloseCode, reason: &str) -> Result<()> {
        self.start_close(code, reason, false)
    }

    pub(crate) fn send_pong(&self, payload: &[u8]) -> Result<()> {
        self.send_frame(OpCode::Pong, payload)
    }

    /// Sends one frame. See the module docs for the locking design.
    pub(crate) fn send_frame(&self, opcode: OpCode, payload: &[u8]) -> Result<()> {
        let inner = &*self.0;
        let mut hdr = [0u8; MAX_HEADER_LEN];
        let hlen = FrameHeader::new(opcode, payload.len() as u64, None).encode(&mut hdr);
        let total = hlen + payload.len();
        let max = inner.shared.config.max_send_queue;
        let mut out = lock(&inner.out);
        loop {
            if out.dead || out.close_sent.is_some() {
                return Err(Error::Closed);
            }
            let pending = out.pending();
            if pending == 0 || pending + total <= max {
                break;
            }
            let own = own_thread(inner);
            if opcode.is_control() && !own {
                // Pings from other threads (the heartbeat) are small and rare: let them in.
                break;
            }
            if own {
                // Back-pressure for the connection's own thread: wait, without the lock.
                drop(out);
                self.wait_drained(max.saturating_sub(total))?;
                out = lock(&inner.out);
                continue;
            }
            return match inner.shared.config.overflow_policy {
                OverflowPolicy::DropMessage => Err(Error::QueueFull),
                OverflowPolicy::Close => {
                    drop(out);
                    log::warn!("connection {}: send queue overflow, closing", inner.id);
                    self.fail(CloseCode::POLICY_VIOLATION, "send queue overflow");
                    Err(Error::QueueFull)
                }
            };
        }
        inner.shared.stats.frame_out(payload.len());
        self.write_locked(&mut out, &[&hdr[..hlen], payload], true)
    }

    /// Writes `parts` (one whole frame) with the lock held: directly if nothing is queued,
    /// else into the queue.
    fn write_locked(&self, out: &mut Out, parts: &[&[u8]], may_cork: bool) -> Result<()> {
        let inner = &*self.0;
        #[cfg(feature = "tls")]
        if let Some(tls) = out.tls.as_mut() {
            let mut w = tls.writer();
            for p in parts {
                io::Write::write_all(&mut w, p)?;
            }
            return self.tls_output_locked(out);
        }
        let total: usize = parts.iter().map(|p| p.len()).sum();
        let mut corked = may_cork && CORK.with(|c| c.borrow().is_some());
        if corked && total > CORK_MAX_FRAME {
            // A large frame gains nothing from batching and would be copied: write what is
            // batched, then (if that all went out) the frame straight from the caller's buffer.
            if out.pending() > 0 {
                if let Err(e) = out.flush_nb(&inner.sock) {
                    return Err(self.broken(out, e));
                }
            }
            corked = out.pending() > 0;
        }
        if corked {
            // Batched: the cork's end writes everything with one call.
            out.push(parts);
            if !out.in_cork {
                out.in_cork = true;
                CORK.with(|c| {
                    if let Some(list) = c.borrow_mut().as_mut() {
                        list.push(self.clone());
                    }
                });
            }
            return Ok(());
        }
        if out.pending() == 0 {
            let mut written = 0;
            loop {
                let (rest, n_rest) = skip_written(parts, written);
                let r = if n_rest == 1 {
                    rustix::net::send(&inner.sock, rest[0], SendFlags::DONTWAIT | SendFlags::NOSIGNAL)
                } else {
                    let iov = [IoSlice::new(rest[0]), IoSlice::new(rest[1])];
                    rustix::net::sendmsg(
                        &inner.sock,
                        &iov,
                        &mut SendAncillaryBuffer::default(),
                        SendFlags::DONTWAIT | SendFlags::NOSIGNAL,
                    )
                };
                match r {
                    Ok(n) => {
                        written += n;
                        if written == total {
                            return Ok(());
                        }
                    }
                    Err(rustix::io::Errno::INTR) => continue,
                    Err(rustix::io::Errno::AGAIN) => break,
                    Err(e) => return Err(self.broken(out, e.into())),
                }
            }
            let (rest, n_rest) = skip_written(parts, written);
            out.push(&rest[..n_rest]);
        } else {
            out.push(parts);
        }
        self.register_flush(out);
        Ok(())
    }

    /// Moves the TLS session's pending records into the queue and writes what the socket takes.
    #[cfg(feature = "tls")]
    pub(crate) fn tls_output_locked(&self, out: &mut Out) -> Result<()> {
        let pending = out.pending();
        let Some(tls) = out.tls.as_mut() else {
            return Ok(());
        };
        if pending == 0 {
            // Nothing queued: let rustls write its records straight to the socket (no copy
            // into our queue); only what the socket does not take is queued below.
            while tls.wants_write() {
                match tls.write_tls(&mut NonBlocking(&self.0.sock)) {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(self.broken(out, e)),
                }
            }
            if !tls.wants_write() {
                return Ok(());
            }
        }
        let Some(tls) = out.tls.as_mut() else {
            return Ok(());
        };
        let mut cipher = std::mem::take(&mut out.buf);
        if out.head > 0 && out.head >= cipher.len() / 2 {
            cipher.drain(..out.head);
            out.head = 0;
        }
        let mut r = Ok(());
        while tls.wants_write() {
            if let Err(e) = tls.write_tls(&mut cipher) {
                r = Err(e);
                break;
            }
        }
        out.buf = cipher;
        r?;
        match out.flush_nb(&self.0.sock) {
            Ok(true) => Ok(()),
            Ok(false) => {
                self.register_flush(out);
                Ok(())
            }
            Err(e) => Err(self.broken(out, e)),
        }
    }

    fn register_flush(&self, out: &mut Out) {
        if !out.in_service {
            out.in_service = true;
            self.0.shared.service.flush(self.clone());
        }
    }

    /// Called by the service thread when the socket is writable. Returns `true` when the
    /// connection no longer needs flushing.
    pub(crate) fn service_flush(&self) -> bool {
        let mut out = lock(&self.0.out);
        if out.dead {
            out.in_service = false;
            return true;
        }
        match out.flush_nb(&self.0.sock) {
            Ok(false) => false,
            Ok(true) => {
                out.in_service = false;
                true
            }
            Err(e) => {
                out.in_service = false;
                self.broken(&mut out, e);
                true
            }
        }
    }

    /// Waits (without the lock) until at most `target` bytes are queued, flushing as the socket
    /// drains. Gives up after `write_timeout` and drops the connection.
    pub(crate) fn wait_drained(&self, target: usize) -> Result<()> {
        let deadline = Instant::now() + self.0.shared.config.write_timeout;
        loop {
            {
                let mut out = lock(&self.0.out);
                if out.dead {
                    return Err(Error::Closed);
                }
                match out.flush_nb(&self.0.sock) {
                    Ok(_) if out.pending() <= target => return Ok(()),
                    Ok(_) => {}
                    Err(e) => return Err(self.broken(&mut out, e)),
                }
            }
            let now = Instant::now();
            if now >= deadline {
                self.kill(
                    CloseCode::POLICY_VIOLATION,
                    "write timeout: client is not reading",
                );
                return Err(Error::Closed);
            }
            wait_writable(&self.0.sock, deadline - now);
        }
    }

    /// Queues a close frame (after the data already queued).
    pub(crate) fn start_close(&self, code: CloseCode, reason: &str, is_reply: bool) -> Result<()> {
        let mut out = lock(&self.0.out);
        if out.dead {
            return Err(Error::Closed);
        }
        if out.close_sent.is_some() {
            return Ok(());
        }
        out.close_sent = Some((code, reason.to_string()));
        if !is_reply && out.local_reason.is_none() {
            out.local_reason = Some((code, reason.to_string()));
        }
        let mut payload = Vec::with_capacity(125);
        if code != CloseCode::NO_STATUS {
            close_payload(code, reason, &mut payload);
        }
        let mut hdr = [0u8; MAX_HEADER_LEN];
        let hlen = FrameHeader::new(OpCode::Close, payload.len() as u64, None).encode(&mut hdr);
        let r = self.write_locked(&mut out, &[&hdr[..hlen], &payload], false);
        drop(out);
        if !is_reply {
            self.0
                .shared
                .service
                .deadline(Instant::now() + self.0.shared.config.close_timeout, self.clone());
        }
        r
    }

    /// Fails the connection for a local reason: a best-effort close frame, then the socket is
    /// shut down at once (the peer is not expected to cooperate).
    pub(crate) fn fail(&self, code: CloseCode, reason: &str) {
        {
            let mut out = lock(&self.0.out);
            if out.local_reason.is_none() {
                out.local_reason = Some((code, reason.to_string()));
            }
            if out.close_sent.is_none() && !out.dead {
                // Drop what the client did not read; try to get the close frame out.
                out.buf.clear();
                out.head = 0;
                out.close_sent = Some((code, reason.to_string()));
                let mut payload = Vec::with_capacity(125);
                close_payload(code, reason, &mut payload);
                let mut hdr = [0u8; MAX_HEADER_LEN];
                let hlen = FrameHeader::new(OpCode::Close, payload.len() as u64, None).encode(&mut hdr);
                let _ = self.write_locked(&mut out, &[&hdr[..hlen], &payload[..]], false);
            }
        }
        self.kill(code, reason);
    }

    /// Shuts the socket down now; the connection thread wakes from its read and reports the
    /// disconnect with the first local reason recorded.
    pub(crate) fn kill(&self, code: CloseCode, reason: &str) {
        let mut out = lock(&self.0.out);
        if out.local_reason.is_none() {
            out.local_reason = Some((code, reason.to_string()));
        }
        out.dead = true;
        out.buf = Vec::new();
        out.head = 0;
        drop(out);
        let _ = self.0.sock.shutdown(Shutdown::Both);
    }

    /// Sends the close frame of a protocol failure queued behind earlier events, if any.
    pub(crate) fn run_pending_fail(&self) {
        let pf = self
            .0
            .pending_fail
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(pf) = pf {
            let _ = self.start_close(pf.code, &pf.reason, false);
            let _ = pf.ack.send(());
        }
    }

    /// The socket failed: mark the connection dead and shut the socket (the connection thread
    /// wakes and reports the disconnect). Returns the error for the caller.
    fn broken(&self, out: &mut Out, e: io::Error) -> Error {
        out.dead = true;
        let _ = self.0.sock.shutdown(Shutdown::Both);
        Error::Io(e)
    }

    pub(crate) fn lock_out(&self) -> MutexGuard<'_, Out> {
        lock(&self.0.out)
    }
}

/// A socket writer that never blocks: `WouldBlock` instead of waiting.
#[cfg(feature = "tls")]
struct NonBlocking<'a>(&'a TcpStream);

#[cfg(feature = "tls")]
impl io::Write for NonBlocking<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        loop {
            match rustix::net::send(self.0, buf, SendFlags::DONTWAIT | SendFlags::NOSIGNAL) {
                Err(rustix::io::Errno::INTR) => continue,
                r => return r.map_err(io::Error::from),
            }
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        loop {
            match rustix::net::sendmsg(
                self.0,
                bufs,
                &mut SendAncillaryBuffer::default(),
                SendFlags::DONTWAIT | SendFlags::NOSIGNAL,
            ) {
                Err(rustix::io::Errno::INTR) => continue,
                r => return r.map_err(io::Error::from),
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The parts of `parts` (at most two: header and payload) not yet covered by the first
/// `written` bytes, without allocating.
fn skip_written<'a>(parts: &[&'a [u8]], mut written: usize) -> ([&'a [u8]; 2], usize) {
    debug_assert!(parts.len() <= 2);
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
    if n == 0 {
        n = 1;
    }
    (v, n)
}

/// Waits until `sock` is writable or `timeout` passes.
pub(crate) fn wait_writable(sock: &TcpStream, timeout: Duration) {
    let mut fds = [PollFd::new(sock, PollFlags::OUT)];
    let ts = crate::service::timespec(timeout.min(Duration::from_secs(1)));
    let _ = poll(&mut fds, Some(&ts));
}
