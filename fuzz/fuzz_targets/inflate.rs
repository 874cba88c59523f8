//! The inflating [`Decoder`] (permessage-deflate). The first five bytes choose the options, the
//! rest is used according to the mode (bits 6-7 of byte 0):
//!
//! * raw: wire bytes, decoded whole and in chunks: the same messages, then the same first
//!   error (or, from a compressed text message, InvalidUtf8 found earlier in the smaller piece);
//! * payloads: the bytes become the payloads of well-formed frames (RSV1 on the first frame of a
//!   compressed message, masked for a server), checked against one `Inflater` fed each whole
//!   message;
//! * round trip: the bytes are messages, compressed with `Compressor`, fragmented and decoded:
//!   each comes back exactly, or fails with MessageTooLarge exactly when it is over the limit.
//!
//! Everywhere: no panic, every error maps to 1002/1007/1009, decoder memory stays within
//! `max_message_size + 2 × (bytes fed) + 256 KiB`, and `next()` after an error does not panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use syncws_protocol::deflate::{Compressor, InflateError, Inflater};
use syncws_protocol::frame::write_frame;
use syncws_protocol::{Decoder, FrameHeader, Limits, Message, OpCode, ProtocolError, Role};

/// The options, from the first five bytes (missing bytes count as zero).
#[derive(Debug, Clone, Copy)]
struct Options {
    role: Role,
    no_context_takeover: bool,
    window_bits: u8,
    max_message_size: usize,
    /// `set_inflate_headroom`, if set.
    headroom: Option<usize>,
    /// When the decoder stops at the headroom (`wants_memory`), give it this much more.
    regrant: Option<usize>,
    read_buf: bool,
    small_read_chunk: bool,
    mode: u8,
    level: u32,
    /// The compressor's window (at most the inflater's) and whether it resets per message.
    compressor_bits: u8,
    compressor_reset: bool,
    /// 0: everything at once; else the seed of the chunk sizes.
    chunk_seed: u8,
    mask_seed: u8,
}

impl Options {
    /// Byte 0: bit 0 client, bit 1 no context takeover, bits 2-3 max_message_size (4096,
    /// 64 KiB, 256 KiB, 200), bit 4 headroom, bit 5 `read_buf`/`commit`, bits 6-7 mode.
    /// Byte 1: bits 0-2 window bits (9 + n % 7), bit 3 small read chunk, bits 4-7 level.
    /// Byte 2: headroom in 256-byte units. Byte 3: chunk seed. Byte 4: bits 0-3 compressor
    /// window, bit 6 more headroom (at least 1 KiB) each time the decoder asks, bit 7
    /// compressor without context takeover; all of it the mask seed.
    fn parse(data: &[u8]) -> (Self, &[u8]) {
        let mut h = [0u8; 5];
        let n = data.len().min(5);
        h[..n].copy_from_slice(&data[..n]);
        let window_bits = 9 + (h[1] & 7) % 7;
        let no_context_takeover = h[0] & 2 != 0;
        let o = Self {
            role: if h[0] & 1 != 0 { Role::Client } else { Role::Server },
            no_context_takeover,
            window_bits,
            max_message_size: [4096, 64 << 10, 256 << 10, 200][usize::from(h[0] >> 2 & 3)],
            headroom: (h[0] & 0x10 != 0).then(|| usize::from(h[2]) * 256),
            regrant: (h[0] & 0x10 != 0 && h[4] & 0x40 != 0).then(|| (usize::from(h[2]) * 256).max(1024)),
            read_buf: h[0] & 0x20 != 0,
            small_read_chunk: h[1] & 8 != 0,
            mode: h[0] >> 6,
            level: u32::from(h[1] >> 4) % 10,
            compressor_bits: 9 + (h[4] & 15) % (window_bits - 8),
            compressor_reset: no_context_takeover || h[4] & 0x80 != 0,
            chunk_seed: h[3],
            mask_seed: h[4],
        };
        (o, &data[n..])
    }

    fn decoder(&self) -> Decoder {
        let mut limits = Limits::default().max_message_size(self.max_message_size as u64);
        if self.small_read_chunk {
            limits = limits.read_chunk(64);
        }
        let mut d = Decoder::new(self.role, limits);
        d.set_inflater(self.inflater());
        if let Some(h) = self.headroom {
            d.set_inflate_headroom(h);
        }
        d
    }

    fn inflater(&self) -> Inflater {
        Inflater::new(self.window_bits, self.no_context_takeover)
    }

    /// The most a compressed message may inflate to before the decoder stops and waits for
    /// more headroom (`max_message_size` if it never waits or is always given more).
    fn inflate_limit(&self) -> usize {
        match (self.headroom, self.regrant) {
            (Some(h), None) => self.max_message_size.min(h),
            _ => self.max_message_size,
        }
    }
}

/// An owned copy of a decoded message, or the error that ended decoding.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<(u16, String)>),
    Error(ProtocolError),
}

impl From<Message<'_>> for Event {
    fn from(m: Message<'_>) -> Self {
        match m {
            Message::Text(s) => Event::Text(s.to_owned()),
            Message::Binary(b) => Event::Binary(b.to_vec()),
            Message::Ping(b) => Event::Ping(b.to_vec()),
            Message::Pong(b) => Event::Pong(b.to_vec()),
            Message::Close(f) => Event::Close(f.map(|f| (f.code.0, f.reason.to_owned()))),
        }
    }
}

/// The size at which a message was found too large depends on how the output buffer grew;
/// the limit does not.
fn normalize(e: ProtocolError) -> ProtocolError {
    match e {
        ProtocolError::MessageTooLarge { max, .. } => ProtocolError::MessageTooLarge { size: 0, max },
        e => e,
    }
}

/// Pulls messages until more input is needed; `false` once an error ended decoding.
fn drain(d: &mut Decoder, out: &mut Vec<Event>) -> bool {
    loop {
        match d.next() {
            Ok(Some(m)) => out.push(m.into()),
            Ok(None) => return true,
            Err(e) => {
                assert!(matches!(e.close_code().0, 1002 | 1007 | 1009), "{e:?}");
                out.push(Event::Error(normalize(e)));
                return false;
            }
        }
    }
}

fn write_chunk(d: &mut Decoder, mut chunk: &[u8], via_read_buf: bool) {
    if !via_read_buf {
        d.feed(chunk);
        return;
    }
    while !chunk.is_empty() {
        let spare = d.read_buf();
        assert!(!spare.is_empty());
        let n = spare.len().min(chunk.len());
        spare[..n].copy_from_slice(&chunk[..n]);
        d.commit(n);
        chunk = &chunk[n..];
    }
}

/// Pulls messages; when the decoder stops at its inflate headroom and the options say so,
/// gives it more and goes on, checking that every grant lets inflating make progress.
fn drain_granting(o: &Options, d: &mut Decoder, out: &mut Vec<Event>) -> bool {
    loop {
        if !drain(d, out) {
            return false;
        }
        let Some(more) = o.regrant.filter(|_| d.wants_memory()) else {
            return true;
        };
        let before = (d.message_capacity(), out.len());
        d.set_inflate_headroom(more);
        assert!(!d.wants_memory());
        if !drain(d, out) {
            return false;
        }
        assert!(
            !d.wants_memory() || d.message_capacity() > before.0 || out.len() > before.1,
            "a grant of {more} bytes made no progress"
        );
        if !d.wants_memory() {
            return true;
        }
    }
}

/// Decodes `wire` in the chunks the options give; checks the memory bound after every chunk
/// and that `next()` keeps working (without panicking) after an error. Also returns whether
/// the decoder was left waiting for inflate headroom.
fn decode(o: &Options, wire: &[u8], chunked: bool) -> (Vec<Event>, bool) {
    let mut d = o.decoder();
    let mut got = Vec::new();
    let mut rng = u32::from(o.chunk_seed).wrapping_mul(0x9e37_79b9) | 1;
    let mut at = 0;
    let mut ok = true;
    while ok && at < wire.len() {
        let size = if !chunked || o.chunk_seed == 0 {
            wire.len()
        } else {
            rng ^= rng << 13;
            rng ^= rng >> 17;
            rng ^= rng << 5;
            let span = usize::from(o.chunk_seed) * if o.chunk_seed & 0x80 != 0 { 64 } else { 2 };
            1 + rng as usize % span
        };
        let end = (at + size).min(wire.len());
        write_chunk(&mut d, &wire[at..end], o.read_buf);
        at = end;
        ok = drain_granting(o, &mut d, &mut got);
        let bound = o.max_message_size + 2 * at + (256 << 10);
        assert!(
            d.capacity() <= bound,
            "capacity {} after {at} bytes (bound {bound})",
            d.capacity()
        );
    }
    if !ok {
        // Further calls, and more input, must not panic.
        for _ in 0..3 {
            let _ = d.next();
        }
        write_chunk(&mut d, &wire[at..], o.read_buf);
        for _ in 0..3 {
            let _ = d.next();
        }
    } else if matches!(got.last(), Some(Event::Close(_))) {
        assert!(d.is_closed());
        assert_eq!(d.next(), Ok(None));
    }
    (got, ok && d.wants_memory())
}

/// Whether two first errors may both be right: the same, or InvalidUtf8 found in a smaller
/// piece of compressed text before the larger piece's later error.
fn same_failure(a: &ProtocolError, b: &ProtocolError) -> bool {
    let later = |e: &ProtocolError| {
        matches!(
            e,
            ProtocolError::MessageTooLarge { .. } | ProtocolError::InvalidCompressedData
        )
    };
    a == b || (*a == ProtocolError::InvalidUtf8 && later(b)) || (*b == ProtocolError::InvalidUtf8 && later(a))
}

/// What decoding is expected to give: events, then possibly the decoder waiting for more
/// inflate headroom (`Some(text)`: in a text message, where invalid UTF-8 inflated before
/// the stop may fail it instead).
struct Want {
    events: Vec<Event>,
    waiting: Option<bool>,
}

/// `got` is `want`, except that the final error may be any `same_failure` of the one wanted.
/// With `ping`, pings are left out and only their payload is checked: whether the ping inside
/// a failing message comes out before its error depends on where in the message it fails.
fn check((mut got, waiting): (Vec<Event>, bool), want: Want, ping: Option<&[u8]>) {
    match want.waiting {
        None => assert!(!waiting, "waiting for headroom after {got:?}"),
        Some(text) if !waiting => {
            assert!(text, "did not wait for headroom: {got:?}");
            let e = got.pop();
            assert_eq!(e, Some(Event::Error(ProtocolError::InvalidUtf8)), "{got:?}");
        }
        Some(_) => {}
    }
    let want = want.events;
    let strip = |v: &[Event]| -> Vec<Event> {
        v.iter()
            .filter(|e| match (e, ping) {
                (Event::Ping(p), Some(ping)) => {
                    assert_eq!(p, ping);
                    false
                }
                _ => true,
            })
            .cloned()
            .collect()
    };
    let (got, want) = (strip(&got), strip(&want));
    match (got.last(), want.last()) {
        (Some(Event::Error(a)), Some(Event::Error(b))) if got.len() == want.len() => {
            assert_eq!(got[..got.len() - 1], want[..want.len() - 1]);
            assert!(same_failure(a, b), "error {a:?}, expected {b:?}");
        }
        _ => assert_eq!(got, want),
    }
}

/// A frame; masked with a key derived from the seed and the frame number when the decoder is
/// a server.
fn frame(o: &Options, n: &mut u8, op: OpCode, fin: bool, rsv1: bool, payload: &[u8], out: &mut Vec<u8>) {
    let mask = (o.role == Role::Server).then(|| {
        *n = n.wrapping_add(1);
        let s = o.mask_seed ^ *n;
        [s, s.rotate_left(3) ^ 0x5a, s.wrapping_mul(7), !s]
    });
    let mut h = FrameHeader::new(op, payload.len() as u64, mask);
    h.fin = fin;
    h.rsv1 = rsv1;
    write_frame(out, h, payload);
}

/// A length: one byte, or with its top bit set, 15 bits over two bytes.
fn take_len(data: &mut &[u8]) -> usize {
    let Some((&b, rest)) = data.split_first() else {
        return 0;
    };
    *data = rest;
    if b & 0x80 == 0 {
        return usize::from(b);
    }
    let Some((&c, rest)) = data.split_first() else {
        return usize::from(b & 0x7f);
    };
    *data = rest;
    usize::from(b & 0x7f) << 8 | usize::from(c)
}

fn take<'a>(data: &mut &'a [u8], n: usize) -> &'a [u8] {
    let (a, b) = data.split_at(n.min(data.len()));
    *data = b;
    a
}

const PING: &[u8] = b"p";

/// Splits `payload` into `frags` frames, cut where the seed says, with a ping after the first
/// if asked; RSV1 on the first frame if `compressed`.
#[allow(clippy::too_many_arguments)]
fn message(
    o: &Options,
    n: &mut u8,
    text: bool,
    compressed: bool,
    ping: bool,
    frags: usize,
    payload: &[u8],
    out: &mut Vec<u8>,
) {
    let mut cuts: Vec<usize> = (1..frags)
        .map(|i| {
            let x = (i * 0x9e37 + usize::from(o.mask_seed) * 31) % 97;
            payload.len() * x / 97
        })
        .collect();
    cuts.sort_unstable();
    cuts.push(payload.len());
    let mut start = 0;
    for (i, &end) in cuts.iter().enumerate() {
        let op = match (i, text) {
            (0, true) => OpCode::Text,
            (0, false) => OpCode::Binary,
            _ => OpCode::Continuation,
        };
        let last = i + 1 == cuts.len();
        frame(o, n, op, last, compressed && i == 0, &payload[start..end], out);
        if i == 0 && ping && !last {
            frame(o, n, OpCode::Ping, true, false, PING, out);
        }
        start = end;
    }
}

/// What a whole message gives: text or binary, or `InvalidUtf8` for text that is not UTF-8.
fn outcome(text: bool, bytes: Vec<u8>) -> Event {
    match (text, String::from_utf8(bytes)) {
        (true, Ok(s)) => Event::Text(s),
        (true, Err(_)) => Event::Error(ProtocolError::InvalidUtf8),
        (false, Ok(s)) => Event::Binary(s.into_bytes()),
        (false, Err(e)) => Event::Binary(e.into_bytes()),
    }
}

/// Fuzzer bytes as the payloads of well-formed messages. Per message: a descriptor (bit 0
/// text, bit 1 compressed, bit 2 a ping between fragments, bits 3-7 fragments - 1), a length,
/// that many payload bytes (the whole message's payload, cut into the fragments).
fn payloads(o: &Options, mut data: &[u8]) {
    let mut wire = Vec::new();
    let mut want = Vec::new();
    let mut reference = o.inflater();
    let limit = o.inflate_limit();
    let mut waiting = None;
    let mut n = 0;
    while let Some((&c, rest)) = data.split_first() {
        data = rest;
        let (text, compressed, ping) = (c & 1 != 0, c & 2 != 0, c & 4 != 0);
        let frags = usize::from(c >> 3) + 1;
        let len = take_len(&mut data);
        let payload = take(&mut data, len);
        message(o, &mut n, text, compressed, ping, frags, payload, &mut wire);
        if ping && frags > 1 {
            want.push(Event::Ping(PING.to_vec()));
        }
        let event = if compressed {
            let mut out = Vec::new();
            let r = reference
                .inflate(payload, &mut out, limit)
                .and_then(|()| reference.finish(&mut out, limit));
            match r {
                Ok(()) => outcome(text, out),
                Err(InflateError::TooLarge) if limit < o.max_message_size => {
                    waiting = Some(text);
                    break;
                }
                Err(InflateError::TooLarge) => Event::Error(ProtocolError::MessageTooLarge {
                    size: 0,
                    max: limit as u64,
                }),
                Err(InflateError::Corrupt) => Event::Error(ProtocolError::InvalidCompressedData),
            }
        } else if payload.len() > o.max_message_size {
            Event::Error(ProtocolError::MessageTooLarge {
                size: 0,
                max: o.max_message_size as u64,
            })
        } else {
            outcome(text, payload.to_vec())
        };
        let failed = matches!(event, Event::Error(_));
        want.push(event);
        if failed {
            break;
        }
    }
    let want = Want {
        events: want,
        waiting,
    };
    check(decode(o, &wire, true), want, Some(PING));
}

/// Fuzzer bytes as messages, compressed (or not) and decoded back. Per message: a descriptor
/// (bit 0 compressed, bit 1 a ping between fragments, bits 2-4 fragments - 1, bits 5-7
/// repeat the data 4^n times), a length, the data.
fn round_trip(o: &Options, mut data: &[u8]) {
    let mut compressor = Compressor::new(o.level, o.compressor_bits, o.compressor_reset);
    let mut wire = Vec::new();
    let mut want = Vec::new();
    let mut waiting = None;
    let mut n = 0;
    while let Some((&c, rest)) = data.split_first() {
        data = rest;
        let (compressed, ping) = (c & 1 != 0, c & 2 != 0);
        let frags = usize::from(c >> 2 & 7) + 1;
        let len = take_len(&mut data);
        let piece = take(&mut data, len);
        let limit = if compressed {
            o.inflate_limit()
        } else {
            o.max_message_size
        };
        // Repeated, up to just past the limit: a small bomb when compressed. At most about
        // 64 KiB: compressing more is slow under coverage instrumentation (slide_hash), and
        // the raw and payloads modes reach the larger limits with real bombs.
        let reps = 1usize << (2 * (c >> 5));
        let cap = limit
            .min(64 << 10)
            .saturating_add(1 + usize::from(c >> 5))
            .max(piece.len());
        let msg: Vec<u8> = piece
            .iter()
            .copied()
            .cycle()
            .take((piece.len() * reps).min(cap))
            .collect();
        let text = std::str::from_utf8(&msg).is_ok();
        let payload = if compressed {
            let mut p = Vec::new();
            compressor.compress(&msg, &mut p);
            p
        } else {
            msg.clone()
        };
        message(o, &mut n, text, compressed, ping, frags, &payload, &mut wire);
        if ping && frags > 1 {
            want.push(Event::Ping(PING.to_vec()));
        }
        if msg.len() > limit && limit < o.max_message_size {
            waiting = Some(false); // valid text: no UTF-8 error
            break;
        }
        if msg.len() > limit {
            want.push(Event::Error(ProtocolError::MessageTooLarge {
                size: 0,
                max: limit as u64,
            }));
            break;
        }
        want.push(outcome(text, msg));
    }
    let want = Want {
        events: want,
        waiting,
    };
    check(decode(o, &wire, true), want, Some(PING));
}

fuzz_target!(|data: &[u8]| {
    let (o, rest) = Options::parse(data);
    match o.mode {
        0 | 1 => {
            let (events, waiting) = decode(&o, rest, false);
            let chunked = decode(&o, rest, true);
            if chunked.1 != waiting {
                // Stopping at the headroom depends on how much input had arrived: one run may
                // stop there while the other, with more input, went on to an error further on
                // (or to the end). What both gave before that must agree.
                let ok = |v: &[Event]| -> Vec<Event> {
                    v.iter()
                        .filter(|e| !matches!(e, Event::Error(_)))
                        .cloned()
                        .collect()
                };
                let (a, b) = (ok(&events), ok(&chunked.0));
                let n = a.len().min(b.len());
                assert_eq!(a[..n], b[..n]);
                return;
            }
            let want = Want {
                events,
                waiting: waiting.then_some(true),
            };
            check(chunked, want, None);
        }
        2 => payloads(&o, rest),
        _ => round_trip(&o, rest),
    }
});
