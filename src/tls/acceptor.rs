//! The running server's TLS state: the current configuration (replaceable while running) and
//! the TLS handshake on a connection's own thread, bounded by a deadline.

use std::io;
use std::net::TcpStream;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use super::TlsConfig;
use crate::error::TlsError;
use crate::platform::Deadline;

/// The running server's TLS state: the current rustls configuration, replaceable at runtime.
pub(crate) struct TlsAcceptor {
    config: RwLock<Arc<rustls::ServerConfig>>,
}

impl TlsAcceptor {
    pub(crate) fn new(cfg: &TlsConfig) -> Result<Self, TlsError> {
        Ok(Self {
            config: RwLock::new(cfg.load()?),
        })
    }

    pub(crate) fn reload(&self, cfg: &TlsConfig) -> Result<(), TlsError> {
        let new = cfg.load()?;
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = new;
        Ok(())
    }

    /// Runs the TLS handshake on the connection's own thread, bounded by `deadline`.
    pub(crate) fn handshake(
        &self,
        sock: &TcpStream,
        deadline: Instant,
    ) -> io::Result<Box<rustls::ServerConnection>> {
        let cfg = self.config.read().unwrap_or_else(|e| e.into_inner()).clone();
        let mut conn = Box::new(rustls::ServerConnection::new(cfg).map_err(io::Error::other)?);
        // The deadline holds for the whole handshake, however slowly its bytes come.
        let mut timed = Deadline::new(sock, deadline);
        while conn.is_handshaking() {
            let (rd, _) = conn.complete_io(&mut timed)?;
            if rd == 0 && conn.is_handshaking() && !conn.wants_write() {
                // complete_io returned without progress: the peer closed.
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        sock.set_write_timeout(None)?;
        // rustls caps its outgoing buffer at 64 KiB by default: a larger frame would be cut
        // short (write_all fails half-way, leaving a partial frame in the session). Every
        // write moves the ciphertext into the connection's own queue at once, which
        // `max_send_queue` bounds, so rustls needs no limit of its own.
        conn.set_buffer_limit(None);
        Ok(conn)
    }
}
