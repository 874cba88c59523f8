//! The outbound path: the connection's lock (queue, close state, TLS session) and everything
//! done under it — sending a frame, flushing, the two close verbs. The lock is private to
//! this file; the rest of the crate calls the methods. See the room's docs for the design.

use std::cell::Cell;
use std::io;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use syncws_protocol::close::close_payload;
use syncws_protocol::frame::{FrameHeader, OpCode, MAX_HEADER_LEN};
use syncws_protocol::CloseCode;

use super::close::{CloseState, Disconnect};
use super::cork::{Cork, CORK_MAX_FRAME};
use super::queue::Queue;
use super::Connection;
use crate::config::OverflowPolicy;
use crate::error::SendError;
use crate::platform::{send_nb, wait_writable, Sent};

thread_local! {
    /// The connection whose thread this is (address of its shared state), if any.
    static OWN_CONN: Cell<usize> = const { Cell::new(0) };
}

/// Marks the current thread as `conn`'s own (reader) thread: its sends get back-pressure
/// instead of the overflow policy.
pub(crate) fn set_own_thread(conn: &Connection) {
    OWN_CONN.with(|c| c.set(std::sync::Arc::as_ptr(&conn.inner) as usize));
}

fn own_thread(conn: &Connection) -> bool {
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
    deferred: Option<Deferred>,
    #[cfg(feature = "tls")]
    tls: Option<Box<rustls::ServerConnection>>,
}

/// The connection's outbound state behind its lock.
pub(crate) struct Outbound(Mutex<Out>);

impl Outbound {
    /// Plain TCP.
    pub(crate) fn plain() -> Self {
        Self(Mutex::new(Out {
            queue: Queue::default(),
            close: CloseState::default(),
            in_service: false,
            in_cork: false,
            deferred: None,
            #[cfg(feature = "tls")]
            tls: None,
        }))
    }

    /// Over an established TLS session.
    #[cfg(feature = "tls")]
    pub(crate) fn tls(session: Box<rustls::ServerConnection>) -> Self {
        let o = Self::plain();
        o.lock().tls = Some(session);
        o
    }

    fn lock(&self) -> MutexGuard<'_, Out> {
        // A panic while holding this lock cannot leave `Out` inconsistent in a way that
        // matters more than losing the connection; keep going.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A close frame (header and payload) for `code` and `reason`; 1005 gives an empty payload.
fn close_frame(code: CloseCode, reason: &str) -> Vec<u8> {
    let mut payload = Vec::with_capacity(125);
    if code != CloseCode::NO_STATUS {
        close_payload(code, reason, &mut payload);
    }
    let mut hdr = [0u8; MAX_HEADER_LEN];
    let hlen = FrameHeader::new(OpCode::Close, payload.len() as u64, None).encode(&mut hdr);
    let mut frame = hdr[..hlen].to_vec();
    frame.extend_from_slice(&payload);
    frame
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
    /// Sends one frame. See the room's docs for the locking design.
    pub(crate) fn send_frame(&self, opcode: OpCode, payload: &[u8]) -> Result<(), SendError> {
        let mut hdr = [0u8; MAX_HEADER_LEN];
        let hlen = FrameHeader::new(opcode, payload.len() as u64, None).encode(&mut hdr);
        let total = hlen + payload.len();
        let cfg = &self.inner.ctx.config;
        let max = cfg.max_send_queue;
        let mut out = self.out();
        loop {
            if !out.close.is_open() {
                return Err(SendError::Closed);
            }
            let pending = out.queue.len();
            if pending == 0 || pending + total <= max {
                break;
            }
            let own = own_thread(self);
            if opcode.is_control() && !own {
                // Pings from other threads (the heartbeat) are small and rare: let them in.
                break;
            }
            drop(out);
            if own {
                // Back-pressure for the connection's own thread: wait, without the lock.
                self.wait_drained(max.saturating_sub(total))?;
                out = self.out();
                continue;
            }
            if cfg.overflow_policy == OverflowPolicy::Close {
                log::warn!("connection {}: send queue overflow, closing", self.id());
                self.abort(CloseCode::POLICY_VIOLATION, "send queue overflow");
            }
            return Err(SendError::QueueFull);
        }
        self.inner.ctx.stats.frame_out(payload.len());
        self.write_locked(&mut out, &[&hdr[..hlen], payload], true)
    }

    /// Writes `parts` (one whole frame) with the lock held: directly if nothing is queued,
    /// else into the queue.
    fn write_locked(&self, out: &mut Out, parts: &[&[u8]], may_cork: bool) -> Result<(), SendError> {
        #[cfg(feature = "tls")]
        if let Some(tls) = out.tls.as_mut() {
            let mut w = tls.writer();
            if let Err(e) = parts.iter().try_for_each(|p| io::Write::write_all(&mut w, p)) {
                return Err(self.broken(out, e));
            }
            return self.tls_output_locked(out);
        }
        let total: usize = parts.iter().map(|p| p.len()).sum();
        if may_cork && Cork::active() && !self.corked_or_flushed(out, total)? {
            out.queue.push(parts);
            if !out.in_cork {
                out.in_cork = true;
                Cork::add(self.clone());
            }
            return Ok(());
        }
        if out.queue.is_empty() {
            return self.write_direct(out, parts, total);
        }
        out.queue.push(parts);
        self.register_flush(out);
        Ok(())
    }

    /// Inside a cork: `Ok(false)` to batch the frame; `Ok(true)` for a large frame that gains
    /// nothing from batching (what was batched is written first, so the frame can then go
    /// straight from the caller's buffer if the socket took it all).
    fn corked_or_flushed(&self, out: &mut Out, total: usize) -> Result<bool, SendError> {
        if total <= CORK_MAX_FRAME {
            return Ok(false);
        }
        if !out.queue.is_empty() {
            if let Err(e) = out.queue.flush(&*self.inner.sock) {
                return Err(self.broken(out, e));
            }
        }
        Ok(out.queue.is_empty())
    }

    /// Nothing is queued: write what the socket takes now, queue the rest.
    fn write_direct(&self, out: &mut Out, parts: &[&[u8]], total: usize) -> Result<(), SendError> {
        let mut written = 0;
        loop {
            let (rest, n) = skip_written(parts, written);
            match send_nb(&*self.inner.sock, &rest[..n]) {
                Ok(Sent::Bytes(k)) => {
                    written += k;
                    if written == total {
                        return Ok(());
                    }
                }
                Ok(Sent::WouldBlock) => break,
                Err(e) => return Err(self.broken(out, e)),
            }
        }
        let (rest, n) = skip_written(parts, written);
        out.queue.push(&rest[..n]);
        self.register_flush(out);
        Ok(())
    }

    /// Moves the TLS session's pending records into the queue and writes what the socket takes.
    #[cfg(feature = "tls")]
    fn tls_output_locked(&self, out: &mut Out) -> Result<(), SendError> {
        let Some(tls) = out.tls.as_mut() else {
            return Ok(());
        };
        if out.queue.is_empty() {
            // Nothing queued: rustls writes its records straight to the socket (no copy into
            // our queue); only what the socket does not take is queued below.
            while tls.wants_write() {
                match tls.write_tls(&mut crate::platform::NonBlocking(&self.inner.sock)) {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(self.broken(out, e)),
                }
            }
            if !tls.wants_write() {
                return Ok(());
            }
        }
        let r = out.queue.append_with(|buf| {
            while tls.wants_write() {
                tls.write_tls(buf)?;
            }
            Ok::<(), io::Error>(())
        });
        if let Err(e) = r {
            return Err(self.broken(out, e));
        }
        match out.queue.flush(&*self.inner.sock) {
            Ok(true) => Ok(()),
            Ok(false) => {
                self.register_flush(out);
                Ok(())
            }
            Err(e) => Err(self.broken(out, e)),
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
        if tls.wants_write() {
            let _ = self.tls_output_locked(&mut out);
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
        if out.close.is_dead() || out.queue.is_empty() {
            return;
        }
        match out.queue.flush(&*self.inner.sock) {
            Ok(true) => {}
            Ok(false) => self.register_flush(&mut out),
            Err(e) => {
                self.broken(&mut out, e);
            }
        }
    }

    /// Called by the service thread when the socket is writable. Returns `true` when the
    /// connection no longer needs flushing.
    pub(crate) fn flush_ready(&self) -> bool {
        let mut out = self.out();
        let done = if out.close.is_dead() {
            true
        } else {
            match out.queue.flush(&*self.inner.sock) {
                Ok(done) => done,
                Err(e) => {
                    self.broken(&mut out, e);
                    true
                }
            }
        };
        if done {
            out.in_service = false;
        }
        done
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
                match out.queue.flush(&*self.inner.sock) {
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
    /// client for at most `timeout`, then marks the connection dead. Returns whether it was
    /// dead already.
    pub(crate) fn drain_and_end(&self, timeout: Duration) -> bool {
        let was_dead = self.is_dead();
        let deadline = Instant::now() + timeout;
        if was_dead {
            return true;
        }
        loop {
            let pending = {
                let mut out = self.out();
                match out.queue.flush(&*self.inner.sock) {
                    Ok(false) => out.queue.len(),
                    Ok(true) | Err(_) => 0,
                }
            };
            let now = Instant::now();
            if pending == 0 || now >= deadline {
                break;
            }
            wait_writable(&self.inner.sock, deadline - now);
        }
        self.out().close.broken();
        false
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
        let r = self.write_locked(&mut out, &[&close_frame(code, reason)], false);
        drop(out);
        let at = Instant::now() + self.inner.ctx.config.close_timeout;
        self.inner.ctx.scheduler.close_deadline(at, self.clone());
        r
    }

    /// The peer's close frame arrived: answer it (echoing its code) unless we closed first.
    pub(crate) fn peer_closed(&self, code: CloseCode, reason: &str) {
        let mut out = self.out();
        if out.close.peer_closed(code, reason) {
            let _ = self.write_locked(&mut out, &[&close_frame(code, "")], false);
        }
    }

    /// Abort now for a local reason: what the client has not read is dropped, a last close
    /// frame is tried without waiting, and the socket is shut down; the reader wakes and
    /// reports the disconnect with the first local reason recorded.
    pub(crate) fn abort(&self, code: CloseCode, reason: &str) {
        let mut out = self.out();
        if out.close.abort(code, reason) {
            out.queue.clear();
            self.try_last_frame(&mut out, &close_frame(code, reason));
        }
        out.queue.clear();
        drop(out);
        let _ = self.inner.sock.shutdown(std::net::Shutdown::Both);
    }

    /// Writes `frame` if the socket takes it now; what it does not take is lost.
    fn try_last_frame(&self, out: &mut Out, frame: &[u8]) {
        #[cfg(feature = "tls")]
        if let Some(tls) = out.tls.as_mut() {
            let _ = io::Write::write_all(&mut tls.writer(), frame);
            let mut sock = crate::platform::NonBlocking(&self.inner.sock);
            while tls.wants_write() && tls.write_tls(&mut sock).is_ok() {}
            return;
        }
        let _ = out;
        let _ = send_nb(&*self.inner.sock, &[frame]);
    }

    /// The socket failed: mark the connection dead and shut the socket (the reader wakes and
    /// reports the disconnect).
    fn broken(&self, out: &mut Out, e: io::Error) -> SendError {
        log::debug!("connection {}: write failed: {e}", self.id());
        out.close.broken();
        let _ = self.inner.sock.shutdown(std::net::Shutdown::Both);
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
        let mut carrier = self.clone();
        carrier.fires_deferred_close = true;
        (carrier, done)
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
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (server, peer) = l.accept().unwrap();
        let rec = Arc::new(Recorder::default());
        let addrs: Vec<SocketAddr> = vec![l.local_addr().unwrap()];
        let ctx = Context::new(Arc::new(config), Arc::new(Stats::default()), rec.clone(), addrs);
        let info = ConnInfo {
            target: "/".into(),
            headers: Vec::new(),
            protocol: None,
            user: None,
        };
        let c = Connection::new(peer, info, Arc::new(server), Arc::new(ctx), Outbound::plain());
        (c, client, rec)
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
}
