//! Plain HTTP requests (no `Upgrade: websocket`): the library's session endpoint first, then
//! the application's HTTP hook; without either, `426 Upgrade Required`.

use std::panic::{catch_unwind, AssertUnwindSafe};

use syncws_protocol::handshake::Request as ParsedRequest;
use syncws_protocol::HandshakeError;

use super::stream::HsStream;
use super::{refuse, Gate};
use crate::error::panic_message;
use crate::http::{HttpResponse, Request};

/// Answers a plain HTTP request and closes; never upgrades.
pub(crate) fn answer<T>(
    gate: &Gate,
    mut stream: HsStream,
    req: &ParsedRequest,
    request: &Request,
) -> Option<T> {
    let cfg = &gate.ctx.config;
    let own = if cfg.auth.enabled {
        gate.auth().http(request)
    } else {
        None
    };
    let resp = match (own, &gate.hooks.http) {
        (Some(r), _) => r,
        (None, Some(h)) => match catch_unwind(AssertUnwindSafe(|| h(request))) {
            Ok(r) => r,
            Err(p) => {
                log::error!("{}: HTTP hook panicked: {}", request.peer, panic_message(&*p));
                HttpResponse::text(500, "internal error\n")
            }
        },
        (None, None) => {
            let e = HandshakeError::NotWebSocketUpgrade;
            return refuse::bad_request(&gate.ctx.stats, &mut stream, request.peer, &e);
        }
    };
    let mut bytes = resp.to_bytes();
    if req.method == "HEAD" {
        bytes.truncate(bytes.len() - resp.body.len());
    }
    refuse::respond(&mut stream, &bytes)
}
