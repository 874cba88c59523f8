//! Negotiation (RFC 7692 §5-7): parsing `Sec-WebSocket-Extensions` offers and choosing the
//! first `permessage-deflate` offer this server can honour.

use super::{DeflateConfig, DeflateParams};

/// One extension element of an offer: its name and parameters (values unquoted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extension {
    /// The extension token, e.g. `permessage-deflate`.
    pub name: String,
    /// Parameters in order: name and value (`None` for a parameter without a value).
    pub params: Vec<(String, Option<String>)>,
}

/// Parses the values of every `Sec-WebSocket-Extensions` header field (RFC 6455 §9.1; several
/// fields count as one list). Elements that do not parse are left out; the rest keep their
/// order, which is the client's order of preference.
pub fn parse_offers<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<Extension> {
    let mut out = Vec::new();
    for value in values {
        for element in split_outside_quotes(value, b',') {
            if let Some(ext) = parse_element(element) {
                out.push(ext);
            }
        }
    }
    out
}

/// Splits at `sep` where it is not inside a quoted string.
fn split_outside_quotes(s: &str, sep: u8) -> Vec<&str> {
    let (mut parts, mut start, mut quoted, mut escaped) = (Vec::new(), 0, false, false);
    for (i, &b) in s.as_bytes().iter().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' if quoted => escaped = true,
            b'"' => quoted = !quoted,
            _ if b == sep && !quoted => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// One element: `name *( ";" param )`; `None` when it is not well formed.
fn parse_element(element: &str) -> Option<Extension> {
    let mut pieces = split_outside_quotes(element, b';').into_iter();
    let name = pieces.next()?.trim();
    if name.is_empty() && element.trim().is_empty() {
        return None; // an empty list element (`a, , b`) is allowed and means nothing
    }
    if !is_token(name) {
        return None;
    }
    let mut params = Vec::new();
    for p in pieces {
        let (k, v) = match p.split_once('=') {
            Some((k, v)) => (k.trim(), Some(param_value(v.trim())?)),
            None => (p.trim(), None),
        };
        if !is_token(k) {
            return None;
        }
        params.push((k.to_ascii_lowercase(), v));
    }
    Some(Extension {
        name: name.to_ascii_lowercase(),
        params,
    })
}

/// A parameter value: a token, or a quoted string whose content must be a token (§9.1).
fn param_value(v: &str) -> Option<String> {
    let inner = match v.strip_prefix('"') {
        None => return is_token(v).then(|| v.to_string()),
        Some(rest) => rest.strip_suffix('"')?,
    };
    let mut s = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => s.push(chars.next()?),
            '"' => return None,
            c => s.push(c),
        }
    }
    is_token(&s).then_some(s)
}

/// What one `permessage-deflate` offer asks for, validated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Offer {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    /// `Some(None)`: the parameter without a value (the client supports any value we name).
    client_max_window_bits: Option<Option<u8>>,
}

/// A window size: a decimal 8-15 without leading zeros (RFC 7692 §7.1.2).
fn window_bits(v: &str) -> Option<u8> {
    if !v.bytes().all(|b| b.is_ascii_digit()) || v.starts_with('0') {
        return None; // `parse` would take `+9`
    }
    match v.parse::<u8>() {
        Ok(n @ 8..=15) => Some(n),
        _ => None,
    }
}

impl Offer {
    /// `None` for an offer that breaks §7: an unknown or repeated parameter, a bad value.
    fn parse(ext: &Extension) -> Option<Self> {
        let mut o = Self::default();
        let mut seen = [false; 4];
        for (k, v) in &ext.params {
            let (slot, ok) = match (k.as_str(), v.as_deref()) {
                ("server_no_context_takeover", None) => {
                    o.server_no_context_takeover = true;
                    (0, true)
                }
                ("client_no_context_takeover", None) => {
                    o.client_no_context_takeover = true;
                    (1, true)
                }
                ("server_max_window_bits", Some(v)) => {
                    o.server_max_window_bits = window_bits(v);
                    (2, o.server_max_window_bits.is_some())
                }
                ("client_max_window_bits", None) => {
                    o.client_max_window_bits = Some(None);
                    (3, true)
                }
                ("client_max_window_bits", Some(v)) => {
                    o.client_max_window_bits = Some(window_bits(v));
                    (3, window_bits(v).is_some())
                }
                _ => return None,
            };
            if !ok || std::mem::replace(&mut seen[slot], true) {
                return None;
            }
        }
        Some(o)
    }

    /// The parameters this server agrees to for the offer, or `None` if it cannot honour it.
    fn agree(self, cfg: &DeflateConfig) -> Option<DeflateParams> {
        // Our compressor cannot go below 9 bits (zlib has no raw deflate with 8): an offer
        // that insists on 8 is declined, as §7.1.2.1 allows.
        let server_bits = self
            .server_max_window_bits
            .unwrap_or(15)
            .min(cfg.server_max_window_bits);
        if server_bits < 9 {
            return None;
        }
        let client_bits = match self.client_max_window_bits {
            None => 15,
            Some(None) => cfg.client_max_window_bits,
            Some(Some(n)) => n.min(cfg.client_max_window_bits),
        };
        Some(DeflateParams {
            server_no_context_takeover: self.server_no_context_takeover || cfg.server_no_context_takeover,
            client_no_context_takeover: self.client_no_context_takeover || cfg.client_no_context_takeover,
            server_max_window_bits: server_bits,
            client_max_window_bits: client_bits,
            // What the response must name: a limit the offer asked for or allowed.
            name_server_bits: self.server_max_window_bits.is_some(),
            name_client_bits: match self.client_max_window_bits {
                None => false,
                Some(None) => client_bits < 15,
                Some(Some(n)) => client_bits < n,
            },
        })
    }
}

/// Chooses the first `permessage-deflate` offer in `offers` that is valid and that `cfg` can
/// honour; `None` when there is none (the connection then goes on uncompressed: an offer
/// never fails the handshake).
pub fn negotiate(offers: &[Extension], cfg: &DeflateConfig) -> Option<DeflateParams> {
    offers
        .iter()
        .filter(|e| e.name == "permessage-deflate")
        .filter_map(Offer::parse)
        .find_map(|o| o.agree(cfg))
}

impl DeflateParams {
    /// The `Sec-WebSocket-Extensions` value that accepts the offer: exactly what was agreed.
    pub fn response(&self) -> String {
        let mut s = String::from("permessage-deflate");
        if self.server_no_context_takeover {
            s.push_str("; server_no_context_takeover");
        }
        if self.client_no_context_takeover {
            s.push_str("; client_no_context_takeover");
        }
        if self.name_server_bits {
            s.push_str(&format!(
                "; server_max_window_bits={}",
                self.server_max_window_bits
            ));
        }
        if self.name_client_bits {
            s.push_str(&format!(
                "; client_max_window_bits={}",
                self.client_max_window_bits
            ));
        }
        s
    }
}
