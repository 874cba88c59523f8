//! The byte stream during the handshake: plain TCP, or TLS with the session still owned by
//! the connection's thread (it moves into the connection's outbound lock at the upgrade).

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Instant;

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

    pub(crate) fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => (&**s).read(buf),
            #[cfg(feature = "tls")]
            Self::Tls(s, c) => rustls::Stream::new(&mut **c, &mut &**s).read(buf),
        }
    }

    pub(crate) fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
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

    /// Sets the socket's read timeout to what is left until `deadline`.
    pub(crate) fn read_until(&self, deadline: Instant) -> io::Result<()> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        self.sock().set_read_timeout(Some(left))
    }
}
