//! The reader's side of a TLS connection: ciphertext is read from the socket without the
//! connection's lock, then fed to rustls and decrypted under it (`Connection::with_session`).

use std::io::{self, Read};

use super::Connection;

/// Raw bytes read from the socket and not yet fed to the session.
#[derive(Debug, Default)]
pub(crate) struct TlsReader {
    raw: Vec<u8>,
    pos: usize,
    len: usize,
    eof: bool,
}

impl TlsReader {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Reads plaintext into `buf`, blocking on the socket (without the lock) when the
    /// session needs more ciphertext. `Ok(0)` at the end of the stream.
    pub(crate) fn read(&mut self, conn: &Connection, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some(n) = conn.with_session(|tls| self.step(tls, buf))? {
                return Ok(n);
            }
            if self.raw.is_empty() {
                self.raw = vec![0; 16 << 10];
            }
            let n = conn.socket().read(&mut self.raw)?;
            self.pos = 0;
            self.len = n;
            self.eof = n == 0;
        }
    }

    /// Under the lock: plaintext if there is some (`Some(n)`), after feeding what ciphertext
    /// is buffered; `None` when the socket must be read.
    fn step(&mut self, tls: &mut rustls::ServerConnection, buf: &mut [u8]) -> io::Result<Option<usize>> {
        loop {
            match tls.reader().read(buf) {
                Ok(n) => return Ok(Some(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            if self.pos >= self.len && !self.eof {
                return Ok(None);
            }
            let n = tls.read_tls(&mut &self.raw[self.pos..self.len])?;
            self.pos += n;
            tls.process_new_packets()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            if self.eof && self.pos >= self.len {
                // The peer closed without close_notify; what was decrypted is all.
                return Ok(Some(tls.reader().read(buf).unwrap_or(0)));
            }
        }
    }
}
