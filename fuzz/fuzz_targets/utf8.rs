//! The incremental UTF-8 validator over arbitrary splits of arbitrary bytes, against
//! `std::str::from_utf8`: same verdict, and the failure comes at the first piece after which
//! the bytes so far can no longer be the start of valid UTF-8.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use syncws_protocol::utf8::Utf8Validator;

#[derive(Debug, Arbitrary)]
struct Input {
    /// Piece lengths, used in turn; empty means one byte at a time.
    splits: Vec<u8>,
    data: Vec<u8>,
}

/// Whether `prefix` contains an invalid sequence (not merely an unfinished last character).
fn definitely_invalid(prefix: &[u8]) -> bool {
    matches!(std::str::from_utf8(prefix), Err(e) if e.error_len().is_some())
}

fuzz_target!(|input: Input| {
    let data = &input.data[..];
    let mut v = Utf8Validator::new();
    let mut at = 0;
    let mut turn = 0;
    let mut failed = false;
    while !failed && (at < data.len() || turn == 0) {
        let s = input
            .splits
            .get(turn % input.splits.len().max(1))
            .map_or(1, |&s| s % 64);
        turn += 1;
        if s == 0 {
            // An empty piece is harmless.
            let before = v.is_incomplete();
            assert!(v.feed(&[]).is_ok());
            assert_eq!(v.is_incomplete(), before);
        }
        let end = (at + usize::from(s.max(1))).min(data.len());
        let r = v.feed(&data[at..end]);
        at = end;
        assert_eq!(
            r.is_err(),
            definitely_invalid(&data[..at]),
            "piece ending at {at}: {data:x?}"
        );
        failed = r.is_err();
        if !failed {
            assert_eq!(v.is_incomplete(), std::str::from_utf8(&data[..at]).is_err());
        }
    }
    let verdict = !failed && v.finish().is_ok();
    assert_eq!(verdict, std::str::from_utf8(data).is_ok(), "{data:x?}");
});
