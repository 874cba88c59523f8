//! permessage-deflate (RFC 7692), sans-IO: the negotiation ([`negotiate`], [`DeflateParams`])
//! and the transform ([`Compressor`], [`Inflater`]).
//!
//! The [`Decoder`](crate::Decoder) inflates compressed messages itself once it is given an
//! [`Inflater`] ([`Decoder::set_inflater`](crate::Decoder::set_inflater)): RSV1 is then
//! accepted on the first frame of a data message, the inflated size is checked against
//! `max_message_size` as it grows, and compressed text is validated as UTF-8 on the inflated
//! bytes, as they come out.
//!
//! ```
//! use syncws_protocol::deflate::{negotiate, parse_offers, Compressor, DeflateConfig, Inflater};
//!
//! // A browser's offer, and the server's answer.
//! let offers = parse_offers(["permessage-deflate; client_max_window_bits"]);
//! let agreed = negotiate(&offers, &DeflateConfig::default()).unwrap();
//! assert_eq!(agreed.response(), "permessage-deflate; server_no_context_takeover");
//!
//! // "Hello" compressed as in RFC 7692 §7.2.3.1, and back.
//! let mut wire = Vec::new();
//! Compressor::new(6, 15, true).compress(b"Hello", &mut wire);
//! assert_eq!(wire, [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]);
//! let mut inflater = Inflater::new(15, false);
//! let mut text = Vec::new();
//! inflater.inflate(&wire, &mut text, 1 << 20).unwrap();
//! inflater.finish(&mut text, 1 << 20).unwrap();
//! assert_eq!(text, b"Hello");
//! ```

mod codec;
mod negotiate;

pub use codec::{Compressor, InflateError, Inflater, TAIL};
pub use negotiate::{negotiate, parse_offers, Extension};

/// What a server accepts and asks for when a client offers permessage-deflate, and how it
/// compresses. The defaults suit a server with many connections: the server compresses each
/// message on its own (`server_no_context_takeover`), so it keeps no compressor per
/// connection and a broadcast is compressed once for every receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeflateConfig {
    /// Largest window the server compresses with, in bits (9-15). Default 15 (32 KiB). A
    /// client's `server_max_window_bits` lowers it; an offer that asks for 8 is declined
    /// (zlib-based compressors cannot produce raw deflate with 8) and the next one taken.
    pub server_max_window_bits: u8,
    /// Largest window the client may compress with, in bits (9-15), asked for when the
    /// client's offer allows it. Default 15. Each connection's inflater holds a window this
    /// large while it takes context over from message to message.
    pub client_max_window_bits: u8,
    /// Compress each message from an empty window, so no compressor is kept per connection
    /// and broadcasts are compressed once. Default `true`.
    pub server_no_context_takeover: bool,
    /// Ask the client to compress each message from an empty window, so the server keeps no
    /// window per connection between messages. Default `false`.
    pub client_no_context_takeover: bool,
    /// zlib compression level, 0 (stored) to 9 (smallest). Default 1, the fastest: with
    /// zlib-rs a 1 KiB JSON message costs 2.5 µs at level 1 against 8.4 µs at 6, for output
    /// about a quarter larger (261 against 206 bytes) — on a server CPU is the scarcer one.
    pub level: u32,
    /// Messages shorter than this many bytes are sent uncompressed (RSV1 clear). Default 1024.
    pub threshold: usize,
}

impl Default for DeflateConfig {
    fn default() -> Self {
        Self {
            server_max_window_bits: 15,
            client_max_window_bits: 15,
            server_no_context_takeover: true,
            client_no_context_takeover: false,
            level: 1,
            threshold: 1024,
        }
    }
}

impl DeflateConfig {
    /// Sets [`DeflateConfig::server_max_window_bits`] (clamped to 9-15).
    pub fn server_max_window_bits(mut self, bits: u8) -> Self {
        self.server_max_window_bits = bits.clamp(9, 15);
        self
    }
    /// Sets [`DeflateConfig::client_max_window_bits`] (clamped to 9-15).
    pub fn client_max_window_bits(mut self, bits: u8) -> Self {
        self.client_max_window_bits = bits.clamp(9, 15);
        self
    }
    /// Sets [`DeflateConfig::server_no_context_takeover`].
    pub fn server_no_context_takeover(mut self, on: bool) -> Self {
        self.server_no_context_takeover = on;
        self
    }
    /// Sets [`DeflateConfig::client_no_context_takeover`].
    pub fn client_no_context_takeover(mut self, on: bool) -> Self {
        self.client_no_context_takeover = on;
        self
    }
    /// Sets [`DeflateConfig::level`] (clamped to 0-9).
    pub fn level(mut self, level: u32) -> Self {
        self.level = level.min(9);
        self
    }
    /// Sets [`DeflateConfig::threshold`].
    pub fn threshold(mut self, bytes: usize) -> Self {
        self.threshold = bytes;
        self
    }
}

/// The parameters agreed for one connection ([`negotiate`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateParams {
    /// The server compresses each message from an empty window.
    pub server_no_context_takeover: bool,
    /// The client compresses each message from an empty window.
    pub client_no_context_takeover: bool,
    /// The server's window, in bits (9-15).
    pub server_max_window_bits: u8,
    /// The most the client's window may be, in bits (8-15).
    pub client_max_window_bits: u8,
    name_server_bits: bool,
    name_client_bits: bool,
}

impl DeflateParams {
    /// The inflater for the client's messages.
    pub fn inflater(&self) -> Inflater {
        Inflater::new(self.client_max_window_bits, self.client_no_context_takeover)
    }

    /// A compressor for the server's messages at `level`.
    pub fn compressor(&self, level: u32) -> Compressor {
        Compressor::new(
            level,
            self.server_max_window_bits,
            self.server_no_context_takeover,
        )
    }
}

#[cfg(test)]
mod tests;
