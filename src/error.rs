//! The error types: [`Error`] (starting a server, and what [`crate::Handler::on_error`] is
//! told), [`SendError`] (what a send can run into) and [`TlsError`] (a TLS file that cannot
//! be used).

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use syncws_protocol::ProtocolError;

/// Errors returned by the server API and reported to [`crate::Handler::on_error`].
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The configuration cannot work; the message says why.
    Config(String),
    /// A listening address could not be bound (in use, not local, no permission).
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: io::Error,
    },
    /// The TLS configuration cannot be used: which file, what is wrong, and the underlying
    /// error.
    Tls(TlsError),
    /// A send failed (see [`SendError`]).
    Send(SendError),
    /// The peer broke the protocol; the connection was closed with the error's close code.
    Protocol(ProtocolError),
    /// A handler panicked; the connection was closed with 1011.
    HandlerPanic(String),
    /// An I/O error on a connection or listener.
    Io(io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config(why) => write!(f, "invalid configuration: {why}"),
            Self::Bind { addr, source } => write!(f, "cannot listen on {addr}: {source}"),
            Self::Tls(e) => write!(f, "TLS: {e}"),
            Self::Send(e) => e.fmt(f),
            Self::Protocol(e) => write!(f, "protocol error: {e}"),
            Self::HandlerPanic(m) => write!(f, "handler panicked: {m}"),
            Self::Io(e) => write!(f, "I/O error: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Bind { source, .. } => Some(source),
            Self::Tls(e) => Some(e),
            Self::Send(e) => Some(e),
            Self::Protocol(e) => Some(e),
            Self::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

impl From<ProtocolError> for Error {
    fn from(e: ProtocolError) -> Self {
        Self::Protocol(e)
    }
}

impl From<SendError> for Error {
    fn from(e: SendError) -> Self {
        Self::Send(e)
    }
}

impl From<TlsError> for Error {
    fn from(e: TlsError) -> Self {
        Self::Tls(e)
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a send (text, binary, ping, close), to a [`crate::Connection`] or by id through a
/// [`crate::Messenger`], did not queue anything. Sends never wait for a client: each of
/// these is immediate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SendError {
    /// The connection is closing or closed: nothing more can be sent on it.
    Closed,
    /// The connection's outbound queue is full, or the server-wide outbound budget is (see
    /// [`crate::OverflowPolicy`]); with the default policy the connection is being closed with
    /// 1008 (or 1013 for the budget).
    QueueFull,
    /// The payload is too long for what was asked: a ping over 125 bytes, or a message larger
    /// than `max_send_queue` (it could never be queued whole).
    TooLong,
    /// A close code that may not be sent in a close frame: below 1000, 1004-1006,
    /// 1015-2999, or above 4999 (see [`crate::CloseCode::is_sendable`]).
    InvalidCloseCode(u16),
    /// No open connection has this id.
    UnknownConnection,
    /// The server is stopped or stopping.
    NotRunning,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Closed => f.write_str("connection is closed"),
            Self::QueueFull => f.write_str("connection's send queue is full"),
            Self::TooLong => {
                f.write_str("payload too long (over 125 bytes for a ping, or over max_send_queue)")
            }
            Self::InvalidCloseCode(c) => write!(f, "close code {c} may not be sent"),
            Self::UnknownConnection => f.write_str("no connection with this id"),
            Self::NotRunning => f.write_str("server is not running"),
        }
    }
}

impl std::error::Error for SendError {}

/// A TLS configuration problem: the file concerned (when one is), what is wrong with it, and
/// the error underneath (an I/O error, a PEM or rustls error) as [`std::error::Error::source`].
#[derive(Debug)]
pub struct TlsError {
    path: Option<PathBuf>,
    problem: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

#[cfg_attr(not(feature = "tls"), allow(dead_code))]
impl TlsError {
    pub(crate) fn new(problem: impl Into<String>) -> Self {
        Self {
            path: None,
            problem: problem.into(),
            source: None,
        }
    }

    pub(crate) fn file(path: &Path, problem: impl Into<String>) -> Self {
        Self {
            path: Some(path.to_path_buf()),
            ..Self::new(problem)
        }
    }

    pub(crate) fn because(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// The file the problem is in, if it is about one.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// What is wrong, in words (without the path and the source error).
    pub fn problem(&self) -> &str {
        &self.problem
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = &self.path {
            write!(f, "{}: ", p.display())?;
        }
        f.write_str(&self.problem)?;
        if let Some(s) = &self.source {
            write!(f, " ({s})")?;
        }
        Ok(())
    }
}

impl std::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// The text of a caught panic.
pub(crate) fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".to_string()
    }
}
