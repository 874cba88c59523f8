//! The run's listening sockets: one slot per address (the watchdog puts a rebuilt listener
//! back in its slot), and the stop signal that wakes a sleeping watchdog.

use std::net::{SocketAddr, TcpListener};
use std::sync::Mutex;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use crate::platform::shutdown_listener;

/// See the module docs.
pub(crate) struct Sockets {
    /// A clone of each address's current listener (for shutting it down from other threads).
    slots: Mutex<Vec<Option<TcpListener>>>,
    stop_tx: Mutex<Option<Sender<()>>>,
    stop_rx: Receiver<()>,
    pub(crate) addrs: Vec<SocketAddr>,
}

impl Sockets {
    pub(crate) fn new(listeners: &[TcpListener], addrs: Vec<SocketAddr>) -> Self {
        let (stop_tx, stop_rx) = crossbeam_channel::bounded(0);
        Self {
            slots: Mutex::new(listeners.iter().map(|l| l.try_clone().ok()).collect()),
            stop_tx: Mutex::new(Some(stop_tx)),
            stop_rx,
            addrs,
        }
    }

    /// Makes every accept loop return at once (stop, or the test hook).
    pub(crate) fn shutdown_all(&self) {
        for l in self
            .slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .flatten()
        {
            shutdown_listener(l);
        }
    }

    /// Signals the stop: sleepers in [`Sockets::sleep`] wake.
    pub(crate) fn signal_stop(&self) {
        drop(self.stop_tx.lock().unwrap_or_else(|e| e.into_inner()).take());
    }

    /// Sleeps for `d`; `false` if the run stopped meanwhile.
    pub(crate) fn sleep(&self, d: Duration) -> bool {
        !matches!(self.stop_rx.recv_timeout(d), Err(RecvTimeoutError::Disconnected))
    }

    /// Puts a rebuilt listener in slot `index`; `false` (not put) once the run is stopping.
    pub(crate) fn replace(&self, index: usize, l: &TcpListener, stopping: impl Fn() -> bool) -> bool {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if stopping() {
            return false;
        }
        slots[index] = l.try_clone().ok();
        true
    }
}
