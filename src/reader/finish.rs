//! The end of a connection: the last queued bytes get their chance, the connection leaves
//! the registry, the socket is shut (lingering after a failure so the close frame is read),
//! and the disconnect is reported — always the connection's last event.

use std::net::Shutdown;

use crate::connection::Connection;
use crate::dispatch::Emitter;
use crate::handshake::linger_close;

pub(crate) fn finish(conn: &Connection, em: &Emitter, dropped: &str) {
    let ctx = conn.context();
    let info = conn.disconnect_info(dropped);
    let was_dead = conn.drain_and_end(ctx.config.close_timeout);
    if ctx.registry.remove(&conn.id()) {
        ctx.stats.closed();
    }
    ctx.topics.remove_all(conn.id());
    let sock = conn.socket();
    let _ = sock.shutdown(Shutdown::Write);
    if !info.clean && !was_dead {
        // After failing the connection, give the peer a moment to read our close frame.
        linger_close(sock);
    }
    let _ = sock.shutdown(Shutdown::Both);
    log::debug!("connection {} closed: {} {}", conn.id(), info.code, info.reason);
    em.disconnect(conn, info);
}
