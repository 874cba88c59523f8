//! Error types, one per concern: framing ([`ProtocolError`]) and the HTTP upgrade
//! ([`HandshakeError`]). Each maps to the signal that goes on the wire: a close code for the
//! first, an HTTP status for the second.

use std::fmt;

use crate::close::CloseCode;

/// A violation of RFC 6455 framing rules by the peer, or a configured limit exceeded.
///
/// Every variant maps to the close code the endpoint must send ([`ProtocolError::close_code`]):
/// 1002 for framing violations, 1007 for invalid UTF-8 or compressed data, 1009 for size limits.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolError {
    /// An opcode the RFC reserves (0x3-0x7 or 0xB-0xF).
    ReservedOpcode(u8),
    /// RSV1, RSV2 or RSV3 set without a negotiated extension that defines it.
    ReservedBitsSet,
    /// A client frame without a mask (RFC 6455 §5.1: the server must close).
    UnmaskedFrame,
    /// A server frame with a mask (RFC 6455 §5.1: the client must close).
    MaskedFrame,
    /// A 64-bit payload length with its most significant bit set (§5.2).
    InvalidLength,
    /// A control frame with FIN clear (§5.5).
    FragmentedControlFrame,
    /// A control frame with more than 125 bytes of payload (§5.5).
    ControlFrameTooLong(u64),
    /// A continuation frame with no fragmented message in progress.
    UnexpectedContinuation,
    /// A new text or binary frame while a fragmented message is still open.
    ExpectedContinuation,
    /// Text that is not valid UTF-8 (a text message or a close reason).
    InvalidUtf8,
    /// A close frame with a one-byte payload.
    InvalidClosePayload,
    /// A close code that may not appear on the wire (§7.4).
    InvalidCloseCode(u16),
    /// A frame larger than the configured maximum.
    FrameTooLarge {
        /// Length announced by the frame header.
        size: u64,
        /// Configured limit.
        max: u64,
    },
    /// A compressed message (permessage-deflate) that does not inflate: not a valid DEFLATE
    /// stream, or one using a larger window than agreed.
    InvalidCompressedData,
    /// A message (all its fragments together) larger than the configured maximum.
    MessageTooLarge {
        /// Length the message would reach.
        size: u64,
        /// Configured limit.
        max: u64,
    },
}

impl ProtocolError {
    /// The close code an endpoint sends when it fails the connection for this reason.
    pub fn close_code(&self) -> CloseCode {
        match self {
            Self::InvalidUtf8 | Self::InvalidCompressedData => CloseCode::INVALID_PAYLOAD,
            Self::FrameTooLarge { .. } | Self::MessageTooLarge { .. } => CloseCode::TOO_BIG,
            _ => CloseCode::PROTOCOL_ERROR,
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ReservedOpcode(op) => write!(f, "reserved opcode {op:#x}"),
            Self::ReservedBitsSet => f.write_str("reserved bits set without a negotiated extension"),
            Self::UnmaskedFrame => f.write_str("client frame is not masked"),
            Self::MaskedFrame => f.write_str("server frame is masked"),
            Self::InvalidLength => f.write_str("64-bit payload length has its top bit set"),
            Self::FragmentedControlFrame => f.write_str("fragmented control frame"),
            Self::ControlFrameTooLong(n) => write!(f, "control frame payload of {n} bytes (max 125)"),
            Self::UnexpectedContinuation => f.write_str("continuation frame without a message to continue"),
            Self::ExpectedContinuation => f.write_str("new data frame inside a fragmented message"),
            Self::InvalidUtf8 => f.write_str("invalid UTF-8 in text"),
            Self::InvalidCompressedData => f.write_str("compressed message does not inflate"),
            Self::InvalidClosePayload => f.write_str("close frame payload of one byte"),
            Self::InvalidCloseCode(c) => write!(f, "close code {c} is not allowed on the wire"),
            Self::FrameTooLarge { size, max } => {
                write!(f, "frame of {size} bytes exceeds the limit of {max}")
            }
            Self::MessageTooLarge { size, max } => {
                write!(f, "message of {size} bytes exceeds the limit of {max}")
            }
        }
    }
}

impl std::error::Error for ProtocolError {}

/// Why an HTTP upgrade request was refused. [`HandshakeError::http_status`] gives the status
/// to answer with; [`crate::handshake::error_response`] builds the response.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The request head is not valid HTTP/1.x.
    Malformed(&'static str),
    /// The request head is larger than the configured byte limit.
    HeaderTooLarge,
    /// The request has more header fields than the configured limit.
    TooManyHeaders,
    /// The method is not GET.
    MethodNotAllowed,
    /// The HTTP version is older than 1.1.
    HttpVersion,
    /// The `Host` header is missing.
    MissingHost,
    /// `Upgrade: websocket` is missing.
    NotWebSocketUpgrade,
    /// `Connection` does not list `upgrade`.
    MissingConnectionUpgrade,
    /// `Sec-WebSocket-Version` is missing or not 13.
    UnsupportedVersion,
    /// `Sec-WebSocket-Key` is missing, repeated, or not base64 of 16 bytes.
    InvalidKey,
    /// More than one `Host` header field (RFC 9112 §3.2: answered with 400).
    DuplicateHost,
    /// The request target is not in origin form (it must begin with `/`): absolute form
    /// (`GET http://host/path`), authority form, and `*` are refused.
    TargetNotOriginForm,
    /// More than one `Sec-WebSocket-Version` header field.
    DuplicateVersion,
    /// More than one `Upgrade` header field: intermediaries may join or pick them differently,
    /// so the request means different things to different hops.
    DuplicateUpgrade,
    /// `Connection` lists both `upgrade` and `close`: a protocol switch on a connection the
    /// client asks to close.
    ConflictingConnection,
}

impl HandshakeError {
    /// The HTTP status code to answer with.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::HeaderTooLarge | Self::TooManyHeaders => 431,
            Self::MethodNotAllowed => 405,
            Self::HttpVersion => 505,
            Self::NotWebSocketUpgrade | Self::UnsupportedVersion => 426,
            _ => 400,
        }
    }
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(why) => write!(f, "malformed HTTP request: {why}"),
            Self::HeaderTooLarge => f.write_str("request header too large"),
            Self::TooManyHeaders => f.write_str("too many request header fields"),
            Self::MethodNotAllowed => f.write_str("method is not GET"),
            Self::HttpVersion => f.write_str("HTTP version older than 1.1"),
            Self::MissingHost => f.write_str("missing Host header"),
            Self::NotWebSocketUpgrade => f.write_str("missing \"Upgrade: websocket\""),
            Self::MissingConnectionUpgrade => f.write_str("\"Connection\" does not include \"upgrade\""),
            Self::UnsupportedVersion => f.write_str("Sec-WebSocket-Version is not 13"),
            Self::InvalidKey => f.write_str("missing or invalid Sec-WebSocket-Key"),
            Self::DuplicateHost => f.write_str("more than one Host header"),
            Self::TargetNotOriginForm => f.write_str("request target does not begin with \"/\""),
            Self::DuplicateVersion => f.write_str("more than one Sec-WebSocket-Version header"),
            Self::DuplicateUpgrade => f.write_str("more than one Upgrade header"),
            Self::ConflictingConnection => f.write_str("\"Connection\" lists both \"upgrade\" and \"close\""),
        }
    }
}

impl std::error::Error for HandshakeError {}
