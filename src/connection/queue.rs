//! The frames of one connection that are waiting for its socket, and the server-wide budget
//! they are charged to.
//!
//! A queue holds whole frames, in order: small frames written by this connection are copied
//! (several into one buffer), a broadcast frame is a [`SharedFrame`] — one copy held by every
//! queue it is in. The queue knows where each frame ends, so it can drop the frames not yet
//! begun and keep the one on the wire ([`Queue::keep_front_frame`]): a close frame sent
//! after that arrives whole.
//!
//! Bytes are charged to the [`Budget`] when queued and given back when written or dropped;
//! a shared frame is charged once, whichever queue takes it first, and given back when the
//! last holder lets go.

use std::collections::VecDeque;
use std::io;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use crate::platform::{send_nb, Sent, MAX_PARTS};

/// Owned buffers are filled up to this size before a new one is started.
const OWNED_CHUNK: usize = 64 << 10;
/// An owned buffer written out is kept (empty) for the next frames if its capacity is at
/// most this: a connection that queues a batch of replies per read (a cork) reuses one
/// buffer instead of allocating and growing one (realloc, copying) for every batch. A
/// busy connection thus keeps up to one owned chunk, like its read buffer.
const SPARE_MAX: usize = OWNED_CHUNK;

/// A server-wide byte budget (outbound or inbound).
#[derive(Debug)]
pub(crate) struct Budget {
    used: AtomicUsize,
    limit: usize,
}

impl Budget {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            used: AtomicUsize::new(0),
            limit,
        }
    }

    /// Takes `n` bytes if they fit under the limit.
    pub(crate) fn try_take(&self, n: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                u.checked_add(n).filter(|&t| t <= self.limit)
            })
            .is_ok()
    }

    /// Takes `n` bytes even past the limit (what is already on its way and cannot be
    /// refused any more); the caller then sheds the connection.
    pub(crate) fn force_take(&self, n: usize) {
        self.used.fetch_add(n, Ordering::AcqRel);
    }

    pub(crate) fn give(&self, n: usize) {
        self.used.fetch_sub(n, Ordering::AcqRel);
    }

    /// Bytes taken now.
    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    pub(crate) fn limit(&self) -> usize {
        self.limit
    }
}

struct SharedInner {
    bytes: Box<[u8]>,
    budget: Arc<Budget>,
    charged: AtomicBool,
}

impl Drop for SharedInner {
    fn drop(&mut self) {
        if *self.charged.get_mut() {
            self.budget.give(self.bytes.len());
        }
    }
}

/// One encoded frame shared by several queues (see the module docs).
#[derive(Clone)]
pub(crate) struct SharedFrame(Arc<SharedInner>);

impl std::fmt::Debug for SharedFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SharedFrame({} bytes)", self.0.bytes.len())
    }
}

impl SharedFrame {
    pub(crate) fn new(bytes: Vec<u8>, budget: Arc<Budget>) -> Self {
        Self(Arc::new(SharedInner {
            bytes: bytes.into_boxed_slice(),
            budget,
            charged: AtomicBool::new(false),
        }))
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0.bytes
    }

    /// Charges the frame to its budget, once; `false` if it does not fit.
    fn charge(&self) -> bool {
        let i = &self.0;
        if i.charged.load(Ordering::Acquire) {
            return true;
        }
        if !i.budget.try_take(i.bytes.len()) {
            return false;
        }
        if i.charged.swap(true, Ordering::AcqRel) {
            i.budget.give(i.bytes.len()); // another queue charged it meanwhile
        }
        true
    }

    fn force_charge(&self) {
        let i = &self.0;
        if !i.charged.swap(true, Ordering::AcqRel) {
            i.budget.force_take(i.bytes.len());
        }
    }
}

enum Chunk {
    /// Copied bytes, charged to the budget by this queue.
    Owned(Vec<u8>),
    /// A shared frame; `.1` is where this queue's part of it starts.
    Shared(SharedFrame, usize),
}

impl Chunk {
    fn bytes(&self) -> &[u8] {
        match self {
            Self::Owned(v) => v,
            Self::Shared(f, from) => &f.bytes()[*from..],
        }
    }
}

/// See the module docs.
pub(crate) struct Queue {
    chunks: VecDeque<Chunk>,
    /// Bytes of the front chunk already written.
    head: usize,
    /// Lengths of the queued frames (the front one counted from `head`'s frame start).
    frames: VecDeque<usize>,
    /// Bytes of the front frame already written.
    frame_head: usize,
    /// The front frame has begun on the wire (part of it written, here or before it was
    /// queued).
    front_begun: bool,
    /// Bytes not yet written.
    len: usize,
    /// Owned bytes charged to the budget (given back as they go).
    owned: usize,
    /// An empty owned buffer to reuse (see [`SPARE_MAX`]).
    spare: Vec<u8>,
    budget: Arc<Budget>,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("len", &self.len)
            .field("frames", &self.frames.len())
            .finish_non_exhaustive()
    }
}

impl Queue {
    pub(crate) fn new(budget: Arc<Budget>) -> Self {
        Self {
            chunks: VecDeque::new(),
            head: 0,
            frames: VecDeque::new(),
            frame_head: 0,
            front_begun: false,
            len: 0,
            owned: 0,
            spare: Vec::new(),
            budget,
        }
    }

    /// Bytes not yet written.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Queues one frame (or the unwritten rest of one) made of `parts`, copied. `Err(())`
    /// when the budget cannot take it (nothing queued) unless `force`.
    pub(crate) fn push_owned(&mut self, parts: &[&[u8]], force: bool) -> Result<(), ()> {
        let n: usize = parts.iter().map(|p| p.len()).sum();
        if n == 0 {
            return Ok(());
        }
        if force {
            self.budget.force_take(n);
        } else if !self.budget.try_take(n) {
            return Err(());
        }
        self.owned += n;
        let fits = matches!(self.chunks.back(), Some(Chunk::Owned(v)) if v.len() + n <= OWNED_CHUNK);
        if !fits {
            // Powers of two (as it grows by doubling), so a batch's buffer fits `SPARE_MAX`.
            let mut v = std::mem::take(&mut self.spare);
            v.reserve(n.min(OWNED_CHUNK).next_power_of_two());
            self.chunks.push_back(Chunk::Owned(v));
        }
        if let Some(Chunk::Owned(v)) = self.chunks.back_mut() {
            for p in parts {
                v.extend_from_slice(p);
            }
        }
        self.frames.push_back(n);
        self.len += n;
        Ok(())
    }

    /// Queues a shared frame from byte `from` on (what a direct write did not take). `Err(())`
    /// when the budget cannot take it, unless `force`.
    pub(crate) fn push_shared(&mut self, frame: &SharedFrame, from: usize, force: bool) -> Result<(), ()> {
        if from >= frame.bytes().len() {
            return Ok(());
        }
        if force {
            frame.force_charge();
        } else if !frame.charge() {
            return Err(());
        }
        let n = frame.bytes().len() - from;
        self.chunks.push_back(Chunk::Shared(frame.clone(), from));
        self.frames.push_back(n);
        self.len += n;
        Ok(())
    }

    /// The front frame is the rest of one already partly written (queued after a direct
    /// write that the socket did not take whole).
    pub(crate) fn mark_front_begun(&mut self) {
        if !self.frames.is_empty() {
            self.front_begun = true;
        }
    }

    /// The unwritten bytes of the front chunk.
    pub(crate) fn front(&self) -> &[u8] {
        self.chunks.front().map_or(&[][..], |c| &c.bytes()[self.head..])
    }

    /// Marks `n` bytes from the front as written.
    pub(crate) fn advance(&mut self, mut n: usize) {
        debug_assert!(n <= self.len);
        self.len -= n;
        let mut f = n;
        while f > 0 {
            let left = self.frames[0] - self.frame_head;
            if f >= left {
                f -= left;
                self.frames.pop_front();
                self.frame_head = 0;
                self.front_begun = false;
            } else {
                self.frame_head += f;
                self.front_begun = true;
                f = 0;
            }
        }
        while n > 0 {
            let left = self.chunks[0].bytes().len() - self.head;
            if n >= left {
                n -= left;
                self.pop_chunk();
            } else {
                self.head += n;
                n = 0;
            }
        }
        if self.chunks.front().is_some_and(|c| c.bytes().len() == self.head) {
            self.pop_chunk();
        }
    }

    fn pop_chunk(&mut self) {
        if let Some(Chunk::Owned(mut v)) = self.chunks.pop_front() {
            self.owned -= v.len();
            self.budget.give(v.len());
            if v.capacity() <= SPARE_MAX && v.capacity() > self.spare.capacity() {
                v.clear();
                self.spare = v;
            }
        }
        self.head = 0;
    }

    /// Writes queued bytes without blocking (one `sendmsg` of up to `MAX_PARTS` slices at a time);
    /// `Ok(true)` when the queue is empty. Returns whether bytes moved through `progress`.
    pub(crate) fn flush(&mut self, sock: impl AsFd, progress: &mut bool) -> io::Result<bool> {
        let sock = sock.as_fd();
        while !self.is_empty() {
            let sent = {
                let mut iov: [&[u8]; MAX_PARTS] = [&[]; MAX_PARTS];
                iov[0] = self.front();
                let mut n = 1;
                for (slot, c) in iov[1..].iter_mut().zip(self.chunks.iter().skip(1)) {
                    *slot = c.bytes();
                    n += 1;
                }
                send_nb(sock, &iov[..n])?
            };
            match sent {
                Sent::Bytes(n) => {
                    *progress |= n > 0;
                    self.advance(n);
                }
                Sent::WouldBlock => return Ok(false),
            }
        }
        Ok(true)
    }

    /// Drops every frame not yet begun, keeping the rest of the one partly written (so what
    /// follows on the wire starts at a frame boundary).
    pub(crate) fn keep_front_frame(&mut self) {
        let keep = if self.front_begun {
            self.frames[0] - self.frame_head
        } else {
            0
        };
        let mut rest = Queue::new(self.budget.clone());
        if keep > 0 {
            match self.chunks.front() {
                // A shared chunk is one frame: keep the reference (the bytes stay shared).
                Some(Chunk::Shared(f, from)) => {
                    let _ = rest.push_shared(f, from + self.head, true);
                }
                _ => rest.copy_front(self, keep),
            }
            rest.mark_front_begun();
        }
        *self = rest;
    }

    /// Copies the first `keep` unwritten bytes of `from` (the rest of its front frame, in its
    /// first owned chunk or two) into this queue.
    fn copy_front(&mut self, from: &Queue, keep: usize) {
        let mut need = keep;
        let mut parts: Vec<&[u8]> = Vec::new();
        for (i, c) in from.chunks.iter().enumerate() {
            let b = if i == 0 {
                &c.bytes()[from.head..]
            } else {
                c.bytes()
            };
            let take = need.min(b.len());
            parts.push(&b[..take]);
            need -= take;
            if need == 0 {
                break;
            }
        }
        let _ = self.push_owned(&parts, true);
    }

    /// Forgets everything queued.
    pub(crate) fn clear(&mut self) {
        *self = Queue::new(self.budget.clone());
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        self.budget.give(self.owned);
        self.owned = 0;
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::os::unix::net::UnixStream;

    use super::*;

    fn budget(n: usize) -> Arc<Budget> {
        Arc::new(Budget::new(n))
    }

    fn all(q: &Queue) -> Vec<u8> {
        let mut v = q.front().to_vec();
        for c in q.chunks.iter().skip(1) {
            v.extend_from_slice(c.bytes());
        }
        v
    }

    fn drain(r: &mut UnixStream, n: usize) -> Vec<u8> {
        let mut got = vec![0u8; n];
        r.read_exact(&mut got).unwrap();
        got
    }

    #[test]
    fn flushes_in_order_and_gives_the_budget_back() {
        let b = budget(1 << 20);
        let (a, mut r) = UnixStream::pair().unwrap();
        let mut q = Queue::new(b.clone());
        q.push_owned(&[b"ab", b"cd"], false).unwrap();
        q.push_owned(&[b"ef"], false).unwrap();
        let shared = SharedFrame::new(b"ghi".to_vec(), b.clone());
        q.push_shared(&shared, 1, false).unwrap();
        assert_eq!(q.len(), 8);
        assert_eq!(b.used(), 6 + 3, "owned bytes, and the whole shared frame once");
        let mut moved = false;
        assert!(q.flush(&a, &mut moved).unwrap());
        assert!(moved && q.is_empty());
        assert_eq!(drain(&mut r, 8), b"abcdefhi");
        assert_eq!(b.used(), 3, "the shared frame is charged while a holder lives");
        drop(shared);
        assert_eq!(b.used(), 0);
    }

    #[test]
    fn a_shared_frame_is_charged_once_for_many_queues() {
        let b = budget(1 << 20);
        let f = SharedFrame::new(vec![7; 1000], b.clone());
        let mut queues: Vec<Queue> = (0..100).map(|_| Queue::new(b.clone())).collect();
        for q in &mut queues {
            q.push_shared(&f, 0, false).unwrap();
        }
        drop(f);
        assert_eq!(b.used(), 1000, "100 queues, one copy");
        assert!(queues.iter().all(|q| q.len() == 1000));
        queues.clear();
        assert_eq!(b.used(), 0);
    }

    #[test]
    fn the_budget_refuses_and_nothing_is_queued() {
        let b = budget(10);
        let mut q = Queue::new(b.clone());
        q.push_owned(&[&[0; 8]], false).unwrap();
        assert!(q.push_owned(&[&[0; 8]], false).is_err());
        let f = SharedFrame::new(vec![0; 8], b.clone());
        assert!(q.push_shared(&f, 0, false).is_err());
        assert_eq!((q.len(), b.used()), (8, 8));
        // What is already on its way is taken past the limit when forced.
        q.push_owned(&[&[0; 8]], true).unwrap();
        assert_eq!(b.used(), 16);
        q.clear();
        assert_eq!(b.used(), 0, "clear gives everything back");
    }

    #[test]
    fn full_socket_keeps_the_rest_then_resumes() {
        let (a, mut r) = UnixStream::pair().unwrap();
        let mut q = Queue::new(budget(64 << 20));
        let data: Vec<u8> = (0..4u32 << 20).map(|i| (i % 251) as u8).collect();
        for piece in data.chunks(100_000) {
            q.push_owned(&[piece], false).unwrap();
        }
        let mut moved = false;
        assert!(
            !q.flush(&a, &mut moved).unwrap(),
            "4 MiB fit an unread socketpair"
        );
        let mut got = Vec::new();
        let mut buf = vec![0u8; 1 << 16];
        r.set_nonblocking(true).unwrap();
        while got.len() < data.len() {
            q.flush(&a, &mut moved).unwrap();
            match r.read(&mut buf) {
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("{e}"),
            }
        }
        assert!(got == data, "bytes changed or reordered");
        assert!(q.is_empty() && q.chunks.is_empty() && q.frames.is_empty());
    }

    #[test]
    fn keep_front_frame_drops_whole_frames_only() {
        let b = budget(1 << 20);
        let mut q = Queue::new(b.clone());
        q.push_owned(&[b"AAAA"], false).unwrap();
        q.push_owned(&[b"BBBB"], false).unwrap();
        let f = SharedFrame::new(b"CCCC".to_vec(), b.clone());
        q.push_shared(&f, 0, false).unwrap();
        q.advance(2); // "AA" went out: frame A is on the wire
        q.keep_front_frame();
        assert_eq!(all(&q), b"AA", "the rest of A only");
        q.advance(2);
        assert!(q.is_empty());
        q.push_owned(&[b"DDDD"], false).unwrap();
        q.keep_front_frame();
        assert!(q.is_empty(), "a frame not begun is dropped");
        drop(f);
        assert_eq!(b.used(), 0);
    }

    #[test]
    fn keep_front_frame_keeps_a_queued_remainder() {
        let mut q = Queue::new(budget(1 << 20));
        q.push_owned(&[b"rest of a frame"], false).unwrap();
        q.mark_front_begun();
        q.push_owned(&[b"next"], false).unwrap();
        q.keep_front_frame();
        assert_eq!(all(&q), b"rest of a frame");
    }

    #[test]
    fn keep_front_frame_inside_a_shared_frame_keeps_it_shared() {
        let b = budget(1 << 20);
        let f = SharedFrame::new(vec![7u8; 1000], b.clone());
        let mut queues: Vec<Queue> = (0..50).map(|_| Queue::new(b.clone())).collect();
        for q in &mut queues {
            q.push_shared(&f, 0, false).unwrap();
            q.push_owned(&[b"zz"], false).unwrap();
            q.advance(3);
            q.keep_front_frame();
            assert_eq!(q.len(), 997);
        }
        assert_eq!(b.used(), 1000, "50 aborted queues still hold one copy");
        drop(f);
        queues.clear();
        assert_eq!(b.used(), 0);
    }

    #[test]
    fn advance_across_chunks_and_frames() {
        let mut q = Queue::new(budget(1 << 20));
        let big = vec![1u8; OWNED_CHUNK];
        q.push_owned(&[b"x"], false).unwrap();
        q.push_owned(&[&big], false).unwrap(); // does not fit the first buffer: a second one
        q.push_owned(&[b"yz"], false).unwrap();
        assert_eq!(q.chunks.len(), 3);
        q.advance(1 + OWNED_CHUNK + 1);
        assert_eq!(q.front(), b"z");
        assert_eq!(q.frames.len(), 1);
        q.advance(1);
        assert!(q.is_empty() && q.chunks.is_empty());
    }

    #[test]
    fn closed_peer_is_an_error() {
        let (a, r) = UnixStream::pair().unwrap();
        drop(r);
        let mut q = Queue::new(budget(100));
        q.push_owned(&[b"x"], false).unwrap();
        assert!(q.flush(&a, &mut false).is_err());
    }
}
