//! The byte stream during the handshake: plain TCP, or TLS with the session still owned by
//! the connection's thread (it moves into the connection's outbound lock at the upgrade).
//!
//! Every read and write goes through [`Deadline`], so each is bounded as a whole however the
//! bytes trickle: reads by the handshake's deadline (`handshake_timeout` from the accept),
//! each answer written (a refusal, a page, the `101`) by `write_timeout` from its start.
//! Over TLS one read may be many socket reads (rustls reads until a record is whole).

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::platform::Deadline;

/// See the module docs.
pub(crate) struct HsStream {
    sock: Arc<TcpStream>,
    #[cfg(feature = "tls")]
    tls: Option<Box<rustls::ServerConnection>>,
    /// The handshake's deadline: every read must end by then.
    read_by: Instant,
    /// How long writing one answer may take.
    write_for: Duration,
}

impl HsStream {
    /// Plain TCP, read until `read_by`, each answer written within `write_for`.
    pub(crate) fn plain(sock: Arc<TcpStream>, read_by: Instant, write_for: Duration) -> Self {
        Self {
            sock,
            #[cfg(feature = "tls")]
            tls: None,
            read_by,
            write_for,
        }
    }

    /// TLS after its handshake.
    #[cfg(feature = "tls")]
    pub(crate) fn tls(
        sock: Arc<TcpStream>,
        session: Box<rustls::ServerConnection>,
        read_by: Instant,
        write_for: Duration,
    ) -> Self {
        Self {
            tls: Some(session),
            ..Self::plain(sock, read_by, write_for)
        }
    }

    pub(crate) fn sock(&self) -> &Arc<TcpStream> {
        &self.sock
    }

    pub(crate) fn is_secure(&self) -> bool {
        #[cfg(feature = "tls")]
        return self.tls.is_some();
        #[cfg(not(feature = "tls"))]
        false
    }

    /// Reads what has come (plaintext over TLS), by the handshake's deadline.
    pub(crate) fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut io = Deadline::new(&self.sock, self.read_by);
        #[cfg(feature = "tls")]
        if let Some(c) = self.tls.as_mut() {
            return rustls::Stream::new(&mut **c, &mut io).read(buf);
        }
        io.read(buf)
    }

    /// Writes all of `data` (encrypted over TLS) within `write_timeout`.
    pub(crate) fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        self.write_within(data, self.write_for)
    }

    /// Writes all of `data` (encrypted over TLS) within `limit`.
    pub(crate) fn write_within(&mut self, data: &[u8], limit: Duration) -> io::Result<()> {
        let mut io = Deadline::new(&self.sock, Instant::now() + limit);
        #[cfg(feature = "tls")]
        if let Some(c) = self.tls.as_mut() {
            let mut st = rustls::Stream::new(&mut **c, &mut io);
            st.write_all(data)?;
            return st.flush();
        }
        io.write_all(data)
    }

    /// The TLS session, if there is one (it moves to the connection at the upgrade).
    #[cfg(feature = "tls")]
    pub(crate) fn into_session(self) -> Option<Box<rustls::ServerConnection>> {
        self.tls
    }
}
