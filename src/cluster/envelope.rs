//! The envelope: one cross-node message as published on a Redis channel. Pure (bytes in,
//! bytes out); a malformed envelope is an `Err`, never a panic.
//!
//! # Format, version 1
//!
//! All integers big-endian.
//!
//! | bytes | field |
//! |---|---|
//! | 4 | magic and version: `S` `W` `S` `1` (0x53 0x57 0x53 0x01) |
//! | 1 | kind: 1 broadcast, 2 publish (to a topic), 3 send (to one connection id), 4 close |
//! | 1 | opcode: 1 text, 2 binary (0 for close) |
//! | 2 + n | origin: the sending node's name (UTF-8) |
//! | 2 + n | target: the topic (publish) or connection id (send, close); empty for broadcast |
//! | 2 + n | except: a connection id not to deliver to, or empty |
//! | rest | payload: the message (text: valid UTF-8); for close, a 2-byte code then the reason |
//!
//! A receiver drops envelopes with another magic or version, an unknown kind or opcode,
//! truncated fields, non-UTF-8 names, or a text payload that is not UTF-8.

use syncws_protocol::frame::OpCode;

const MAGIC: &[u8; 4] = b"SWS\x01";

/// What an envelope asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Broadcast = 1,
    Publish = 2,
    Send = 3,
    Close = 4,
}

/// A decoded envelope, borrowing the bytes it came from.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Envelope<'a> {
    pub(crate) kind: Kind,
    /// Text or binary (for `Close`: `OpCode::Close`).
    pub(crate) op: OpCode,
    pub(crate) origin: &'a str,
    pub(crate) target: &'a str,
    pub(crate) except: &'a str,
    pub(crate) payload: &'a [u8],
}

fn op_byte(op: OpCode) -> u8 {
    match op {
        OpCode::Text => 1,
        OpCode::Binary => 2,
        _ => 0,
    }
}

fn put(out: &mut Vec<u8>, field: &str) {
    let len = field.len().min(u16::MAX as usize);
    out.extend_from_slice(&(len as u16).to_be_bytes());
    out.extend_from_slice(&field.as_bytes()[..len]);
}

impl Envelope<'_> {
    /// The bytes to publish.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            12 + self.origin.len() + self.target.len() + self.except.len() + self.payload.len(),
        );
        out.extend_from_slice(MAGIC);
        out.push(self.kind as u8);
        out.push(if self.kind == Kind::Close {
            0
        } else {
            op_byte(self.op)
        });
        put(&mut out, self.origin);
        put(&mut out, self.target);
        put(&mut out, self.except);
        out.extend_from_slice(self.payload);
        out
    }
}

/// Reads fields off the front of a byte slice.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        if self.0.len() < n {
            return Err("truncated");
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn byte(&mut self) -> Result<u8, &'static str> {
        Ok(self.take(1)?[0])
    }

    fn field(&mut self) -> Result<&'a str, &'static str> {
        let len = self.take(2)?;
        let len = u16::from_be_bytes([len[0], len[1]]) as usize;
        std::str::from_utf8(self.take(len)?).map_err(|_| "a name is not UTF-8")
    }
}

/// Decodes an envelope; `Err` says what is wrong with it.
pub(crate) fn decode(bytes: &[u8]) -> Result<Envelope<'_>, &'static str> {
    let mut r = Reader(bytes);
    if r.take(4).map_err(|_| "too short")? != MAGIC {
        return Err("not a syncws envelope of version 1");
    }
    let kind = match r.byte()? {
        1 => Kind::Broadcast,
        2 => Kind::Publish,
        3 => Kind::Send,
        4 => Kind::Close,
        _ => return Err("unknown kind"),
    };
    let op = match (kind, r.byte()?) {
        (Kind::Close, 0) => OpCode::Close,
        (Kind::Close, _) => return Err("a close with an opcode"),
        (_, 1) => OpCode::Text,
        (_, 2) => OpCode::Binary,
        _ => return Err("unknown opcode"),
    };
    let (origin, target, except) = (r.field()?, r.field()?, r.field()?);
    let payload = r.0;
    if op == OpCode::Text && std::str::from_utf8(payload).is_err() {
        return Err("a text payload that is not UTF-8");
    }
    if kind == Kind::Close && payload.len() < 2 {
        return Err("a close without a code");
    }
    if origin.is_empty() || (kind != Kind::Broadcast && target.is_empty()) {
        return Err("no origin or no target");
    }
    Ok(Envelope {
        kind,
        op,
        origin,
        target,
        except,
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(kind: Kind, op: OpCode, payload: &[u8]) -> Envelope<'_> {
        Envelope {
            kind,
            op,
            origin: "node-a",
            target: "room:1",
            except: "",
            payload,
        }
    }

    #[test]
    fn round_trips() {
        for (kind, op, payload) in [
            (Kind::Broadcast, OpCode::Text, &b"hi"[..]),
            (Kind::Publish, OpCode::Binary, &[0xff, 0, 1][..]),
            (Kind::Send, OpCode::Text, &b""[..]),
            (Kind::Close, OpCode::Close, &[3, 232, b'b', b'y', b'e'][..]),
        ] {
            let e = sample(kind, op, payload);
            let bytes = e.encode();
            assert_eq!(decode(&bytes), Ok(e));
        }
    }

    #[test]
    fn garbage_is_refused_not_a_panic() {
        let good = sample(Kind::Publish, OpCode::Text, b"hello").encode();
        for cut in 0..good.len() - 5 {
            assert!(decode(&good[..cut]).is_err(), "cut at {cut}");
        }
        assert!(decode(b"hello world").is_err());
        let mut bad_utf8 = sample(Kind::Send, OpCode::Text, b"").encode();
        bad_utf8.push(0xff);
        assert_eq!(decode(&bad_utf8), Err("a text payload that is not UTF-8"));
        let mut v2 = good.clone();
        v2[3] = 2;
        assert!(decode(&v2).is_err());
        let mut kind = good.clone();
        kind[4] = 9;
        assert_eq!(decode(&kind), Err("unknown kind"));
        // Every single-byte corruption decodes or is refused, without a panic.
        for i in 0..good.len() {
            let mut b = good.clone();
            b[i] ^= 0xa5;
            let _ = decode(&b);
        }
    }
}
