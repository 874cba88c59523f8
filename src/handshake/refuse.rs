//! Refusing a request, in one place: the response, then a lingering close so that the client
//! reads it (closing a socket with unread input resets the connection, which can destroy the
//! response before the client has read it).

use std::io::Read;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use syncws_protocol::handshake::error_response;
use syncws_protocol::HandshakeError;

use super::stream::HsStream;
use crate::http::HttpResponse;
use crate::platform::send_nb;
use crate::service::Service;
use crate::stats::Stats;

/// Answers a request that broke HTTP or RFC 6455 with the error's status.
pub(crate) fn bad_request<T>(
    stats: &Stats,
    stream: &mut HsStream,
    peer: SocketAddr,
    e: &HandshakeError,
) -> Option<T> {
    log::info!("{peer}: upgrade refused: {e} ({})", e.http_status());
    stats.rejected();
    let _ = stream.write_within(&error_response(e), Duration::from_secs(5));
    linger_close(stream.sock());
    None
}

/// Answers with `resp` (a refusal by authentication or a hook, or a plain HTTP answer) and
/// closes.
pub(crate) fn respond<T>(stream: &mut HsStream, resp: &[u8]) -> Option<T> {
    let _ = stream.write_all(resp);
    linger_close(stream.sock());
    None
}

/// Why a client is turned away before a thread is spent on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Busy {
    /// `max_connections` (503).
    Connections,
    /// `max_handshakes` (503).
    Handshakes,
    /// `max_connections_per_ip` (429).
    PerIp,
    /// `new_connections_per_ip` (429).
    Rate,
}

/// Turns a client away without spending a thread on it: the answer (503 or 429, with
/// `Retry-After`) is written without blocking, the write side shut, and the socket left with
/// the service thread to linger.
pub(crate) fn over_capacity(
    stats: &Stats,
    service: &Service,
    stream: TcpStream,
    peer: SocketAddr,
    why: Busy,
) {
    let (status, text) = match why {
        Busy::Connections => (503, "server is at capacity (max_connections)"),
        Busy::Handshakes => (503, "too many handshakes in progress (max_handshakes)"),
        Busy::PerIp => (
            429,
            "too many connections from this address (max_connections_per_ip)",
        ),
        Busy::Rate => (429, "connecting too fast (new_connections_per_ip)"),
    };
    log::warn!("{peer}: {text}; answering {status}");
    stats.rejected();
    let resp = HttpResponse::text(status, format!("{text}\n"))
        .header("Retry-After", "1")
        .to_bytes();
    let _ = send_nb(&stream, &[&resp]);
    let _ = stream.shutdown(Shutdown::Write);
    service.linger(Instant::now() + Duration::from_secs(2), stream);
}

/// Half-closes, then reads briefly so the peer gets our last bytes before the socket closes.
pub(crate) fn linger_close(sock: &TcpStream) {
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
