//! The watchdog: after a listener failed unexpectedly (not after `stop()`), try to bind its
//! address again (with the configured backlog) every `interval`, up to `attempts` times
//! (0 = forever), reporting each step as a [`ServerEvent`]. Open connections are not touched.

use std::net::TcpListener;

use super::Intake;
use crate::dispatch::ServerEvent;
use crate::platform::bind_listener;

/// A new listener for address `index`, or `None` when the run stopped or the watchdog gave
/// up.
pub(crate) fn rebind(intake: &Intake, index: usize) -> Option<TcpListener> {
    let addr = intake.sockets.addrs[index];
    let wd = intake.gate.ctx.config.watchdog;
    let mut attempt = 0u32;
    loop {
        // Sleep for the interval, waking at once if the run stops.
        if !intake.sockets.sleep(wd.interval) {
            return None;
        }
        attempt += 1;
        log::info!("watchdog: restarting listener {addr} (attempt {attempt})");
        intake
            .sink
            .server_event(ServerEvent::WatchdogAttempt { addr, attempt });
        match bind_listener(addr, intake.gate.ctx.config.backlog) {
            Ok(l) => {
                if !intake.sockets.replace(index, &l, || intake.stopping()) {
                    return None;
                }
                log::info!("watchdog: listener {addr} restarted");
                intake
                    .sink
                    .server_event(ServerEvent::WatchdogRestarted { addr, attempt });
                return Some(l);
            }
            Err(e) => {
                log::warn!("watchdog: cannot bind {addr}: {e}");
                if wd.attempts != 0 && attempt >= wd.attempts {
                    intake.sink.server_event(ServerEvent::WatchdogGaveUp {
                        addr,
                        attempts: attempt,
                    });
                    return None;
                }
            }
        }
    }
}
