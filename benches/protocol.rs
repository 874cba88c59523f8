//! Benchmarks of the hot paths in `syncws-protocol`: unmasking, frame header parsing, UTF-8
//! validation, decoding a stream of small masked frames, and handing a large text message out
//! of the decoder (`hand_out`).
//!
//! Run with `cargo bench --bench protocol`. Each benchmark measures for about two seconds.
//! `apply_mask_bytewise` and `std::str::from_utf8` are in-run baselines.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput};
use syncws_protocol::frame::{write_frame, FrameHeader, OpCode};
use syncws_protocol::mask::{apply_mask, apply_mask_bytewise};
use syncws_protocol::utf8::Utf8Validator;
use syncws_protocol::{Decoder, Limits, Role};

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

fn unmask(c: &mut Criterion) {
    let mut g = c.benchmark_group("unmask");
    for size in [16usize, 1 << 10, 64 << 10, 1 << 20] {
        let mut buf: Vec<u8> = (0..size).map(|i| i as u8).collect();
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function(BenchmarkId::new("apply_mask", size), |b| {
            b.iter(|| apply_mask(black_box(&mut buf[..]), black_box(KEY)))
        });
        g.bench_function(BenchmarkId::new("apply_mask_bytewise", size), |b| {
            b.iter(|| apply_mask_bytewise(black_box(&mut buf[..]), black_box(KEY), 0))
        });
    }
    g.finish();
}

fn header(op: OpCode, len: u64, mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut v = Vec::new();
    FrameHeader::new(op, len, mask).encode_to_vec(&mut v);
    v
}

fn frame_header_parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("frame_header_parse");
    g.throughput(Throughput::Elements(1));
    let cases = [
        ("7bit_unmasked", header(OpCode::Text, 5, None)),
        ("7bit_masked", header(OpCode::Text, 5, Some(KEY))),
        ("16bit_masked", header(OpCode::Binary, 1000, Some(KEY))),
        ("64bit_masked", header(OpCode::Binary, 1 << 20, Some(KEY))),
    ];
    for (name, bytes) in &cases {
        g.bench_function(*name, |b| b.iter(|| FrameHeader::parse(black_box(&bytes[..]))));
    }
    g.finish();
}

/// `len` bytes of text: pure ASCII, or a mix of one- to four-byte characters.
fn text(len: usize, mixed: bool) -> Vec<u8> {
    let unit = if mixed {
        "Hello, κόσμε! Grüße — 你好世界 😀 ok; "
    } else {
        "The quick brown fox jumps over the lazy dog. 0123456789 "
    };
    let mut s = String::new();
    while s.len() + unit.len() <= len {
        s.push_str(unit);
    }
    while s.len() < len {
        s.push('.');
    }
    s.into_bytes()
}

fn utf8(c: &mut Criterion) {
    let mut g = c.benchmark_group("utf8");
    let len = 64 << 10;
    for (name, mixed) in [("ascii", false), ("mixed", true)] {
        let data = text(len, mixed);
        assert!(std::str::from_utf8(&data).is_ok());
        g.throughput(Throughput::Bytes(data.len() as u64));
        g.bench_function(BenchmarkId::new("Utf8Validator::feed", name), |b| {
            b.iter(|| {
                let mut v = Utf8Validator::new();
                v.feed(black_box(&data)).unwrap();
                v.finish().unwrap();
            })
        });
        g.bench_function(BenchmarkId::new("Utf8Validator::feed_4KiB_pieces", name), |b| {
            b.iter(|| {
                let mut v = Utf8Validator::new();
                for piece in black_box(&data[..]).chunks(4096 - 1) {
                    v.feed(piece).unwrap();
                }
                v.finish().unwrap();
            })
        });
        g.bench_function(BenchmarkId::new("simdutf8::basic::from_utf8", name), |b| {
            b.iter(|| simdutf8::basic::from_utf8(black_box(&data)).is_ok())
        });
        g.bench_function(BenchmarkId::new("std::str::from_utf8", name), |b| {
            b.iter(|| std::str::from_utf8(black_box(&data)).is_ok())
        });
    }
    g.finish();
}

fn decode_small_frames(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode");
    let frames = 1000usize;
    for (name, op, payload) in [
        ("masked_text_16B", OpCode::Text, &b"hello, websocket"[..]),
        ("masked_binary_125B", OpCode::Binary, &[0xa5u8; 125][..]),
    ] {
        let mut wire = Vec::new();
        for i in 0..frames {
            let key = (i as u32).wrapping_mul(0x9e37_79b9).to_le_bytes();
            write_frame(
                &mut wire,
                FrameHeader::new(op, payload.len() as u64, Some(key)),
                payload,
            );
        }
        g.throughput(Throughput::Elements(frames as u64));
        let mut d = Decoder::new(Role::Server, Limits::default());
        g.bench_function(BenchmarkId::new("feed+next", name), |b| {
            b.iter(|| {
                d.feed(black_box(&wire));
                let mut n = 0;
                while let Some(m) = d.next().unwrap() {
                    black_box(m);
                    n += 1;
                }
                assert_eq!(n, frames);
            })
        });
    }
    g.finish();
}

/// Handing text to another thread (`Decoder::keep` / `take_kept`): the `TextPayload` gives its
/// `&str` without a second pass (one audited `unsafe`); against that pass, which is what the
/// `unsafe` saves, for a 1 MiB text message.
fn hand_out(c: &mut Criterion) {
    let mut g = c.benchmark_group("hand_out");
    for (name, mixed) in [("ascii", false), ("mixed", true)] {
        let payload = text(1 << 20, mixed);
        let mut wire = Vec::new();
        write_frame(
            &mut wire,
            FrameHeader::new(OpCode::Text, payload.len() as u64, Some(KEY)),
            &payload,
        );
        g.throughput(Throughput::Bytes(payload.len() as u64));
        let mut d = Decoder::new(Role::Server, Limits::default());
        let take = |d: &mut Decoder| {
            d.feed(&wire);
            assert!(d.next().unwrap().is_some());
            d.keep();
            match d.take_kept().messages.pop() {
                Some(syncws_protocol::KeptMessage::Text(t)) => t,
                _ => unreachable!(),
            }
        };
        let t = take(&mut d);
        g.bench_function(BenchmarkId::new("TextPayload::as_str", name), |b| {
            b.iter(|| black_box(black_box(&t).as_str().len()))
        });
        g.bench_function(BenchmarkId::new("second pass (simdutf8)", name), |b| {
            b.iter(|| black_box(simdutf8::basic::from_utf8(black_box(t.as_bytes())).map(str::len)))
        });
        g.bench_function(BenchmarkId::new("feed+next+keep+take_kept", name), |b| {
            b.iter(|| black_box(take(&mut d)))
        });
    }
    g.finish();
}

fn main() {
    let mut c = Criterion::default()
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
        .configure_from_args();
    unmask(&mut c);
    frame_header_parse(&mut c);
    utf8(&mut c);
    decode_small_frames(&mut c);
    hand_out(&mut c);
    c.final_summary();
}
