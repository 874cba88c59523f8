//! The handshake, on the connection's own thread: the TLS handshake (if any), reading the
//! request head, answering plain HTTP (the session endpoint, the application's page),
//! authenticating, the handshake hook, the `101` and the new [`Connection`]; and refusals,
//! each with the right status and a lingering close (`refuse.rs`). The whole handshake is
//! bounded by `handshake_timeout`.

mod head;
mod hooks;
mod origin;
mod plain;
mod refuse;
mod stream;
mod upgrade;

use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Instant;

use syncws_protocol::handshake::Request as ParsedRequest;
use syncws_protocol::Decoder;

pub(crate) use hooks::Hooks;
pub(crate) use refuse::{linger_close, over_capacity, Busy};

use crate::auth::{Auth, Sessions, Throttle};
use crate::connection::{Connection, Context};
use crate::http::Request;
use head::{read_head, NoHead};
use stream::HsStream;

/// What the handshake needs, one per server run.
pub(crate) struct Gate {
    pub(crate) ctx: Arc<Context>,
    pub(crate) hooks: Hooks,
    pub(crate) sessions: Sessions,
    pub(crate) throttle: Throttle,
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<Arc<crate::tls::TlsAcceptor>>,
}

impl Gate {
    fn auth(&self) -> Auth<'_> {
        Auth {
            cfg: &self.ctx.config.auth,
            hook: self.hooks.auth.as_deref(),
            sessions: &self.sessions,
            throttle: &self.throttle,
            now: Instant::now(),
        }
    }
}

/// Runs the handshake on `sock`. `Some` when the client is upgraded: the registered
/// connection, and a decoder already holding any bytes that followed the request head.
/// `upgraded` is called just before the `101` goes out (from then on a stopping server
/// closes the client with a close frame, not by shutting the socket).
pub(crate) fn run(
    gate: &Gate,
    sock: Arc<TcpStream>,
    peer: SocketAddr,
    upgraded: impl FnOnce(),
) -> Option<(Connection, Decoder)> {
    let cfg = &gate.ctx.config;
    let deadline = Instant::now() + cfg.handshake_timeout;
    let mut stream = open(gate, sock, peer, deadline)?;
    let (req, used, buf) = match read_head(&mut stream, cfg, peer) {
        Ok(h) => h,
        Err(NoHead::Bad(e)) => return refuse::bad_request(&gate.ctx.stats, &mut stream, peer, &e),
        Err(NoHead::Gone) => return None,
    };
    let request = hook_view(&req, peer, stream.is_secure());
    if !req.wants_websocket() {
        return plain::answer(gate, stream, &req, &request);
    }
    upgrade::upgrade(gate, stream, &req, request, &buf[used..], upgraded)
}

/// The stream to read the request from: plain, or TLS after its handshake.
fn open(gate: &Gate, sock: Arc<TcpStream>, peer: SocketAddr, deadline: Instant) -> Option<HsStream> {
    let write_for = gate.ctx.config.write_timeout;
    #[cfg(feature = "tls")]
    if let Some(acc) = &gate.tls {
        return match acc.handshake(&sock, deadline) {
            Ok(session) => Some(HsStream::tls(sock, session, deadline, write_for)),
            Err(e) => {
                log::info!("{peer}: TLS handshake failed: {e}");
                None
            }
        };
    }
    let _ = peer;
    Some(HsStream::plain(sock, deadline, write_for))
}

/// The request as hooks see it.
fn hook_view(req: &ParsedRequest, peer: SocketAddr, secure: bool) -> Request {
    Request {
        method: req.method.clone(),
        target: req.target.clone(),
        headers: req
            .headers
            .iter()
            .filter_map(|(n, v)| std::str::from_utf8(v).ok().map(|v| (n.clone(), v.to_string())))
            .collect(),
        peer,
        protocols: Vec::new(),
        secure,
        deflate: None,
    }
}
