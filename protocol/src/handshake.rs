//! The HTTP/1.1 upgrade (RFC 6455 §4): request parsing and validation, the
//! `Sec-WebSocket-Accept` computation, and response builders.
//!
//! ```
//! use syncws_protocol::handshake::{accept_key, parse_request, validate_upgrade, response_101};
//!
//! let raw = b"GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n\
//!             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
//!             Sec-WebSocket-Version: 13\r\n\r\n";
//! let (req, used) = parse_request(raw, 64).unwrap().unwrap();
//! assert_eq!(used, raw.len());
//! let up = validate_upgrade(&req).unwrap();
//! assert_eq!(accept_key(up.key.as_bytes()), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
//! let resp = response_101(&up.key, None, &[]);
//! assert!(resp.starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"));
//! ```

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use sha1::{Digest, Sha1};

use crate::error::HandshakeError;

/// The GUID appended to the client key (RFC 6455 §1.3).
pub const WS_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// A parsed HTTP request head. Header names keep their case; look them up with
/// [`Request::header`], which ignores case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method, e.g. `GET`.
    pub method: String,
    /// The request target as sent (path and query), e.g. `/chat?room=1`. Always in origin
    /// form (beginning with `/`) when the request came from [`parse_request`].
    pub target: String,
    /// The minor HTTP version: 1 for HTTP/1.1, 0 for HTTP/1.0.
    pub version: u8,
    /// Header fields in the order received.
    pub headers: Vec<(String, Vec<u8>)>,
}

impl Request {
    /// The value of the first header called `name` (case-insensitive), if it is valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    }

    /// How many header fields are called `name` (case-insensitive), whatever their values.
    pub fn header_count(&self, name: &str) -> usize {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .count()
    }

    /// All values of the headers called `name` (case-insensitive), as UTF-8 strings.
    pub fn headers_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .filter_map(|(_, v)| std::str::from_utf8(v).ok())
    }

    /// The path part of the target (before `?`).
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// The query part of the target (after `?`), if any.
    pub fn query(&self) -> Option<&str> {
        self.target.split_once('?').map(|(_, q)| q)
    }

    /// Whether the request asks for a WebSocket upgrade (`Upgrade: websocket` present). A
    /// request without it is plain HTTP.
    pub fn wants_websocket(&self) -> bool {
        self.headers_all("upgrade").any(|v| has_token(v, "websocket"))
    }
}

/// Whether the comma-separated token list `list` contains `token` (case-insensitive).
pub fn has_token(list: &str, token: &str) -> bool {
    tokens(list).any(|t| t.eq_ignore_ascii_case(token))
}

/// Splits a comma-separated header value into trimmed, non-empty tokens.
pub fn tokens(list: &str) -> impl Iterator<Item = &str> {
    list.split(',').map(str::trim).filter(|t| !t.is_empty())
}

/// Parses a request head from the start of `buf`, allowing at most `max_headers` fields.
///
/// `Ok(None)`: incomplete, read more. `Ok(Some((request, head_len)))`: complete; bytes after
/// `head_len` belong to the connection (a client may send frames right after the request).
/// The caller enforces the byte limit on the head ([`HandshakeError::HeaderTooLarge`]).
///
/// A complete head is also checked by [`check_head`] (one `Host`, an origin-form target), so
/// what a caller gets has a single authority and a path that begins with `/`. Header lines
/// folded over several lines (obs-fold) are refused as malformed.
pub fn parse_request(buf: &[u8], max_headers: usize) -> Result<Option<(Request, usize)>, HandshakeError> {
    let mut storage = vec![httparse::EMPTY_HEADER; max_headers.max(1)];
    let mut req = httparse::Request::new(&mut storage);
    let used = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HandshakeError::TooManyHeaders),
        Err(httparse::Error::Version) => return Err(HandshakeError::Malformed("bad HTTP version")),
        Err(_) => return Err(HandshakeError::Malformed("bad request line or header")),
    };
    let headers = req
        .headers
        .iter()
        .map(|h| (h.name.to_string(), h.value.to_vec()))
        .collect();
    let request = Request {
        method: req.method.unwrap_or_default().to_string(),
        target: req.path.unwrap_or_default().to_string(),
        version: req.version.unwrap_or(0),
        headers,
    };
    check_head(&request)?;
    Ok(Some((request, used)))
}

/// The checks every request head gets, upgrade or not: at most one `Host` header field
/// ([`HandshakeError::DuplicateHost`], RFC 9112 §3.2) and a target in origin form, beginning
/// with `/` ([`HandshakeError::TargetNotOriginForm`]; RFC 9112 §3.2.1-3.2.4: absolute form is
/// for proxies, authority form for `CONNECT`, `*` for `OPTIONS`, none of which this server
/// is). With these, a path (and the credentials some paths carry) is always where the server
/// looks for it.
pub fn check_head(req: &Request) -> Result<(), HandshakeError> {
    if req.header_count("host") > 1 {
        return Err(HandshakeError::DuplicateHost);
    }
    if !req.target.starts_with('/') {
        return Err(HandshakeError::TargetNotOriginForm);
    }
    Ok(())
}

/// The WebSocket-specific parts of a valid upgrade request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upgrade {
    /// The client's `Sec-WebSocket-Key`, as sent.
    pub key: String,
    /// Subprotocols offered in `Sec-WebSocket-Protocol`, in the client's order of preference.
    pub protocols: Vec<String>,
    /// Extensions offered in `Sec-WebSocket-Extensions` (the name of each offer, parameters
    /// kept in the string), in the client's order.
    pub extensions: Vec<String>,
}

/// Validates an upgrade request per RFC 6455 §4.2.1, strictly: besides [`check_head`], one
/// `Upgrade` header field ([`HandshakeError::DuplicateUpgrade`]), a `Connection` that does not
/// also ask to close ([`HandshakeError::ConflictingConnection`]; several `Connection` fields
/// are a list and are fine), one `Sec-WebSocket-Version`
/// ([`HandshakeError::DuplicateVersion`]) and one `Sec-WebSocket-Key`.
pub fn validate_upgrade(req: &Request) -> Result<Upgrade, HandshakeError> {
    if req.method != "GET" {
        return Err(HandshakeError::MethodNotAllowed);
    }
    if req.version < 1 {
        return Err(HandshakeError::HttpVersion);
    }
    check_head(req)?;
    if req.header("host").is_none() {
        return Err(HandshakeError::MissingHost);
    }
    check_upgrade_fields(req)?;
    let key = req
        .header("sec-websocket-key")
        .map(str::trim)
        .ok_or(HandshakeError::InvalidKey)?;
    if req.header_count("sec-websocket-key") > 1 || !key_is_valid(key) {
        return Err(HandshakeError::InvalidKey);
    }
    let protocols = req
        .headers_all("sec-websocket-protocol")
        .flat_map(tokens)
        .map(str::to_string)
        .collect();
    let extensions = req
        .headers_all("sec-websocket-extensions")
        .flat_map(tokens)
        .map(str::to_string)
        .collect();
    Ok(Upgrade {
        key: key.to_string(),
        protocols,
        extensions,
    })
}

/// `Upgrade`, `Connection` and `Sec-WebSocket-Version`: present, single where they must be,
/// not contradictory.
fn check_upgrade_fields(req: &Request) -> Result<(), HandshakeError> {
    if !req.wants_websocket() {
        return Err(HandshakeError::NotWebSocketUpgrade);
    }
    if req.header_count("upgrade") > 1 {
        return Err(HandshakeError::DuplicateUpgrade);
    }
    let (mut upgrade, mut close) = (false, false);
    for t in req.headers_all("connection").flat_map(tokens) {
        upgrade |= t.eq_ignore_ascii_case("upgrade");
        close |= t.eq_ignore_ascii_case("close");
    }
    if !upgrade {
        return Err(HandshakeError::MissingConnectionUpgrade);
    }
    if close {
        return Err(HandshakeError::ConflictingConnection);
    }
    if req.header_count("sec-websocket-version") > 1 {
        return Err(HandshakeError::DuplicateVersion);
    }
    if req.header("sec-websocket-version").map(str::trim) != Some("13") {
        return Err(HandshakeError::UnsupportedVersion);
    }
    Ok(())
}

fn key_is_valid(key: &str) -> bool {
    key.len() == 24 && matches!(B64.decode(key), Ok(v) if v.len() == 16)
}

/// Computes `Sec-WebSocket-Accept` for a client key: base64(SHA-1(key + GUID)).
pub fn accept_key(key: &[u8]) -> String {
    let mut h = Sha1::new();
    h.update(key);
    h.update(WS_GUID.as_bytes());
    B64.encode(h.finalize())
}

/// Builds the `101 Switching Protocols` response for `key`, with an optional chosen
/// subprotocol and extra header fields.
pub fn response_101(key: &str, protocol: Option<&str>, extra: &[(String, String)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(160);
    out.extend_from_slice(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ",
    );
    out.extend_from_slice(accept_key(key.as_bytes()).as_bytes());
    out.extend_from_slice(b"\r\n");
    if let Some(p) = protocol {
        push_header(&mut out, "Sec-WebSocket-Protocol", p);
    }
    for (n, v) in extra {
        push_header(&mut out, n, v);
    }
    out.extend_from_slice(b"\r\n");
    out
}

fn push_header(out: &mut Vec<u8>, name: &str, value: &str) {
    // Header injection guard: CR and LF never reach the wire from a name or value.
    let clean = |s: &str| s.replace(['\r', '\n'], " ");
    out.extend_from_slice(clean(name).as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(clean(value).as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// The standard reason phrase for the statuses this crate produces, or `"Error"`.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Error",
    }
}

/// Builds a complete HTTP/1.1 response with `Content-Length` and `Connection: close`.
pub fn http_response(status: u16, headers: &[(String, String)], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 + body.len());
    out.extend_from_slice(format!("HTTP/1.1 {status} {}\r\n", reason_phrase(status)).as_bytes());
    for (n, v) in headers {
        push_header(&mut out, n, v);
    }
    push_header(&mut out, "Content-Length", &body.len().to_string());
    push_header(&mut out, "Connection", "close");
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

/// Builds the error response for a refused upgrade: the status from
/// [`HandshakeError::http_status`], `Sec-WebSocket-Version: 13` with 426, `Allow: GET` with
/// 405, and the error's text as a plain-text body.
pub fn error_response(err: &HandshakeError) -> Vec<u8> {
    let status = err.http_status();
    let mut headers = vec![(
        "Content-Type".to_string(),
        "text/plain; charset=utf-8".to_string(),
    )];
    if status == 426 {
        headers.push(("Sec-WebSocket-Version".into(), "13".into()));
        headers.push(("Upgrade".into(), "websocket".into()));
    }
    if status == 405 {
        headers.push(("Allow".into(), "GET".into()));
    }
    http_response(status, &headers, format!("{err}\n").as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "GET /chat?x=1 HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
        Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Sec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Version: 13\r\n\r\n";

    fn check(raw: &str) -> Result<Upgrade, HandshakeError> {
        let (req, _) = parse_request(raw.as_bytes(), 32)?.expect("complete");
        validate_upgrade(&req)
    }

    #[test]
    fn rfc_accept_key() {
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn good_request() {
        let up = check(GOOD).unwrap();
        assert_eq!(up.protocols, ["chat", "superchat"]);
        let (req, n) = parse_request(GOOD.as_bytes(), 32).unwrap().unwrap();
        assert_eq!(n, GOOD.len());
        assert_eq!(req.path(), "/chat");
        assert_eq!(req.query(), Some("x=1"));
        // Partial input is not an error.
        assert_eq!(parse_request(&GOOD.as_bytes()[..40], 32), Ok(None));
    }

    #[test]
    fn token_lists_and_case() {
        let raw = GOOD
            .replace("Upgrade: websocket", "upgrade: WebSocket")
            .replace("Connection: Upgrade", "connection: keep-alive, UPGRADE");
        assert!(check(&raw).is_ok());
    }

    #[test]
    fn rejections_with_status() {
        let cases: &[(&str, &str, u16)] = &[
            ("GET /chat", "POST /chat", 405),
            ("HTTP/1.1\r\nHost", "HTTP/1.0\r\nHost", 505),
            ("Host: server.example.com\r\n", "", 400),
            ("Upgrade: websocket\r\n", "", 426),
            ("Upgrade: websocket", "Upgrade: h2c", 426),
            ("Connection: Upgrade", "Connection: keep-alive", 400),
            ("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8", 426),
            ("Sec-WebSocket-Version: 13\r\n", "", 426),
            ("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZQ==", 400),
            ("dGhlIHNhbXBsZSBub25jZQ==", "!!!!!!!!!!!!!!!!!!!!!!!!", 400),
            ("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", "", 400),
        ];
        for (from, to, status) in cases {
            let raw = GOOD.replacen(from, to, 1);
            assert_ne!(raw, GOOD, "{from}");
            let err = check(&raw).expect_err(from);
            assert_eq!(err.http_status(), *status, "{from} -> {to}: {err}");
        }
        let dup = GOOD.replace(
            "\r\n\r\n",
            "\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        );
        assert_eq!(check(&dup), Err(HandshakeError::InvalidKey));
        assert!(matches!(
            parse_request(b"GARBAGE\x01\r\n\r\n", 8),
            Err(HandshakeError::Malformed(_))
        ));
    }

    /// Each strict-head refusal, from a request that is otherwise [`GOOD`]: the error, 400.
    #[test]
    fn strict_head_refusals() {
        use HandshakeError::*;
        let end = "\r\n\r\n";
        let cases: &[(&str, &str, HandshakeError)] = &[
            // RFC 9112 §3.2: more than one Host is a 400.
            (end, "\r\nHost: evil.example\r\n\r\n", DuplicateHost),
            (end, "\r\nhost: server.example.com\r\n\r\n", DuplicateHost),
            // RFC 9112 §3.2.1-3.2.4: origin form only.
            ("GET /chat?x=1", "GET http://evil.example/x", TargetNotOriginForm),
            (
                "GET /chat?x=1",
                "GET http://a:b@evil.example/sgc/auth/url/ann/pw",
                TargetNotOriginForm,
            ),
            ("GET /chat?x=1", "GET *", TargetNotOriginForm),
            ("GET /chat?x=1", "GET chat", TargetNotOriginForm),
            // One version, even when one of them is 13.
            (end, "\r\nSec-WebSocket-Version: 8\r\n\r\n", DuplicateVersion),
            (end, "\r\nSec-WebSocket-Version: 13\r\n\r\n", DuplicateVersion),
            // One Upgrade field, whatever it says.
            (end, "\r\nUpgrade: websocket\r\n\r\n", DuplicateUpgrade),
            (end, "\r\nUpgrade: h2c\r\n\r\n", DuplicateUpgrade),
            // Upgrade and close together, in one field or split.
            (
                "Connection: Upgrade",
                "Connection: Upgrade, close",
                ConflictingConnection,
            ),
            (
                "Connection: Upgrade",
                "Connection: Upgrade\r\nConnection: Close",
                ConflictingConnection,
            ),
        ];
        for (from, to, want) in cases {
            let raw = GOOD.replacen(from, to, 1);
            assert_ne!(raw, GOOD, "{to}");
            let err = check(&raw).expect_err(to);
            assert_eq!(&err, want, "{to:?}");
            assert_eq!(err.http_status(), 400, "{to:?}");
            let text = String::from_utf8(error_response(&err)).unwrap();
            assert!(text.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{text}");
        }
    }

    #[test]
    fn strict_head_applies_to_plain_requests_and_keeps_what_is_fine() {
        // Plain HTTP gets the head checks too: no hook ever sees an absolute target.
        let plain = |r: &str| parse_request(r.as_bytes(), 32).map(|o| o.map(|(q, _)| q.target));
        assert_eq!(
            plain("GET http://evil.example/x HTTP/1.1\r\nHost: a\r\n\r\n"),
            Err(HandshakeError::TargetNotOriginForm)
        );
        assert_eq!(
            plain("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"),
            Err(HandshakeError::TargetNotOriginForm)
        );
        assert_eq!(
            plain("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
            Err(HandshakeError::DuplicateHost)
        );
        assert_eq!(plain("GET /x?y HTTP/1.0\r\n\r\n"), Ok(Some("/x?y".into())));
        // A Connection list split over fields is one list (RFC 9110 §5.3).
        let split = GOOD.replace(
            "Connection: Upgrade",
            "Connection: keep-alive\r\nConnection: Upgrade",
        );
        assert!(check(&split).is_ok());
        // obs-fold (RFC 9112 §5.2) is still refused, as is a repeated key.
        let folded = GOOD.replace("Upgrade: websocket\r\n", "Upgrade: websocket\r\nX-A: a\r\n b\r\n");
        assert!(matches!(check(&folded), Err(HandshakeError::Malformed(_))));
    }

    #[test]
    fn too_many_headers_is_431() {
        let mut raw = String::from("GET / HTTP/1.1\r\n");
        for i in 0..40 {
            raw.push_str(&format!("X-{i}: y\r\n"));
        }
        raw.push_str("\r\n");
        let e = parse_request(raw.as_bytes(), 32).unwrap_err();
        assert_eq!(e, HandshakeError::TooManyHeaders);
        assert_eq!(e.http_status(), 431);
        let resp = error_response(&HandshakeError::UnsupportedVersion);
        let text = String::from_utf8(resp).unwrap();
        assert!(text.starts_with("HTTP/1.1 426 Upgrade Required\r\n"));
        assert!(text.contains("Sec-WebSocket-Version: 13\r\n"));
    }
}
