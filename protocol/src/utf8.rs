//! Incremental UTF-8 validation for text messages that arrive in pieces.
//!
//! A text message may be split across frames, and a frame across reads, at any byte — even in
//! the middle of a multi-byte character. [`Utf8Validator`] carries at most three bytes of an
//! unfinished character from one piece to the next and fails at the first piece that contains
//! an invalid sequence, so an endpoint can fail the connection before the rest arrives
//! (RFC 6455 §8.1). Validation uses `simdutf8`.

use std::fmt;

/// Error from [`Utf8Validator`]: the input is not UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Utf8Error;

impl fmt::Display for Utf8Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid UTF-8")
    }
}

impl std::error::Error for Utf8Error {}

/// Validates UTF-8 fed in arbitrary pieces.
#[derive(Debug, Clone, Default)]
pub struct Utf8Validator {
    partial: [u8; 4],
    partial_len: u8,
}

fn char_len(lead: u8) -> usize {
    match lead {
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => 4,
    }
}

impl Utf8Validator {
    /// A validator at the start of a text.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets any unfinished character: ready for a new text.
    pub fn reset(&mut self) {
        self.partial_len = 0;
    }

    /// Whether the bytes fed so far end in the middle of a character.
    pub fn is_incomplete(&self) -> bool {
        self.partial_len != 0
    }

    /// Validates the next piece. An unfinished character at the end is allowed and carried to
    /// the next call; any invalid byte fails at once.
    pub fn feed(&mut self, mut input: &[u8]) -> Result<(), Utf8Error> {
        if self.partial_len > 0 {
            let have = usize::from(self.partial_len);
            let need = char_len(self.partial[0]);
            let take = (need - have).min(input.len());
            self.partial[have..have + take].copy_from_slice(&input[..take]);
            let now = have + take;
            input = &input[take..];
            match simdutf8::compat::from_utf8(&self.partial[..now]) {
                Ok(_) => self.partial_len = 0,
                Err(e) if e.error_len().is_none() && now < need => {
                    self.partial_len = now as u8;
                    return Ok(());
                }
                Err(_) => return Err(Utf8Error),
            }
        }
        // Fast path: whole piece valid.
        if simdutf8::basic::from_utf8(input).is_ok() {
            return Ok(());
        }
        match simdutf8::compat::from_utf8(input) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_none() => {
                let rest = &input[e.valid_up_to()..];
                self.partial[..rest.len()].copy_from_slice(rest);
                self.partial_len = rest.len() as u8;
                Ok(())
            }
            Err(_) => Err(Utf8Error),
        }
    }

    /// Ends the text: fails if it stopped in the middle of a character.
    pub fn finish(&mut self) -> Result<(), Utf8Error> {
        let incomplete = self.is_incomplete();
        self.reset();
        if incomplete {
            Err(Utf8Error)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_all_splits(bytes: &[u8]) {
        let expect = std::str::from_utf8(bytes).is_ok();
        for a in 0..=bytes.len() {
            for b in a..=bytes.len() {
                let mut v = Utf8Validator::new();
                let r = v
                    .feed(&bytes[..a])
                    .and_then(|_| v.feed(&bytes[a..b]))
                    .and_then(|_| v.feed(&bytes[b..]))
                    .and_then(|_| v.finish());
                assert_eq!(r.is_ok(), expect, "{bytes:x?} split at {a},{b}");
            }
        }
    }

    #[test]
    fn splits_agree_with_std() {
        check_all_splits("κόσμε".as_bytes());
        check_all_splits("a€b😀c".as_bytes());
        check_all_splits(&[
            0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xcf, 0x83, 0xce, 0xbc, 0xce, 0xb5, 0xed, 0xa0, 0x80,
        ]);
        check_all_splits(&[0xf4, 0x90, 0x80, 0x80]);
        check_all_splits(&[0xc0, 0xaf]);
        check_all_splits(&[0xe0, 0x80]);
        check_all_splits(b"abc\xff");
    }

    #[test]
    fn fails_fast() {
        let mut v = Utf8Validator::new();
        assert!(v.feed(b"hello").is_ok());
        assert!(v.feed(&[0xce, 0xba, 0xf8]).is_err());
        let mut v = Utf8Validator::new();
        // First byte of a surrogate already decides: ED A0 is invalid before the last byte.
        assert!(v.feed(&[0xed]).is_ok());
        assert!(v.feed(&[0xa0]).is_err());
    }
}
