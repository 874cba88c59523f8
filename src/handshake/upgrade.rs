//! The upgrade proper: RFC 6455 checks, authentication, the handshake hook, the `101`, and
//! the new connection, registered.

use std::panic::{catch_unwind, AssertUnwindSafe};

use syncws_protocol::deflate::{negotiate, parse_offers, DeflateParams};
use syncws_protocol::handshake::{response_101, validate_upgrade, Request as ParsedRequest};
use syncws_protocol::{CloseCode, Decoder, Role};

use super::stream::HsStream;
use super::{refuse, Gate};
use crate::auth::Outcome;
use crate::connection::{Budget, ConnInfo, Connection, Outbound};
use crate::error::panic_message;
use crate::http::{Accept, HttpResponse, Request};

/// Upgrades a WebSocket request, or refuses it. `rest` holds the bytes after the head.
pub(crate) fn upgrade(
    gate: &Gate,
    mut stream: HsStream,
    req: &ParsedRequest,
    mut request: Request,
    rest: &[u8],
    upgraded: impl FnOnce(),
) -> Option<(Connection, Decoder)> {
    let stats = &gate.ctx.stats;
    let up = match validate_upgrade(req) {
        Ok(u) => u,
        Err(e) => return refuse::bad_request(stats, &mut stream, request.peer, &e),
    };
    request.protocols = up.protocols.clone();
    request.deflate = deflate_offer(gate, &request);
    if let Err(resp) = super::origin::check(&gate.ctx.config.origins, &request) {
        stats.rejected();
        return refuse::respond(&mut stream, &resp.to_bytes());
    }
    let user = match authenticate(gate, &mut request) {
        Ok(user) => user,
        Err(resp) => {
            stats.rejected();
            return refuse::respond(&mut stream, &resp.to_bytes());
        }
    };
    let accept = match consent(gate, &request) {
        Ok(a) => a,
        Err(resp) => return refuse::respond(&mut stream, &resp.to_bytes()),
    };
    // A subprotocol must be one the client offered.
    let protocol = accept.protocol.filter(|p| up.protocols.iter().any(|o| o == p));
    let deflate = request.deflate.filter(|_| !accept.no_compression);
    let response = answer(&up.key, protocol.as_deref(), accept.headers, deflate.as_ref());
    upgraded();
    let peer = request.peer;
    let info = ConnInfo {
        target: request.target,
        headers: request.headers,
        protocol,
        user,
        deflate,
    };
    open(gate, stream, peer, info, &response, rest)
}

/// The `101`, with the hook's headers and the permessage-deflate answer.
fn answer(
    key: &str,
    protocol: Option<&str>,
    mut headers: Vec<(String, String)>,
    deflate: Option<&DeflateParams>,
) -> Vec<u8> {
    if let Some(p) = deflate {
        headers.push(("Sec-WebSocket-Extensions".into(), p.response()));
    }
    response_101(key, protocol, &headers)
}

/// Writes the `101` and makes the connection: its outbound state, its decoder (inflating
/// if agreed) with the bytes that followed the request, registered.
fn open(
    gate: &Gate,
    mut stream: HsStream,
    peer: std::net::SocketAddr,
    info: ConnInfo,
    response: &[u8],
    rest: &[u8],
) -> Option<(Connection, Decoder)> {
    let cfg = &gate.ctx.config;
    let sock = stream.sock().clone();
    if let Err(e) = stream.write_all(response) {
        log::debug!("{peer}: writing 101: {e}");
        return None;
    }
    let _ = sock.set_write_timeout(None);
    sock.set_read_timeout(cfg.idle_timeout).ok()?;
    let mut decoder = Decoder::new(Role::Server, cfg.limits);
    if let Some(p) = &info.deflate {
        decoder.set_inflater(p.inflater());
    }
    decoder.feed(rest);
    let out = outbound(stream, gate.ctx.outbound.clone());
    let conn = Connection::new(peer, info, sock, gate.ctx.clone(), out);
    register(gate, conn).map(|c| (c, decoder))
}

/// The permessage-deflate parameters for the request's offers, when enabled.
fn deflate_offer(gate: &Gate, request: &Request) -> Option<DeflateParams> {
    let cfg = gate.ctx.config.deflate.as_ref()?;
    let values = request
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("sec-websocket-extensions"))
        .map(|(_, v)| v.as_str());
    negotiate(&parse_offers(values), cfg)
}

/// The connection's outbound state, taking over the TLS session if there is one.
fn outbound(stream: HsStream, budget: std::sync::Arc<Budget>) -> Outbound {
    #[cfg(feature = "tls")]
    if let Some(session) = stream.into_session() {
        return Outbound::tls(budget, session);
    }
    let _ = stream;
    Outbound::plain(budget)
}

/// Adds the connection to the registry, unless the server began stopping after the 101 went
/// out: then the client, upgraded, gets the close frame `stop()` sends every other client.
fn register(gate: &Gate, conn: Connection) -> Option<Connection> {
    if !gate.ctx.registry.insert(&conn) {
        conn.abort(CloseCode::GOING_AWAY, "server shutting down");
        return None;
    }
    gate.ctx.stats.opened();
    log::debug!(
        "{}: connection {} open at {}",
        conn.peer_addr(),
        conn.id(),
        conn.target()
    );
    Some(conn)
}

/// Authentication, when enabled: the user (if any) and the target without credentials, or
/// the refusal.
fn authenticate(gate: &Gate, request: &mut Request) -> Result<Option<String>, HttpResponse> {
    if !gate.ctx.config.auth.enabled {
        return Ok(None);
    }
    match gate.auth().upgrade(request) {
        Outcome::User { user, target } => {
            // Hooks and the connection see the path without the credentials.
            request.target = target;
            Ok(Some(user))
        }
        Outcome::Anonymous => Ok(None),
        Outcome::Refuse(resp) => {
            log::info!(
                "{}: upgrade refused by authentication ({})",
                request.peer,
                resp.status
            );
            Err(resp)
        }
    }
}

/// The handshake hook's answer (accept when there is no hook); a panic is a 500.
fn consent(gate: &Gate, request: &Request) -> Result<Accept, HttpResponse> {
    let Some(h) = &gate.hooks.handshake else {
        return Ok(Accept::default());
    };
    match catch_unwind(AssertUnwindSafe(|| h(request))) {
        Ok(Ok(a)) => Ok(a),
        Ok(Err(resp)) => {
            log::info!(
                "{}: upgrade refused by the handshake hook ({})",
                request.peer,
                resp.status
            );
            gate.ctx.stats.rejected();
            Err(resp)
        }
        Err(p) => {
            log::error!(
                "{}: handshake hook panicked: {}",
                request.peer,
                panic_message(&*p)
            );
            Err(HttpResponse::text(500, "internal error\n"))
        }
    }
}
