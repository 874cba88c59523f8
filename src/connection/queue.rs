//! The bytes of one connection that are waiting for its socket: appended at the back, written
//! from the front without blocking.

use std::io;
use std::os::fd::AsFd;

use crate::platform::{send_nb, Sent};

/// A queue's buffer is given back to the allocator once it drains, when it grew beyond this.
const KEEP_CAPACITY: usize = 64 << 10;

/// See the module docs.
#[derive(Debug, Default)]
pub(crate) struct Queue {
    buf: Vec<u8>,
    /// Bytes of `buf` already written.
    head: usize,
}

impl Queue {
    /// Bytes not yet written.
    pub(crate) fn len(&self) -> usize {
        self.buf.len() - self.head
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops the written front when it is at least half the buffer (amortised O(1) per byte).
    fn compact(&mut self) {
        if self.head > 0 && self.head >= self.buf.len() / 2 {
            self.buf.drain(..self.head);
            self.head = 0;
        }
    }

    /// Appends `parts`, in order.
    pub(crate) fn push(&mut self, parts: &[&[u8]]) {
        self.compact();
        for p in parts {
            self.buf.extend_from_slice(p);
        }
    }

    /// Lets `f` append to the queue's buffer directly (TLS records written by rustls).
    #[cfg(feature = "tls")]
    pub(crate) fn append_with<R>(&mut self, f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
        self.compact();
        f(&mut self.buf)
    }

    /// Writes queued bytes without blocking; `Ok(true)` when the queue is empty.
    pub(crate) fn flush(&mut self, sock: impl AsFd) -> io::Result<bool> {
        let sock = sock.as_fd();
        while self.head < self.buf.len() {
            match send_nb(sock, &[&self.buf[self.head..]])? {
                Sent::Bytes(n) => self.head += n,
                Sent::WouldBlock => return Ok(false),
            }
        }
        self.buf.clear();
        self.head = 0;
        if self.buf.capacity() > KEEP_CAPACITY {
            self.buf = Vec::new();
        }
        Ok(true)
    }

    /// Forgets everything queued and frees the buffer.
    pub(crate) fn clear(&mut self) {
        self.buf = Vec::new();
        self.head = 0;
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::os::unix::net::UnixStream;

    use super::*;

    fn drain(r: &mut UnixStream, n: usize) -> Vec<u8> {
        let mut got = vec![0u8; n];
        r.read_exact(&mut got).unwrap();
        got
    }

    #[test]
    fn flushes_in_order() {
        let (a, mut b) = UnixStream::pair().unwrap();
        let mut q = Queue::default();
        q.push(&[b"ab", b"cd"]);
        q.push(&[b"ef"]);
        assert_eq!(q.len(), 6);
        assert!(q.flush(&a).unwrap());
        assert!(q.is_empty());
        assert_eq!(drain(&mut b, 6), b"abcdef");
    }

    #[test]
    fn full_socket_keeps_the_rest_then_resumes() {
        let (a, mut b) = UnixStream::pair().unwrap();
        let mut q = Queue::default();
        let data: Vec<u8> = (0..4u32 << 20).map(|i| (i % 251) as u8).collect();
        q.push(&[&data]);
        assert!(!q.flush(&a).unwrap(), "4 MiB fit an unread socketpair");
        let left = q.len();
        assert!(left > 0 && left < data.len());
        // Read everything while flushing what is left, and compare.
        let mut got = Vec::new();
        let mut buf = vec![0u8; 1 << 16];
        b.set_nonblocking(true).unwrap();
        while got.len() < data.len() {
            q.flush(&a).unwrap();
            match b.read(&mut buf) {
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("{e}"),
            }
        }
        assert!(got == data, "bytes changed or reordered");
        assert!(q.is_empty());
        assert_eq!(q.buf.capacity(), 0, "a large drained buffer is freed");
    }

    #[test]
    fn push_after_partial_write_compacts() {
        let (a, mut b) = UnixStream::pair().unwrap();
        let mut q = Queue::default();
        q.push(&[b"0123456789"]);
        q.head = 6; // as if 6 bytes had gone out
        q.push(&[b"ab"]);
        assert_eq!(q.head, 0, "written front dropped");
        assert_eq!(q.len(), 6);
        assert!(q.flush(&a).unwrap());
        assert_eq!(drain(&mut b, 6), b"6789ab");
    }

    #[test]
    fn closed_peer_is_an_error() {
        let (a, b) = UnixStream::pair().unwrap();
        drop(b);
        let mut q = Queue::default();
        q.push(&[b"x"]);
        assert!(q.flush(&a).is_err());
    }

    #[test]
    fn clear_frees() {
        let mut q = Queue::default();
        q.push(&[&[0u8; 1000]]);
        q.clear();
        assert!(q.is_empty());
        assert_eq!(q.buf.capacity(), 0);
    }
}
