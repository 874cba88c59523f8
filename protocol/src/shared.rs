//! Messages that outlive the decoder's borrow: [`Payload`] and [`TextPayload`], shared slices
//! of the buffers the bytes were read into.
//!
//! [`crate::Decoder::keep`] marks the message just returned by [`crate::Decoder::next`] to be
//! kept; [`crate::Decoder::take_kept`] hands the kept messages out in order, as a [`Kept`].
//! An unfragmented message is not copied: the read buffer it lies in is handed out whole and
//! shared by every message of it, and the decoder goes on in a spare buffer. When the last
//! message of a buffer is dropped, the buffer goes back to the decoder's spares, so a busy
//! connection cycles through the same few buffers instead of allocating (and faulting in)
//! new ones. A buffer mostly empty of kept messages is not handed out: its messages are
//! copied into one right-sized buffer instead, so a small message never holds a large buffer.
//! Fragmented and compressed messages, assembled apart, are handed out as they are.

use std::fmt;
use std::ops::{Deref, Range};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// How many spare buffers a decoder keeps for reuse.
const SPARES: usize = 4;

/// Where a decoder's handed-out buffers come back to.
#[derive(Debug, Default)]
pub(crate) struct Spares {
    list: Mutex<Vec<Vec<u8>>>,
    /// Bytes held in `list`.
    bytes: AtomicUsize,
    /// Largest buffer taken back (larger ones are freed).
    max_len: AtomicUsize,
}

impl Spares {
    pub(crate) fn new(max_len: usize) -> Arc<Self> {
        let s = Self::default();
        s.max_len.store(max_len, Ordering::Relaxed);
        Arc::new(s)
    }

    fn list(&self) -> std::sync::MutexGuard<'_, Vec<Vec<u8>>> {
        self.list.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn put(&self, data: Vec<u8>) {
        if data.len() > self.max_len.load(Ordering::Relaxed) {
            return;
        }
        let mut list = self.list();
        if list.len() < SPARES {
            self.bytes.fetch_add(data.len(), Ordering::Relaxed);
            list.push(data);
        }
    }

    /// The largest spare, if one is back and has at least `len` bytes (its length, not only
    /// its capacity).
    pub(crate) fn take(&self, len: usize) -> Option<Vec<u8>> {
        let mut list = self.list();
        let (i, _) = list
            .iter()
            .enumerate()
            .filter(|(_, b)| b.len() >= len)
            .max_by_key(|(_, b)| b.len())?;
        let data = list.swap_remove(i);
        self.bytes.fetch_sub(data.len(), Ordering::Relaxed);
        Some(data)
    }

    /// Bytes held.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Frees the spares and takes back only buffers of at most `max_len` bytes from now on;
    /// returns the bytes freed.
    pub(crate) fn shrink(&self, max_len: usize) -> usize {
        self.max_len.store(max_len, Ordering::Relaxed);
        let freed: Vec<Vec<u8>> = std::mem::take(&mut *self.list());
        let n: usize = freed.iter().map(Vec::len).sum();
        self.bytes.fetch_sub(n, Ordering::Relaxed);
        n
    }
}

/// One buffer of message bytes, shared by the payloads that lie in it.
struct Buffer {
    data: Vec<u8>,
    home: Option<Arc<Spares>>,
}

impl Drop for Buffer {
    fn drop(&mut self) {
        if let Some(home) = self.home.take() {
            home.put(std::mem::take(&mut self.data));
        }
    }
}

/// A binary message's bytes (or any message's), shared with the buffer they were read into;
/// derefs to `[u8]`. Cloning shares the bytes; dropping the last payload of a buffer gives
/// the buffer back for reuse.
#[derive(Clone)]
pub struct Payload {
    buf: Arc<Buffer>,
    range: Range<usize>,
}

impl Payload {
    fn new(buf: Arc<Buffer>, range: Range<usize>) -> Self {
        Self { buf, range }
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.buf.data[self.range.clone()]
    }

    /// The bytes as an owned `Vec` (a copy, unless this payload is the whole of a buffer
    /// no other payload shares).
    pub fn into_vec(self) -> Vec<u8> {
        let Self { buf, range } = self;
        match Arc::try_unwrap(buf) {
            Ok(mut b) if range.start == 0 && range.end == b.data.len() => {
                b.home = None;
                std::mem::take(&mut b.data)
            }
            Ok(b) => b.data[range].to_vec(),
            Err(shared) => shared.data[range].to_vec(),
        }
    }

    /// Bytes of memory this payload keeps alive (its whole buffer, which it may share).
    pub fn footprint(&self) -> usize {
        self.buf.data.capacity()
    }
}

impl From<Vec<u8>> for Payload {
    fn from(data: Vec<u8>) -> Self {
        let range = 0..data.len();
        Self::new(Arc::new(Buffer { data, home: None }), range)
    }
}

impl Deref for Payload {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl AsRef<[u8]> for Payload {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Payload").field("len", &self.len()).finish()
    }
}

impl PartialEq for Payload {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for Payload {}

impl PartialEq<[u8]> for Payload {
    fn eq(&self, other: &[u8]) -> bool {
        self.as_slice() == other
    }
}

/// A text message: a [`Payload`] known to be valid UTF-8 (checked once, by the decoder);
/// derefs to `str`.
#[derive(Clone, PartialEq, Eq)]
pub struct TextPayload(Payload);

impl TextPayload {
    /// The text.
    pub fn as_str(&self) -> &str {
        // SAFETY: a `TextPayload` is only made from bytes that were validated as UTF-8
        // (`from_validated`, called by the decoder for text it validated, or `From<String>`),
        // and the bytes of a `Payload` never change after it is made: its buffer is shared
        // only immutably.
        #[allow(unsafe_code)]
        unsafe {
            std::str::from_utf8_unchecked(self.0.as_slice())
        }
    }

    /// The text as an owned `String` (a copy, unless it is the whole of an unshared buffer).
    pub fn into_string(self) -> String {
        let bytes = self.0.into_vec();
        // Valid UTF-8, as above; checked again rather than trusted, since this is not the
        // hot path (a handler keeping a message) and the check costs one pass.
        String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }

    /// The bytes, as a [`Payload`].
    pub fn into_payload(self) -> Payload {
        self.0
    }

    /// Bytes of memory this text keeps alive (see [`Payload::footprint`]).
    pub fn footprint(&self) -> usize {
        self.0.footprint()
    }

    /// Wraps bytes the decoder validated as UTF-8.
    fn from_validated(p: Payload) -> Self {
        debug_assert!(simdutf8::basic::from_utf8(p.as_slice()).is_ok());
        Self(p)
    }
}

impl From<String> for TextPayload {
    fn from(s: String) -> Self {
        Self(Payload::from(s.into_bytes()))
    }
}

impl From<&str> for TextPayload {
    fn from(s: &str) -> Self {
        Self::from(s.to_owned())
    }
}

impl Deref for TextPayload {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for TextPayload {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for TextPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for TextPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

impl PartialEq<str> for TextPayload {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for TextPayload {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// A kept data message (see [`crate::Decoder::keep`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeptMessage {
    /// A text message.
    Text(TextPayload),
    /// A binary message.
    Binary(Payload),
}

/// The messages [`crate::Decoder::take_kept`] hands out, in the order they arrived.
#[derive(Debug, Default)]
pub struct Kept {
    /// The messages.
    pub messages: Vec<KeptMessage>,
    /// Bytes of memory they keep alive together (each buffer counted once): what to charge to
    /// a budget for holding them.
    pub footprint: usize,
}

/// Where a kept message's bytes are while the decoder still holds them.
#[derive(Debug)]
pub(crate) enum Held {
    /// In the read buffer.
    Buf(Range<usize>),
    /// Assembled apart (fragmented or compressed): taken over as it is.
    Own(Vec<u8>),
}

/// Turns kept messages into payloads, appended to `out` (both vectors keep their capacity
/// for the next read): the ones in `buf` share `buf` (given up to them; the decoder goes on in
/// `spare(buf)`) or, when they fill less than a quarter of it, a copy of them, one after the
/// other in one right-sized buffer.
pub(crate) fn hand_out(
    held: &mut Vec<(bool, Held)>,
    buf: &mut Vec<u8>,
    spare: impl FnOnce(&[u8]) -> Vec<u8>,
    home: &Arc<Spares>,
    out: &mut Kept,
) {
    let in_buf = |h: &Held| if let Held::Buf(r) = h { Some(r.len()) } else { None };
    let bytes: Option<usize> = held.iter().filter_map(|(_, h)| in_buf(h)).reduce(|a, b| a + b);
    // The buffer shared by the messages that lie in `buf`, and whether it is a copy.
    let shared = bytes.map(|n| {
        if n > 0 && n >= buf.len() / 4 {
            let fresh = spare(buf);
            let data = std::mem::replace(buf, fresh);
            let home = Some(home.clone());
            return (Arc::new(Buffer { data, home }), false);
        }
        let mut data = Vec::with_capacity(n);
        for (_, h) in held.iter() {
            if let Held::Buf(r) = h {
                data.extend_from_slice(&buf[r.clone()]);
            }
        }
        (Arc::new(Buffer { data, home: None }), true)
    });
    out.footprint += shared.as_ref().map_or(0, |(b, _)| b.data.capacity());
    let mut copied_to = 0;
    for (text, h) in held.drain(..) {
        let payload = match h {
            Held::Own(v) => {
                out.footprint += v.capacity();
                Payload::from(v)
            }
            Held::Buf(r) => {
                let (b, copied) = shared.as_ref().expect("made above for messages in `buf`");
                let at = if *copied {
                    copied_to..copied_to + r.len()
                } else {
                    r
                };
                copied_to = at.end;
                Payload::new(b.clone(), at)
            }
        };
        out.messages.push(if text {
            KeptMessage::Text(TextPayload::from_validated(payload))
        } else {
            KeptMessage::Binary(payload)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_comes_back_when_its_last_payload_drops() {
        let home = Spares::new(1 << 20);
        let mut buf = vec![7u8; 1000];
        let mut held = vec![(false, Held::Buf(0..400)), (false, Held::Buf(400..800))];
        let mut kept = Kept::default();
        hand_out(&mut held, &mut buf, |old| vec![0; old.len()], &home, &mut kept);
        assert_eq!(kept.footprint, 1000);
        assert_eq!(buf, vec![0; 1000], "the decoder goes on in the spare");
        let mut m = kept.messages.into_iter();
        let a = m.next().unwrap();
        assert_eq!(home.bytes(), 0);
        drop(m);
        assert_eq!(home.bytes(), 0, "one payload still holds it");
        drop(a);
        assert_eq!(home.bytes(), 1000);
        assert_eq!(home.take(1000).unwrap(), vec![7u8; 1000]);
    }

    #[test]
    fn a_small_message_in_a_big_buffer_is_copied_out() {
        let home = Spares::new(1 << 20);
        let mut buf = b"xxhixxxxxxxxxxxxyoxxxxxxxxxxxxxxxxxxxxxx".to_vec();
        let mut held = vec![
            (true, Held::Buf(2..4)),
            (false, Held::Own(b"own".to_vec())),
            (true, Held::Buf(16..18)),
        ];
        let mut kept = Kept::default();
        hand_out(&mut held, &mut buf, |_| unreachable!(), &home, &mut kept);
        assert_eq!(kept.footprint, 4 + 3);
        assert_eq!(buf.len(), 40, "the read buffer stays");
        let texts: Vec<String> = kept
            .messages
            .into_iter()
            .map(|m| match m {
                KeptMessage::Text(t) => t.into_string(),
                KeptMessage::Binary(b) => String::from_utf8(b.into_vec()).unwrap(),
            })
            .collect();
        assert_eq!(texts, ["hi", "own", "yo"]);
        assert_eq!(home.bytes(), 0, "a copy is not a spare");
    }

    #[test]
    fn empty_messages_in_the_buffer() {
        let home = Spares::new(1 << 20);
        let mut buf = vec![1u8; 64];
        let mut held = vec![(true, Held::Buf(10..10)), (false, Held::Buf(20..20))];
        let mut kept = Kept::default();
        hand_out(&mut held, &mut buf, |_| unreachable!(), &home, &mut kept);
        assert_eq!(kept.messages.len(), 2);
        assert!(matches!(&kept.messages[0], KeptMessage::Text(t) if t.is_empty()));
        assert!(matches!(&kept.messages[1], KeptMessage::Binary(b) if b.is_empty()));
    }

    #[test]
    fn spares_are_bounded_and_shrink() {
        let home = Spares::new(100);
        for n in 0..SPARES + 3 {
            home.put(vec![0; 40 + n]);
        }
        let kept: usize = (0..SPARES).map(|n| 40 + n).sum();
        assert_eq!(home.bytes(), kept, "{SPARES} kept");
        home.put(vec![0; 101]);
        assert_eq!(home.bytes(), kept, "too large to keep");
        assert!(home.take(60).is_none());
        assert_eq!(
            home.take(1).map(|b| b.len()),
            Some(40 + SPARES - 1),
            "the largest first"
        );
        let kept = kept - (40 + SPARES - 1);
        assert_eq!(home.shrink(10), kept);
        home.put(vec![0; 50]);
        assert_eq!(home.bytes(), 0);
    }

    #[test]
    fn into_vec_takes_a_whole_unshared_buffer() {
        let p = Payload::from(vec![1, 2, 3]);
        let q = p.clone();
        assert_eq!(q.into_vec(), vec![1, 2, 3], "shared: copied");
        assert_eq!(p.into_vec(), vec![1, 2, 3], "alone: taken");
    }
}
