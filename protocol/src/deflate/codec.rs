//! The transform (RFC 7692 §7.2): a message's payload deflated with a sync flush and the
//! trailing `00 00 ff ff` removed; inflated with those four bytes appended, with a hard limit
//! on the inflated size checked as the output grows.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// The four bytes a sync flush ends with, removed by the sender and put back by the receiver.
pub const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Compresses whole messages for one direction of a connection (or, without context
/// takeover, for any connection whose agreed window is at least this one's).
pub struct Compressor {
    c: Compress,
    window_bits: u8,
    reset_each: bool,
}

impl std::fmt::Debug for Compressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compressor")
            .field("window_bits", &self.window_bits)
            .field("reset_each", &self.reset_each)
            .finish()
    }
}

impl Compressor {
    /// A compressor with `level` (0-9, clamped) and a window of `window_bits` (9-15, clamped);
    /// `no_context_takeover` starts every message from an empty window.
    pub fn new(level: u32, window_bits: u8, no_context_takeover: bool) -> Self {
        let window_bits = window_bits.clamp(9, 15);
        Self {
            c: Compress::new_with_window_bits(Compression::new(level.min(9)), false, window_bits),
            window_bits,
            reset_each: no_context_takeover,
        }
    }

    /// The window size in bits.
    pub fn window_bits(&self) -> u8 {
        self.window_bits
    }

    /// Forgets the window: the next message refers to nothing before it.
    pub fn reset(&mut self) {
        self.c.reset();
    }

    /// Appends the compressed form of one whole message to `out`: the payload of its first
    /// frame, with RSV1 set.
    pub fn compress(&mut self, data: &[u8], out: &mut Vec<u8>) {
        if data.is_empty() {
            // An empty message is one empty stored block's first byte (§7.2.3.6). (zlib
            // would write nothing at all for it after an earlier message's sync flush.)
            out.push(0x00);
            return;
        }
        let start = out.len();
        out.reserve(data.len() / 2 + 64);
        let mut input = data;
        loop {
            let before = self.c.total_in();
            let status = self.c.compress_vec(input, out, FlushCompress::Sync);
            input = &input[(self.c.total_in() - before) as usize..];
            let room_left = out.len() < out.capacity();
            match status {
                Ok(Status::Ok) if input.is_empty() && room_left => break,
                Ok(Status::BufError) if room_left => break, // nothing more to flush
                Ok(_) => out.reserve(out.capacity().max(64)),
                // Raw deflate into a growing Vec cannot fail; an error here is a bug in the
                // backend. Send the message stored instead of compressed garbage.
                Err(_) => {
                    out.truncate(start);
                    self.c.reset();
                    return self.stored(data, out);
                }
            }
        }
        if out[start..].ends_with(&TAIL) {
            out.truncate(out.len() - TAIL.len());
        }
        if self.reset_each {
            self.c.reset();
        }
    }

    /// `data` as stored (uncompressed) DEFLATE blocks: valid for any window.
    fn stored(&mut self, data: &[u8], out: &mut Vec<u8>) {
        let mut chunks = data.chunks(0xffff).peekable();
        if chunks.peek().is_none() {
            out.push(0x00);
            return;
        }
        for chunk in chunks {
            let n = chunk.len() as u16;
            out.push(0x00);
            out.extend_from_slice(&n.to_le_bytes());
            out.extend_from_slice(&(!n).to_le_bytes());
            out.extend_from_slice(chunk);
        }
    }
}

/// Why inflating a message failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InflateError {
    /// The inflated message would exceed the limit given.
    TooLarge,
    /// The compressed data is not a valid DEFLATE stream (or uses a larger window than agreed).
    Corrupt,
}

/// Inflates the messages of one direction of a connection.
pub struct Inflater {
    /// Made on first use: a connection that never sends a compressed message costs nothing.
    d: Option<Decompress>,
    window_bits: u8,
    reset_each: bool,
}

impl std::fmt::Debug for Inflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inflater")
            .field("reset_each", &self.reset_each)
            .finish()
    }
}

/// Smallest step the output buffer grows by.
const MIN_GROW: usize = 4 << 10;

impl Inflater {
    /// An inflater for a peer that compresses with at most `window_bits` (8-15; 8 is inflated
    /// with a 9-bit window, which decodes it); `no_context_takeover` resets it per message.
    pub fn new(window_bits: u8, no_context_takeover: bool) -> Self {
        Self {
            d: None,
            window_bits: window_bits.clamp(9, 15),
            reset_each: no_context_takeover,
        }
    }

    /// Inflates `input` (part of a message) onto `out`, never letting `out` hold more than
    /// `max` bytes: the output buffer grows geometrically with what was produced, and
    /// exceeding `max` fails before more than `max + 1` bytes are allocated.
    pub fn inflate(&mut self, input: &[u8], out: &mut Vec<u8>, max: usize) -> Result<(), InflateError> {
        self.inflate_some(input, out, max)?;
        if out.len() > max {
            return Err(InflateError::TooLarge);
        }
        Ok(())
    }

    /// Like [`Inflater::inflate`], but resumable: stops once `out` holds more than `max`
    /// bytes and returns how much of `input` it consumed. Called again with the rest of the
    /// input and a larger `max`, it goes on where it stopped.
    pub fn inflate_some(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        max: usize,
    ) -> Result<usize, InflateError> {
        let bits = self.window_bits;
        let d = self
            .d
            .get_or_insert_with(|| Decompress::new_with_window_bits(false, bits));
        let mut rest = input;
        loop {
            if out.len() == out.capacity() {
                if out.len() > max {
                    return Ok(input.len() - rest.len());
                }
                let want = (out.capacity() * 2).max(MIN_GROW).min(max + 1);
                out.reserve_exact(want - out.len());
            }
            let (in0, out0) = (d.total_in(), d.total_out());
            let status = d
                .decompress_vec(rest, out, FlushDecompress::None)
                .map_err(|_| InflateError::Corrupt)?;
            rest = &rest[(d.total_in() - in0) as usize..];
            if out.len() > max {
                return Ok(input.len() - rest.len());
            }
            if status == Status::StreamEnd {
                // A block with BFINAL set ends the stream (§7.2.3.3): what follows, if
                // anything, starts a new one.
                d.reset(false);
                if rest.is_empty() {
                    return Ok(input.len());
                }
                continue;
            }
            let progressed = d.total_in() != in0 || d.total_out() != out0;
            if out.len() < out.capacity() && (rest.is_empty() || !progressed) {
                return if rest.is_empty() {
                    Ok(input.len())
                } else {
                    Err(InflateError::Corrupt)
                };
            }
        }
    }

    /// Ends a message: inflates the four bytes the sender removed ([`TAIL`]), then resets
    /// the window if context takeover is off.
    pub fn finish(&mut self, out: &mut Vec<u8>, max: usize) -> Result<(), InflateError> {
        let r = self.inflate(&TAIL, out, max);
        if r.is_err() {
            self.d = None;
        }
        self.end_message();
        r
    }

    /// Ends a message whose [`TAIL`] the caller inflated itself: resets the window if
    /// context takeover is off.
    pub fn end_message(&mut self) {
        if self.reset_each {
            if let Some(d) = &mut self.d {
                d.reset(false);
            }
        }
    }
}
