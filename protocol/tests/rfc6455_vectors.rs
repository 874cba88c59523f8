//! The examples of RFC 6455 §5.7 as test vectors, and every rejection the decoder makes,
//! checked through the public API together with the close code each one maps to.

use syncws_protocol::close::parse_close_payload;
use syncws_protocol::frame::{write_frame, FrameHeader, OpCode, MAX_HEADER_LEN};
use syncws_protocol::{CloseCode, Decoder, Limits, Message, ProtocolError, Role};

/// An owned copy of a decoded message, so results outlive the decoder borrow.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Msg {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<(u16, String)>),
}

impl From<Message<'_>> for Msg {
    fn from(m: Message<'_>) -> Self {
        match m {
            Message::Text(s) => Msg::Text(s.to_owned()),
            Message::Binary(b) => Msg::Binary(b.to_vec()),
            Message::Ping(b) => Msg::Ping(b.to_vec()),
            Message::Pong(b) => Msg::Pong(b.to_vec()),
            Message::Close(f) => Msg::Close(f.map(|f| (f.code.0, f.reason.to_owned()))),
        }
    }
}

/// Feeds `bytes` in chunks of `step` and collects every message; panics on an error.
fn decode(role: Role, bytes: &[u8], step: usize) -> Vec<Msg> {
    let mut d = Decoder::new(role, Limits::default());
    let mut out = Vec::new();
    for chunk in bytes.chunks(step.max(1)) {
        d.feed(chunk);
        while let Some(m) = d.next().expect("valid input") {
            out.push(m.into());
        }
    }
    assert_eq!(d.buffered(), 0, "all input consumed");
    out
}

/// Like [`decode`], reading through `read_buf`/`commit` the way a socket reader does.
fn decode_via_read_buf(role: Role, bytes: &[u8], step: usize) -> Vec<Msg> {
    let mut d = Decoder::new(role, Limits::default().read_chunk(64));
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let spare = d.read_buf();
        let n = spare.len().min(step).min(rest.len());
        spare[..n].copy_from_slice(&rest[..n]);
        d.commit(n);
        rest = &rest[n..];
        while let Some(m) = d.next().expect("valid input") {
            out.push(m.into());
        }
    }
    out
}

/// Decodes `bytes` at every chunk size from 1 to `bytes.len()` (or a sample of sizes for long
/// inputs) and checks the result is always `expect`.
fn check_vector(role: Role, bytes: &[u8], expect: &[Msg]) {
    let steps: Vec<usize> = if bytes.len() <= 64 {
        (1..=bytes.len()).collect()
    } else {
        vec![1, 2, 3, 7, 64, 1000, 4096, bytes.len() - 1, bytes.len()]
    };
    for step in steps {
        assert_eq!(decode(role, bytes, step), expect, "feed, step {step}");
        assert_eq!(
            decode_via_read_buf(role, bytes, step),
            expect,
            "read_buf, step {step}"
        );
    }
}

fn encode(h: FrameHeader) -> Vec<u8> {
    let mut b = [0u8; MAX_HEADER_LEN];
    let n = h.encode(&mut b);
    assert_eq!(n, h.encoded_len());
    b[..n].to_vec()
}

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

#[test]
fn single_frame_unmasked_text() {
    let wire = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
    assert_eq!(encode(FrameHeader::new(OpCode::Text, 5, None)), [0x81, 0x05]);
    check_vector(Role::Client, &wire, &[Msg::Text("Hello".into())]);
}

#[test]
fn single_frame_masked_text() {
    let wire = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
    assert_eq!(encode(FrameHeader::new(OpCode::Text, 5, Some(KEY))), wire[..6]);
    let mut built = Vec::new();
    write_frame(&mut built, FrameHeader::new(OpCode::Text, 5, Some(KEY)), b"Hello");
    assert_eq!(built, wire);
    check_vector(Role::Server, &wire, &[Msg::Text("Hello".into())]);
}

#[test]
fn fragmented_unmasked_text() {
    let first = [0x01, 0x03, 0x48, 0x65, 0x6c];
    let last = [0x80, 0x02, 0x6c, 0x6f];
    let mut h = FrameHeader::new(OpCode::Text, 3, None);
    h.fin = false;
    assert_eq!(encode(h), first[..2]);
    let mut h = FrameHeader::new(OpCode::Continuation, 2, None);
    h.fin = true;
    assert_eq!(encode(h), last[..2]);
    let wire = [&first[..], &last[..]].concat();
    check_vector(Role::Client, &wire, &[Msg::Text("Hello".into())]);
    // The first fragment alone is not a message yet.
    assert_eq!(decode(Role::Client, &first, 1), []);
}

#[test]
fn unmasked_ping_and_masked_pong() {
    let ping = [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
    assert_eq!(encode(FrameHeader::new(OpCode::Ping, 5, None)), ping[..2]);
    check_vector(Role::Client, &ping, &[Msg::Ping(b"Hello".to_vec())]);

    let pong = [0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
    assert_eq!(encode(FrameHeader::new(OpCode::Pong, 5, Some(KEY))), pong[..6]);
    check_vector(Role::Server, &pong, &[Msg::Pong(b"Hello".to_vec())]);
}

#[test]
fn binary_256_bytes_with_16_bit_length() {
    let payload: Vec<u8> = (0..256u32).map(|i| (i * 7 + 1) as u8).collect();
    let head = [0x82, 0x7E, 0x01, 0x00];
    assert_eq!(encode(FrameHeader::new(OpCode::Binary, 256, None)), head);
    let wire = [&head[..], &payload[..]].concat();
    check_vector(Role::Client, &wire, &[Msg::Binary(payload)]);
}

#[test]
fn binary_64_kib_with_64_bit_length() {
    let payload: Vec<u8> = (0..65536u32).map(|i| (i ^ (i >> 8)) as u8).collect();
    let head = [0x82, 0x7F, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00];
    assert_eq!(encode(FrameHeader::new(OpCode::Binary, 65536, None)), head);
    let wire = [&head[..], &payload[..]].concat();
    check_vector(Role::Client, &wire, &[Msg::Binary(payload.clone())]);

    // The same payload masked, as a client would send it to a server.
    let mut masked = Vec::new();
    write_frame(
        &mut masked,
        FrameHeader::new(OpCode::Binary, 65536, Some(KEY)),
        &payload,
    );
    assert_eq!(masked[..2], [0x82, 0xFF]);
    assert_eq!(masked[2..10], head[2..]);
    assert_eq!(masked[10..14], KEY);
    check_vector(Role::Server, &masked, &[Msg::Binary(payload)]);
}

// ---------------------------------------------------------------------------------------------
// Rejections.

fn masked(op: OpCode, fin: bool, payload: &[u8]) -> Vec<u8> {
    let mut h = FrameHeader::new(op, payload.len() as u64, Some([0xa1, 0xb2, 0xc3, 0xd4]));
    h.fin = fin;
    let mut v = Vec::new();
    write_frame(&mut v, h, payload);
    v
}

fn unmasked(op: OpCode, fin: bool, payload: &[u8]) -> Vec<u8> {
    let mut h = FrameHeader::new(op, payload.len() as u64, None);
    h.fin = fin;
    let mut v = Vec::new();
    write_frame(&mut v, h, payload);
    v
}

/// Feeds all of `bytes` at once and returns the messages before the first error, and the
/// error. Panics if there is none.
fn first_err_with(mut d: Decoder, bytes: &[u8]) -> (Vec<Msg>, ProtocolError) {
    d.feed(bytes);
    let mut out = Vec::new();
    loop {
        match d.next() {
            Ok(Some(m)) => out.push(m.into()),
            Ok(None) => panic!("no error; messages {out:?}"),
            Err(e) => return (out, e),
        }
    }
}

fn server_err(bytes: &[u8]) -> ProtocolError {
    first_err_with(Decoder::new(Role::Server, Limits::default()), bytes).1
}

fn client_err(bytes: &[u8]) -> ProtocolError {
    first_err_with(Decoder::new(Role::Client, Limits::default()), bytes).1
}

/// Feeds `bytes` one byte at a time; returns the error and how many bytes had been fed when
/// it was reported.
fn err_at(role: Role, limits: Limits, bytes: &[u8]) -> (ProtocolError, usize) {
    let mut d = Decoder::new(role, limits);
    for (i, b) in bytes.iter().enumerate() {
        d.feed(std::slice::from_ref(b));
        loop {
            match d.next() {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => return (e, i + 1),
            }
        }
    }
    panic!("no error");
}

const PROTOCOL_ERROR: CloseCode = CloseCode(1002);

#[test]
fn reserved_opcodes() {
    for op in [0x3u8, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF] {
        for fin in [0x80, 0] {
            let e = server_err(&[fin | op, 0x80, 1, 2, 3, 4]);
            assert_eq!(e, ProtocolError::ReservedOpcode(op));
            assert_eq!(e.close_code(), PROTOCOL_ERROR);
            assert_eq!(client_err(&[fin | op, 0x00]), ProtocolError::ReservedOpcode(op));
        }
        // Decided from the first two bytes.
        let (e, at) = err_at(Role::Server, Limits::default(), &[0x80 | op, 0x85, 1, 2, 3, 4, 5]);
        assert_eq!((e, at), (ProtocolError::ReservedOpcode(op), 2));
    }
}

#[test]
fn rsv_bits_without_extension() {
    for bit in [0x40u8, 0x20, 0x10] {
        for op in [OpCode::Text, OpCode::Binary, OpCode::Ping, OpCode::Close] {
            let mut f = masked(op, true, b"");
            f[0] |= bit;
            let e = server_err(&f);
            assert_eq!(e, ProtocolError::ReservedBitsSet, "bit {bit:#x} {op:?}");
            assert_eq!(e.close_code(), PROTOCOL_ERROR);
        }
    }
    // With permessage-deflate on, RSV1 marks a compressed message; RSV2 still fails, and so
    // does RSV1 on a control frame or a continuation.
    let deflated = |rsv: u8, op: OpCode, fin: bool, payload: &[u8]| {
        let mut f = masked(op, fin, payload);
        f[0] |= rsv;
        f
    };
    let on = || {
        let mut d = Decoder::new(Role::Server, Limits::default());
        d.set_inflater(syncws_protocol::deflate::Inflater::new(15, false));
        d
    };
    let mut d = on();
    d.feed(&deflated(
        0x40,
        OpCode::Text,
        true,
        &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00],
    ));
    assert_eq!(d.next(), Ok(Some(Message::Text("Hello"))));
    for f in [
        deflated(0x20, OpCode::Binary, true, b"zz"),
        deflated(0x40, OpCode::Ping, true, b"zz"),
    ] {
        assert_eq!(first_err_with(on(), &f).1, ProtocolError::ReservedBitsSet);
    }
    let mut two = deflated(0x40, OpCode::Text, false, &[0xf2, 0x48]);
    two.extend(deflated(
        0x40,
        OpCode::Continuation,
        true,
        &[0xcd, 0xc9, 0xc9, 0x07, 0x00],
    ));
    assert_eq!(first_err_with(on(), &two).1, ProtocolError::ReservedBitsSet);
}

#[test]
fn unmasked_client_frame() {
    for op in [
        OpCode::Text,
        OpCode::Binary,
        OpCode::Ping,
        OpCode::Pong,
        OpCode::Close,
    ] {
        let e = server_err(&unmasked(op, true, b""));
        assert_eq!(e, ProtocolError::UnmaskedFrame, "{op:?}");
        assert_eq!(e.close_code(), PROTOCOL_ERROR);
    }
    // Rejected from the header, before the payload arrives.
    let (e, at) = err_at(
        Role::Server,
        Limits::default(),
        &unmasked(OpCode::Binary, true, &[0; 50]),
    );
    assert_eq!((e, at), (ProtocolError::UnmaskedFrame, 2));
}

#[test]
fn masked_server_frame() {
    for op in [
        OpCode::Text,
        OpCode::Binary,
        OpCode::Ping,
        OpCode::Pong,
        OpCode::Close,
    ] {
        let e = client_err(&masked(op, true, b""));
        assert_eq!(e, ProtocolError::MaskedFrame, "{op:?}");
        assert_eq!(e.close_code(), PROTOCOL_ERROR);
    }
}

#[test]
fn fragmented_control_frames() {
    for op in [OpCode::Ping, OpCode::Pong, OpCode::Close] {
        let e = server_err(&masked(op, false, b"x"));
        assert_eq!(e, ProtocolError::FragmentedControlFrame, "{op:?}");
        assert_eq!(e.close_code(), PROTOCOL_ERROR);
        assert_eq!(
            client_err(&unmasked(op, false, b"")),
            ProtocolError::FragmentedControlFrame
        );
    }
}

#[test]
fn control_frames_over_125_bytes() {
    for op in [OpCode::Ping, OpCode::Pong, OpCode::Close] {
        // 125 is the largest allowed payload.
        let mut ok = Decoder::new(Role::Server, Limits::default());
        let payload = if op == OpCode::Close {
            let mut p = vec![0x03, 0xe8];
            p.resize(125, b'r');
            p
        } else {
            vec![7; 125]
        };
        ok.feed(&masked(op, true, &payload));
        assert!(ok.next().unwrap().is_some(), "{op:?}");

        let e = server_err(&masked(op, true, &[0; 126]));
        assert_eq!(e, ProtocolError::ControlFrameTooLong(126), "{op:?}");
        assert_eq!(e.close_code(), PROTOCOL_ERROR);
        // A 64-bit length is rejected from the header alone.
        let mut head = vec![0x80 | op.as_u8(), 0x80 | 127, 0, 0, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4];
        let (e, at) = err_at(Role::Server, Limits::default(), &head);
        assert_eq!((e, at), (ProtocolError::ControlFrameTooLong(1 << 32), head.len()));
        head[1] = 127;
        assert_eq!(
            client_err(&head[..10]),
            ProtocolError::ControlFrameTooLong(1 << 32)
        );
    }
}

#[test]
fn continuation_without_start() {
    let e = server_err(&masked(OpCode::Continuation, true, b"x"));
    assert_eq!(e, ProtocolError::UnexpectedContinuation);
    assert_eq!(e.close_code(), PROTOCOL_ERROR);
    assert_eq!(
        client_err(&unmasked(OpCode::Continuation, false, b"x")),
        ProtocolError::UnexpectedContinuation
    );
    // Also after a fragmented message has been completed.
    let mut wire = masked(OpCode::Binary, false, b"a");
    wire.extend(masked(OpCode::Continuation, true, b"b"));
    wire.extend(masked(OpCode::Continuation, true, b"c"));
    let (msgs, e) = first_err_with(Decoder::new(Role::Server, Limits::default()), &wire);
    assert_eq!(msgs, [Msg::Binary(b"ab".to_vec())]);
    assert_eq!(e, ProtocolError::UnexpectedContinuation);
}

#[test]
fn new_message_inside_fragmented_message() {
    for (first, second) in [
        (OpCode::Text, OpCode::Text),
        (OpCode::Text, OpCode::Binary),
        (OpCode::Binary, OpCode::Binary),
        (OpCode::Binary, OpCode::Text),
    ] {
        for fin in [true, false] {
            let mut wire = masked(first, false, b"a");
            // Control frames in between are fine.
            wire.extend(masked(OpCode::Ping, true, b"p"));
            wire.extend(masked(second, fin, b"b"));
            let (msgs, e) = first_err_with(Decoder::new(Role::Server, Limits::default()), &wire);
            assert_eq!(msgs, [Msg::Ping(b"p".to_vec())]);
            assert_eq!(
                e,
                ProtocolError::ExpectedContinuation,
                "{first:?} then {second:?}"
            );
            assert_eq!(e.close_code(), PROTOCOL_ERROR);
        }
    }
}

#[test]
fn length_with_top_bit_set() {
    let head = [0x82, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4];
    let (e, at) = err_at(Role::Server, Limits::default(), &head);
    assert_eq!((e.clone(), at), (ProtocolError::InvalidLength, 10));
    assert_eq!(e.close_code(), PROTOCOL_ERROR);
    let head = [0x82, 127, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
    assert_eq!(client_err(&head), ProtocolError::InvalidLength);
    // The largest legal length is only refused by the size limit.
    let head = [0x82, 127, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
    assert!(matches!(client_err(&head), ProtocolError::FrameTooLarge { .. }));
}

#[test]
fn invalid_utf8_in_first_fragment_fails_before_the_last_arrives() {
    let mut wire = masked(OpCode::Text, false, b"valid so far \xc3\x28 oops");
    let first_len = wire.len();
    wire.extend(masked(OpCode::Continuation, true, b"never checked"));
    let (e, at) = err_at(Role::Server, Limits::default(), &wire);
    assert_eq!(e, ProtocolError::InvalidUtf8);
    assert_eq!(e.close_code(), CloseCode::INVALID_PAYLOAD);
    // Reported as soon as the bad byte arrives, in the first fragment.
    assert_eq!(at, 6 + 15);
    assert!(at <= first_len);

    // All of the first fragment at once, nothing else.
    let (msgs, e) = first_err_with(
        Decoder::new(Role::Server, Limits::default()),
        &masked(OpCode::Text, false, b"ok\xf8"),
    );
    assert_eq!((msgs, e), (vec![], ProtocolError::InvalidUtf8));
    // Invalid in a middle fragment of a longer message.
    let mut wire = masked(OpCode::Text, false, b"one ");
    wire.extend(masked(OpCode::Continuation, false, b"tw\xff"));
    assert_eq!(server_err(&wire), ProtocolError::InvalidUtf8);
    // A character split across fragments is fine; an invalid continuation of it is not.
    let mut wire = masked(OpCode::Text, false, b"a\xe2\x82");
    wire.extend(masked(OpCode::Continuation, true, b"\xac!"));
    assert_eq!(decode(Role::Server, &wire, 1), [Msg::Text("a€!".into())]);
    let mut wire = masked(OpCode::Text, false, b"a\xe2\x82");
    wire.extend(masked(OpCode::Continuation, true, b"x"));
    assert_eq!(server_err(&wire), ProtocolError::InvalidUtf8);
    // A message that ends in the middle of a character.
    let mut wire = masked(OpCode::Text, false, b"a\xe2\x82");
    wire.extend(masked(OpCode::Continuation, true, b""));
    assert_eq!(server_err(&wire), ProtocolError::InvalidUtf8);
    assert_eq!(
        server_err(&masked(OpCode::Text, true, b"a\xe2\x82")),
        ProtocolError::InvalidUtf8
    );
}

#[test]
fn invalid_utf8_inside_a_partially_received_frame() {
    let payload = b"hello \xed\xa0\x80 and a long tail that has not arrived yet";
    let wire = masked(OpCode::Text, true, payload);
    // Header (6 bytes) plus "hello " plus the surrogate's first two bytes: ED A0 is already
    // invalid.
    let (e, at) = err_at(Role::Server, Limits::default(), &wire);
    assert_eq!((e, at), (ProtocolError::InvalidUtf8, 6 + 8));
    let mut d = Decoder::new(Role::Server, Limits::default());
    d.feed(&wire[..6 + 10]);
    assert_eq!(d.next(), Err(ProtocolError::InvalidUtf8));
    // Unmasked, from a server, the same.
    let wire = unmasked(OpCode::Text, true, payload);
    let (e, at) = err_at(Role::Client, Limits::default(), &wire);
    assert_eq!((e, at), (ProtocolError::InvalidUtf8, 2 + 8));
    // Binary is never checked.
    assert_eq!(
        decode(Role::Server, &masked(OpCode::Binary, true, payload), 3),
        [Msg::Binary(payload.to_vec())]
    );
}

fn close_frame(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason);
    masked(OpCode::Close, true, &p)
}

#[test]
fn close_codes() {
    for bad in [
        0u16, 999, 1004, 1005, 1006, 1012, 1014, 1015, 1016, 2000, 2999, 5000, 65535,
    ] {
        let e = server_err(&close_frame(bad, b""));
        assert_eq!(e, ProtocolError::InvalidCloseCode(bad));
        assert_eq!(e.close_code(), PROTOCOL_ERROR);
        assert_eq!(
            parse_close_payload(&bad.to_be_bytes()),
            Err(ProtocolError::InvalidCloseCode(bad))
        );
    }
    for good in [
        1000u16, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999,
    ] {
        let msgs = decode(Role::Server, &close_frame(good, b"bye \xe2\x82\xac"), 1);
        assert_eq!(msgs, [Msg::Close(Some((good, "bye €".into())))], "{good}");
        assert!(CloseCode(good).is_allowed_on_wire());
    }
    // No payload at all: a close without status.
    assert_eq!(
        decode(Role::Server, &masked(OpCode::Close, true, b""), 1),
        [Msg::Close(None)]
    );
}

#[test]
fn one_byte_close_payload() {
    let e = server_err(&masked(OpCode::Close, true, &[0x03]));
    assert_eq!(e, ProtocolError::InvalidClosePayload);
    assert_eq!(e.close_code(), PROTOCOL_ERROR);
    assert_eq!(
        client_err(&unmasked(OpCode::Close, true, &[0x03])),
        ProtocolError::InvalidClosePayload
    );
}

#[test]
fn invalid_utf8_close_reason() {
    for reason in [&b"\xff"[..], b"ok\xc0\xaf", b"cut \xe2\x82", b"\xed\xa0\x80"] {
        let e = server_err(&close_frame(1000, reason));
        assert_eq!(e, ProtocolError::InvalidUtf8, "{reason:x?}");
        assert_eq!(e.close_code(), CloseCode::INVALID_PAYLOAD);
    }
}

#[test]
fn nothing_is_decoded_after_close() {
    let mut wire = close_frame(1000, b"");
    wire.extend(masked(OpCode::Text, true, b"late"));
    wire.extend([0xff; 8]);
    let mut d = Decoder::new(Role::Server, Limits::default());
    d.feed(&wire);
    assert_eq!(
        Msg::from(d.next().unwrap().unwrap()),
        Msg::Close(Some((1000, String::new())))
    );
    assert!(d.is_closed());
    assert_eq!(d.next(), Ok(None));
    assert_eq!(d.next(), Ok(None));
}

#[test]
fn frame_size_limit_from_header() {
    let limits = Limits::default().max_frame_size(100).max_message_size(1000);
    // Exactly at the limit is fine.
    let mut d = Decoder::new(Role::Server, limits);
    d.feed(&masked(OpCode::Binary, true, &[1; 100]));
    assert_eq!(d.next(), Ok(Some(Message::Binary(&[1; 100]))));
    // One over fails as soon as the header is complete: no payload has arrived.
    for (op, fin) in [
        (OpCode::Binary, true),
        (OpCode::Text, true),
        (OpCode::Text, false),
    ] {
        // (payload size, header size): a 7-bit length, then a 16-bit one, each with a mask key.
        for (size, header) in [(101usize, 2 + 4), (300, 4 + 4)] {
            let wire = masked(op, fin, &vec![b'a'; size]);
            let (e, at) = err_at(Role::Server, limits, &wire);
            assert_eq!(
                e,
                ProtocolError::FrameTooLarge {
                    size: size as u64,
                    max: 100
                }
            );
            assert_eq!(at, header);
            assert_eq!(e.close_code(), CloseCode::TOO_BIG);
        }
    }
    // A huge 64-bit length, header only.
    let head = [0x82, 0xFF, 0, 0, 0, 0x10, 0, 0, 0, 0, 1, 2, 3, 4];
    let mut d = Decoder::new(Role::Server, limits);
    d.feed(&head);
    let e = d.next().unwrap_err();
    assert_eq!(
        e,
        ProtocolError::FrameTooLarge {
            size: 1 << 36,
            max: 100
        }
    );
    assert_eq!(e.close_code(), CloseCode::TOO_BIG);
}

#[test]
fn message_size_limit_from_header() {
    let limits = Limits::default().max_frame_size(100).max_message_size(150);
    let mut wire = masked(OpCode::Text, false, &[b'a'; 100]);
    wire.extend(masked(OpCode::Ping, true, b""));
    wire.extend(masked(OpCode::Continuation, false, &[b'b'; 50]));
    let ok_len = wire.len();
    wire.extend(masked(OpCode::Continuation, true, &[b'c'; 1]));
    let (e, at) = err_at(Role::Server, limits, &wire);
    assert_eq!(e, ProtocolError::MessageTooLarge { size: 151, max: 150 });
    assert_eq!(e.close_code(), CloseCode::TOO_BIG);
    // Reported when the last frame's header (2 bytes + mask key) is complete.
    assert_eq!(at, ok_len + 6);
    // The same total in one frame too many: 150 is allowed.
    let mut wire = masked(OpCode::Binary, false, &[1; 100]);
    wire.extend(masked(OpCode::Continuation, true, &[2; 50]));
    let mut expect = vec![1; 100];
    expect.extend([2; 50]);
    let mut d = Decoder::new(Role::Server, limits);
    d.feed(&wire);
    assert_eq!(d.next(), Ok(Some(Message::Binary(&expect))));
}

#[test]
fn close_code_mapping_for_every_error() {
    let cases = [
        (ProtocolError::ReservedOpcode(3), 1002),
        (ProtocolError::ReservedBitsSet, 1002),
        (ProtocolError::UnmaskedFrame, 1002),
        (ProtocolError::MaskedFrame, 1002),
        (ProtocolError::InvalidLength, 1002),
        (ProtocolError::FragmentedControlFrame, 1002),
        (ProtocolError::ControlFrameTooLong(126), 1002),
        (ProtocolError::UnexpectedContinuation, 1002),
        (ProtocolError::ExpectedContinuation, 1002),
        (ProtocolError::InvalidUtf8, 1007),
        (ProtocolError::InvalidClosePayload, 1002),
        (ProtocolError::InvalidCloseCode(1005), 1002),
        (ProtocolError::FrameTooLarge { size: 2, max: 1 }, 1009),
        (ProtocolError::MessageTooLarge { size: 2, max: 1 }, 1009),
    ];
    for (e, code) in cases {
        assert_eq!(e.close_code(), CloseCode(code), "{e:?}");
        // The code an endpoint sends must itself be legal on the wire.
        assert!(e.close_code().is_allowed_on_wire());
        assert!(!e.to_string().is_empty());
    }
}
