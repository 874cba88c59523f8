//! TLS (wss://) with rustls and its `ring` crypto provider: the configuration from PEM files
//! ([`TlsConfig`]) and the server side of the TLS handshake (`TlsAcceptor`, under the
//! handshake deadline through `platform::Deadline`).
//!
//! `ring` builds with a C compiler only (no cmake, no Go, no NASM), which every machine that
//! builds Rust has; TLS 1.2 and 1.3 are enabled, nothing older. How an established session is
//! read and written by several threads is the connection room's business
//! (`connection/tls_read.rs` and the outbound queue).

mod acceptor;

pub(crate) use acceptor::TlsAcceptor;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::TlsError;

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
    /// and the problem, with the underlying error as their source.
    pub fn load(&self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let certs = self.certificates()?;
        let key_pem = read_file(&self.key)?;
        let key = PrivateKeyDer::from_pem_slice(&key_pem)
            .map_err(|e| TlsError::file(&self.key, "no usable private key in it").because(e))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| TlsError::new("protocol versions").because(e))?;
        let builder = match &self.client_ca {
            Some(ca) => builder.with_client_cert_verifier(client_verifier(ca, provider)?),
            None => builder.with_no_client_auth(),
        };
        let mut cfg = builder.with_single_cert(certs, key).map_err(|e| {
            let why = match e {
                rustls::Error::InconsistentKeys(_) => "the private key does not match the certificate",
                _ => "certificate and key refused",
            };
            TlsError::file(&self.key, format!("{why} in {}", self.cert.display())).because(e)
        })?;
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(cfg))
    }

    /// The certificate, then the chain (if a separate file).
    fn certificates(&self) -> Result<Vec<CertificateDer<'static>>, TlsError> {
        let mut certs = read_certs(&self.cert)?;
        if certs.is_empty() {
            return Err(TlsError::file(&self.cert, "no certificate found in it"));
        }
        if let Some(chain) = &self.chain {
            if chain != &self.cert {
                certs.extend(read_certs(chain)?);
            }
        }
        Ok(certs)
    }
}

/// Clients must present a certificate signed by a CA in the file `ca`.
fn client_verifier(
    ca: &Path,
    provider: Arc<rustls::crypto::CryptoProvider>,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    let cas = read_certs(ca)?;
    if cas.is_empty() {
        return Err(TlsError::file(ca, "no CA certificate found in it"));
    }
    for c in cas {
        roots
            .add(c)
            .map_err(|e| TlsError::file(ca, "bad CA certificate").because(e))?;
    }
    rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| TlsError::file(ca, "unusable CA certificates").because(e))
}

fn read_file(path: &Path) -> Result<Vec<u8>, TlsError> {
    fs::read(path).map_err(|e| TlsError::file(path, "cannot read").because(e))
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read_file(path)?;
    CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::file(path, "bad PEM").because(e))
}
