//! The server's error type.

use std::fmt;
use std::io;
use std::net::SocketAddr;

use syncws_protocol::{HandshakeError, ProtocolError};

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
    /// TLS configuration (a PEM file and what is wrong with it) or TLS session error.
    Tls(String),
    /// The server is not running.
    NotRunning,
    /// No open connection has this id.
    UnknownConnection,
    /// The connection is closing or closed; nothing more can be sent on it.
    Closed,
    /// The connection's outbound queue is full (see [`crate::OverflowPolicy`]).
    QueueFull,
    /// A control frame payload over 125 bytes (ping) was requested.
    ControlTooLong,
    /// The peer broke the protocol; the connection was closed with the error's close code.
    Protocol(ProtocolError),
    /// The upgrade request was refused with the error's HTTP status.
    Handshake(HandshakeError),
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
            Self::Tls(why) => write!(f, "TLS: {why}"),
            Self::NotRunning => f.write_str("server is not running"),
            Self::UnknownConnection => f.write_str("no connection with this id"),
            Self::Closed => f.write_str("connection is closed"),
            Self::QueueFull => f.write_str("connection's send queue is full"),
            Self::ControlTooLong => f.write_str("control frame payload longer than 125 bytes"),
            Self::Protocol(e) => write!(f, "protocol error: {e}"),
            Self::Handshake(e) => write!(f, "handshake refused: {e}"),
            Self::HandlerPanic(m) => write!(f, "handler panicked: {m}"),
            Self::Io(e) => write!(f, "I/O error: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Bind { source, .. } => Some(source),
            Self::Protocol(e) => Some(e),
            Self::Handshake(e) => Some(e),
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

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
