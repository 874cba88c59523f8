//! Every call into the operating system that the standard library does not offer portably:
//! non-blocking sends (`MSG_DONTWAIT`, `sendmsg`), `poll`, a listener with a chosen backlog,
//! shutting a listener down from another thread, reading accept errors, and blocking socket
//! I/O bounded by a deadline as a whole (`Deadline`). A port to another platform replaces
//! this file.
//!
//! Lowest room of the crate: it imports nothing from the rest of it.

use std::io::{self, IoSlice, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::io::Errno;
use rustix::net::{SendAncillaryBuffer, SendFlags};

/// The flags of every send here: never block, never raise `SIGPIPE`.
const NB: SendFlags = SendFlags::DONTWAIT.union(SendFlags::NOSIGNAL);

/// What a non-blocking send did.
#[derive(Debug)]
pub(crate) enum Sent {
    /// This many bytes went out (possibly fewer than offered).
    Bytes(usize),
    /// The socket's buffer is full: nothing went out.
    WouldBlock,
}

/// Most slices one [`send_nb`] passes to the kernel (the rest wait for the next call).
pub(crate) const MAX_PARTS: usize = 64;

/// Sends what fits of `parts` (one `send`, or one `sendmsg` of up to [`MAX_PARTS`] slices)
/// without blocking.
pub(crate) fn send_nb(sock: impl AsFd, parts: &[&[u8]]) -> io::Result<Sent> {
    let sock = sock.as_fd();
    let mut iov = [IoSlice::new(&[]); MAX_PARTS];
    let n = parts.len().min(MAX_PARTS);
    for (slot, p) in iov.iter_mut().zip(parts) {
        *slot = IoSlice::new(p);
    }
    loop {
        let r = match parts {
            [one] => rustix::net::send(sock, one, NB),
            _ => rustix::net::sendmsg(sock, &iov[..n], &mut SendAncillaryBuffer::default(), NB),
        };
        match r {
            Ok(n) => return Ok(Sent::Bytes(n)),
            Err(Errno::AGAIN) => return Ok(Sent::WouldBlock),
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// A socket writer that never blocks: `WouldBlock` instead of waiting (for rustls'
/// `write_tls`).
#[cfg(feature = "tls")]
#[derive(Debug)]
pub(crate) struct NonBlocking<'a>(pub(crate) &'a TcpStream);

#[cfg(feature = "tls")]
impl Write for NonBlocking<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let parts: Vec<&[u8]> = bufs.iter().map(|b| &**b).collect();
        match send_nb(self.0, &parts)? {
            Sent::Bytes(n) => Ok(n),
            Sent::WouldBlock => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn timespec(d: Duration) -> Timespec {
    Timespec {
        tv_sec: d.as_secs() as _,
        tv_nsec: d.subsec_nanos() as _,
    }
}

/// Waits until `sock` is writable or `timeout` passes (at most one second per call).
pub(crate) fn wait_writable(sock: &TcpStream, timeout: Duration) {
    let mut fds = [PollFd::new(sock, PollFlags::OUT)];
    let _ = poll(&mut fds, Some(&timespec(timeout.min(Duration::from_secs(1)))));
}

/// What [`poll_ready`] waits for on one descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Interest {
    /// Readable (or closed).
    Read,
    /// Writable (or failed).
    Write,
}

/// Waits up to `timeout` until one of `fds` is ready for its interest; returns, for each,
/// whether it is (errors and hang-ups count as ready, so the caller finds out).
pub(crate) fn poll_ready(fds: &[(BorrowedFd<'_>, Interest)], timeout: Duration) -> Vec<bool> {
    let mut pfds: Vec<PollFd<'_>> = fds
        .iter()
        .map(|(fd, i)| {
            let flags = match i {
                Interest::Read => PollFlags::IN,
                Interest::Write => PollFlags::OUT,
            };
            PollFd::new(fd, flags)
        })
        .collect();
    let _ = poll(&mut pfds, Some(&timespec(timeout)));
    pfds.iter().map(|f| !f.revents().is_empty()).collect()
}

/// A wake-up line for a thread that sleeps in [`poll_ready`]: [`Waker::wake`] from any thread
/// makes [`Waker::fd`] readable until [`Waker::drain`].
#[derive(Debug)]
pub(crate) struct Waker {
    tx: UnixStream,
    rx: UnixStream,
}

impl Waker {
    pub(crate) fn new() -> io::Result<Self> {
        let (tx, rx) = UnixStream::pair()?;
        tx.set_nonblocking(true)?;
        rx.set_nonblocking(true)?;
        Ok(Self { tx, rx })
    }

    pub(crate) fn wake(&self) {
        // A full pipe means a wake-up is already pending.
        let _ = (&self.tx).write(&[1]);
    }

    /// The descriptor to poll for reading.
    pub(crate) fn fd(&self) -> &UnixStream {
        &self.rx
    }

    pub(crate) fn drain(&self) {
        let mut b = [0u8; 64];
        while let Ok(n) = (&self.rx).read(&mut b) {
            if n == 0 {
                break;
            }
        }
    }
}

/// A listening socket on `addr` whose listen queue holds `backlog` connections (the kernel may
/// cap it, Linux at `net.core.somaxconn`). Otherwise what `TcpListener::bind` makes, which
/// always listens with 128: `SO_REUSEADDR` set (so a restarted server rebinds its port while
/// old connections linger in `TIME_WAIT`), close-on-exec, blocking.
pub(crate) fn bind_listener(addr: SocketAddr, backlog: u32) -> io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    sock.set_reuse_address(true)?;
    sock.bind(&addr.into())?;
    sock.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
    Ok(sock.into())
}

/// Makes a thread blocked in `accept()` on `listener` (or a clone of it) return at once.
pub(crate) fn shutdown_listener(listener: &TcpListener) {
    let _ = rustix::net::shutdown(listener, rustix::net::Shutdown::Both);
}

/// What an `accept()` error means for the accept loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AcceptError {
    /// The connection went away before accept, or a signal: try again at once.
    Transient,
    /// Out of descriptors or memory: wait a little, then try again.
    Exhausted,
    /// The listener is dead (shut down, closed...).
    Fatal,
}

pub(crate) fn classify_accept_error(e: &io::Error) -> AcceptError {
    match e.raw_os_error().map(Errno::from_raw_os_error) {
        Some(Errno::CONNABORTED | Errno::INTR | Errno::PROTO) => AcceptError::Transient,
        Some(Errno::MFILE | Errno::NFILE | Errno::NOBUFS | Errno::NOMEM) => AcceptError::Exhausted,
        _ if e.kind() == io::ErrorKind::Interrupted => AcceptError::Transient,
        _ => AcceptError::Fatal,
    }
}

/// Socket I/O under a deadline: a call made of many reads or writes (rustls' `complete_io`,
/// `write_all`) is bounded as a whole, not per system call, because the socket's timeout is
/// re-armed before every read and every write to what is left, and `TimedOut` is returned
/// once the deadline has passed. Without it a client sending (or reading) one byte every few
/// seconds could hold a thread for ever.
#[derive(Debug)]
pub(crate) struct Deadline<'a> {
    sock: &'a TcpStream,
    by: Instant,
}

impl<'a> Deadline<'a> {
    /// I/O on `sock` that must end by `by`.
    pub(crate) fn new(sock: &'a TcpStream, by: Instant) -> Self {
        Self { sock, by }
    }

    /// What is left until the deadline; `TimedOut` once it has passed.
    fn left(&self) -> io::Result<Duration> {
        let left = self.by.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        Ok(left)
    }
}

impl Read for Deadline<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.sock.set_read_timeout(Some(self.left()?))?;
        (&*self.sock).read(buf)
    }
}

impl Write for Deadline<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.sock.set_write_timeout(Some(self.left()?))?;
        (&*self.sock).write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (b, _) = l.accept().unwrap();
        (a, b)
    }

    #[test]
    fn send_nb_two_parts_then_would_block() {
        let (a, mut b) = pair();
        match send_nb(&a, &[b"he", b"llo"]).unwrap() {
            Sent::Bytes(n) => assert_eq!(n, 5),
            Sent::WouldBlock => panic!("empty socket refused 5 bytes"),
        }
        let mut got = [0u8; 5];
        b.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hello");
        // Nobody reads `b` any more: the buffers fill and the send reports it, not blocks.
        let chunk = vec![0u8; 1 << 20];
        let mut blocked = false;
        for _ in 0..256 {
            if let Sent::WouldBlock = send_nb(&a, &[&chunk]).unwrap() {
                blocked = true;
                break;
            }
        }
        assert!(blocked, "256 MiB went into an unread socket");
    }

    #[test]
    fn waker_wakes_poll() {
        let w = Waker::new().unwrap();
        let r = poll_ready(&[(w.fd().as_fd(), Interest::Read)], Duration::ZERO);
        assert_eq!(r, [false]);
        w.wake();
        w.wake();
        let r = poll_ready(&[(w.fd().as_fd(), Interest::Read)], Duration::from_secs(5));
        assert_eq!(r, [true]);
        w.drain();
        let r = poll_ready(&[(w.fd().as_fd(), Interest::Read)], Duration::ZERO);
        assert_eq!(r, [false]);
    }

    #[test]
    fn bound_listener_accepts_and_rebinds_its_port() {
        let l = bind_listener(([127, 0, 0, 1], 0).into(), 300).unwrap();
        let addr = l.local_addr().unwrap();
        let c = TcpStream::connect(addr).unwrap();
        let (s, _) = l.accept().unwrap();
        // A connection closed by the server side first leaves it in TIME_WAIT on this port:
        // SO_REUSEADDR lets a new listener have the port at once.
        drop(s);
        drop(l);
        drop(c);
        bind_listener(addr, 300).unwrap();
    }

    #[test]
    fn accept_errors() {
        let e = io::Error::from_raw_os_error(Errno::CONNABORTED.raw_os_error());
        assert_eq!(classify_accept_error(&e), AcceptError::Transient);
        let e = io::Error::from_raw_os_error(Errno::MFILE.raw_os_error());
        assert_eq!(classify_accept_error(&e), AcceptError::Exhausted);
        let e = io::Error::from_raw_os_error(Errno::INVAL.raw_os_error());
        assert_eq!(classify_accept_error(&e), AcceptError::Fatal);
    }

    #[test]
    fn trickled_reads_end_at_the_deadline() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (server, _) = l.accept().unwrap();
        let t0 = Instant::now();
        let mut io = Deadline::new(&server, t0 + Duration::from_millis(300));
        let writer = std::thread::spawn(move || {
            // One byte every 50 ms for 1.5 s: each read succeeds well within its timeout.
            for _ in 0..30 {
                if client.write_all(b"x").is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        let mut b = [0u8; 1];
        let err = loop {
            if let Err(e) = io.read(&mut b) {
                break e;
            }
        };
        assert!(
            matches!(err.kind(), io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock),
            "{err}"
        );
        assert!(t0.elapsed() < Duration::from_secs(1), "{:?}", t0.elapsed());
        drop(server);
        writer.join().unwrap();
    }
}
