//! [`Dispatcher`]: the receiving end of asynchronous mode.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvError, RecvTimeoutError, TryRecvError};

use super::event::Event;
use super::handler::Handler;
use super::waker::Waker;
use crate::connection::Cork;

/// Most events handled under one write batch (see `Cork`): bounds the delay of the first
/// reply in a batch.
const BATCH: usize = 64;

/// The receiving end of asynchronous mode when the application pumps events itself
/// ([`crate::Server::start_manual`]): from a GUI or game loop with
/// [`Dispatcher::dispatch_pending`], or forever with [`Dispatcher::run`]. The handler lives on
/// the pumping thread and need not be `Send`. A loop that sleeps until something wakes it (a
/// GUI) installs a callback with [`Dispatcher::set_waker`] instead of polling.
pub struct Dispatcher {
    pub(crate) rx: Receiver<Event>,
    /// Shared with the run's senders (see [`Dispatcher::set_waker`]).
    pub(crate) waker: Arc<Waker>,
    /// `ServerConfig::dispatch_spin`, for `run`.
    pub(crate) spin: Duration,
}

impl fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dispatcher")
            .field("pending", &self.rx.len())
            .finish()
    }
}

impl Dispatcher {
    /// Handles events until the server stops (after the last connection's disconnect). Once
    /// the queue is empty it keeps looking for the next event for
    /// [`crate::ServerConfig::dispatch_spin`] (50 µs by default), yielding the CPU to other
    /// threads meanwhile, before it sleeps.
    pub fn run<H: Handler + ?Sized>(&self, handler: &mut H) {
        while let Ok(ev) = self.recv_soon() {
            let _cork = Cork::new();
            ev.dispatch(handler);
            self.batch(handler, BATCH - 1);
        }
    }

    /// The next event: looked for (yielding in between) for `ServerConfig::dispatch_spin`,
    /// then waited for.
    fn recv_soon(&self) -> Result<Event, RecvError> {
        let mut since: Option<Instant> = None;
        loop {
            match self.rx.try_recv() {
                Ok(ev) => return Ok(ev),
                Err(TryRecvError::Disconnected) => return Err(RecvError),
                Err(TryRecvError::Empty) => {}
            }
            let start = *since.get_or_insert_with(Instant::now);
            if start.elapsed() >= self.spin {
                return self.rx.recv();
            }
            std::thread::yield_now();
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

    /// Handles the events already waiting, without blocking; returns how many. When it
    /// returns, the queue was empty and the waker, if one is set, is armed
    /// ([`Dispatcher::set_waker`]).
    pub fn dispatch_pending<H: Handler + ?Sized>(&self, handler: &mut H) -> usize {
        let mut total = 0;
        loop {
            let _cork = Cork::new();
            let n = self.batch(handler, BATCH);
            total += n;
            if n < BATCH && !self.waker.idle(|| self.rx.is_empty()) {
                return total;
            }
        }
    }

    /// Installs `waker`, called from a library thread (a connection's, the listener's, the
    /// watchdog's) when an event is queued while the pumping loop is idle, so that a loop
    /// that sleeps until something wakes it (a GUI) need not poll. A second call replaces the
    /// callback.
    ///
    /// The guarantee: from the return of `set_waker` on, every event queued is handled by a
    /// dispatch call that is running or will run anyway (the pumping loop is busy), or is
    /// followed by a call of `waker` that starts after the event entered the queue. The waker
    /// is armed by `set_waker` and by every return of [`Dispatcher::dispatch_pending`] or
    /// [`Dispatcher::dispatch_timeout`] (which return only once they have found the queue
    /// empty), and the first event queued after that disarms it and calls it: one call per
    /// idle spell of the loop, not one per event. Events taken straight from
    /// [`Dispatcher::receiver`] do not arm it. If events are already waiting, `set_waker`
    /// calls `waker` itself, on the calling thread.
    ///
    /// So `waker` must be a *sticky* request, remembered until the loop next runs, such as
    /// egui's `Context::request_repaint`, posting a message to a window, or unparking a
    /// thread: after one call it is not called again until the loop has pumped. It should be
    /// quick and must not block, nor call the dispatcher (it runs on a thread that reads from
    /// a client). A panic in it is caught and logged.
    ///
    /// ```no_run
    /// use syncws::{Connection, Handler, Server, ServerConfig, TextPayload};
    ///
    /// struct Log(Vec<String>);
    /// impl Handler for Log {
    ///     fn on_text(&mut self, _conn: &Connection, text: TextPayload) {
    ///         self.0.push(format!("Message Received From Client: {text}"));
    ///     }
    /// }
    ///
    /// let (handle, dispatcher) = Server::new(ServerConfig::new(([127, 0, 0, 1], 0))).start_manual()?;
    /// let main = std::thread::current();
    /// dispatcher.set_waker(move || main.unpark());
    /// let mut log = Log(Vec::new());
    /// while log.0.len() < 10 {
    ///     dispatcher.dispatch_pending(&mut log); // arms the waker once the queue is empty
    ///     std::thread::park(); // sleeps until an event is queued: no polling
    /// }
    /// handle.stop();
    /// # Ok::<(), syncws::Error>(())
    /// ```
    pub fn set_waker(&self, waker: impl Fn() + Send + Sync + 'static) {
        self.waker.set(Arc::new(waker));
        if self.waker.idle(|| self.rx.is_empty()) {
            self.waker.call();
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
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                // Nothing came; this also arms the waker (and handles a late arrival).
                self.dispatch_pending(handler)
            }
        }
    }

    /// The raw event receiver, for `crossbeam_channel::select!` with other channels. Call
    /// [`Event::dispatch`] on what it yields, or match on the events directly.
    pub fn receiver(&self) -> &Receiver<Event> {
        &self.rx
    }
}
