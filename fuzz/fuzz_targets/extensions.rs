//! `Sec-WebSocket-Extensions` values through `parse_offers` and `negotiate`. Byte 0 is the
//! server's `DeflateConfig`, byte 1 the byte the rest is split on into header values.
//!
//! Checks: no panic; parsed names and parameter names are lowercase tokens, values tokens;
//! `negotiate` agrees with a model of RFC 7692 §7.1 written here; the response is one
//! well-formed header value that tells a client exactly what was agreed, and re-parses into a
//! single permessage-deflate offer that `negotiate` accepts again with the same parameters.
#![no_main]

use libfuzzer_sys::fuzz_target;
use syncws_protocol::deflate::{negotiate, parse_offers, DeflateConfig, DeflateParams, Extension};

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Byte 0: bits 0-2 server_max_window_bits (9 + n % 7), bits 3-5 client_max_window_bits,
/// bit 6 server_no_context_takeover, bit 7 client_no_context_takeover.
fn config(b: u8) -> DeflateConfig {
    DeflateConfig::default()
        .server_max_window_bits(9 + (b & 7) % 7)
        .client_max_window_bits(9 + (b >> 3 & 7) % 7)
        .server_no_context_takeover(b & 0x40 != 0)
        .client_no_context_takeover(b & 0x80 != 0)
}

/// A window size as RFC 7692 §7.1.2 writes it: 8-15 in decimal digits, no leading zero.
fn bits(v: &str) -> Option<u8> {
    if v.is_empty() || v.len() > 2 || v.starts_with('0') || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u8 = v.parse().ok()?;
    (8..=15).contains(&n).then_some(n)
}

/// One valid offer: (server_nct, client_nct, server_max_window_bits, client_max_window_bits
/// where `Some(None)` is the parameter without a value).
type Offer = (bool, bool, Option<u8>, Option<Option<u8>>);

fn model_offer(e: &Extension) -> Option<Offer> {
    if e.name != "permessage-deflate" {
        return None;
    }
    let mut o: Offer = (false, false, None, None);
    let mut seen = Vec::new();
    for (k, v) in &e.params {
        if seen.contains(k) {
            return None;
        }
        seen.push(k.clone());
        match (k.as_str(), v.as_deref()) {
            ("server_no_context_takeover", None) => o.0 = true,
            ("client_no_context_takeover", None) => o.1 = true,
            ("server_max_window_bits", Some(v)) => o.2 = Some(bits(v)?),
            ("client_max_window_bits", None) => o.3 = Some(None),
            ("client_max_window_bits", Some(v)) => o.3 = Some(Some(bits(v)?)),
            _ => return None,
        }
    }
    Some(o)
}

/// The first offer the server can honour (a server window of at least 9 bits), and the
/// parameters: (server_nct, client_nct, server bits, client bits).
fn model(offers: &[Extension], cfg: &DeflateConfig) -> Option<(Offer, (bool, bool, u8, u8))> {
    offers.iter().filter_map(model_offer).find_map(|o| {
        let server = o.2.unwrap_or(15).min(cfg.server_max_window_bits);
        let client = match o.3 {
            None => 15,
            Some(None) => cfg.client_max_window_bits,
            Some(Some(n)) => n.min(cfg.client_max_window_bits),
        };
        (server >= 9).then_some((
            o,
            (
                o.0 || cfg.server_no_context_takeover,
                o.1 || cfg.client_no_context_takeover,
                server,
                client,
            ),
        ))
    })
}

fn fields(p: &DeflateParams) -> (bool, bool, u8, u8) {
    (
        p.server_no_context_takeover,
        p.client_no_context_takeover,
        p.server_max_window_bits,
        p.client_max_window_bits,
    )
}

fuzz_target!(|data: &[u8]| {
    let cfg = config(data.first().copied().unwrap_or(0));
    let sep = data.get(1).copied().unwrap_or(b'\n');
    let rest = data.get(2..).unwrap_or(&[]);
    let values: Vec<String> = rest
        .split(|&b| b == sep)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect();
    let offers = parse_offers(values.iter().map(String::as_str));
    for e in &offers {
        assert!(
            is_token(&e.name) && !e.name.bytes().any(|b| b.is_ascii_uppercase()),
            "{e:?}"
        );
        for (k, v) in &e.params {
            assert!(is_token(k) && !k.bytes().any(|b| b.is_ascii_uppercase()), "{e:?}");
            assert!(v.as_deref().is_none_or(is_token), "{e:?}");
        }
    }
    let agreed = negotiate(&offers, &cfg);
    let want = model(&offers, &cfg);
    assert_eq!(
        agreed.as_ref().map(fields),
        want.map(|w| w.1),
        "offers {offers:?}"
    );
    let (Some(p), Some((offer, _))) = (agreed, want) else {
        return;
    };

    let resp = p.response();
    assert!(
        resp.bytes().all(|b| b.is_ascii_graphic() || b == b' '),
        "{resp:?}"
    );
    let again = parse_offers([resp.as_str()]);
    assert_eq!(again.len(), 1, "{resp:?}");
    assert_eq!(again[0].name, "permessage-deflate");

    // What a client learns from the response (and its own offer) is what was agreed.
    let has = |k: &str| {
        again[0]
            .params
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(
        has("server_no_context_takeover").is_some(),
        p.server_no_context_takeover
    );
    assert_eq!(
        has("client_no_context_takeover").is_some(),
        p.client_no_context_takeover
    );
    match has("server_max_window_bits") {
        // Named exactly when the client asked for a limit (§7.1.2.1), never above it.
        Some(v) => {
            assert!(offer.2.is_some(), "{resp:?} for {offer:?}");
            let n = bits(v.as_deref().unwrap_or("")).expect("a valid window size");
            assert_eq!(n, p.server_max_window_bits);
            assert!(Some(n) <= offer.2);
        }
        None => assert!(offer.2.is_none(), "{resp:?} for {offer:?}"),
    }
    // Unnamed, the client is bound by the value it offered, or by nothing (15 bits).
    let client_bits = match has("client_max_window_bits") {
        Some(v) => {
            assert!(offer.3.is_some(), "{resp:?}: not offered in {offer:?}");
            bits(v.as_deref().unwrap_or("")).expect("a valid window size")
        }
        None => offer.3.flatten().unwrap_or(15),
    };
    assert_eq!(client_bits, p.client_max_window_bits, "{resp:?} for {offer:?}");
    // Only the client's window may be below 9 (our inflater reads 8-bit streams with 9).
    assert!((9..=cfg.server_max_window_bits).contains(&p.server_max_window_bits));
    assert!((8..=15).contains(&p.client_max_window_bits));

    // The response, taken as an offer, is accepted again with the same parameters. (An
    // unnamed client window is the offer's hint, which the response does not repeat.)
    let q = negotiate(&again, &cfg).expect("the response is accepted as an offer");
    let mut expect = fields(&p);
    if has("client_max_window_bits").is_none() {
        expect.3 = 15;
    }
    assert_eq!(fields(&q), expect, "{resp:?}");
});
