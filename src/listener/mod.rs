//! The listener threads, one per address: accept, spawn a connection thread per client (or
//! answer 503), and — when the watchdog is on — rebuild a listener that failed
//! (`watchdog.rs`). Nothing slow runs here: no TLS, no parsing.

mod per_ip;
mod sockets;
mod threads;
mod watchdog;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

pub(crate) use per_ip::PerIp;
pub(crate) use sockets::Sockets;
pub(crate) use threads::Threads;

use crate::dispatch::{ServerEvent, SinkSlot};
use crate::handshake::Gate;
use crate::platform::{classify_accept_error, AcceptError};
use crate::service::Service;

/// Everything a listener thread needs to take in clients, one per run.
pub(crate) struct Intake {
    pub(crate) gate: Gate,
    pub(crate) sink: SinkSlot,
    pub(crate) service: Arc<Service>,
    pub(crate) threads: Threads,
    pub(crate) per_ip: PerIp,
    pub(crate) sockets: Sockets,
}

impl Intake {
    fn stopping(&self) -> bool {
        self.gate.ctx.registry.is_stopping()
    }
}

/// The thread of the listener for address `index`: the accept loop, with the watchdog
/// around it.
pub(crate) fn run(intake: Arc<Intake>, index: usize, mut listener: TcpListener) {
    let addr = intake.sockets.addrs[index];
    loop {
        let err = accept_loop(&intake, &listener);
        if intake.stopping() {
            return;
        }
        log::error!("listener {addr} failed: {err}");
        intake.sink.server_event(ServerEvent::ListenerFailed {
            addr,
            error: err.to_string(),
        });
        if !intake.gate.ctx.config.watchdog.enabled {
            return;
        }
        drop(listener);
        match watchdog::rebind(&intake, index) {
            Some(l) => listener = l,
            None => return,
        }
    }
}

/// Accepts until the listener fails for good (or the run stops); returns the error.
fn accept_loop(intake: &Arc<Intake>, listener: &TcpListener) -> std::io::Error {
    loop {
        intake.threads.reap();
        match listener.accept() {
            Ok((stream, peer)) => {
                if intake.stopping() {
                    return std::io::Error::other("stopping");
                }
                threads::spawn_connection(intake, stream, peer);
            }
            Err(e) if intake.stopping() => return e,
            Err(e) => match classify_accept_error(&e) {
                AcceptError::Transient => {}
                AcceptError::Exhausted => {
                    log::warn!("accept: {e}; retrying");
                    std::thread::sleep(Duration::from_millis(50));
                }
                AcceptError::Fatal => return e,
            },
        }
    }
}
