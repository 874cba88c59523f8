//! Property tests: random valid frame sequences decode to the messages they were built from
//! however the input is split; the incremental UTF-8 validator agrees with
//! `std::str::from_utf8` under any split; fast masking agrees with the byte loop; frame headers
//! round-trip through encode and parse.

use proptest::prelude::*;
use proptest::sample::Index;
use syncws_protocol::frame::{write_frame, FrameHeader, OpCode, MAX_HEADER_LEN};
use syncws_protocol::mask::{apply_mask, apply_mask_bytewise, apply_mask_offset};
use syncws_protocol::utf8::Utf8Validator;
use syncws_protocol::{Decoder, KeptMessage, Limits, Message, ProtocolError, Role};

/// An owned copy of a decoded message.
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

/// A ping or pong (`true` = ping) and its payload.
type Control = (bool, Vec<u8>);

/// One data message: text or binary, its payload, where it is cut into fragments, and the
/// control frames sent between its fragments.
#[derive(Debug, Clone)]
struct DataMsg {
    text: bool,
    payload: Vec<u8>,
    cuts: Vec<Index>,
    between: Vec<Option<Control>>,
}

#[derive(Debug, Clone)]
enum Item {
    Data(DataMsg),
    Control(Control),
}

/// A whole connection's worth of frames from one peer.
#[derive(Debug, Clone)]
struct Plan {
    /// The decoding side; the frames come from the other one (masked when decoding as server).
    role: Role,
    items: Vec<Item>,
    /// A final close frame: `Some(None)` is a close without status.
    close: Option<Option<(u16, String)>>,
    /// Bytes after the close frame, which the decoder must ignore.
    trailer: Vec<u8>,
    /// Seed for the per-frame mask keys.
    key_seed: u64,
}

fn control() -> impl Strategy<Value = Control> {
    (any::<bool>(), prop::collection::vec(any::<u8>(), 0..=125))
}

fn data_msg() -> impl Strategy<Value = DataMsg> {
    let payload = prop_oneof![
        prop::collection::vec(any::<char>(), 0..400)
            .prop_map(|cs| (true, cs.into_iter().collect::<String>().into_bytes())),
        "[a-z ]{0,200}".prop_map(|s| (true, s.into_bytes())),
        prop::collection::vec(any::<u8>(), 0..3000).prop_map(|b| (false, b)),
        any::<bool>().prop_map(|text| (text, Vec::new())),
    ];
    (
        payload,
        prop::collection::vec(any::<Index>(), 0..4),
        prop::collection::vec(prop::option::weighted(0.4, control()), 4),
    )
        .prop_map(|((text, payload), cuts, between)| DataMsg {
            text,
            payload,
            cuts,
            between,
        })
}

const CLOSE_CODES: [u16; 8] = [1000, 1001, 1003, 1008, 1011, 3000, 4000, 4999];

fn plan() -> impl Strategy<Value = Plan> {
    let item = prop_oneof![3 => data_msg().prop_map(Item::Data), 1 => control().prop_map(Item::Control)];
    let close = prop::option::of(prop::option::of((
        prop::sample::select(&CLOSE_CODES[..]),
        "[ -~]{0,20}|\\PC{0,10}",
    )));
    (
        any::<bool>(),
        prop::collection::vec(item, 0..8),
        close,
        prop::collection::vec(any::<u8>(), 0..16),
        any::<u64>(),
    )
        .prop_map(|(client, items, close, trailer, key_seed)| Plan {
            role: if client { Role::Client } else { Role::Server },
            items,
            close,
            trailer,
            key_seed,
        })
}

/// splitmix64: a different mask key for every frame.
fn next_key(state: &mut u64) -> [u8; 4] {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    ((z ^ (z >> 31)) as u32).to_le_bytes()
}

/// Encodes the plan; returns the wire bytes and the messages they must decode to.
fn build(plan: &Plan) -> (Vec<u8>, Vec<Msg>) {
    let mut seed = plan.key_seed;
    let mut wire = Vec::new();
    let mut expect = Vec::new();
    let mut frame = |wire: &mut Vec<u8>, op: OpCode, fin: bool, payload: &[u8]| {
        let mask = (plan.role == Role::Server).then(|| next_key(&mut seed));
        let mut h = FrameHeader::new(op, payload.len() as u64, mask);
        h.fin = fin;
        write_frame(wire, h, payload);
    };
    let control_msg = |(ping, p): &Control| {
        if *ping {
            Msg::Ping(p.clone())
        } else {
            Msg::Pong(p.clone())
        }
    };
    for item in &plan.items {
        match item {
            Item::Control(c) => {
                frame(
                    &mut wire,
                    if c.0 { OpCode::Ping } else { OpCode::Pong },
                    true,
                    &c.1,
                );
                expect.push(control_msg(c));
            }
            Item::Data(m) => {
                let mut cuts: Vec<usize> = m.cuts.iter().map(|i| i.index(m.payload.len() + 1)).collect();
                cuts.sort_unstable();
                cuts.push(m.payload.len());
                let mut start = 0;
                for (n, &end) in cuts.iter().enumerate() {
                    let op = match (n, m.text) {
                        (0, true) => OpCode::Text,
                        (0, false) => OpCode::Binary,
                        _ => OpCode::Continuation,
                    };
                    let last = n + 1 == cuts.len();
                    frame(&mut wire, op, last, &m.payload[start..end]);
                    start = end;
                    if let (false, Some(Some(c))) = (last, m.between.get(n)) {
                        frame(
                            &mut wire,
                            if c.0 { OpCode::Ping } else { OpCode::Pong },
                            true,
                            &c.1,
                        );
                        expect.push(control_msg(c));
                    }
                }
                expect.push(if m.text {
                    Msg::Text(String::from_utf8(m.payload.clone()).unwrap())
                } else {
                    Msg::Binary(m.payload.clone())
                });
            }
        }
    }
    if let Some(close) = &plan.close {
        let mut p = Vec::new();
        if let Some((code, reason)) = close {
            p.extend_from_slice(&code.to_be_bytes());
            p.extend_from_slice(reason.as_bytes());
        }
        frame(&mut wire, OpCode::Close, true, &p);
        expect.push(Msg::Close(close.clone()));
        wire.extend_from_slice(&plan.trailer);
    }
    (wire, expect)
}

/// Decodes `wire` in pieces whose sizes are taken in turn from `sizes`; via `read_buf` and
/// `commit` when `via_read_buf`. Returns the messages, or the first error.
fn decode_chunked(
    role: Role,
    limits: Limits,
    wire: &[u8],
    sizes: &[usize],
    via_read_buf: bool,
) -> Result<Vec<Msg>, ProtocolError> {
    let mut d = Decoder::new(role, limits);
    let mut out = Vec::new();
    let mut rest = wire;
    for &size in sizes.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (chunk, tail) = rest.split_at(size.clamp(1, rest.len()));
        rest = tail;
        if via_read_buf {
            let mut chunk = chunk;
            while !chunk.is_empty() {
                let spare = d.read_buf();
                let n = spare.len().min(chunk.len());
                spare[..n].copy_from_slice(&chunk[..n]);
                d.commit(n);
                chunk = &chunk[n..];
            }
        } else {
            d.feed(chunk);
        }
        while let Some(m) = d.next()? {
            out.push(m.into());
        }
    }
    if matches!(out.last(), Some(Msg::Close(_))) {
        assert!(d.is_closed());
        assert_eq!(d.next(), Ok(None));
    }
    Ok(out)
}

/// Decodes `wire` in pieces of `sizes`, keeping the data messages `keep` picks (in turn) as
/// shared payloads, taken after the pieces `take` picks; some payloads are dropped at once
/// (their buffers go back for reuse) and the others held to the end, when all are compared:
/// a payload handed out never changes, whatever the decoder does afterwards.
fn decode_keeping(
    role: Role,
    wire: &[u8],
    sizes: &[usize],
    keep: &[bool],
    take: &[bool],
) -> Result<Vec<Msg>, ProtocolError> {
    let mut d = Decoder::new(role, Limits::default().read_chunk(64));
    let mut out: Vec<Option<Msg>> = Vec::new();
    let (mut pending, mut held) = (Vec::new(), Vec::new());
    let (mut rest, mut nth, mut piece) = (wire, 0, 0);
    let take_now = |d: &mut Decoder, pending: &mut Vec<usize>, held: &mut Vec<(usize, KeptMessage)>| {
        let kept = d.take_kept();
        assert_eq!(kept.messages.len(), pending.len());
        for (m, i) in kept.messages.into_iter().zip(pending.drain(..)) {
            held.push((i, m));
        }
    };
    for &size in sizes.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (chunk, tail) = rest.split_at(size.clamp(1, rest.len()));
        rest = tail;
        d.feed(chunk);
        while let Some(m) = d.next()? {
            let data = matches!(m, Message::Text(_) | Message::Binary(_));
            if data && keep[nth % keep.len()] {
                d.keep();
                pending.push(out.len());
                out.push(None);
            } else {
                out.push(Some(m.into()));
            }
            nth += usize::from(data);
        }
        piece += 1;
        if take[piece % take.len()] {
            take_now(&mut d, &mut pending, &mut held);
            // Every other message given up at once: its buffer may be reused meanwhile.
            held.retain(|(i, m)| {
                if i % 2 == 0 {
                    return true;
                }
                out[*i] = Some(kept_msg(m));
                false
            });
        }
    }
    take_now(&mut d, &mut pending, &mut held);
    for (i, m) in &held {
        out[*i] = Some(kept_msg(m));
    }
    Ok(out
        .into_iter()
        .map(|m| m.expect("every message filled in"))
        .collect())
}

fn kept_msg(m: &KeptMessage) -> Msg {
    match m {
        KeptMessage::Text(t) => Msg::Text(t.as_str().to_owned()),
        KeptMessage::Binary(b) => Msg::Binary(b.to_vec()),
    }
}

fn chunk_sizes() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(prop_oneof![1usize..8, 1usize..300, 1usize..10_000], 1..12)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn frame_sequences_decode_under_any_chunking(
        plan in plan(),
        sizes in chunk_sizes(),
        via_read_buf in any::<bool>(),
        read_chunk in prop_oneof![Just(64usize), Just(8192)],
    ) {
        let (wire, expect) = build(&plan);
        let limits = Limits::default().read_chunk(read_chunk);
        prop_assert_eq!(&decode_chunked(plan.role, limits, &wire, &[wire.len().max(1)], false)?, &expect);
        prop_assert_eq!(&decode_chunked(plan.role, limits, &wire, &sizes, via_read_buf)?, &expect);
        prop_assert_eq!(&decode_chunked(plan.role, limits, &wire, &[1], via_read_buf)?, &expect);
    }

    #[test]
    fn kept_messages_are_the_messages_and_never_change(
        plan in plan(),
        sizes in chunk_sizes(),
        keep in prop::collection::vec(any::<bool>(), 1..6),
        take in prop::collection::vec(any::<bool>(), 1..6),
    ) {
        let (wire, expect) = build(&plan);
        prop_assert_eq!(&decode_keeping(plan.role, &wire, &sizes, &keep, &take)?, &expect);
        prop_assert_eq!(&decode_keeping(plan.role, &wire, &[wire.len().max(1)], &[true], &[true])?, &expect);
    }

    /// A text message with an arbitrary (often invalid) payload, fragmented and chunked at
    /// random: it fails with `InvalidUtf8` exactly when the payload is not UTF-8.
    #[test]
    fn text_messages_fail_exactly_on_invalid_utf8(
        payload in utf8_ish(),
        cuts in prop::collection::vec(any::<Index>(), 0..4),
        sizes in chunk_sizes(),
        key in any::<[u8; 4]>(),
    ) {
        let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(payload.len() + 1)).collect();
        cuts.sort_unstable();
        cuts.push(payload.len());
        let mut wire = Vec::new();
        let mut start = 0;
        for (n, &end) in cuts.iter().enumerate() {
            let op = if n == 0 { OpCode::Text } else { OpCode::Continuation };
            let mut h = FrameHeader::new(op, (end - start) as u64, Some(key));
            h.fin = n + 1 == cuts.len();
            write_frame(&mut wire, h, &payload[start..end]);
            start = end;
        }
        let got = decode_chunked(Role::Server, Limits::default(), &wire, &sizes, false);
        match std::str::from_utf8(&payload) {
            Ok(s) => prop_assert_eq!(got, Ok(vec![Msg::Text(s.to_owned())])),
            Err(_) => prop_assert_eq!(got, Err(ProtocolError::InvalidUtf8)),
        }
    }
}

/// Byte strings that are valid UTF-8, nearly valid (a few bytes changed, inserted or cut
/// off), or random.
fn utf8_ish() -> impl Strategy<Value = Vec<u8>> {
    let text = prop::collection::vec(any::<char>(), 0..64).prop_map(|cs| cs.into_iter().collect::<String>());
    prop_oneof![
        text.clone().prop_map(String::into_bytes),
        (
            text,
            prop::collection::vec((any::<Index>(), any::<u8>(), any::<bool>()), 1..4)
        )
            .prop_map(|(s, edits)| {
                let mut b = s.into_bytes();
                for (at, byte, insert) in edits {
                    let i = at.index(b.len() + 1);
                    if insert || i == b.len() {
                        b.insert(i, byte);
                    } else {
                        b[i] = byte;
                    }
                }
                b
            }),
        prop::collection::vec(any::<char>(), 1..16).prop_map(|cs| {
            // Cut off in the middle of the last character.
            let mut b = cs.into_iter().collect::<String>().into_bytes();
            if b.last().is_some_and(|&x| x >= 0x80) {
                b.pop();
            }
            b
        }),
        prop::collection::vec(any::<u8>(), 0..64),
        prop::collection::vec(
            prop::sample::select(
                &[0x00u8, 0x7f, 0x80, 0xbf, 0xc0, 0xc2, 0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff][..]
            ),
            0..12
        ),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn utf8_validator_agrees_with_std_under_any_split(
        bytes in utf8_ish(),
        splits in prop::collection::vec(any::<Index>(), 0..6),
    ) {
        let mut points: Vec<usize> = splits.iter().map(|i| i.index(bytes.len() + 1)).collect();
        points.sort_unstable();
        points.push(bytes.len());
        let mut v = Utf8Validator::new();
        let mut start = 0;
        let mut failed = false;
        for &end in &points {
            let r = v.feed(&bytes[start..end]);
            // Fails at the first piece after which the input can no longer become valid.
            let dead = matches!(std::str::from_utf8(&bytes[..end]), Err(e) if e.error_len().is_some());
            prop_assert_eq!(r.is_err(), dead, "piece {}..{}", start, end);
            if r.is_err() {
                failed = true;
                break;
            }
            prop_assert_eq!(v.is_incomplete(), std::str::from_utf8(&bytes[..end]).is_err());
            start = end;
        }
        let ok = !failed && v.finish().is_ok();
        prop_assert_eq!(ok, std::str::from_utf8(&bytes).is_ok());
        // One byte at a time agrees too.
        let mut v = Utf8Validator::new();
        let bytewise = bytes.iter().try_for_each(|b| v.feed(std::slice::from_ref(b))).and_then(|_| v.finish());
        prop_assert_eq!(bytewise.is_ok(), std::str::from_utf8(&bytes).is_ok());
    }

    #[test]
    fn apply_mask_offset_agrees_with_bytewise(
        data in prop::collection::vec(any::<u8>(), 0..600),
        key in any::<[u8; 4]>(),
        offset in 0usize..64,
        misalign in 0usize..16,
        split in any::<Index>(),
    ) {
        let mut expect = data.clone();
        apply_mask_bytewise(&mut expect, key, offset);
        // At an arbitrary address alignment.
        let mut backing = vec![0u8; misalign + data.len()];
        backing[misalign..].copy_from_slice(&data);
        apply_mask_offset(&mut backing[misalign..], key, offset);
        prop_assert_eq!(&backing[misalign..], &expect[..]);
        // In two pieces, the second continuing the key phase.
        let at = split.index(data.len() + 1);
        let mut pieces = data.clone();
        let (a, b) = pieces.split_at_mut(at);
        apply_mask_offset(a, key, offset);
        apply_mask_offset(b, key, offset + at);
        prop_assert_eq!(&pieces, &expect);
        // Masking twice is the identity; `apply_mask` is offset 0.
        let mut twice = data.clone();
        apply_mask(&mut twice, key);
        let mut once = data.clone();
        apply_mask_bytewise(&mut once, key, 0);
        prop_assert_eq!(&twice, &once);
        apply_mask(&mut twice, key);
        prop_assert_eq!(&twice, &data);
    }

    #[test]
    fn frame_header_encode_parse_round_trip(
        fin in any::<bool>(),
        rsv in 0u8..8,
        opcode in prop::sample::select(&[OpCode::Continuation, OpCode::Text, OpCode::Binary,
            OpCode::Close, OpCode::Ping, OpCode::Pong][..]),
        mask in prop::option::of(any::<[u8; 4]>()),
        payload_len in prop_oneof![0u64..=125, 126u64..=0xFFFF, 0x1_0000u64..(1 << 63),
            prop::sample::select(&[0u64, 125, 126, 0xFFFF, 0x1_0000, (1 << 63) - 1][..])],
        trailing in prop::collection::vec(any::<u8>(), 0..8),
    ) {
        let h = FrameHeader {
            fin,
            rsv1: rsv & 4 != 0,
            rsv2: rsv & 2 != 0,
            rsv3: rsv & 1 != 0,
            opcode,
            mask,
            payload_len,
        };
        let mut buf = [0u8; MAX_HEADER_LEN];
        let n = h.encode(&mut buf);
        prop_assert_eq!(n, h.encoded_len());
        let mut wire = buf[..n].to_vec();
        wire.extend_from_slice(&trailing);
        prop_assert_eq!(FrameHeader::parse(&wire), Ok(Some((h, n))));
        for short in 0..n {
            prop_assert_eq!(FrameHeader::parse(&wire[..short]), Ok(None));
        }
        let mut v = Vec::new();
        h.encode_to_vec(&mut v);
        prop_assert_eq!(&v[..], &buf[..n]);
    }

    /// Any bytes that parse as a header re-encode to a header that parses to the same value.
    #[test]
    fn parsed_headers_re_encode(bytes in prop::collection::vec(any::<u8>(), 0..=MAX_HEADER_LEN)) {
        if let Ok(Some((h, n))) = FrameHeader::parse(&bytes) {
            prop_assert!(n <= bytes.len() && n >= h.encoded_len());
            let mut buf = [0u8; MAX_HEADER_LEN];
            let m = h.encode(&mut buf);
            prop_assert_eq!(FrameHeader::parse(&buf[..m]), Ok(Some((h, m))));
        }
    }
}
