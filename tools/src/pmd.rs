//! The client side of permessage-deflate (RFC 7692) for the load tools: the offer a browser
//! makes, and what the server's `Sec-WebSocket-Extensions` answer lets the client do.
//!
//! Shared by `wsload` and `wsscale` (each includes this file with `#[path]`).

use syncws_protocol::deflate::{parse_offers, Compressor, Inflater};

/// The offer, as browsers make it: any window the server names for the client.
pub(crate) const OFFER: &str = "permessage-deflate; client_max_window_bits";

/// Level the clients compress with (zlib's default, as browsers use).
pub(crate) const LEVEL: u32 = 6;

/// What the server agreed to (its answer to [`OFFER`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Agreed {
    pub(crate) server_no_context_takeover: bool,
    pub(crate) client_no_context_takeover: bool,
    pub(crate) server_max_window_bits: u8,
    pub(crate) client_max_window_bits: u8,
}

impl Agreed {
    /// Parses the values of the response's `Sec-WebSocket-Extensions` fields. `Ok(None)`: no
    /// extension accepted; `Err`: something this client did not offer, or a bad parameter.
    pub(crate) fn from_response<'a>(
        values: impl IntoIterator<Item = &'a str>,
    ) -> Result<Option<Self>, String> {
        let exts = parse_offers(values);
        let Some(ext) = exts.first() else {
            return Ok(None);
        };
        if ext.name != "permessage-deflate" || exts.len() > 1 {
            return Err(format!("the server accepted extensions not offered: {exts:?}"));
        }
        let mut a = Self {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
        };
        let bits = |v: &Option<String>| -> Result<u8, String> {
            match v.as_deref().map(str::parse::<u8>) {
                Some(Ok(n @ 8..=15)) => Ok(n),
                _ => Err(format!("bad window bits {v:?}")),
            }
        };
        for (k, v) in &ext.params {
            match (k.as_str(), v) {
                ("server_no_context_takeover", None) => a.server_no_context_takeover = true,
                ("client_no_context_takeover", None) => a.client_no_context_takeover = true,
                ("server_max_window_bits", v) => a.server_max_window_bits = bits(v)?,
                ("client_max_window_bits", v) => a.client_max_window_bits = bits(v)?,
                _ => return Err(format!("unexpected permessage-deflate parameter {k}")),
            }
        }
        // Our compressor's smallest window is 9 bits (zlib has no raw deflate with 8).
        if a.client_max_window_bits < 9 {
            return Err("the server asks for client_max_window_bits=8, which this client cannot do".into());
        }
        Ok(Some(a))
    }

    /// The inflater for what the server sends.
    pub(crate) fn inflater(&self) -> Inflater {
        Inflater::new(self.server_max_window_bits, self.server_no_context_takeover)
    }

    /// A compressor for what the client sends.
    pub(crate) fn compressor(&self) -> Compressor {
        Compressor::new(
            LEVEL,
            self.client_max_window_bits,
            self.client_no_context_takeover,
        )
    }

    /// The agreement as `key=value` pairs, for reports.
    pub(crate) fn describe(&self) -> String {
        format!(
            "server_no_context_takeover={} client_no_context_takeover={} server_bits={} client_bits={}",
            u8::from(self.server_no_context_takeover),
            u8::from(self.client_no_context_takeover),
            self.server_max_window_bits,
            self.client_max_window_bits
        )
    }
}

/// The values of every `Sec-WebSocket-Extensions` field of a response head.
pub(crate) fn extension_values(head: &str) -> Vec<&str> {
    head.lines()
        .filter_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case("sec-websocket-extensions")
                .then(|| v.trim())
        })
        .collect()
}
