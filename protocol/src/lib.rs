//! # syncws-protocol
//!
//! A sans-IO implementation of the WebSocket protocol (RFC 6455): no sockets, no threads, no
//! clock. Bytes go in, frames and messages come out; what to send is built into byte buffers.
//! The `syncws` server crate drives it from blocking sockets, and its fuzz targets and tests
//! drive it from memory.
//!
//! ```text
//!  socket bytes ──► Decoder::read_buf/commit ──► Decoder::next() ──► Message::{Text, Binary,
//!                                                  │                     Ping, Pong, Close}
//!                          ProtocolError ◄─────────┘  (close_code(): 1002 / 1007 / 1009)
//!
//!  HTTP head ──► handshake::parse_request ──► validate_upgrade ──► response_101 / error_response
//!  outgoing  ──► FrameHeader::encode (+ mask for clients) ──► socket
//! ```
//!
//! ## Example
//!
//! ```
//! use syncws_protocol::{frame::{write_frame, FrameHeader, OpCode}, Decoder, Limits, Message, Role};
//!
//! // A client sends a masked "Hello" (RFC 6455 §5.7) in two pieces.
//! let mut wire = Vec::new();
//! write_frame(&mut wire, FrameHeader::new(OpCode::Text, 5, Some([0x37, 0xfa, 0x21, 0x3d])), b"Hello");
//! assert_eq!(wire, [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]);
//!
//! let mut server = Decoder::new(Role::Server, Limits::default());
//! server.feed(&wire[..3]);
//! assert_eq!(server.next(), Ok(None)); // needs more bytes; not an error
//! server.feed(&wire[3..]);
//! assert_eq!(server.next(), Ok(Some(Message::Text("Hello"))));
//! ```
//!
//! ## Modules
//! - [`frame`]: frame headers and opcodes; [`mask`]: fast masking.
//! - [`decoder`]: the incremental decoder, message assembly, limits.
//! - [`deflate`]: permessage-deflate (RFC 7692): negotiation and the compression transform.
//! - [`utf8`]: incremental UTF-8 validation; [`close`]: close codes and payloads.
//! - [`handshake`]: the HTTP upgrade; [`error`]: error types and their wire signals.
// Unsafe code is denied everywhere but two audited calls, which benchmarks show pay: AVX2
// masking (`mask.rs`, benches/protocol.rs) and text handed out without a second UTF-8 pass
// (`shared.rs`).
#![deny(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod close;
pub mod decoder;
pub mod deflate;
pub mod error;
pub mod frame;
pub mod handshake;
pub mod mask;
pub mod shared;
pub mod utf8;

pub use close::{CloseCode, CloseFrame};
pub use decoder::{Decoder, Limits, Message};
pub use error::{HandshakeError, ProtocolError};
pub use frame::{FrameHeader, OpCode};
pub use shared::{Kept, KeptMessage, Payload, TextPayload};

/// Which end of the connection this endpoint is. It decides the masking rule: clients mask
/// every frame they send, servers never do (RFC 6455 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The accepting side: expects masked frames, sends unmasked ones.
    Server,
    /// The connecting side: expects unmasked frames, sends masked ones.
    Client,
}
