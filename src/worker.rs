//! The connection thread: handshake, then the frame loop. One per client; it owns the read
//! side of the socket and blocks in `read()`.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use syncws_protocol::handshake::{self, parse_request, validate_upgrade};
use syncws_protocol::{CloseCode, Decoder, HandshakeError, Message, Role};

use crate::connection::{set_own_thread, ConnInfo, Connection, ConnectionId, Cork, Out, PendingFail};
use crate::handler::{panic_message, Disconnect, Event};
use crate::http::{Accept, HttpResponse, Request};
use crate::server::{Shared, Sink};
use crate::Error;

/// The byte stream during the handshake: plain TCP, or TLS with the session still local to
/// this thread.
pub(crate) enum HsStream {
    Plain(Arc<TcpStream>),
    #[cfg(feature = "tls")]
    Tls(Arc<TcpStream>, Box<rustls::ServerConnection>),
}

impl HsStream {
    fn sock(&self) -> &TcpStream {
        match self {
            Self::Plain(s) => s,
            #[cfg(feature = "tls")]
            Self::Tls(s, _) => s,
        }
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => (&**s).read(buf),
            #[cfg(feature = "tls")]
            Self::Tls(s, c) => rustls::Stream::new(&mut **c, &mut &**s).read(buf),
        }
    }

    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Self::Plain(s) => (&**s).write_all(data),
            #[cfg(feature = "tls")]
            Self::Tls(s, c) => {
                let mut sock: &TcpStream = s;
                let mut st = rustls::Stream::new(&mut **c, &mut sock);
                st.write_all(data)?;
                st.flush()
            }
        }
    }
}

/// Sets the socket's read timeout to what is left until `deadline`.
fn until(sock: &TcpStream, deadline: Instant) -> io::Result<()> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(io::ErrorKind::TimedOut.into());
    }
    sock.set_read_timeout(Some(left))
}

pub(crate) fn run(shared: Arc<Shared>, key: u64, sock: Arc<TcpStream>, peer: SocketAddr) {
    if shared.config.nodelay {
        let _ = sock.set_nodelay(true);
    }
    let deadline = Instant::now() + shared.config.handshake_timeout;
    #[cfg(feature = "tls")]
    let stream = match &shared.tls {
        Some(acc) => match acc.handshake(&sock, deadline) {
            Ok(c) => HsStream::Tls(sock, c),
            Err(e) => {
                log::info!("{peer}: TLS handshake failed: {e}");
                return;
            }
        },
        None => HsStream::Plain(sock),
    };
    #[cfg(not(feature = "tls"))]
    let stream = HsStream::Plain(sock);
    let Some((conn, decoder, read_half)) = handshake_phase(&shared, stream, peer, deadline, key) else {
        return;
    };
    frame_phase(&shared, conn, decoder, read_half);
}

/// Reads and answers the HTTP request. Returns the registered connection and a decoder
/// holding any bytes that followed the request head.
fn handshake_phase(
    shared: &Arc<Shared>,
    mut stream: HsStream,
    peer: SocketAddr,
    deadline: Instant,
    key: u64,
) -> Option<(Connection, Decoder, Arc<TcpStream>)> {
    let cfg = &shared.config;
    let mut buf = Vec::with_capacity(1024);
    let (req, used) = loop {
        match parse_request(&buf, cfg.max_headers) {
            Ok(Some(r)) => break r,
            Ok(None) => {}
            Err(e) => return refuse(shared, &mut stream, peer, &e),
        }
        if buf.len() >= cfg.max_handshake_bytes {
            return refuse(shared, &mut stream, peer, &HandshakeError::HeaderTooLarge);
        }
        until(stream.sock(), deadline).ok()?;
        // Read straight into the heap buffer: stack pages touched here would stay resident
        // for the connection's whole life.
        let old = buf.len();
        let room = (cfg.max_handshake_bytes - old).min(2048);
        buf.resize(old + room, 0);
        let r = stream.read(&mut buf[old..]);
        buf.truncate(old + *r.as_ref().unwrap_or(&0));
        match r {
            Ok(0) => return None,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                log::debug!("{peer}: handshake read: {e}");
                return None;
            }
        }
    };
    let secure = !matches!(stream, HsStream::Plain(_));
    let mut request = Request {
        method: req.method.clone(),
        target: req.target.clone(),
        headers: req
            .headers
            .iter()
            .filter_map(|(n, v)| std::str::from_utf8(v).ok().map(|v| (n.clone(), v.to_string())))
            .collect(),
        peer,
        protocols: Vec::new(),
        secure,
    };
    let auth = crate::auth::Auth {
        cfg: &cfg.auth,
        hook: shared.hooks.auth.as_deref(),
        sessions: &shared.sessions,
    };
    if !req.wants_websocket() {
        // Plain HTTP: the session endpoint first, then the application's hook.
        let own = if cfg.auth.enabled {
            auth.http(&request)
        } else {
            None
        };
        let resp = match (own, &shared.hooks.http) {
            (Some(r), _) => r,
            (None, Some(h)) => match catch_unwind(AssertUnwindSafe(|| h(&request))) {
                Ok(r) => r,
                Err(p) => {
                    log::error!("{peer}: HTTP hook panicked: {}", panic_message(&*p));
                    HttpResponse::text(500, "internal error\n")
                }
            },
            (None, None) => {
                return refuse(shared, &mut stream, peer, &HandshakeError::NotWebSocketUpgrade);
            }
        };
        let bytes = if req.method == "HEAD" {
            let mut b = resp.to_bytes();
            b.truncate(b.len() - resp.body.len());
            b
        } else {
            resp.to_bytes()
        };
        let _ = stream.sock().set_write_timeout(Some(cfg.write_timeout));
        let _ = stream.write_all(&bytes);
        linger_close(stream.sock());
        return None;
    }
    let up = match validate_upgrade(&req) {
        Ok(u) => u,
        Err(e) => return refuse(shared, &mut stream, peer, &e),
    };
    request.protocols = up.protocols.clone();
    let mut user = None;
    if cfg.auth.enabled {
        match auth.upgrade(&request) {
            crate::auth::Outcome::User { user: u, target } => {
                // Hooks and the connection see the path without the credentials.
                request.target = target;
                user = Some(u);
            }
            crate::auth::Outcome::Anonymous => {}
            crate::auth::Outcome::Refuse(resp) => {
                log::info!("{peer}: upgrade refused by authentication ({})", resp.status);
                shared.stats.rejected();
                let _ = stream.write_all(&resp.to_bytes());
                linger_close(stream.sock());
                return None;
            }
        }
    }
    let accept = match &shared.hooks.handshake {
        Some(h) => match catch_unwind(AssertUnwindSafe(|| h(&request))) {
            Ok(Ok(a)) => a,
            Ok(Err(resp)) => {
                log::info!("{peer}: upgrade refused by the handshake hook ({})", resp.status);
                shared.stats.rejected();
                let _ = stream.write_all(&resp.to_bytes());
                linger_close(stream.sock());
                return None;
            }
            Err(p) => {
                log::error!("{peer}: handshake hook panicked: {}", panic_message(&*p));
                let _ = stream.write_all(&HttpResponse::text(500, "internal error\n").to_bytes());
                linger_close(stream.sock());
                return None;
            }
        },
        None => Accept::default(),
    };
    // A subprotocol must be one the client offered.
    let protocol = accept.protocol.filter(|p| up.protocols.iter().any(|o| o == p));
    let response = handshake::response_101(&up.key, protocol.as_deref(), &accept.headers);
    let write_half = match &stream {
        HsStream::Plain(s) => s.clone(),
        #[cfg(feature = "tls")]
        HsStream::Tls(s, _) => s.clone(),
    };
    // Once the 101 is out the client is upgraded: a stop must not shut its socket down as a
    // pending handshake, but close it with a frame (through the registry, or below).
    shared.handshake_done(key);
    let _ = stream.sock().set_write_timeout(Some(cfg.write_timeout));
    if let Err(e) = stream.write_all(&response) {
        log::debug!("{peer}: writing 101: {e}");
        return None;
    }
    let _ = stream.sock().set_write_timeout(None);
    if stream.sock().set_read_timeout(cfg.idle_timeout).is_err() {
        return None;
    }
    let info = ConnInfo {
        target: request.target,
        headers: request.headers,
        protocol,
        user,
    };
    #[allow(unused_mut)]
    let mut out = Out::new();
    let read_half = match stream {
        HsStream::Plain(s) => s,
        #[cfg(feature = "tls")]
        HsStream::Tls(s, c) => {
            out.tls = Some(c);
            s
        }
    };
    let conn = Connection::new(ConnectionId::new(), peer, info, write_half, shared.clone(), out);
    let mut decoder = Decoder::new(Role::Server, cfg.limits);
    decoder.feed(&buf[used..]);
    if !shared.register(&conn) {
        // The server began stopping after the 101 went out: the client is upgraded, so it gets
        // the close frame that stop() sends every other client, not a bare shutdown.
        conn.fail(CloseCode::GOING_AWAY, "server shutting down");
        let _ = read_half.shutdown(Shutdown::Both);
        return None;
    }
    log::debug!("{peer}: connection {} open at {}", conn.id(), conn.target());
    Some((conn, decoder, read_half))
}

fn refuse<T>(shared: &Shared, stream: &mut HsStream, peer: SocketAddr, e: &HandshakeError) -> Option<T> {
    log::info!("{peer}: upgrade refused: {e} ({})", e.http_status());
    shared.stats.rejected();
    let _ = stream.sock().set_write_timeout(Some(Duration::from_secs(5)));
    let _ = stream.write_all(&handshake::error_response(e));
    linger_close(stream.sock());
    None
}

/// Half-closes, then reads briefly so the peer gets our last bytes before the socket closes
/// (closing with unread input would reset the connection and could destroy the response).
fn linger_close(sock: &TcpStream) {
    let _ = sock.shutdown(Shutdown::Write);
    let _ = sock.set_read_timeout(Some(Duration::from_millis(200)));
    let mut b = [0u8; 512];
    let end = Instant::now() + Duration::from_millis(500);
    while Instant::now() < end {
        match (&*sock).read(&mut b) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
}

/// Delivers an event from a connection thread.
struct Emitter {
    sink: Option<Sink>,
}

impl Emitter {
    fn send(&self, shared: &Shared, ev: Event) {
        if let Some(Sink::Channel(tx)) = &self.sink {
            let mut ev = ev;
            loop {
                match tx.send_timeout(ev, Duration::from_millis(100)) {
                    Ok(()) => return,
                    Err(crossbeam_channel::SendTimeoutError::Timeout(e)) => {
                        if shared.stopping.load(Ordering::Acquire) {
                            return;
                        }
                        ev = e;
                    }
                    Err(crossbeam_channel::SendTimeoutError::Disconnected(_)) => return,
                }
            }
        }
    }

    /// Reports an error on `conn` in either mode.
    fn error(&self, shared: &Shared, conn: &Connection, err: Error) {
        match &self.sink {
            Some(Sink::Inline(h)) => {
                let _ = catch_unwind(AssertUnwindSafe(|| h.on_error(conn, err)));
            }
            Some(Sink::Channel(_)) => self.send(shared, Event::Error(conn.clone(), err)),
            None => {}
        }
    }

    /// Runs an inline handler callback, catching a panic (close 1011, report it).
    fn inline(&self, conn: &Connection, f: impl FnOnce(&dyn crate::InlineHandler)) -> bool {
        if let Some(Sink::Inline(h)) = &self.sink {
            if let Err(p) = catch_unwind(AssertUnwindSafe(|| f(&**h))) {
                let msg = panic_message(&*p);
                log::error!("connection {}: handler panicked: {msg}", conn.id());
                conn.0.shared.stats.handler_panic();
                let _ = conn.close(CloseCode::INTERNAL_ERROR, "internal error");
                let _ = catch_unwind(AssertUnwindSafe(|| h.on_error(conn, Error::HandlerPanic(msg))));
            }
            true
        } else {
            false
        }
    }
}

/// How the frame loop ended.
enum End {
    /// The peer's close frame arrived (handshake complete from our side).
    PeerClose(CloseCode, String),
    /// The socket ended (EOF or error) — abnormal unless we had already closed.
    Dropped(String),
    /// A protocol error; we sent a close frame.
    Failed,
}

fn frame_phase(shared: &Arc<Shared>, conn: Connection, mut decoder: Decoder, sock: Arc<TcpStream>) {
    set_own_thread(&conn);
    let em = Emitter { sink: shared.sink() };
    if !em.inline(&conn, |h| h.on_connect(&conn)) {
        em.send(shared, Event::Connect(conn.clone()));
    }
    #[cfg(feature = "tls")]
    let mut tls_in = crate::tls::TlsReader::new();
    #[cfg(feature = "tls")]
    let is_tls = conn.lock_out().tls.is_some();
    let end = 'outer: loop {
        // Everything already buffered first; replies go out together at the end (one write).
        let cork = Cork::new();
        loop {
            match decoder.next() {
                Ok(None) => break,
                Ok(Some(msg)) => match msg {
                    Message::Text(t) => {
                        shared.stats.message_in(t.len());
                        if !em.inline(&conn, |h| h.on_text(&conn, t)) {
                            em.send(shared, Event::Text(conn.clone(), t.to_owned()));
                        }
                    }
                    Message::Binary(b) => {
                        shared.stats.message_in(b.len());
                        if !em.inline(&conn, |h| h.on_binary(&conn, b)) {
                            em.send(shared, Event::Binary(conn.clone(), b.to_vec()));
                        }
                    }
                    Message::Ping(p) => {
                        let _ = conn.send_pong(p);
                    }
                    Message::Pong(p) => {
                        if let Ok(stamp) = <[u8; 8]>::try_from(p) {
                            let sent = u64::from_be_bytes(stamp);
                            let now = shared.now_us();
                            if sent <= now && now - sent < 3_600_000_000 {
                                conn.0.rtt_us.store(now - sent, Ordering::Relaxed);
                            }
                        }
                    }
                    Message::Close(frame) => {
                        let (code, reason) = match frame {
                            Some(f) => (f.code, f.reason.to_string()),
                            None => (CloseCode::NO_STATUS, String::new()),
                        };
                        // Echo the code back (RFC 6455 §5.5.1), unless we closed first.
                        let _ = conn.start_close(code, "", true);
                        break 'outer End::PeerClose(code, reason);
                    }
                },
                Err(e) => {
                    log::info!(
                        "connection {}: protocol error: {e} (closing with {})",
                        conn.id(),
                        e.close_code()
                    );
                    shared.stats.protocol_error();
                    let code = e.close_code();
                    let reason = e.to_string();
                    if let Some(Sink::Channel(_)) = &em.sink {
                        // Replies to the messages before the error are sent by the dispatch
                        // thread: let it send the close frame after them, in order.
                        let (ack, done) = crossbeam_channel::bounded(1);
                        *conn.0.pending_fail.lock().unwrap_or_else(|e| e.into_inner()) = Some(PendingFail {
                            code,
                            reason: reason.clone(),
                            ack,
                        });
                        em.error(shared, &conn, Error::Protocol(e));
                        let _ = done.recv_timeout(shared.config.close_timeout.min(Duration::from_secs(1)));
                        conn.run_pending_fail();
                    } else {
                        let _ = conn.start_close(code, &reason, false);
                        em.error(shared, &conn, Error::Protocol(e));
                    }
                    break 'outer End::Failed;
                }
            }
        }
        drop(cork);
        // Back-pressure: do not read more from a client whose replies are piling up.
        if conn.lock_out().pending() > shared.config.max_send_queue / 2
            && conn.wait_drained(shared.config.max_send_queue / 4).is_err()
        {
            break End::Dropped("write timeout".into());
        }
        #[cfg(feature = "tls")]
        let r = if is_tls {
            tls_in.read(&conn, &sock, decoder.read_buf())
        } else {
            (&*sock).read(decoder.read_buf())
        };
        #[cfg(not(feature = "tls"))]
        let r = (&*sock).read(decoder.read_buf());
        match r {
            Ok(0) => break End::Dropped("connection closed without a close frame".into()),
            Ok(n) => {
                decoder.commit(n);
                conn.0.last_seen_ms.store(shared.now_ms(), Ordering::Relaxed);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                // Idle timeout: close politely; the read loop goes on until the reply or the
                // close deadline.
                if conn.lock_out().close_sent.is_none() {
                    log::info!("connection {}: idle timeout", conn.id());
                    let _ = conn.close(CloseCode::NORMAL, "idle timeout");
                } else if conn.lock_out().dead {
                    break End::Dropped("closed".into());
                }
            }
            Err(e) => break End::Dropped(e.to_string()),
        }
    };
    finish(shared, &conn, sock, end, &em);
}

fn finish(shared: &Arc<Shared>, conn: &Connection, sock: Arc<TcpStream>, end: End, em: &Emitter) {
    let (local, close_sent, dead) = {
        let out = conn.lock_out();
        (out.local_reason.clone(), out.close_sent.clone(), out.dead)
    };
    let info = match end {
        End::PeerClose(code, reason) => match (&local, &close_sent) {
            // We closed first and the peer answered: report our reason.
            (Some((c, r)), Some(_)) => Disconnect {
                code: *c,
                reason: r.clone(),
                clean: true,
            },
            _ => Disconnect {
                code,
                reason,
                clean: true,
            },
        },
        End::Failed => {
            let (c, r) = local.unwrap_or((CloseCode::PROTOCOL_ERROR, "protocol error".into()));
            Disconnect {
                code: c,
                reason: r,
                clean: false,
            }
        }
        End::Dropped(why) => match local {
            Some((c, r)) => Disconnect {
                code: c,
                reason: r,
                clean: false,
            },
            None => Disconnect {
                code: CloseCode::ABNORMAL,
                reason: why,
                clean: false,
            },
        },
    };
    // Let queued data (our close frame included) reach the client, bounded in time.
    if !dead {
        let deadline = Instant::now() + shared.config.close_timeout;
        loop {
            let pending = {
                let mut out = conn.lock_out();
                match out.flush_nb(&conn.0.sock) {
                    Ok(true) => 0,
                    Ok(false) => out.pending(),
                    Err(_) => 0,
                }
            };
            let now = Instant::now();
            if pending == 0 || now >= deadline {
                break;
            }
            crate::connection::wait_writable(&conn.0.sock, deadline - now);
        }
    }
    {
        let mut out = conn.lock_out();
        out.dead = true;
    }
    shared.unregister(conn);
    let _ = sock.shutdown(Shutdown::Write);
    if !info.clean && !dead {
        // After failing the connection, give the peer a moment to read our close frame.
        linger_close(&sock);
    }
    let _ = sock.shutdown(Shutdown::Both);
    log::debug!("connection {} closed: {} {}", conn.id(), info.code, info.reason);
    if !em.inline(conn, |h| h.on_disconnect(conn, info.clone())) {
        em.send(shared, Event::Disconnect(conn.clone(), info));
    }
}
