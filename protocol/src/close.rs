//! Close codes and close frame payloads (RFC 6455 §5.5.1, §7.4).

use std::fmt;

use crate::error::ProtocolError;

/// A close status code (RFC 6455 §7.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000: normal closure.
    pub const NORMAL: Self = Self(1000);
    /// 1001: the endpoint is going away (server shutdown, page navigation).
    pub const GOING_AWAY: Self = Self(1001);
    /// 1002: protocol error.
    pub const PROTOCOL_ERROR: Self = Self(1002);
    /// 1003: a data type the endpoint cannot accept.
    pub const UNSUPPORTED_DATA: Self = Self(1003);
    /// 1005: no status code was present (never sent on the wire).
    pub const NO_STATUS: Self = Self(1005);
    /// 1006: closed without a close frame (never sent on the wire).
    pub const ABNORMAL: Self = Self(1006);
    /// 1007: payload data inconsistent with the message type (invalid UTF-8 in text).
    pub const INVALID_PAYLOAD: Self = Self(1007);
    /// 1008: policy violation.
    pub const POLICY_VIOLATION: Self = Self(1008);
    /// 1009: message too big to process.
    pub const TOO_BIG: Self = Self(1009);
    /// 1010: the client expected an extension the server did not negotiate.
    pub const MANDATORY_EXTENSION: Self = Self(1010);
    /// 1011: the server hit an unexpected condition.
    pub const INTERNAL_ERROR: Self = Self(1011);
    /// 1013: try again later — the server is overloaded (a registered code; servers may send
    /// it, and [`CloseCode::is_sendable`] allows it).
    pub const TRY_AGAIN_LATER: Self = Self(1013);

    /// Whether this code may appear in a close frame on the wire: 1000-1003, 1007-1011 and
    /// 3000-4999. 1004-1006, 1012-2999 (unassigned or reserved, including 1015) and anything
    /// outside 1000-4999 may not.
    pub fn is_allowed_on_wire(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1011 | 3000..=4999)
    }

    /// Whether an endpoint may send this code: the codes allowed on the wire plus the
    /// registered 1012 (service restart), 1013 (try again later) and 1014 (bad gateway).
    /// Never 1004-1006 or 1015 (reserved for reports that no frame carries), 1016-2999
    /// (reserved for future use), or anything outside 1000-4999.
    pub fn is_sendable(self) -> bool {
        self.is_allowed_on_wire() || matches!(self.0, 1012..=1014)
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl From<u16> for CloseCode {
    fn from(v: u16) -> Self {
        Self(v)
    }
}

/// A parsed close frame payload: a status code and a UTF-8 reason borrowed from the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseFrame<'a> {
    /// The status code.
    pub code: CloseCode,
    /// The reason, possibly empty.
    pub reason: &'a str,
}

/// Parses and validates a close frame payload.
///
/// An empty payload is a close without a status (`Ok(None)`). A one-byte payload, or a code
/// that may not appear on the wire, is a protocol error (1002); a reason that is not UTF-8 is
/// 1007.
pub fn parse_close_payload(payload: &[u8]) -> Result<Option<CloseFrame<'_>>, ProtocolError> {
    match payload.len() {
        0 => Ok(None),
        1 => Err(ProtocolError::InvalidClosePayload),
        _ => {
            let code = CloseCode(u16::from_be_bytes([payload[0], payload[1]]));
            if !code.is_allowed_on_wire() {
                return Err(ProtocolError::InvalidCloseCode(code.0));
            }
            let reason = simdutf8::basic::from_utf8(&payload[2..]).map_err(|_| ProtocolError::InvalidUtf8)?;
            Ok(Some(CloseFrame { code, reason }))
        }
    }
}

/// Builds a close frame payload (code then reason) into `out`, truncating the reason at a
/// character boundary so the payload fits the 125-byte control frame limit.
pub fn close_payload(code: CloseCode, reason: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(&code.0.to_be_bytes());
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    out.extend_from_slice(&reason.as_bytes()[..end]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_codes() {
        for c in 0..=u16::MAX {
            let ok = CloseCode(c).is_allowed_on_wire();
            let expect =
                (1000..=1003).contains(&c) || (1007..=1011).contains(&c) || (3000..=4999).contains(&c);
            assert_eq!(ok, expect, "code {c}");
        }
        for bad in [0, 999, 1004, 1005, 1006, 1012, 1015, 1016, 2999, 5000, 65535] {
            assert_eq!(
                parse_close_payload(&u16::to_be_bytes(bad)),
                Err(ProtocolError::InvalidCloseCode(bad))
            );
        }
    }

    #[test]
    fn sendable_codes() {
        for c in 0..=u16::MAX {
            let expect =
                (1000..=1003).contains(&c) || (1007..=1014).contains(&c) || (3000..=4999).contains(&c);
            assert_eq!(CloseCode(c).is_sendable(), expect, "code {c}");
        }
        for bad in [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000] {
            assert!(!CloseCode(bad).is_sendable(), "code {bad}");
        }
    }

    #[test]
    fn payloads() {
        assert_eq!(parse_close_payload(b""), Ok(None));
        assert_eq!(parse_close_payload(&[3]), Err(ProtocolError::InvalidClosePayload));
        let p = [0x03, 0xe8, b'b', b'y', b'e'];
        assert_eq!(
            parse_close_payload(&p),
            Ok(Some(CloseFrame {
                code: CloseCode::NORMAL,
                reason: "bye"
            }))
        );
        let bad = [0x03, 0xe8, 0xff];
        assert_eq!(parse_close_payload(&bad), Err(ProtocolError::InvalidUtf8));
        assert_eq!(
            ProtocolError::InvalidUtf8.close_code(),
            CloseCode::INVALID_PAYLOAD
        );
    }

    #[test]
    fn payload_builder_truncates_on_char_boundary() {
        let reason = "é".repeat(100); // 200 bytes
        let mut out = Vec::new();
        close_payload(CloseCode::NORMAL, &reason, &mut out);
        assert!(out.len() <= 125);
        assert!(parse_close_payload(&out).is_ok());
    }
}
