//! permessage-deflate on the way out: which messages are compressed, and by which
//! compressor. (The way in is the decoder's: the protocol crate inflates.)
//!
//! Without server context takeover (the default) each message is compressed on its own, so
//! a compressor holds nothing a connection needs between messages: connections share a small
//! pool, taking one for the time of one message, and a broadcast compresses once for every
//! receiver with the same window. With context takeover a connection keeps its own
//! compressor, locked from compressing to queueing so that the compressed stream reaches the
//! wire in the order it was produced; a message it fails to queue resets it (the peer's window
//! never saw that message, and a fresh compressor refers to nothing before it).

use std::cell::Cell;
use std::sync::{Arc, Mutex};

use syncws_protocol::deflate::{Compressor, DeflateConfig, DeflateParams};
use syncws_protocol::frame::OpCode;

use super::outbound::own_thread;
use super::queue::{Budget, SharedFrame};
use super::{encode_frame, Connection};
use crate::error::SendError;

/// A connection's agreed compression.
pub(crate) struct Deflate {
    params: DeflateParams,
    level: u32,
    /// With server context takeover: this connection's compressor, made when first needed
    /// (about 370 KiB with a 15-bit window).
    own: Option<Mutex<Option<Compressor>>>,
}

impl Deflate {
    pub(crate) fn new(params: DeflateParams, cfg: &DeflateConfig) -> Self {
        let own = (!params.server_no_context_takeover).then(|| Mutex::new(None));
        Self {
            params,
            level: cfg.level,
            own,
        }
    }

    pub(crate) fn params(&self) -> &DeflateParams {
        &self.params
    }
}

/// How one message goes to one connection.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Packing {
    Plain,
    /// Compressed alone, with this window: the same bytes for every such receiver.
    Shared(u8),
    /// Compressed by the connection's own compressor.
    Own,
}

/// Compressors without context, shared by all connections of a run.
pub(crate) struct CompressorPool {
    level: u32,
    threshold: usize,
    idle: Mutex<Vec<Compressor>>,
    keep: usize,
}

impl CompressorPool {
    pub(crate) fn new(cfg: Option<&DeflateConfig>) -> Self {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            level: cfg.map_or(1, |c| c.level),
            threshold: cfg.map_or(usize::MAX, |c| c.threshold),
            idle: Mutex::new(Vec::new()),
            keep: (2 * cpus).clamp(2, 16),
        }
    }

    /// Appends `data` compressed alone with a `bits` window to `out`.
    fn compress(&self, bits: u8, data: &[u8], out: &mut Vec<u8>) {
        let taken = {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            idle.iter()
                .position(|c| c.window_bits() == bits)
                .map(|i| idle.swap_remove(i))
        };
        let mut c = taken.unwrap_or_else(|| Compressor::new(self.level, bits, true));
        c.compress(data, out);
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < self.keep {
            idle.push(c);
        }
    }
}

/// The compressed-output buffer a thread keeps between messages (larger ones are freed): small,
/// since in inline mode every connection thread that replies keeps one.
const KEEP_OUTPUT: usize = 8 << 10;

thread_local! {
    /// Each sending thread's buffer for compressed output, kept while small.
    static OUTPUT: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// Runs `f` with this thread's (emptied) compression buffer.
fn with_buffer<R>(f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
    let mut buf = OUTPUT.with(|b| b.take());
    buf.clear();
    let r = f(&mut buf);
    if buf.capacity() <= KEEP_OUTPUT {
        OUTPUT.with(|b| b.set(buf));
    }
    r
}

impl Connection {
    fn packing(&self, len: usize) -> Packing {
        match &self.inner.deflate {
            Some(_) if len < self.inner.ctx.compressors.threshold => Packing::Plain,
            Some(d) if d.own.is_some() => Packing::Own,
            Some(d) => Packing::Shared(d.params.server_max_window_bits),
            None => Packing::Plain,
        }
    }

    /// Sends a text or binary message, compressed when agreed and long enough.
    pub(crate) fn send_data(&self, op: OpCode, payload: &[u8]) -> Result<(), SendError> {
        match self.packing(payload.len()) {
            Packing::Plain => self.send_frame(op, payload),
            Packing::Shared(bits) => with_buffer(|buf| {
                self.inner.ctx.compressors.compress(bits, payload, buf);
                self.send_frame_rsv1(op, buf, true, true)
            }),
            Packing::Own => self.send_own(op, payload),
        }
    }

    fn send_own(&self, op: OpCode, payload: &[u8]) -> Result<(), SendError> {
        let Some((d, own)) = self
            .inner
            .deflate
            .as_ref()
            .and_then(|d| Some((d, d.own.as_ref()?)))
        else {
            return self.send_frame(op, payload);
        };
        if own_thread(self) {
            // Back-pressure before taking the compressor: other senders need it, and the
            // send below, holding it, refuses instead of waiting.
            let max = self.inner.ctx.config.max_send_queue;
            if self.queued() + payload.len() > max {
                self.wait_drained(max.saturating_sub(payload.len()))?;
            }
        }
        let mut guard = own.lock().unwrap_or_else(|e| e.into_inner());
        let c = guard.get_or_insert_with(|| d.params.compressor(d.level));
        with_buffer(|buf| {
            c.compress(payload, buf);
            let r = self.send_frame_rsv1(op, buf, true, false);
            if r.is_err() {
                c.reset();
            }
            r
        })
    }
}

/// One broadcast message, encoded at most once per packing its receivers need.
pub(crate) struct Broadcast<'a> {
    op: OpCode,
    data: &'a [u8],
    budget: Arc<Budget>,
    plain: Option<SharedFrame>,
    packed: Vec<(u8, SharedFrame, usize)>,
}

impl<'a> Broadcast<'a> {
    pub(crate) fn new(op: OpCode, data: &'a [u8], budget: Arc<Budget>) -> Self {
        Self {
            op,
            data,
            budget,
            plain: None,
            packed: Vec::new(),
        }
    }

    /// Hands the message to `conn`.
    pub(crate) fn send(&mut self, conn: &Connection) -> Result<(), SendError> {
        match conn.packing(self.data.len()) {
            Packing::Plain => {
                let (op, data, budget) = (self.op, self.data, &self.budget);
                let frame = self
                    .plain
                    .get_or_insert_with(|| SharedFrame::new(encode_frame(op, data, false), budget.clone()));
                conn.send_shared(frame, data.len())
            }
            Packing::Shared(bits) => {
                let i = match self.packed.iter().position(|p| p.0 == bits) {
                    Some(i) => i,
                    None => self.pack(conn, bits),
                };
                let (_, frame, len) = &self.packed[i];
                conn.send_shared(frame, *len)
            }
            Packing::Own => conn.send_data(self.op, self.data),
        }
    }

    /// Compresses the message once for every receiver with a `bits` window.
    fn pack(&mut self, conn: &Connection, bits: u8) -> usize {
        let mut payload = Vec::new();
        conn.inner.ctx.compressors.compress(bits, self.data, &mut payload);
        let frame = SharedFrame::new(encode_frame(self.op, &payload, true), self.budget.clone());
        self.packed.push((bits, frame, payload.len()));
        self.packed.len() - 1
    }
}
