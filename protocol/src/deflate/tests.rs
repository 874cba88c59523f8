use super::*;
use crate::{Decoder, Limits, Message, ProtocolError, Role};

fn agreed(header: &str, cfg: DeflateConfig) -> Option<String> {
    negotiate(&parse_offers([header]), &cfg).map(|p| p.response())
}

#[test]
fn negotiation_table() {
    let d = DeflateConfig::default();
    let keep = DeflateConfig::default().server_no_context_takeover(false);
    let pmd = "permessage-deflate";
    let cases: &[(&str, DeflateConfig, Option<&str>)] = &[
        // Plain offers, as browsers and Python websockets send them.
        (pmd, keep, Some(pmd)),
        ("permessage-deflate; client_max_window_bits", keep, Some(pmd)),
        (pmd, d, Some("permessage-deflate; server_no_context_takeover")),
        // Case and spacing do not matter; quoted values are unquoted.
        (
            "Permessage-Deflate ;Server_Max_Window_Bits = \"10\"",
            keep,
            Some("permessage-deflate; server_max_window_bits=10"),
        ),
        // The client's limits are honoured, ours are applied.
        (
            "permessage-deflate; server_max_window_bits=12",
            keep.server_max_window_bits(10),
            Some("permessage-deflate; server_max_window_bits=10"),
        ),
        (
            "permessage-deflate; client_max_window_bits",
            keep.client_max_window_bits(10),
            Some("permessage-deflate; client_max_window_bits=10"),
        ),
        (
            "permessage-deflate; client_max_window_bits=9",
            keep.client_max_window_bits(12),
            Some(pmd),
        ),
        (
            "permessage-deflate; client_max_window_bits=9",
            keep.client_max_window_bits(10),
            Some(pmd),
        ),
        (
            "permessage-deflate; client_max_window_bits=12",
            keep.client_max_window_bits(10),
            Some("permessage-deflate; client_max_window_bits=10"),
        ),
        // We cannot limit a client that did not say it can be limited.
        (pmd, keep.client_max_window_bits(10), Some(pmd)),
        (
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
            keep,
            Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover"),
        ),
        (
            pmd,
            keep.client_no_context_takeover(true),
            Some("permessage-deflate; client_no_context_takeover"),
        ),
        // Invalid offers are declined: unknown or repeated parameters, bad values.
        ("permessage-deflate; foo", d, None),
        (
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            d,
            None,
        ),
        ("permessage-deflate; server_max_window_bits", d, None),
        ("permessage-deflate; server_max_window_bits=16", d, None),
        ("permessage-deflate; server_max_window_bits=7", d, None),
        ("permessage-deflate; server_max_window_bits=010", d, None),
        ("permessage-deflate; server_max_window_bits=+9", d, None),
        ("permessage-deflate; client_max_window_bits=+8", d, None),
        ("permessage-deflate; client_max_window_bits=\"\"", d, None),
        ("permessage-deflate; client_max_window_bits=abc", d, None),
        ("permessage-deflate; server_no_context_takeover=1", d, None),
        ("permessage-deflate; server_max_window_bits=\"1\"0\"", d, None),
        // 8 bits for our compressor cannot be honoured: declined.
        ("permessage-deflate; server_max_window_bits=8", d, None),
        // Other extensions are skipped; the first acceptable offer wins.
        (
            "x-webkit-deflate-frame, permessage-deflate; server_max_window_bits=8, \
          permessage-deflate; server_max_window_bits=9",
            keep,
            Some("permessage-deflate; server_max_window_bits=9"),
        ),
        ("permessage-deflate; bogus, permessage-deflate", keep, Some(pmd)),
        ("foo; bar=\"a,b\", permessage-deflate", keep, Some(pmd)),
        ("", d, None),
        (" , ", d, None),
    ];
    for (offer, cfg, want) in cases {
        assert_eq!(agreed(offer, *cfg).as_deref(), *want, "offer {offer:?}");
    }
}

#[test]
fn several_header_fields_are_one_list() {
    let offers = parse_offers(["foo", "permessage-deflate; client_no_context_takeover"]);
    assert_eq!(offers.len(), 2);
    let p = negotiate(&offers, &DeflateConfig::default()).unwrap();
    assert!(p.client_no_context_takeover && p.server_no_context_takeover);
    assert_eq!((p.server_max_window_bits, p.client_max_window_bits), (15, 15));
}

/// Decodes server-to-client frames (RFC 7692 §7.2.3 gives them unmasked) with a client-role
/// decoder that inflates.
fn client(takeover: bool) -> Decoder {
    let mut d = Decoder::new(Role::Client, Limits::default());
    d.set_inflater(Inflater::new(15, !takeover));
    d
}

fn texts(d: &mut Decoder, wire: &[u8]) -> Vec<String> {
    d.feed(wire);
    let mut out = Vec::new();
    while let Some(m) = d.next().unwrap() {
        match m {
            Message::Text(t) => out.push(t.to_string()),
            m => panic!("unexpected {m:?}"),
        }
    }
    out
}

#[test]
fn rfc7692_examples_decode() {
    // §7.2.3.1: "Hello" in one frame, and in two fragments.
    assert_eq!(
        texts(
            &mut client(true),
            &[0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]
        ),
        ["Hello"]
    );
    let frags = [0x41, 0x03, 0xf2, 0x48, 0xcd, 0x80, 0x04, 0xc9, 0xc9, 0x07, 0x00];
    assert_eq!(texts(&mut client(true), &frags), ["Hello"]);
    // §7.2.3.2: the second "Hello" refers to the first through the shared window.
    let mut d = client(true);
    let two = [
        0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0xc1, 0x05, 0xf2, 0x00, 0x11, 0x00, 0x00,
    ];
    assert_eq!(texts(&mut d, &two), ["Hello", "Hello"]);
    // §7.2.3.3: a stored (uncompressed) block.
    let stored = [
        0xc1, 0x0b, 0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
    ];
    assert_eq!(texts(&mut client(false), &stored), ["Hello"]);
    // §7.2.3.4: a block with BFINAL set, then another message.
    let mut d = client(true);
    let bfinal = [0xc1, 0x08, 0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00];
    assert_eq!(texts(&mut d, &bfinal), ["Hello"]);
    assert_eq!(texts(&mut d, &bfinal), ["Hello"]);
    // §7.2.3.5: two blocks in one message.
    let blocks = [
        0xc1, 0x0d, 0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00,
    ];
    assert_eq!(texts(&mut client(false), &blocks), ["Hello"]);
    // §7.2.3.6: an empty message.
    assert_eq!(texts(&mut client(false), &[0xc1, 0x01, 0x00]), [""]);
}

#[test]
fn rfc7692_examples_encode() {
    let mut c = Compressor::new(6, 15, false);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    c.compress(b"Hello", &mut a);
    c.compress(b"Hello", &mut b);
    assert_eq!(a, [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]);
    // With context takeover the second refers back to the first (§7.2.3.2).
    assert_eq!(b, [0xf2, 0x00, 0x11, 0x00, 0x00]);
    // Without, each message is compressed alone.
    let mut c = Compressor::new(6, 15, true);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    c.compress(b"Hello", &mut a);
    c.compress(b"Hello", &mut b);
    assert_eq!(a, b);
    let mut empty = Vec::new();
    c.compress(b"", &mut empty);
    assert_eq!(empty, [0x00]);
}

#[test]
fn a_bomb_fails_with_1009_having_allocated_about_the_limit() {
    // 64 MiB of zeros compress to about 64 KiB.
    let mut wire = Vec::new();
    Compressor::new(9, 15, true).compress(&vec![0u8; 64 << 20], &mut wire);
    assert!(wire.len() < 100 << 10, "{}", wire.len());
    let limits = Limits::default().max_message_size(1 << 20);
    let mut d = Decoder::new(Role::Client, limits);
    d.set_inflater(Inflater::new(15, true));
    let mut frame = Vec::new();
    let mut h = crate::FrameHeader::new(crate::OpCode::Binary, wire.len() as u64, None);
    h.rsv1 = true;
    crate::frame::write_frame(&mut frame, h, &wire);
    d.feed(&frame);
    let e = d.next().unwrap_err();
    assert!(
        matches!(e, ProtocolError::MessageTooLarge { max, .. } if max == 1 << 20),
        "{e:?}"
    );
    assert_eq!(e.close_code().0, 1009);
    assert!(
        d.capacity() <= (1 << 20) + frame.len() * 2 + (64 << 10),
        "{}",
        d.capacity()
    );
}

#[test]
fn the_headroom_pauses_inflating_until_more_is_given() {
    let text: String = (0..40_000).map(|i| format!("{i} ")).collect();
    let mut wire = Vec::new();
    Compressor::new(6, 15, true).compress(text.as_bytes(), &mut wire);
    let mut d = Decoder::new(Role::Client, Limits::default());
    d.set_inflater(Inflater::new(15, true));
    let mut h = crate::FrameHeader::new(crate::OpCode::Text, wire.len() as u64, None);
    h.rsv1 = true;
    let mut frame = Vec::new();
    crate::frame::write_frame(&mut frame, h, &wire);
    d.feed(&frame);
    d.set_inflate_headroom(0);
    let (mut granted, mut pauses) = (0, 0);
    loop {
        match d.next() {
            Ok(Some(Message::Text(t))) => {
                assert_eq!(t, text);
                break;
            }
            Ok(None) => {
                assert!(d.wants_memory());
                pauses += 1;
                let step = d.message_capacity().max(16 << 10);
                granted += step;
                d.set_inflate_headroom(step);
            }
            other => panic!("{other:?}"),
        }
        assert!(
            d.message_capacity() <= granted + 1,
            "{} > {granted}",
            d.message_capacity()
        );
    }
    assert!(pauses >= 3, "{pauses}");
    // And the message limit still applies, as an error.
    let mut d = Decoder::new(Role::Client, Limits::default().max_message_size(100_000));
    d.set_inflater(Inflater::new(15, true));
    d.feed(&frame);
    assert!(matches!(d.next(), Err(ProtocolError::MessageTooLarge { .. })));
}

#[test]
fn bad_data_and_bad_text_fail_with_1007() {
    let frame = |payload: &[u8]| {
        let mut f = vec![0xc1, payload.len() as u8];
        f.extend_from_slice(payload);
        f
    };
    let mut d = client(false);
    d.feed(&frame(&[0xff, 0xff, 0xff]));
    assert_eq!(d.next(), Err(ProtocolError::InvalidCompressedData));
    // Compressed text whose inflated bytes are not UTF-8.
    let mut wire = Vec::new();
    Compressor::new(6, 15, true).compress(&[0x61, 0xff, 0x62], &mut wire);
    let mut d = client(false);
    d.feed(&frame(&wire));
    let e = d.next().unwrap_err();
    assert_eq!((e.clone(), e.close_code().0), (ProtocolError::InvalidUtf8, 1007));
}

#[test]
fn an_8_bit_client_window_is_inflated() {
    // Stored blocks are valid for any window; a 9-bit inflater reads an 8-bit peer's stream.
    let mut inf = Inflater::new(8, false);
    let mut out = Vec::new();
    inf.inflate(
        &[0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f],
        &mut out,
        100,
    )
    .unwrap();
    inf.finish(&mut out, 100).unwrap();
    assert_eq!(out, b"Hello");
}

#[test]
fn an_empty_message_between_others_keeps_the_stream_in_step() {
    // zlib writes nothing for an empty input right after a sync flush; the message must
    // still be the one byte of §7.2.3.6, or the receiver reads the next message as its rest.
    let mut c = Compressor::new(9, 10, false);
    let mut d = Decoder::new(Role::Client, Limits::default());
    d.set_inflater(Inflater::new(10, false));
    for msg in ["Hello", "", "Hello", "", "", "world"] {
        let mut payload = Vec::new();
        c.compress(msg.as_bytes(), &mut payload);
        let mut frame = vec![0xc1, payload.len() as u8];
        frame.extend_from_slice(&payload);
        assert_eq!(texts(&mut d, &frame), [msg]);
    }
}
