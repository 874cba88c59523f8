//! What hooks see of a request, and what they answer: [`Request`], [`HttpResponse`],
//! [`Accept`], and the hook types themselves.

use std::net::SocketAddr;

/// The handshake hook: sees each upgrade request; returns `Ok(Accept)` (optionally choosing a
/// subprotocol and adding response headers) or `Err(HttpResponse)` to refuse it.
pub type HandshakeHook = dyn Fn(&Request) -> Result<Accept, HttpResponse> + Send + Sync;

/// The plain-HTTP hook: answers requests that are not WebSocket upgrades.
pub type HttpHook = dyn Fn(&Request) -> HttpResponse + Send + Sync;

/// An HTTP request as the hooks see it: the WebSocket upgrade request (handshake hook) or a
/// plain HTTP request (HTTP hook).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Request {
    /// The method, e.g. `GET`.
    pub method: String,
    /// The request target (path and query) as sent.
    pub target: String,
    /// Header fields in order (values that are not UTF-8 are dropped).
    pub headers: Vec<(String, String)>,
    /// The client's address.
    pub peer: SocketAddr,
    /// Subprotocols the client offered (`Sec-WebSocket-Protocol`), in its order of preference.
    pub protocols: Vec<String>,
    /// Whether the request came over TLS.
    pub secure: bool,
    /// The permessage-deflate parameters the server agrees to for this request's offer
    /// (`Sec-WebSocket-Extensions`), or `None`: not enabled, not offered, or no acceptable
    /// offer. The handshake hook can veto it with [`Accept::without_compression`].
    pub deflate: Option<syncws_protocol::deflate::DeflateParams>,
}

impl Request {
    /// The path, without the query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// The query (after `?`), if any.
    pub fn query(&self) -> Option<&str> {
        self.target.split_once('?').map(|(_, q)| q)
    }

    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// An HTTP response: to a plain HTTP request, or to refuse an upgrade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Header fields (`Content-Length` and `Connection: close` are added by the server).
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// A response with `status` and no body.
    pub fn new(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A 200 response with an HTML body.
    pub fn html(body: impl Into<String>) -> Self {
        Self::new(200)
            .header("Content-Type", "text/html; charset=utf-8")
            .body(body.into().into_bytes())
    }

    /// A response with `status` and a plain-text body.
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Self::new(status)
            .header("Content-Type", "text/plain; charset=utf-8")
            .body(body.into().into_bytes())
    }

    /// Adds a header field.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        syncws_protocol::handshake::http_response(self.status, &self.headers, &self.body)
    }
}

/// The handshake hook's consent to an upgrade: the subprotocol to use (one the client
/// offered) and extra response headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accept {
    /// The chosen subprotocol, echoed in `Sec-WebSocket-Protocol`. It must be one of
    /// [`Request::protocols`]; a choice the client did not offer is ignored (RFC 6455 §4.2.2).
    pub protocol: Option<String>,
    /// Extra header fields for the 101 response.
    pub headers: Vec<(String, String)>,
    /// Refuse permessage-deflate for this connection even when it was offered and enabled.
    pub no_compression: bool,
}

impl Accept {
    /// Accept with no subprotocol.
    pub fn new() -> Self {
        Self::default()
    }

    /// Chooses a subprotocol.
    pub fn protocol(mut self, p: impl Into<String>) -> Self {
        self.protocol = Some(p.into());
        self
    }

    /// Adds a response header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Declines permessage-deflate for this connection (see [`Request::deflate`]).
    pub fn without_compression(mut self) -> Self {
        self.no_compression = true;
        self
    }
}
