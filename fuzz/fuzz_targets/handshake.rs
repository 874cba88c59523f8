//! Raw bytes through the whole server-side upgrade path: `parse_request`, `validate_upgrade`
//! and the response builders. Nothing may panic; the results must be self-consistent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use syncws_protocol::handshake::{accept_key, error_response, parse_request, response_101, validate_upgrade};

/// Checks that `resp` is one well-formed response head: a status line, header lines without
/// stray CR or LF, and exactly one blank line ending the head.
fn check_head(resp: &[u8], status: u16) {
    let prefix = format!("HTTP/1.1 {status} ");
    assert!(resp.starts_with(prefix.as_bytes()));
    let end = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("head ends with an empty line")
        + 4;
    for line in resp[..end - 4].split(|&b| b == b'\n') {
        // Every line but the last ends in CR; no CR appears elsewhere in a line.
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        assert!(!line.contains(&b'\r'), "stray CR in {line:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    let max_headers = data.first().map_or(32, |b| usize::from(b % 40));
    let parsed = parse_request(data, max_headers);
    let (req, used) = match parsed {
        Ok(Some(r)) => r,
        Ok(None) => return,
        Err(e) => {
            let status = e.http_status();
            assert!((400..600).contains(&status));
            check_head(&error_response(&e), status);
            return;
        }
    };
    assert!(used <= data.len());
    // The head alone parses to the same request.
    assert_eq!(
        parse_request(&data[..used], max_headers),
        Ok(Some((req.clone(), used)))
    );
    let _ = (req.path(), req.query(), req.wants_websocket());
    match validate_upgrade(&req) {
        Ok(up) => {
            assert_eq!(up.key.len(), 24);
            let protocol = up.protocols.first().map(String::as_str);
            let extra: Vec<(String, String)> = up
                .extensions
                .iter()
                .map(|e| ("Sec-WebSocket-Extensions".to_string(), e.clone()))
                .collect();
            let resp = response_101(&up.key, protocol, &extra);
            check_head(&resp, 101);
            assert!(resp.ends_with(b"\r\n\r\n"));
            let accept = accept_key(up.key.as_bytes());
            let needle = format!("Sec-WebSocket-Accept: {accept}\r\n");
            assert!(resp.windows(needle.len()).any(|w| w == needle.as_bytes()));
        }
        Err(e) => {
            let status = e.http_status();
            assert!((400..600).contains(&status));
            check_head(&error_response(&e), status);
        }
    }
});
