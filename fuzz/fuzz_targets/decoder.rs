//! Feeds arbitrary bytes to the [`Decoder`] in arbitrary chunks and checks that the outcome
//! (the sequence of messages, then the first error if any) is exactly what decoding the whole
//! input at once gives. Also checks that the decoder's memory stays proportional to the input
//! received, never to a length announced by a frame header.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use syncws_protocol::{Decoder, KeptMessage, Limits, Message, ProtocolError, Role};

#[derive(Debug, Arbitrary)]
struct Input {
    /// Bit 0: role (set = client). Bits 1-3: RSV bits a (pretend) extension claims.
    /// Bit 4: small size limits. Bit 5: small read chunk. Bit 6: read through
    /// `read_buf`/`commit` instead of `feed`.
    flags: u8,
    /// Chunk sizes, used in turn (each plus one); empty means one byte at a time.
    chunks: Vec<u8>,
    /// Keep the data messages of the chunked run as shared payloads (`Decoder::keep`), taken
    /// after each chunk and held to the end: they must still equal the one-shot messages.
    keep: bool,
    /// The wire bytes.
    data: Vec<u8>,
}

/// An owned copy of a decoded message, or the error that ended decoding.
#[derive(Debug, PartialEq, Eq)]
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

fn decoder(flags: u8) -> Decoder {
    let role = if flags & 1 != 0 {
        Role::Client
    } else {
        Role::Server
    };
    let mut limits = Limits::default();
    if flags & 0x10 != 0 {
        limits = limits.max_frame_size(300).max_message_size(1000);
    }
    if flags & 0x20 != 0 {
        limits = limits.read_chunk(64);
    }
    let mut d = Decoder::new(role, limits);
    if flags & 0x02 != 0 {
        d.set_inflater(syncws_protocol::deflate::Inflater::new(9 + (flags >> 2) % 7, flags & 0x40 != 0));
    }
    d
}

/// Pulls messages until more input is needed; returns `false` once decoding has ended (an
/// error was returned).
fn drain(d: &mut Decoder, out: &mut Vec<Event>) -> bool {
    loop {
        match d.next() {
            Ok(Some(m)) => out.push(m.into()),
            Ok(None) => return true,
            Err(e) => {
                // Every error maps to one of the three failure codes.
                assert!(matches!(e.close_code().0, 1002 | 1007 | 1009), "{e:?}");
                out.push(seen(e, d.inflates()));
                return false;
            }
        }
    }
}

/// Like `drain`, keeping the data messages: `None` in `out` until `take` fills it in.
fn drain_keeping(d: &mut Decoder, out: &mut Vec<Option<Event>>, pending: &mut Vec<usize>) -> bool {
    loop {
        match d.next() {
            Ok(Some(Message::Text(_) | Message::Binary(_))) => {
                d.keep();
                pending.push(out.len());
                out.push(None);
            }
            Ok(Some(m)) => out.push(Some(m.into())),
            Ok(None) => return true,
            Err(e) => {
                out.push(Some(seen(e, d.inflates())));
                return false;
            }
        }
    }
}

/// Takes the kept messages (held in `held` with their places in the output).
fn take(d: &mut Decoder, pending: &mut Vec<usize>, held: &mut Vec<(usize, KeptMessage)>) {
    let kept = d.take_kept();
    assert_eq!(kept.messages.len(), pending.len());
    held.extend(pending.drain(..).zip(kept.messages));
}

/// The error as compared. With permessage-deflate on, a compressed message that is corrupt,
/// not UTF-8 and inflates past the size limit is found to be one or another depending on how
/// its input was split (how far inflating got before the bad byte): those three are one class
/// here (1007 or 1009 on the wire, both right for such a message).
fn seen(e: ProtocolError, inflates: bool) -> Event {
    Event::Error(match e {
        ProtocolError::InvalidCompressedData => ProtocolError::InvalidUtf8,
        ProtocolError::MessageTooLarge { .. } if inflates => ProtocolError::InvalidUtf8,
        e => e,
    })
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

fuzz_target!(|input: Input| {
    let data = &input.data[..];

    let mut whole = decoder(input.flags);
    whole.feed(data);
    let mut expected = Vec::new();
    drain(&mut whole, &mut expected);

    let mut d = decoder(input.flags);
    let via_read_buf = input.flags & 0x40 != 0;
    let mut got: Vec<Option<Event>> = Vec::new();
    let (mut pending, mut held) = (Vec::new(), Vec::new());
    let mut at = 0;
    let mut turn = 0;
    while at < data.len() {
        let size = match input.chunks.get(turn % input.chunks.len().max(1)) {
            Some(&c) => usize::from(c) + 1,
            None => 1,
        };
        turn += 1;
        let end = (at + size).min(data.len());
        write_chunk(&mut d, &data[at..end], via_read_buf);
        at = end;
        // Memory follows the bytes received, not lengths announced in headers.
        assert!(
            d.capacity() <= 4 * at + (256 << 10),
            "capacity {} after {at} bytes",
            d.capacity()
        );
        let go_on = if input.keep {
            let go_on = drain_keeping(&mut d, &mut got, &mut pending);
            take(&mut d, &mut pending, &mut held);
            go_on
        } else {
            let mut plain = Vec::new();
            let go_on = drain(&mut d, &mut plain);
            got.extend(plain.into_iter().map(Some));
            go_on
        };
        if !go_on {
            break;
        }
        // Giving idle buffers back between reads must lose nothing (a no-op mid-message).
        if input.flags & 0x80 != 0 {
            d.release_idle();
        }
    }
    for (i, m) in held {
        got[i] = Some(match m {
            KeptMessage::Text(t) => Event::Text(t.as_str().to_owned()),
            KeptMessage::Binary(b) => Event::Binary(b.to_vec()),
        });
    }
    let got: Vec<Event> = got.into_iter().map(|e| e.expect("every kept message handed out")).collect();
    assert_eq!(got, expected, "chunked decoding differs from one-shot decoding");
    if matches!(got.last(), Some(Event::Close(_))) {
        assert!(d.is_closed());
        assert_eq!(d.next(), Ok(None));
    }
});
