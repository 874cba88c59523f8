//! Property tests of permessage-deflate: any messages, compressed with any window and context
//! setting, cut into any fragments (with control frames between them) and fed to the decoder
//! in any chunks, come out as they went in — in both directions (client to server: masked;
//! server to client: unmasked).

use proptest::prelude::*;
use proptest::sample::Index;
use syncws_protocol::deflate::{Compressor, Inflater};
use syncws_protocol::frame::{write_frame, FrameHeader, OpCode};
use syncws_protocol::{Decoder, Limits, Message, Role};

#[derive(Debug, Clone)]
struct Msg {
    text: bool,
    payload: Vec<u8>,
    /// Where the compressed payload is cut into frames.
    cuts: Vec<Index>,
    /// Sent uncompressed (RSV1 clear), as below a sender's threshold.
    plain: bool,
}

fn message() -> impl Strategy<Value = Msg> {
    let payload = prop_oneof![
        // Compressible text: words from a small vocabulary.
        prop::collection::vec(
            prop::sample::select(vec!["héllo ", "wörld ", "✓ ", "{\"id\":", "1, ", "🎉"]),
            0..400
        )
        .prop_map(|w| w.concat().into_bytes()),
        // Random text and random bytes.
        ".{0,300}".prop_map(String::into_bytes),
        prop::collection::vec(any::<u8>(), 0..3000),
        // Long runs.
        (any::<u8>(), 0usize..70_000).prop_map(|(b, n)| vec![b; n]),
    ];
    (
        payload,
        prop::collection::vec(any::<Index>(), 0..4),
        any::<bool>(),
        prop::bool::weighted(0.2),
    )
        .prop_map(|(payload, cuts, binary, plain)| {
            let text = !binary && std::str::from_utf8(&payload).is_ok();
            Msg {
                text,
                payload,
                cuts,
                plain,
            }
        })
}

/// The frames of one message: the payload (compressed or not) cut at `cuts`, RSV1 on the
/// first frame only, a ping between fragments now and then.
fn frames(m: &Msg, payload: &[u8], mask: Option<[u8; 4]>, wire: &mut Vec<u8>) {
    let mut points: Vec<usize> = m.cuts.iter().map(|i| i.index(payload.len() + 1)).collect();
    points.sort_unstable();
    points.dedup();
    points.retain(|&p| p > 0 && p < payload.len());
    let mut start = 0;
    let ends = points.into_iter().chain([payload.len()]);
    for (i, end) in ends.enumerate() {
        let op = match (i, m.text) {
            (0, true) => OpCode::Text,
            (0, false) => OpCode::Binary,
            _ => OpCode::Continuation,
        };
        let mut h = FrameHeader::new(op, (end - start) as u64, mask);
        h.fin = end == payload.len();
        h.rsv1 = i == 0 && !m.plain;
        write_frame(wire, h, &payload[start..end]);
        if !h.fin && i % 2 == 0 {
            write_frame(wire, FrameHeader::new(OpCode::Ping, 2, mask), b"pi");
        }
        start = end;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn compressed_messages_round_trip(
        msgs in prop::collection::vec(message(), 1..12),
        server_side in any::<bool>(),
        bits in 9u8..=15,
        takeover in any::<bool>(),
        level in 0u32..=9,
        chunk in 1usize..5000,
    ) {
        // The sender's role decides the masking; the receiver decodes as the other role.
        let (receiver, mask) = if server_side { (Role::Server, Some([7, 1, 3, 9])) } else { (Role::Client, None) };
        let mut comp = Compressor::new(level, bits, !takeover);
        let mut wire = Vec::new();
        for m in &msgs {
            if m.plain {
                frames(m, &m.payload, mask, &mut wire);
            } else {
                let mut c = Vec::new();
                comp.compress(&m.payload, &mut c);
                frames(m, &c, mask, &mut wire);
            }
        }
        let mut d = Decoder::new(receiver, Limits::default());
        d.set_inflater(Inflater::new(bits, !takeover));
        let mut got = Vec::new();
        for piece in wire.chunks(chunk) {
            d.feed(piece);
            loop {
                match d.next() {
                    Ok(Some(Message::Text(t))) => got.push((true, t.as_bytes().to_vec())),
                    Ok(Some(Message::Binary(b))) => got.push((false, b.to_vec())),
                    Ok(Some(Message::Ping(_))) => {}
                    Ok(Some(other)) => panic!("unexpected {other:?}"),
                    Ok(None) => break,
                    Err(e) => panic!("decode error {e}"),
                }
            }
        }
        let want: Vec<(bool, Vec<u8>)> = msgs.iter().map(|m| (m.text, m.payload.clone())).collect();
        prop_assert_eq!(got, want);
    }
}
