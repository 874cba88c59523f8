//! The connection thread, one per client: it runs the handshake, then reads frames until the
//! connection ends (`frames.rs`), then reports the end (`finish.rs`). It owns the read side of
//! the socket and blocks in `read()`; everything it sends goes through the connection's
//! outbound path like any other sender's, with back-pressure instead of the overflow policy.

mod clock;
mod finish;
mod frames;

use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;

use crate::dispatch::{Emitter, SinkSlot};
use crate::handshake::{self, Gate};

/// The connection thread's body.
pub(crate) fn run(
    gate: &Gate,
    sink: &SinkSlot,
    sock: Arc<TcpStream>,
    peer: SocketAddr,
    upgraded: impl FnOnce(),
) {
    if gate.ctx.config.nodelay {
        let _ = sock.set_nodelay(true);
    }
    let Some((conn, decoder)) = handshake::run(gate, sock, peer, upgraded) else {
        return;
    };
    let em = Emitter::new(sink.get());
    let dropped = frames::Reader::new(&conn, decoder, &em).run();
    finish::finish(&conn, &em, &dropped);
}
