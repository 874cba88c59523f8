//! The byte stream during the handshake: plain TCP, or TLS with the session still owned by
//! the connection's thread (it moves into the connection's outbound lock at the upgrade).
//!
//! A read is bounded as a whole by the socket's read timeout as it stands when the read
//! begins ([`HsStream::read_until`] sets it to what is left of the handshake deadline before
//! every read). Over plain TCP a read is one system call, which the timeout bounds. Over TLS
//! one read may be many (rustls reads until a record is whole, a byte at a time if that is how
//! it comes), so there the timeout becomes a deadline that every socket read and write under
//! the call is held to ([`Deadline`]). A write over TLS is held the same way to the socket's
//! write timeout; over plain TCP the write timeout bounds each system call of a write.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Instant;

#[cfg(feature = "tls")]
use crate::tls::Deadline;

/// See the module docs.
pub(crate) enum HsStream {
    Plain(Arc<TcpStream>),
    #[cfg(feature = "tls")]
    Tls(Arc<TcpStream>, Box<rustls::ServerConnection>),
}

impl HsStream {
    pub(crate) fn sock(&self) -> &Arc<TcpStream> {
        match self {
            Self::Plain(s) => s,
            #[cfg(feature = "tls")]
            Self::Tls(s, _) => s,
        }
    }

    pub(crate) fn is_secure(&self) -> bool {
        !matches!(self, Self::Plain(_))
    }

    /// Reads what has come (plaintext over TLS), by the socket's read timeout; see the
    /// module docs.
    pub(crate) fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => (&**s).read(buf),
            #[cfg(feature = "tls")]
            Self::Tls(s, c) => match deadline_of(s.read_timeout()?) {
                Some(by) => rustls::Stream::new(&mut **c, &mut Deadline::new(s, by)).read(buf),
                None => rustls::Stream::new(&mut **c, &mut &**s).read(buf),
            },
        }
    }

    /// Writes all of `data` (encrypted over TLS), by the socket's write timeout; see the
    /// module docs.
    pub(crate) fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Self::Plain(s) => (&**s).write_all(data),
            #[cfg(feature = "tls")]
            Self::Tls(s, c) => match deadline_of(s.write_timeout()?) {
                Some(by) => tls_write_all(c, &mut Deadline::new(s, by), data),
                None => tls_write_all(c, &mut &**s, data),
            },
        }
    }

    /// Sets the socket's read timeout to what is left until `deadline`.
    pub(crate) fn read_until(&self, deadline: Instant) -> io::Result<()> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        self.sock().set_read_timeout(Some(left))
    }
}

/// When a call that begins now must end, given the socket's timeout (`None`: never).
#[cfg(feature = "tls")]
fn deadline_of(timeout: Option<std::time::Duration>) -> Option<Instant> {
    timeout.map(|t| Instant::now() + t)
}

/// Encrypts `data` and writes it to `sock`, flushed.
#[cfg(feature = "tls")]
fn tls_write_all(
    conn: &mut rustls::ServerConnection,
    sock: &mut (impl Read + Write),
    data: &[u8],
) -> io::Result<()> {
    let mut st = rustls::Stream::new(conn, sock);
    st.write_all(data)?;
    st.flush()
}
