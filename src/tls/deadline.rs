//! Socket I/O under a deadline, for rustls: its `complete_io` (and `rustls::Stream`, which
//! calls it) loops for as long as each read brings a byte, so a timeout set once around it
//! bounds each read, not the whole call — a client sending one byte every few seconds would
//! hold the socket for ever. [`Deadline`] re-arms the socket's timeout before every read and
//! every write to what is left, and fails with `TimedOut` once the deadline has passed.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// A socket whose every read and write must end by `by`; see the module docs.
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
