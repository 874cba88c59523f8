//! [`Dispatcher`]: the receiving end of asynchronous mode.

use std::fmt;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, TryRecvError};

use super::event::Event;
use super::handler::Handler;
use crate::connection::Cork;

/// Most events handled under one write batch (see `Cork`): bounds the delay of the first
/// reply in a batch.
const BATCH: usize = 64;

/// The receiving end of asynchronous mode when the application pumps events itself
/// ([`crate::Server::start_manual`]): from a GUI or game loop with
/// [`Dispatcher::dispatch_pending`], or forever with [`Dispatcher::run`]. The handler lives on
/// the pumping thread and need not be `Send`.
pub struct Dispatcher {
    pub(crate) rx: Receiver<Event>,
}

impl fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dispatcher")
            .field("pending", &self.rx.len())
            .finish()
    }
}

impl Dispatcher {
    /// Handles events until the server stops (after the last connection's disconnect).
    pub fn run<H: Handler + ?Sized>(&self, handler: &mut H) {
        while let Ok(ev) = self.rx.recv() {
            let _cork = Cork::new();
            ev.dispatch(handler);
            self.batch(handler, BATCH - 1);
        }
    }

    /// Handles up to `max` waiting events; returns how many.
    fn batch<H: Handler + ?Sized>(&self, handler: &mut H, max: usize) -> usize {
        let mut n = 0;
        while n < max {
            match self.rx.try_recv() {
                Ok(ev) => {
                    ev.dispatch(handler);
                    n += 1;
                }
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        n
    }

    /// Handles the events already waiting, without blocking; returns how many.
    pub fn dispatch_pending<H: Handler + ?Sized>(&self, handler: &mut H) -> usize {
        let mut total = 0;
        loop {
            let _cork = Cork::new();
            let n = self.batch(handler, BATCH);
            total += n;
            if n < BATCH {
                return total;
            }
        }
    }

    /// Waits up to `timeout` for at least one event, then handles all waiting events; returns
    /// how many.
    pub fn dispatch_timeout<H: Handler + ?Sized>(&self, handler: &mut H, timeout: Duration) -> usize {
        match self.rx.recv_timeout(timeout) {
            Ok(ev) => {
                {
                    let _cork = Cork::new();
                    ev.dispatch(handler);
                }
                1 + self.dispatch_pending(handler)
            }
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => 0,
        }
    }

    /// The raw event receiver, for `crossbeam_channel::select!` with other channels. Call
    /// [`Event::dispatch`] on what it yields, or match on the events directly.
    pub fn receiver(&self) -> &Receiver<Event> {
        &self.rx
    }
}
