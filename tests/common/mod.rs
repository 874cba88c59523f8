//! Shared helpers for the integration tests: a recording handler for every notify mode, a
//! tungstenite client, raw-socket clients for malformed input, deadline-bounded waits, and (in
//! [`tls`]) a generated CA and server certificate with a client that trusts it.
#![allow(dead_code)]

#[cfg(feature = "tls")]
pub(crate) mod tls;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::ops::Deref;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use syncws::{
    Connection, ConnectionId, Disconnect, Handler, InlineHandler, Server, ServerConfig, ServerEvent,
    ServerHandle,
};
use syncws_protocol::frame::{write_frame, FrameHeader, OpCode};
use tungstenite::protocol::CloseFrame;
use tungstenite::{Message, WebSocket};

/// Upper bound for any wait on an event that should happen (generous: loaded CI machine).
pub(crate) const WAIT: Duration = Duration::from_secs(10);
/// Upper bound for polling on something that happens after a configured delay (an expiry, a
/// number of heartbeat intervals): the delay plus a slow, loaded machine.
pub(crate) const LONG_WAIT: Duration = Duration::from_secs(20);
/// Read timeout of every client socket.
pub(crate) const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// The text that makes the recording handler panic.
pub(crate) const PANIC_TEXT: &str = "please panic";

/// A plain config on an OS-chosen loopback port, with a short close timeout.
pub(crate) fn config() -> ServerConfig {
    ServerConfig::new(([127, 0, 0, 1], 0)).close_timeout(Duration::from_secs(1))
}

/// How a test server delivers events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// `Server::start`: the library's dispatch thread.
    Async,
    /// `Server::start_manual`: a helper thread pumps the `Dispatcher` with `dispatch_timeout`.
    Manual,
    /// `Server::start_inline`: handlers on the connection threads.
    Inline,
}

/// Every mode, for tests that should behave the same in each.
pub(crate) const MODES: [Mode; 3] = [Mode::Async, Mode::Manual, Mode::Inline];

/// What the recording handler saw (the error is kept as its display text).
#[derive(Debug)]
pub(crate) enum Ev {
    Connect(Connection),
    Text(Connection, String),
    Binary(Connection, Vec<u8>),
    Disconnect(Connection, Disconnect),
    Error(Connection, String),
    /// A server-wide event (listener failures, the watchdog).
    Server(ServerEvent),
}

impl Ev {
    /// The connection the event is about (none for a server event).
    pub(crate) fn conn(&self) -> Option<&Connection> {
        match self {
            Ev::Connect(c) | Ev::Text(c, _) | Ev::Binary(c, _) | Ev::Disconnect(c, _) | Ev::Error(c, _) => {
                Some(c)
            }
            Ev::Server(_) => None,
        }
    }
}

/// A handler that forwards every event into a channel; optionally echoes messages back, and
/// panics on [`PANIC_TEXT`].
#[derive(Clone, Debug)]
pub(crate) struct Recorder {
    pub(crate) tx: Sender<Ev>,
    pub(crate) echo: bool,
}

impl Recorder {
    fn text(&self, conn: &Connection, text: &str) {
        if text == PANIC_TEXT {
            panic!("asked to panic");
        }
        if self.echo {
            let _ = conn.send_text(text);
        }
        let _ = self.tx.send(Ev::Text(conn.clone(), text.to_string()));
    }

    fn binary(&self, conn: &Connection, data: &[u8]) {
        if self.echo {
            let _ = conn.send_binary(data);
        }
        let _ = self.tx.send(Ev::Binary(conn.clone(), data.to_vec()));
    }
}

impl Handler for Recorder {
    fn on_connect(&mut self, conn: &Connection) {
        let _ = self.tx.send(Ev::Connect(conn.clone()));
    }
    fn on_text(&mut self, conn: &Connection, text: syncws::TextPayload) {
        Recorder::text(self, conn, &text);
    }
    fn on_binary(&mut self, conn: &Connection, data: syncws::Payload) {
        Recorder::binary(self, conn, &data);
    }
    fn on_disconnect(&mut self, conn: &Connection, info: Disconnect) {
        let _ = self.tx.send(Ev::Disconnect(conn.clone(), info));
    }
    fn on_error(&mut self, conn: &Connection, error: syncws::Error) {
        let _ = self.tx.send(Ev::Error(conn.clone(), error.to_string()));
    }
    fn on_server_event(&mut self, event: ServerEvent) {
        let _ = self.tx.send(Ev::Server(event));
    }
}

impl InlineHandler for Recorder {
    fn on_connect(&self, conn: &Connection) {
        let _ = self.tx.send(Ev::Connect(conn.clone()));
    }
    fn on_text(&self, conn: &Connection, text: &str) {
        Recorder::text(self, conn, text);
    }
    fn on_binary(&self, conn: &Connection, data: &[u8]) {
        Recorder::binary(self, conn, data);
    }
    fn on_disconnect(&self, conn: &Connection, info: Disconnect) {
        let _ = self.tx.send(Ev::Disconnect(conn.clone(), info));
    }
    fn on_error(&self, conn: &Connection, error: syncws::Error) {
        let _ = self.tx.send(Ev::Error(conn.clone(), error.to_string()));
    }
    fn on_server_event(&self, event: ServerEvent) {
        let _ = self.tx.send(Ev::Server(event));
    }
}

/// A running server with a recording handler. Derefs to its [`ServerHandle`]; stops on drop.
pub(crate) struct TestServer {
    handle: Option<ServerHandle>,
    pub(crate) events: Receiver<Ev>,
    pump: Option<JoinHandle<()>>,
    pub(crate) mode: Mode,
}

impl std::fmt::Debug for TestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestServer").field("mode", &self.mode).finish()
    }
}

impl Deref for TestServer {
    type Target = ServerHandle;
    fn deref(&self) -> &ServerHandle {
        self.handle.as_ref().expect("server running")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Starts `server` in `mode` with an echoing recording handler.
pub(crate) fn start(server: &Server, mode: Mode) -> TestServer {
    start_with(server, mode, true)
}

/// Starts `server` in `mode` with a recording handler (echoing or not).
pub(crate) fn start_with(server: &Server, mode: Mode, echo: bool) -> TestServer {
    let (tx, rx) = crossbeam_channel::unbounded();
    let rec = Recorder { tx, echo };
    let (handle, pump) = match mode {
        Mode::Async => (server.start(rec).expect("start"), None),
        Mode::Inline => (server.start_inline(rec).expect("start_inline"), None),
        Mode::Manual => {
            let (handle, dispatcher) = server.start_manual().expect("start_manual");
            let mut rec = rec;
            let t = std::thread::spawn(move || {
                // Ends when the server stops and the event channel disconnects.
                while let Ok(ev) = dispatcher.receiver().recv() {
                    ev.dispatch(&mut rec);
                    dispatcher.dispatch_pending(&mut rec);
                }
            });
            (handle, Some(t))
        }
    };
    TestServer {
        handle: Some(handle),
        events: rx,
        pump,
        mode,
    }
}

impl TestServer {
    /// `ws://addr/`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("ws://{}{}", self.local_addr(), path)
    }

    /// Stops the server (close 1001 to clients) and waits for every thread, the pump included.
    pub(crate) fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(h) = self.handle.take() {
            h.stop();
        }
        if let Some(t) = self.pump.take() {
            let _ = t.join();
        }
    }

    /// The next event, or a panic after [`WAIT`].
    pub(crate) fn next_event(&self) -> Ev {
        match self.events.recv_timeout(WAIT) {
            Ok(ev) => ev,
            Err(RecvTimeoutError::Timeout) => panic!("no event within {WAIT:?}"),
            Err(RecvTimeoutError::Disconnected) => panic!("event channel closed"),
        }
    }

    /// Waits for the first event matching `f` (others are skipped), returning what `f` made of it.
    pub(crate) fn wait_for<T>(&self, what: &str, mut f: impl FnMut(&Ev) -> Option<T>) -> T {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(ev) => {
                    if let Some(t) = f(&ev) {
                        return t;
                    }
                }
                Err(e) => panic!("waiting for {what}: {e:?}"),
            }
        }
    }

    /// Waits for the next connect event.
    pub(crate) fn expect_connect(&self) -> Connection {
        self.wait_for("connect", |ev| match ev {
            Ev::Connect(c) => Some(c.clone()),
            _ => None,
        })
    }

    /// Waits for the disconnect of `id`.
    pub(crate) fn expect_disconnect(&self, id: ConnectionId) -> Disconnect {
        self.wait_for("disconnect", |ev| match ev {
            Ev::Disconnect(c, d) if c.id() == id => Some(d.clone()),
            _ => None,
        })
    }

    /// Waits for a text message from `id`.
    pub(crate) fn expect_text(&self, id: ConnectionId) -> String {
        self.wait_for("text", |ev| match ev {
            Ev::Text(c, t) if c.id() == id => Some(t.clone()),
            _ => None,
        })
    }

    /// Waits for the next server event (connection events are skipped).
    pub(crate) fn expect_server_event(&self) -> ServerEvent {
        self.wait_for("server event", |ev| match ev {
            Ev::Server(e) => Some(e.clone()),
            _ => None,
        })
    }

    /// The server events delivered so far and not yet read (connection events are dropped).
    pub(crate) fn pending_server_events(&self) -> Vec<ServerEvent> {
        server_events_in(&self.events)
    }

    /// Fails if a server event arrives within `window` (connection events are skipped).
    pub(crate) fn expect_no_server_event_within(&self, window: Duration) {
        let t0 = Instant::now();
        while let Some(left) = window.checked_sub(t0.elapsed()) {
            match self.events.recv_timeout(left) {
                Ok(Ev::Server(e)) => panic!("unexpected server event after {:?}: {e:?}", t0.elapsed()),
                Ok(_) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    /// Waits until `n` connections are registered (and answers at once if already so).
    pub(crate) fn wait_connections(&self, n: usize) {
        let deadline = Instant::now() + WAIT;
        while self.connection_count() != n {
            assert!(
                Instant::now() < deadline,
                "expected {n} connections, have {}",
                self.connection_count()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// The server events in `events` not yet read (connection events are dropped); for a server
/// that has been stopped, through a clone of [`TestServer::events`].
pub(crate) fn server_events_in(events: &Receiver<Ev>) -> Vec<ServerEvent> {
    events
        .try_iter()
        .filter_map(|ev| match ev {
            Ev::Server(e) => Some(e),
            _ => None,
        })
        .collect()
}

/// Polls `cond` until it holds, panicking after [`WAIT`].
pub(crate) fn wait_until(what: &str, cond: impl FnMut() -> bool) {
    wait_until_within(WAIT, what, cond);
}

/// Polls `cond` until it holds, panicking after `ceiling`; returns how long it took.
pub(crate) fn wait_until_within(ceiling: Duration, what: &str, mut cond: impl FnMut() -> bool) -> Duration {
    let t0 = Instant::now();
    while !cond() {
        assert!(
            t0.elapsed() < ceiling,
            "timed out after {ceiling:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    t0.elapsed()
}

/// Makes the server's listeners fail as if from outside (the hidden test hook; the one place
/// the tests name it).
pub(crate) fn break_listeners(server: &ServerHandle) {
    server.__break_listeners();
}

/// A tungstenite client over a plain socket.
pub(crate) type Client = WebSocket<TcpStream>;

/// Opens a TCP socket to `addr` with read and write timeouts set.
pub(crate) fn tcp(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("tcp connect");
    s.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(READ_TIMEOUT)).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// Connects a tungstenite client to `ws://addr{path}`.
pub(crate) fn connect(addr: SocketAddr, path: &str) -> Client {
    let url = format!("ws://{addr}{path}");
    let (ws, _resp) = tungstenite::client(url, tcp(addr)).expect("websocket handshake");
    ws
}

/// Connects a client and waits for the server's connect event; returns both ends.
pub(crate) fn connect_pair(server: &TestServer, path: &str) -> (Client, Connection) {
    let ws = connect(server.local_addr(), path);
    let conn = server.expect_connect();
    (ws, conn)
}

/// Sends `text` and expects it back as the next data message.
pub(crate) fn echo<S: Read + Write>(ws: &mut WebSocket<S>, text: &str) {
    ws.send(Message::text(text)).expect("send");
    assert_eq!(read_text(ws), text);
}

/// Reads the next data message (pings and pongs skipped).
pub(crate) fn read_data<S: Read + Write>(ws: &mut WebSocket<S>) -> Message {
    loop {
        match ws.read().expect("client read") {
            Message::Ping(_) | Message::Pong(_) => {}
            m => return m,
        }
    }
}

/// Reads the next message, which must be text.
pub(crate) fn read_text<S: Read + Write>(ws: &mut WebSocket<S>) -> String {
    match read_data(ws) {
        Message::Text(t) => t.as_str().to_string(),
        m => panic!("expected text, got {m:?}"),
    }
}

/// Reads until the server's close frame arrives (data before it skipped); returns it.
pub(crate) fn read_close<S: Read + Write>(ws: &mut WebSocket<S>) -> Option<CloseFrame> {
    loop {
        match ws.read() {
            Ok(Message::Close(f)) => return f,
            Ok(_) => {}
            Err(e) => panic!("expected a close frame, got error {e}"),
        }
    }
}

/// Reads until the connection ends after a close; panics on a read timeout.
pub(crate) fn drain_until_closed<S: Read + Write>(ws: &mut WebSocket<S>) {
    let deadline = Instant::now() + WAIT;
    loop {
        match ws.read() {
            Ok(_) => assert!(Instant::now() < deadline, "client never saw the end"),
            Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => return,
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                panic!("client read timed out waiting for the end of the connection")
            }
            // A reset or protocol complaint still ends the connection.
            Err(_) => return,
        }
    }
}

/// The close code of a tungstenite close frame as a number.
pub(crate) fn code_of(f: &CloseFrame) -> u16 {
    u16::from(f.code)
}

/// A fresh, valid `Sec-WebSocket-Key`.
pub(crate) const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// A valid upgrade request for `path`, with `extra` header lines (each ending in `\r\n`).
pub(crate) fn upgrade_request(path: &str, extra: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

/// An HTTP response as read from a raw socket.
#[derive(Debug)]
pub(crate) struct RawResponse {
    pub(crate) status: u16,
    /// The head (status line and headers), as text.
    pub(crate) head: String,
    pub(crate) body: Vec<u8>,
}

impl RawResponse {
    /// The first header called `name` (case-insensitive).
    pub(crate) fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
}

fn parse_head(head: &[u8]) -> (u16, String) {
    let head = String::from_utf8_lossy(head).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line in {head:?}"));
    (status, head)
}

/// Sends raw bytes as the request and reads the whole response (until the server closes).
pub(crate) fn http_exchange(addr: SocketAddr, request: &[u8]) -> RawResponse {
    let mut s = tcp(addr);
    s.write_all(request).expect("write request");
    read_http_response_to_end(&mut s)
}

/// Reads a response until EOF (the server closes after error responses).
pub(crate) fn read_http_response_to_end(s: &mut TcpStream) -> RawResponse {
    let mut all = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => all.extend_from_slice(&chunk[..n]),
            // A reset after the response: keep what arrived.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset && !all.is_empty() => break,
            Err(e) => panic!(
                "reading HTTP response: {e} (got {:?})",
                String::from_utf8_lossy(&all)
            ),
        }
    }
    let end = find_head_end(&all)
        .unwrap_or_else(|| panic!("incomplete response {:?}", String::from_utf8_lossy(&all)));
    let (status, head) = parse_head(&all[..end]);
    RawResponse {
        status,
        head,
        body: all[end..].to_vec(),
    }
}

fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

/// A raw WebSocket client: a socket past the upgrade, with a read buffer for frames.
#[derive(Debug)]
pub(crate) struct RawClient {
    pub(crate) sock: TcpStream,
    buf: Vec<u8>,
}

/// A frame read by a [`RawClient`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawFrame {
    pub(crate) fin: bool,
    pub(crate) opcode: OpCode,
    pub(crate) masked: bool,
    pub(crate) payload: Vec<u8>,
}

impl RawFrame {
    /// The close code and reason of a close frame.
    pub(crate) fn close(&self) -> (u16, String) {
        assert_eq!(self.opcode, OpCode::Close, "not a close frame: {self:?}");
        assert!(self.payload.len() >= 2, "close frame without a code");
        let code = u16::from_be_bytes([self.payload[0], self.payload[1]]);
        (
            code,
            String::from_utf8(self.payload[2..].to_vec()).expect("UTF-8 reason"),
        )
    }
}

/// Sends `request` on a new socket and reads the response head only (the socket stays open);
/// returns it with the socket as a raw client (holding any bytes that followed the head).
pub(crate) fn raw_upgrade(addr: SocketAddr, request: &str) -> (RawResponse, RawClient) {
    raw_upgrade_on(tcp(addr), request)
}

/// [`raw_upgrade`] on a socket already connected (e.g. one from [`tcp_small_rcvbuf`]).
pub(crate) fn raw_upgrade_on(mut sock: TcpStream, request: &str) -> (RawResponse, RawClient) {
    sock.write_all(request.as_bytes()).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    let end = loop {
        if let Some(e) = find_head_end(&buf) {
            break e;
        }
        let n = sock.read(&mut chunk).expect("reading the response head");
        assert!(
            n > 0,
            "server closed during the handshake: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    };
    let (status, head) = parse_head(&buf[..end]);
    let resp = RawResponse {
        status,
        head,
        body: Vec::new(),
    };
    let client = RawClient {
        sock,
        buf: buf[end..].to_vec(),
    };
    (resp, client)
}

/// Performs the upgrade by hand on a new socket; returns the client past the 101.
pub(crate) fn raw_connect(addr: SocketAddr, path: &str) -> RawClient {
    let (resp, client) = raw_upgrade(addr, &upgrade_request(path, ""));
    assert_eq!(resp.status, 101, "handshake refused: {}", resp.head);
    client
}

/// Encodes one client frame, masked (or not, for hostile tests).
pub(crate) fn frame(fin: bool, opcode: OpCode, payload: &[u8], masked: bool) -> Vec<u8> {
    let mut h = FrameHeader::new(
        opcode,
        payload.len() as u64,
        masked.then_some([0x37, 0xfa, 0x21, 0x3d]),
    );
    h.fin = fin;
    let mut out = Vec::new();
    write_frame(&mut out, h, payload);
    out
}

/// A close frame payload: code and reason.
pub(crate) fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason.as_bytes());
    p
}

impl RawClient {
    /// Writes raw bytes.
    pub(crate) fn send_raw(&mut self, bytes: &[u8]) {
        self.sock.write_all(bytes).expect("raw write");
    }

    /// Sends one masked frame.
    pub(crate) fn send(&mut self, fin: bool, opcode: OpCode, payload: &[u8]) {
        let f = frame(fin, opcode, payload, true);
        self.send_raw(&f);
    }

    /// Reads one frame; `None` on EOF (or reset) before a complete frame.
    pub(crate) fn try_read_frame(&mut self) -> Option<RawFrame> {
        let mut chunk = [0u8; 16 << 10];
        loop {
            if let Some((h, hl)) = FrameHeader::parse(&self.buf).expect("server sent a bad frame header") {
                let total = hl + h.payload_len as usize;
                if self.buf.len() >= total {
                    let payload = self.buf[hl..total].to_vec();
                    self.buf.drain(..total);
                    return Some(RawFrame {
                        fin: h.fin,
                        opcode: h.opcode,
                        masked: h.mask.is_some(),
                        payload,
                    });
                }
            }
            match self.sock.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return None,
                Err(e) => panic!("raw client read: {e}"),
            }
        }
    }

    /// Reads one frame, which must come.
    pub(crate) fn read_frame(&mut self) -> RawFrame {
        self.try_read_frame().expect("connection ended before a frame")
    }

    /// Reads frames until a close frame; returns its code and reason.
    pub(crate) fn read_close(&mut self) -> (u16, String) {
        loop {
            let f = self.read_frame();
            if f.opcode == OpCode::Close {
                return f.close();
            }
        }
    }

    /// Reads until the server ends the connection (EOF or reset); panics on a read timeout.
    pub(crate) fn expect_eof(&mut self) {
        while self.try_read_frame().is_some() {}
    }
}

/// Opens a TCP socket to `addr` whose receive buffer is limited to about `rcvbuf` bytes (set
/// before it connects, so the window is small from the start): a client that does not read
/// stops the server's writes after little data. Timeouts as in [`tcp`].
pub(crate) fn tcp_small_rcvbuf(addr: SocketAddr, rcvbuf: usize) -> TcpStream {
    use rustix::net::{AddressFamily, SocketType};
    let family = if addr.is_ipv4() {
        AddressFamily::INET
    } else {
        AddressFamily::INET6
    };
    let fd = rustix::net::socket(family, SocketType::STREAM, None).expect("socket");
    rustix::net::sockopt::set_socket_recv_buffer_size(&fd, rcvbuf).expect("SO_RCVBUF");
    rustix::net::connect(&fd, &addr).expect("tcp connect");
    let s = TcpStream::from(fd);
    s.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(READ_TIMEOUT)).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// A raw client past the upgrade whose socket has a small receive buffer (see
/// [`tcp_small_rcvbuf`]): what a client that stops reading looks like to the server.
pub(crate) fn raw_connect_small(addr: SocketAddr, path: &str, rcvbuf: usize) -> RawClient {
    let (resp, client) = raw_upgrade_on(tcp_small_rcvbuf(addr, rcvbuf), &upgrade_request(path, ""));
    assert_eq!(resp.status, 101, "handshake refused: {}", resp.head);
    client
}

impl RawClient {
    /// Bytes received but not yet part of a complete frame (a truncated frame at EOF).
    pub(crate) fn pending_bytes(&self) -> usize {
        self.buf.len()
    }
}

/// This process's resident set, KiB (`VmRSS` in `/proc/self/status`; 0 if unreadable).
pub(crate) fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}
