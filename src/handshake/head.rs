//! Reading the request head: bounded in size (`max_handshake_bytes`, `max_headers`) and in
//! time (the handshake deadline, which the stream's reads carry).

use std::io;
use std::net::SocketAddr;

use syncws_protocol::handshake::{parse_request, Request as ParsedRequest};
use syncws_protocol::HandshakeError;

use super::stream::HsStream;
use crate::config::ServerConfig;

/// Why no request head came.
pub(crate) enum NoHead {
    /// The request broke HTTP, or was too large: answer with the error.
    Bad(HandshakeError),
    /// The peer went away or the deadline passed: nothing to answer.
    Gone,
}

/// Reads until a whole request head has arrived. Returns it, and the buffer with the bytes
/// after it (from `used` on), which may already hold WebSocket frames.
pub(crate) fn read_head(
    stream: &mut HsStream,
    cfg: &ServerConfig,
    peer: SocketAddr,
) -> Result<(ParsedRequest, usize, Vec<u8>), NoHead> {
    let mut buf = Vec::with_capacity(1024);
    loop {
        match parse_request(&buf, cfg.max_headers) {
            Ok(Some((req, used))) => return Ok((req, used, buf)),
            Ok(None) => {}
            Err(e) => return Err(NoHead::Bad(e)),
        }
        if buf.len() >= cfg.max_handshake_bytes {
            return Err(NoHead::Bad(HandshakeError::HeaderTooLarge));
        }
        // Read straight into the heap buffer: stack pages touched here would stay resident
        // for the connection's whole life.
        let old = buf.len();
        let room = (cfg.max_handshake_bytes - old).min(2048);
        buf.resize(old + room, 0);
        let r = stream.read(&mut buf[old..]);
        buf.truncate(old + *r.as_ref().unwrap_or(&0));
        match r {
            Ok(0) => return Err(NoHead::Gone),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                log::debug!("{peer}: handshake read: {e}");
                return Err(NoHead::Gone);
            }
        }
    }
}
