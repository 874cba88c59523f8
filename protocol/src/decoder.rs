//! The incremental frame decoder and message assembler.
//!
//! [`Decoder`] owns a read buffer. Bytes go in with [`Decoder::read_buf`] +
//! [`Decoder::commit`] (read straight from a socket into the decoder, no extra copy) or with
//! [`Decoder::feed`]; complete messages come out of [`Decoder::next`], borrowed from the
//! decoder, so an unfragmented message is unmasked in place and handed out without a copy.
//! Input may be split anywhere, down to one byte at a time.
//!
//! The decoder enforces every RFC 6455 framing rule for its [`Role`], reassembles fragmented
//! messages while control frames arrive between the fragments, validates UTF-8 as text
//! arrives (so invalid text fails before the rest of the message is received) and applies the
//! size [`Limits`] from the frame header, before any payload is buffered.

use crate::close::{parse_close_payload, CloseFrame};
use crate::deflate::{Inflater, TAIL};
use crate::error::ProtocolError;
use crate::frame::{FrameHeader, OpCode};
use crate::mask::apply_mask_offset;
use crate::shared::{hand_out, Held, Kept, KeptMessage, Spares};
use crate::utf8::Utf8Validator;
use crate::Role;

/// Size limits applied by the [`Decoder`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Largest accepted frame payload, checked against the frame header before the payload is
    /// buffered. Default 16 MiB. Exceeding it fails the connection with 1009.
    pub max_frame_size: u64,
    /// Largest accepted message (the sum of its fragments), checked as each frame header
    /// arrives. Default 64 MiB. Exceeding it fails the connection with 1009.
    pub max_message_size: u64,
    /// Size of the read buffer when it is first needed, and what it shrinks back to after
    /// [`Decoder::release_idle`]. Default 4 KiB. A busy connection's reads grow (doubling while
    /// reads fill the buffer) up to 64 KiB, so one read serves many frames; a buffer of up to
    /// 64 KiB is kept between frames.
    pub read_chunk: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_frame_size: 16 << 20,
            max_message_size: 64 << 20,
            read_chunk: 4 << 10,
        }
    }
}

impl Limits {
    /// Sets [`Limits::max_frame_size`].
    pub fn max_frame_size(mut self, v: u64) -> Self {
        self.max_frame_size = v;
        self
    }
    /// Sets [`Limits::max_message_size`].
    pub fn max_message_size(mut self, v: u64) -> Self {
        self.max_message_size = v;
        self
    }
    /// Sets [`Limits::read_chunk`] (at least 64 bytes are used).
    pub fn read_chunk(mut self, v: usize) -> Self {
        self.read_chunk = v.max(64);
        self
    }
}

/// A complete message or control frame, borrowed from the [`Decoder`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message<'a> {
    /// A text message (validated UTF-8).
    Text(&'a str),
    /// A binary message.
    Binary(&'a [u8]),
    /// A ping; the endpoint should answer with a pong carrying the same payload.
    Ping(&'a [u8]),
    /// A pong.
    Pong(&'a [u8]),
    /// A close frame (validated). `None` when it carried no status code. After it the decoder
    /// yields nothing more.
    Close(Option<CloseFrame<'a>>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Binary,
}

#[derive(Debug, Clone, Copy)]
struct Current {
    header: FrameHeader,
    header_len: usize,
    /// Payload bytes already unmasked (and, for text, validated).
    done: usize,
    /// This frame's payload is text to validate incrementally.
    text: bool,
    /// This frame belongs to a compressed message: its payload is inflated as it arrives.
    compressed: bool,
    /// Bytes given to the inflater: payload, then (final frame) the four-byte tail.
    fed: usize,
}

/// Incremental RFC 6455 decoder; see the [module docs](self).
#[derive(Debug)]
pub struct Decoder {
    role: Role,
    limits: Limits,
    /// permessage-deflate, when negotiated: RSV1 marks a compressed message.
    inflater: Option<Inflater>,
    /// The kind of the compressed message in progress (`msg` holds its inflated bytes).
    compressed: Option<Kind>,
    /// The most bytes `msg` may reach while inflating (see `set_inflate_headroom`).
    inflate_cap: usize,
    /// Inflating stopped at `inflate_cap` (see `wants_memory`).
    wants_memory: bool,
    buf: Vec<u8>,
    pos: usize,
    filled: usize,
    cur: Option<Current>,
    frag: Option<Kind>,
    msg: Vec<u8>,
    clear_msg: bool,
    utf8: Utf8Validator,
    closed: bool,
    /// Current read size: adapts between `limits.read_chunk` and [`BUSY_CHUNK`].
    chunk: usize,
    /// Length of the region last handed out by `read_buf`.
    offered: usize,
    /// The last data frame was large: keep a large buffer for the next one.
    last_big: bool,
    /// Where the data message last returned by `next` is (for `keep`).
    last: Option<(Kind, Option<std::ops::Range<usize>>)>,
    /// Messages kept (`keep`) and not yet handed out: `(is_text, where)`.
    kept: Vec<(bool, Held)>,
    /// Messages handed out of the buffers before `take_kept` was called.
    ready: Kept,
    /// Read buffers given back by dropped payloads.
    spares: std::sync::Arc<Spares>,
}

/// Largest read size a busy connection grows to.
const BUSY_CHUNK: usize = 64 << 10;
/// Largest buffer kept between frames after a large frame.
const KEEP_BIG: usize = 4 << 20;

impl Decoder {
    /// A decoder for an endpoint playing `role`: a server expects masked frames, a client
    /// unmasked ones.
    pub fn new(role: Role, limits: Limits) -> Self {
        Self {
            role,
            limits,
            inflater: None,
            compressed: None,
            inflate_cap: usize::MAX,
            wants_memory: false,
            buf: Vec::new(),
            pos: 0,
            filled: 0,
            cur: None,
            frag: None,
            msg: Vec::new(),
            clear_msg: false,
            utf8: Utf8Validator::new(),
            closed: false,
            chunk: limits.read_chunk.max(64),
            offered: 0,
            last_big: false,
            last: None,
            kept: Vec::new(),
            ready: Kept::default(),
            spares: Spares::new(KEEP_BIG),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Turns on permessage-deflate (RFC 7692) with the inflater of the agreed parameters:
    /// from now on RSV1 on the first frame of a data message marks it compressed, and such
    /// messages come out of [`Decoder::next`] inflated. Without it, any RSV bit fails the
    /// connection with 1002.
    pub fn set_inflater(&mut self, inflater: Inflater) {
        self.inflater = Some(inflater);
    }

    /// Whether permessage-deflate is on.
    pub fn inflates(&self) -> bool {
        self.inflater.is_some()
    }

    /// Bounds the memory inflating may take from now on to `bytes` beyond the capacity the
    /// message buffer has now (for a server-wide budget; `max_message_size` applies anyway).
    /// When inflating reaches it, [`Decoder::next`] returns `Ok(None)` with
    /// [`Decoder::wants_memory`] set: give more headroom and call `next` again (before
    /// reading more), and inflating goes on where it stopped.
    pub fn set_inflate_headroom(&mut self, bytes: usize) {
        self.inflate_cap = self.msg.capacity().saturating_add(bytes);
        self.wants_memory = false;
    }

    /// Whether inflating stopped at the headroom given with
    /// [`Decoder::set_inflate_headroom`] and waits for more.
    pub fn wants_memory(&self) -> bool {
        self.wants_memory
    }

    /// Bytes the message buffer holds (the inflated message in progress, or fragments).
    pub fn message_capacity(&self) -> usize {
        self.msg.capacity()
    }

    /// Whether the peer's close frame has been decoded.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Bytes buffered but not yet decoded into a message.
    pub fn buffered(&self) -> usize {
        self.filled - self.pos
    }

    /// Bytes of memory held by the decoder's buffers (kept messages not yet taken and spare
    /// buffers included; not the buffers that taken messages hold).
    pub fn capacity(&self) -> usize {
        self.buf.len() + self.msg.capacity() + self.ready.footprint + self.spares.bytes()
    }

    /// Whether a message is in progress: a frame partly received, or a fragmented message
    /// whose final fragment has not arrived. (A deadline for finishing messages starts when
    /// this turns true.)
    pub fn in_message(&self) -> bool {
        self.cur.is_some() || self.frag.is_some() || self.filled > self.pos
    }

    /// Frees the buffers if nothing is in progress (no message, no buffered bytes); returns
    /// the bytes freed. For a connection gone quiet after a large message: the next read
    /// starts again from `limits.read_chunk`. Call it between reads, not between
    /// [`Decoder::read_buf`] and its [`Decoder::commit`].
    pub fn release_idle(&mut self) -> usize {
        if self.in_message() {
            return 0;
        }
        self.detach();
        let freed = self.buf.len() + self.msg.capacity() + self.spares.shrink(KEEP_BIG);
        self.buf = Vec::new();
        self.msg = Vec::new();
        self.pos = 0;
        self.filled = 0;
        self.clear_msg = false;
        self.compressed = None;
        self.last_big = false;
        self.chunk = self.limits.read_chunk.max(64);
        freed
    }

    /// A writable region to read input into; report how much was written with
    /// [`Decoder::commit`]. It is at least `limits.read_chunk` bytes, or larger while a big frame
    /// is arriving (growing with the data received, never from the header's length alone).
    pub fn read_buf(&mut self) -> &mut [u8] {
        self.detach();
        if self.clear_msg {
            self.release_msg();
        }
        let pending = self.filled - self.pos;
        if pending == 0 {
            self.pos = 0;
            self.filled = 0;
            // Shrink a buffer grown for a large frame, unless right after one (keep the room
            // for the next). Up to the largest read size it is kept: a busy connection's
            // read size goes up and down, and a buffer freed whenever it shrank was
            // allocated and zeroed again when it grew back.
            let keep = if self.last_big {
                KEEP_BIG
            } else {
                BUSY_CHUNK.max(self.limits.read_chunk)
            };
            if self.buf.len() > keep {
                self.buf = Vec::new();
            }
        }
        let (want, least) = self.room_wanted(pending);
        if self.buf.len() - self.filled < want {
            if self.pos > 0 {
                self.buf.copy_within(self.pos..self.filled, 0);
                self.filled -= self.pos;
                self.pos = 0;
            }
            if self.buf.len() - self.filled < least {
                self.buf.resize((self.filled + least).max(want), 0);
            }
        }
        let filled = self.filled;
        self.offered = self.buf.len() - filled;
        &mut self.buf[filled..]
    }

    /// The room `read_buf` wants to offer, and the least it accepts without growing the
    /// buffer: a chunk (half of one will do: with many small frames per read the buffer keeps
    /// its size rather than grow by the partial frame left at its front, and is not
    /// reallocated at every read), or for a big frame in progress up to what it still
    /// needs, growing at most geometrically with what has arrived.
    fn room_wanted(&self, pending: usize) -> (usize, usize) {
        let Some(c) = &self.cur else {
            return (self.chunk, self.chunk / 2);
        };
        let total = c.header_len as u64 + c.header.payload_len;
        let missing = total.saturating_sub(pending as u64) as usize;
        let want = missing.min(pending.max(64 << 10));
        if want > self.chunk {
            (want, want)
        } else {
            (self.chunk, self.chunk / 2)
        }
    }

    /// Marks `n` bytes of the region returned by [`Decoder::read_buf`] as filled.
    pub fn commit(&mut self, n: usize) {
        assert!(self.filled + n <= self.buf.len(), "commit beyond read_buf");
        self.filled += n;
        // Adapt the read size: a read that filled the region asks for more next time; reads
        // much smaller than the chunk let it shrink back.
        if n > 0 && n >= self.offered {
            self.chunk = (self.chunk * 2).min(BUSY_CHUNK.max(self.limits.read_chunk));
        } else if n < self.chunk / 4 {
            self.chunk = (self.chunk / 2).max(self.limits.read_chunk.max(64));
        }
    }

    /// Copies `data` into the decoder's buffer.
    pub fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let spare = self.read_buf();
            let n = spare.len().min(data.len());
            spare[..n].copy_from_slice(&data[..n]);
            self.commit(n);
            data = &data[n..];
        }
    }

    fn release_msg(&mut self) {
        self.msg.clear();
        if self.msg.capacity() > (64 << 10) {
            self.msg = Vec::new();
        }
        self.clear_msg = false;
    }

    /// The checks of one frame header; `Ok((text, compressed))`: whether its payload is text to
    /// validate as it arrives, and whether it belongs to a compressed message.
    fn check_header(&self, h: &FrameHeader) -> Result<(bool, bool), ProtocolError> {
        // RSV1 only with permessage-deflate, and only on a message's first frame (§6.1).
        let rsv1_ok = self.inflater.is_some() && matches!(h.opcode, OpCode::Text | OpCode::Binary);
        if h.rsv2 || h.rsv3 || (h.rsv1 && !rsv1_ok) {
            return Err(ProtocolError::ReservedBitsSet);
        }
        match (self.role, h.mask.is_some()) {
            (Role::Server, false) => return Err(ProtocolError::UnmaskedFrame),
            (Role::Client, true) => return Err(ProtocolError::MaskedFrame),
            _ => {}
        }
        if h.opcode.is_control() {
            if !h.fin {
                return Err(ProtocolError::FragmentedControlFrame);
            }
            if h.payload_len > 125 {
                return Err(ProtocolError::ControlFrameTooLong(h.payload_len));
            }
            return Ok((false, false));
        }
        if h.payload_len > self.limits.max_frame_size {
            return Err(ProtocolError::FrameTooLarge {
                size: h.payload_len,
                max: self.limits.max_frame_size,
            });
        }
        let text = match (h.opcode, self.frag) {
            (OpCode::Continuation, None) => return Err(ProtocolError::UnexpectedContinuation),
            (OpCode::Continuation, Some(k)) => k == Kind::Text,
            (_, Some(_)) => return Err(ProtocolError::ExpectedContinuation),
            (op, None) => op == OpCode::Text,
        };
        let compressed = if h.opcode == OpCode::Continuation {
            self.compressed.is_some()
        } else {
            h.rsv1
        };
        // A compressed message's size is checked as it inflates; its wire size cannot exceed
        // the limit either way for deflate's worst case to stay bounded.
        let size = self.msg.len() as u64 + h.payload_len;
        if !compressed && size > self.limits.max_message_size {
            return Err(ProtocolError::MessageTooLarge {
                size,
                max: self.limits.max_message_size,
            });
        }
        // Compressed text is validated on the inflated bytes instead.
        Ok((text && !compressed, compressed))
    }

    /// Feeds the inflater what it has not had of the current (compressed) frame: the payload
    /// unmasked so far and, after the final frame's payload, the [`TAIL`]; `Ok(true)` once it
    /// has had everything. Stops early, asking for memory (`wants_memory`), when the output
    /// reaches the headroom; fails when it would pass `max_message_size`.
    fn feed_inflater(&mut self, start: usize) -> Result<bool, ProtocolError> {
        let Some(mut c) = self.cur else {
            return Ok(true);
        };
        let len = c.header.payload_len as usize;
        let total = len + if c.header.fin { TAIL.len() } else { 0 };
        let limit = usize::try_from(self.limits.max_message_size).unwrap_or(usize::MAX);
        let max = limit.min(self.inflate_cap);
        let Some(inf) = self.inflater.as_mut() else {
            return Err(ProtocolError::ReservedBitsSet);
        };
        while c.fed < total {
            let input = if c.fed < len {
                &self.buf[start + c.fed..start + c.done]
            } else if c.done == len {
                &TAIL[c.fed - len..]
            } else {
                break;
            };
            if input.is_empty() {
                break;
            }
            let from = self.msg.len();
            let n = inf
                .inflate_some(input, &mut self.msg, max)
                .map_err(|_| ProtocolError::InvalidCompressedData)?;
            c.fed += n;
            if self.compressed == Some(Kind::Text) {
                self.utf8
                    .feed(&self.msg[from..])
                    .map_err(|_| ProtocolError::InvalidUtf8)?;
            }
            if self.msg.len() > max {
                break;
            }
        }
        self.cur = Some(c);
        // Over the limit: an error; over the headroom: wait for more, even if every byte has
        // been fed (the message is not handed out beyond what was granted).
        if self.msg.len() > max {
            if max == limit {
                return Err(ProtocolError::MessageTooLarge {
                    size: self.msg.len() as u64,
                    max: self.limits.max_message_size,
                });
            }
            self.wants_memory = true;
            return Ok(false);
        }
        if c.fed == total && c.header.fin {
            inf.end_message();
        }
        Ok(c.fed == total)
    }

    /// Decodes the next complete message or control frame.
    ///
    /// `Ok(None)` means more input is needed. An `Err` is a protocol violation: the endpoint
    /// should send a close frame with [`ProtocolError::close_code`] and stop reading. After a
    /// close frame has been returned, this always returns `Ok(None)`.
    #[allow(clippy::should_implement_trait)] // borrows from self: not an `Iterator`
    pub fn next(&mut self) -> Result<Option<Message<'_>>, ProtocolError> {
        if self.clear_msg {
            self.release_msg();
        }
        loop {
            if self.closed {
                return Ok(None);
            }
            let Some(cur) = self.current()? else {
                return Ok(None);
            };
            let Some(start) = self.take_payload(cur)? else {
                return Ok(None);
            };
            if let Some(out) = self.complete(cur, start)? {
                self.last = match &out {
                    Out::Data(k, r) => Some((*k, r.clone())),
                    _ => None,
                };
                return self.emit(out).map(Some);
            }
        }
    }

    /// Keeps the data message just returned by [`Decoder::next`], to be handed out by
    /// [`Decoder::take_kept`] as a shared payload that outlives the borrow (see
    /// [`crate::shared`]). Does nothing after a control frame or `Ok(None)`.
    pub fn keep(&mut self) {
        let Some((kind, at)) = self.last.take() else {
            return;
        };
        let held = match at {
            Some(r) => Held::Buf(r),
            None => Held::Own(std::mem::take(&mut self.msg)),
        };
        self.kept.push((kind == Kind::Text, held));
    }

    /// The messages kept since the last call, in order. Those lying in the read buffer share
    /// it (the decoder goes on in a spare one) or, when they fill less than a quarter of it,
    /// a copy of them. Reading more input hands kept messages out too (they wait here).
    pub fn take_kept(&mut self) -> Kept {
        let mut messages = Vec::new();
        let footprint = self.take_kept_into(&mut messages);
        Kept { messages, footprint }
    }

    /// [`Decoder::take_kept`] into `out` (appended; a vector reused read after read saves an
    /// allocation per read); returns their footprint (see [`Kept::footprint`]).
    pub fn take_kept_into(&mut self, out: &mut Vec<KeptMessage>) -> usize {
        self.detach();
        out.append(&mut self.ready.messages);
        std::mem::take(&mut self.ready.footprint)
    }

    /// Hands the kept messages out of the buffers (before the read buffer is changed).
    fn detach(&mut self) {
        if self.kept.is_empty() {
            return;
        }
        let (pos, filled) = (self.pos, self.filled);
        let spares = self.spares.clone();
        let mut moved = false;
        hand_out(
            &mut self.kept,
            &mut self.buf,
            |old: &[u8]| {
                moved = true;
                // Any spare holding what is left will do (the next read grows it if need be).
                let left = filled - pos;
                let mut fresh = spares.take(left.max(64)).unwrap_or_else(|| vec![0; old.len()]);
                fresh[..left].copy_from_slice(&old[pos..filled]);
                fresh
            },
            &self.spares,
            &mut self.ready,
        );
        if moved {
            self.filled -= self.pos;
            self.pos = 0;
        }
    }

    /// The frame being received: the one in progress, or a new one whose header has arrived.
    fn current(&mut self) -> Result<Option<Current>, ProtocolError> {
        if let Some(c) = self.cur {
            return Ok(Some(c));
        }
        let Some((header, header_len)) = FrameHeader::parse(&self.buf[self.pos..self.filled])? else {
            return Ok(None);
        };
        let (text, compressed) = self.check_header(&header)?;
        if let Some(kind) = Kind::of(header.opcode) {
            if kind == Kind::Text {
                self.utf8.reset();
            }
            self.compressed = compressed.then_some(kind);
        }
        let c = Current {
            header,
            header_len,
            done: 0,
            text,
            compressed,
            fed: 0,
        };
        self.cur = Some(c);
        Ok(Some(c))
    }

    /// Unmasks (validates, inflates) what has arrived of the current frame's payload; the
    /// payload's start once all of it is there.
    fn take_payload(&mut self, cur: Current) -> Result<Option<usize>, ProtocolError> {
        let start = self.pos + cur.header_len;
        let avail = self.filled - start;
        let len = cur.header.payload_len as usize; // bounded by the limits checked above
        let complete = avail >= len;
        let upto = avail.min(len);
        if upto > cur.done {
            let piece = start + cur.done..start + upto;
            match cur.header.mask {
                Some(k) if cur.done == 0 => crate::mask::apply_mask(&mut self.buf[piece.clone()], k),
                Some(k) => apply_mask_offset(&mut self.buf[piece.clone()], k, cur.done),
                None => {}
            }
            // A whole unfragmented text message is validated once, when it is handed out.
            let whole = complete && cur.done == 0 && cur.header.fin && self.frag.is_none();
            if cur.compressed {
                // Inflated below, with what is left over from a stop for memory.
            } else if cur.text && !whole {
                self.utf8
                    .feed(&self.buf[piece])
                    .map_err(|_| ProtocolError::InvalidUtf8)?;
            }
            if let Some(c) = self.cur.as_mut() {
                c.done = upto;
            }
        }
        if cur.compressed && !self.feed_inflater(start)? {
            return Ok(None);
        }
        Ok(complete.then_some(start))
    }

    /// The current frame is complete in `buf[start..]`: what it gives, if anything yet.
    fn complete(&mut self, cur: Current, start: usize) -> Result<Option<Out>, ProtocolError> {
        let h = cur.header;
        let len = h.payload_len as usize;
        self.cur = None;
        if !h.opcode.is_control() {
            self.last_big = len > BUSY_CHUNK;
        }
        self.pos = start + len;
        let range = start..start + len;
        let kind = Kind::of(h.opcode).or(self.frag);
        Ok(match h.opcode {
            OpCode::Ping => Some(Out::Ping(range)),
            OpCode::Pong => Some(Out::Pong(range)),
            OpCode::Close => {
                parse_close_payload(&self.buf[range.clone()])?;
                self.closed = true;
                Some(Out::Close(range))
            }
            _ if !h.fin => {
                self.frag = kind;
                if !cur.compressed {
                    self.msg.extend_from_slice(&self.buf[range]);
                }
                None
            }
            _ if cur.compressed => {
                self.frag = None;
                self.compressed = None;
                self.clear_msg = true;
                kind.map(|k| Out::Data(k, None))
            }
            OpCode::Continuation => {
                self.msg.extend_from_slice(&self.buf[range]);
                self.frag = None;
                self.clear_msg = true;
                kind.map(|k| Out::Data(k, None))
            }
            _ => kind.map(|k| Out::Data(k, Some(range))),
        })
    }

    /// The message `out` describes, borrowed from the buffers.
    fn emit(&self, out: Out) -> Result<Message<'_>, ProtocolError> {
        Ok(match out {
            Out::Ping(r) => Message::Ping(&self.buf[r]),
            Out::Pong(r) => Message::Pong(&self.buf[r]),
            Out::Close(r) => Message::Close(parse_close_payload(&self.buf[r])?),
            Out::Data(kind, r) => {
                let payload = match r {
                    Some(r) => &self.buf[r],
                    None => &self.msg[..],
                };
                match kind {
                    // Fragments were checked as they came (fail fast); this one pass over the
                    // whole message also catches an unfinished character at the end, and
                    // gives the `&str`.
                    Kind::Text => Message::Text(
                        simdutf8::basic::from_utf8(payload).map_err(|_| ProtocolError::InvalidUtf8)?,
                    ),
                    Kind::Binary => Message::Binary(payload),
                }
            }
        })
    }
}

/// What a completed frame gives, as positions in the decoder's buffers (so that the borrow
/// is taken only once, in `emit`).
enum Out {
    Ping(std::ops::Range<usize>),
    Pong(std::ops::Range<usize>),
    Close(std::ops::Range<usize>),
    /// A data message: in `buf` (an unfragmented, uncompressed frame) or `None`: in `msg`.
    Data(Kind, Option<std::ops::Range<usize>>),
}

impl Kind {
    fn of(op: OpCode) -> Option<Self> {
        match op {
            OpCode::Text => Some(Self::Text),
            OpCode::Binary => Some(Self::Binary),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::write_frame;

    fn frame(op: OpCode, fin: bool, payload: &[u8]) -> Vec<u8> {
        let mut h = FrameHeader::new(op, payload.len() as u64, Some([9, 8, 7, 6]));
        h.fin = fin;
        let mut v = Vec::new();
        write_frame(&mut v, h, payload);
        v
    }

    fn server() -> Decoder {
        Decoder::new(Role::Server, Limits::default())
    }

    fn first_err(bytes: &[u8]) -> ProtocolError {
        let mut d = server();
        d.feed(bytes);
        loop {
            match d.next() {
                Err(e) => return e,
                Ok(Some(_)) => continue,
                Ok(None) => panic!("no error"),
            }
        }
    }

    #[test]
    fn single_and_fragmented_with_interleaved_ping() {
        let mut bytes = frame(OpCode::Text, false, b"Hel");
        bytes.extend(frame(OpCode::Ping, true, b"p"));
        bytes.extend(frame(OpCode::Continuation, true, b"lo"));
        bytes.extend(frame(OpCode::Binary, true, &[1, 2, 3]));
        for step in 1..=bytes.len() {
            let mut d = server();
            let mut out = Vec::new();
            for chunk in bytes.chunks(step) {
                d.feed(chunk);
                while let Some(m) = d.next().unwrap() {
                    out.push(format!("{m:?}"));
                }
            }
            assert_eq!(
                out,
                ["Ping([112])", "Text(\"Hello\")", "Binary([1, 2, 3])"],
                "step {step}"
            );
        }
    }

    #[test]
    fn rejections() {
        let mut unmasked = Vec::new();
        write_frame(&mut unmasked, FrameHeader::new(OpCode::Text, 1, None), b"a");
        assert_eq!(first_err(&unmasked), ProtocolError::UnmaskedFrame);
        let mut rsv = frame(OpCode::Text, true, b"a");
        rsv[0] |= 0x40;
        assert_eq!(first_err(&rsv), ProtocolError::ReservedBitsSet);
        assert_eq!(
            first_err(&frame(OpCode::Ping, false, b"")),
            ProtocolError::FragmentedControlFrame
        );
        assert_eq!(
            first_err(&frame(OpCode::Ping, true, &[0; 126])),
            ProtocolError::ControlFrameTooLong(126)
        );
        assert_eq!(
            first_err(&frame(OpCode::Continuation, true, b"x")),
            ProtocolError::UnexpectedContinuation
        );
        let mut two = frame(OpCode::Text, false, b"a");
        two.extend(frame(OpCode::Text, true, b"b"));
        assert_eq!(first_err(&two), ProtocolError::ExpectedContinuation);
        assert_eq!(
            first_err(&frame(OpCode::Text, true, &[0xff])),
            ProtocolError::InvalidUtf8
        );
        assert_eq!(
            first_err(&frame(OpCode::Close, true, &[1])),
            ProtocolError::InvalidClosePayload
        );
        assert_eq!(
            first_err(&frame(OpCode::Close, true, &[0x03, 0xed])),
            ProtocolError::InvalidCloseCode(1005)
        );
        let mut client = Decoder::new(Role::Client, Limits::default());
        client.feed(&frame(OpCode::Text, true, b"a"));
        assert_eq!(client.next(), Err(ProtocolError::MaskedFrame));
    }

    #[test]
    fn limits_checked_from_header() {
        let mut d = Decoder::new(
            Role::Server,
            Limits::default().max_frame_size(10).max_message_size(15),
        );
        // Header only: announces 11 bytes; rejected before any payload arrives.
        d.feed(&[0x82, 0x80 | 11, 1, 2, 3, 4]);
        assert_eq!(d.next(), Err(ProtocolError::FrameTooLarge { size: 11, max: 10 }));
        let mut d = Decoder::new(
            Role::Server,
            Limits::default().max_frame_size(10).max_message_size(15),
        );
        d.feed(&frame(OpCode::Binary, false, &[0; 10]));
        assert_eq!(d.next(), Ok(None));
        d.feed(&[0x80, 0x80 | 6, 1, 2, 3, 4]);
        assert_eq!(
            d.next(),
            Err(ProtocolError::MessageTooLarge { size: 16, max: 15 })
        );
        // A huge announced length does not allocate: the read buffer stays small.
        let mut d = server();
        d.feed(&[0x82, 0xFF, 0, 0, 0, 0, 0, 0xF0, 0, 1, 2, 3, 4]);
        assert_eq!(d.next(), Ok(None));
        assert!(d.read_buf().len() <= 64 << 10);
    }

    #[test]
    fn invalid_utf8_fails_before_the_message_ends() {
        let mut d = server();
        // First fragment carries an invalid byte; the final fragment never arrives.
        d.feed(&frame(OpCode::Text, false, b"ok\xf8"));
        assert_eq!(d.next(), Err(ProtocolError::InvalidUtf8));
        // Inside one frame whose payload has only partly arrived.
        let mut d = server();
        let f = frame(OpCode::Text, true, b"hello\xc0world and more");
        d.feed(&f[..6 + 7]);
        assert_eq!(d.next(), Err(ProtocolError::InvalidUtf8));
    }

    #[test]
    fn in_message_and_release_idle() {
        let mut d = server();
        assert!(!d.in_message());
        let big = vec![b'x'; 1 << 20];
        let f = frame(OpCode::Binary, false, &big);
        d.feed(&f[..10]);
        assert!(d.in_message(), "a frame header and a little payload");
        assert_eq!(d.release_idle(), 0, "nothing is freed mid-message");
        d.feed(&f[10..]);
        assert!(matches!(d.next(), Ok(None)), "first fragment only");
        assert!(d.in_message(), "the final fragment is still to come");
        d.feed(&frame(OpCode::Continuation, true, b"end"));
        assert!(matches!(d.next(), Ok(Some(Message::Binary(b))) if b.len() == (1 << 20) + 3));
        assert!(!d.in_message());
        // One large unfragmented frame leaves a large buffer behind, kept for the next one.
        d.feed(&frame(OpCode::Binary, true, &big));
        assert!(matches!(d.next(), Ok(Some(Message::Binary(b))) if b.len() == 1 << 20));
        let _ = d.read_buf();
        assert!(d.capacity() >= 1 << 20, "the large buffer is kept for a while");
        assert!(d.release_idle() >= 1 << 20);
        assert_eq!(d.capacity(), 0);
        d.feed(&frame(OpCode::Text, true, b"again"));
        assert!(matches!(d.next(), Ok(Some(Message::Text("again")))));
    }

    #[test]
    fn nothing_after_close() {
        let mut d = server();
        let mut b = frame(OpCode::Close, true, &[0x03, 0xe8]);
        b.extend(frame(OpCode::Text, true, b"late"));
        d.feed(&b);
        assert!(matches!(d.next(), Ok(Some(Message::Close(Some(_))))));
        assert!(d.is_closed());
        assert_eq!(d.next(), Ok(None));
    }
}
