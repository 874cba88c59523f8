//! TLS (wss://) with rustls and its `ring` crypto provider.
//!
//! `ring` builds with a C compiler only (no cmake, no Go, no NASM), which every machine that
//! builds Rust has; TLS 1.2 and 1.3 are enabled, nothing older.
//!
//! # Locking over TLS
//!
//! rustls keeps one state machine per connection for both directions, so it lives inside the
//! connection's output lock (see [`crate::Connection`]). The connection thread reads
//! ciphertext from the socket **without** the lock, then takes the lock only to feed those
//! bytes in and take plaintext out. Senders take the lock to encrypt and queue records, and
//! write them with non-blocking sends. No thread ever holds the lock across a blocking socket
//! call, so a read blocked on a quiet client never delays a send, and records reach the socket
//! in the order they were produced.

use std::fs;
use std::io::{self, Read};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::{Connection, Error, Result};

/// Where the server's certificate and key come from: PEM files. The same path may be given
/// for all of them (one combined PEM with certificate, chain and key).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsConfig {
    /// PEM file with the server certificate (first) and optionally its chain.
    pub cert: PathBuf,
    /// PEM file with the private key: PKCS#8, PKCS#1 (RSA) or SEC1 (EC).
    pub key: PathBuf,
    /// Optional PEM file with intermediate/root certificates to send after the certificate.
    pub chain: Option<PathBuf>,
    /// Optional PEM file with CA certificates: when set, clients must present a certificate
    /// signed by one of them.
    pub client_ca: Option<PathBuf>,
}

impl TlsConfig {
    /// Certificate and key from PEM files.
    pub fn new(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        Self {
            cert: cert.into(),
            key: key.into(),
            chain: None,
            client_ca: None,
        }
    }

    /// Certificate, chain and key from one combined PEM file.
    pub fn combined(pem: impl Into<PathBuf>) -> Self {
        let p = pem.into();
        Self::new(p.clone(), p)
    }

    /// Adds a chain file.
    pub fn chain(mut self, chain: impl Into<PathBuf>) -> Self {
        self.chain = Some(chain.into());
        self
    }

    /// Requires client certificates signed by a CA in `ca`.
    pub fn client_ca(mut self, ca: impl Into<PathBuf>) -> Self {
        self.client_ca = Some(ca.into());
        self
    }

    /// Reads and checks the files, building the rustls configuration. Errors name the file
    /// and the problem.
    pub fn load(&self) -> Result<Arc<rustls::ServerConfig>> {
        let mut certs = read_certs(&self.cert)?;
        if certs.is_empty() {
            return Err(tls_err(&self.cert, "no certificate found in it"));
        }
        if let Some(chain) = &self.chain {
            if chain != &self.cert {
                certs.extend(read_certs(chain)?);
            }
        }
        let key_pem = read_file(&self.key)?;
        let key = PrivateKeyDer::from_pem_slice(&key_pem)
            .map_err(|e| tls_err(&self.key, &format!("no usable private key in it ({e})")))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| Error::Tls(e.to_string()))?;
        let builder = match &self.client_ca {
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                let cas = read_certs(ca)?;
                if cas.is_empty() {
                    return Err(tls_err(ca, "no CA certificate found in it"));
                }
                for c in cas {
                    roots
                        .add(c)
                        .map_err(|e| tls_err(ca, &format!("bad CA certificate: {e}")))?;
                }
                let v =
                    rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                        .build()
                        .map_err(|e| tls_err(ca, &e.to_string()))?;
                builder.with_client_cert_verifier(v)
            }
            None => builder.with_no_client_auth(),
        };
        let mut cfg = builder.with_single_cert(certs, key).map_err(|e| {
            let why = match e {
                rustls::Error::InconsistentKeys(_) => {
                    "the private key does not match the certificate".to_string()
                }
                other => other.to_string(),
            };
            Error::Tls(format!("{} / {}: {why}", self.cert.display(), self.key.display()))
        })?;
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(cfg))
    }
}

fn tls_err(path: &Path, why: &str) -> Error {
    Error::Tls(format!("{}: {why}", path.display()))
}

fn read_file(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).map_err(|e| tls_err(path, &format!("cannot read: {e}")))
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let pem = read_file(path)?;
    CertificateDer::pem_slice_iter(&pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| tls_err(path, &format!("bad PEM: {e}")))
}

/// The running server's TLS state: the current rustls configuration, replaceable at runtime.
pub(crate) struct TlsAcceptor {
    config: RwLock<Arc<rustls::ServerConfig>>,
}

impl TlsAcceptor {
    pub(crate) fn new(cfg: &TlsConfig) -> Result<Self> {
        Ok(Self {
            config: RwLock::new(cfg.load()?),
        })
    }

    pub(crate) fn reload(&self, cfg: &TlsConfig) -> Result<()> {
        let new = cfg.load()?;
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = new;
        Ok(())
    }

    /// Runs the TLS handshake on the connection's own thread, bounded by `deadline`.
    pub(crate) fn handshake(
        &self,
        sock: &TcpStream,
        deadline: Instant,
    ) -> io::Result<Box<rustls::ServerConnection>> {
        let cfg = self.config.read().unwrap_or_else(|e| e.into_inner()).clone();
        let mut conn = Box::new(rustls::ServerConnection::new(cfg).map_err(io::Error::other)?);
        let mut s = sock;
        while conn.is_handshaking() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::ErrorKind::TimedOut.into());
            }
            sock.set_read_timeout(Some(left))?;
            sock.set_write_timeout(Some(left))?;
            let (rd, _) = conn.complete_io(&mut s)?;
            if rd == 0 && conn.is_handshaking() && !conn.wants_write() {
                // complete_io returned without progress: the peer closed.
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        sock.set_write_timeout(None)?;
        // rustls caps its outgoing buffer at 64 KiB by default: a larger frame would be cut
        // short (write_all fails half-way, leaving a partial frame in the session). Every
        // write moves the ciphertext into the connection's own queue at once, which
        // `max_send_queue` bounds, so rustls needs no limit of its own.
        conn.set_buffer_limit(None);
        Ok(conn)
    }
}

/// The connection thread's TLS read side: ciphertext is read from the socket without the
/// connection's lock, then decrypted under it.
pub(crate) struct TlsReader {
    raw: Vec<u8>,
    pos: usize,
    len: usize,
    eof: bool,
}

impl TlsReader {
    pub(crate) fn new() -> Self {
        Self {
            raw: Vec::new(),
            pos: 0,
            len: 0,
            eof: false,
        }
    }

    pub(crate) fn read(&mut self, conn: &Connection, sock: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            {
                let mut out = conn.lock_out();
                let Some(tls) = out.tls.as_mut() else {
                    return Err(io::ErrorKind::NotConnected.into());
                };
                match tls.reader().read(buf) {
                    Ok(n) => return Ok(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
                if self.pos < self.len || self.eof {
                    let n = tls.read_tls(&mut &self.raw[self.pos..self.len])?;
                    self.pos += n;
                    let r = tls.process_new_packets();
                    // Alerts, key updates, tickets: send what the session produced.
                    let _ = conn.tls_output_locked(&mut out);
                    if let Err(e) = r {
                        return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                    }
                    if self.eof && self.pos >= self.len {
                        // The peer closed without close_notify; what was decrypted is all.
                        let Some(tls) = out.tls.as_mut() else {
                            return Ok(0);
                        };
                        return match tls.reader().read(buf) {
                            Ok(n) => Ok(n),
                            Err(_) => Ok(0),
                        };
                    }
                    continue;
                }
            }
            if self.raw.is_empty() {
                self.raw = vec![0; 16 << 10];
            }
            let n = (&*sock).read(&mut self.raw)?;
            self.pos = 0;
            self.len = n;
            if n == 0 {
                self.eof = true;
            }
        }
    }
}

impl crate::ServerHandle {
    /// Reloads the TLS certificate and key from `tls` (files re-read and checked); new
    /// connections use them, open ones keep theirs. Errors leave the current ones in force.
    pub fn reload_tls(&self, tls: &TlsConfig) -> Result<()> {
        match &self.shared().tls {
            Some(acc) => acc.reload(tls),
            None => Err(Error::Tls("the server was not started with TLS".into())),
        }
    }
}
