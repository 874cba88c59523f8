//! The TLS fixture: a CA and a server certificate for "localhost" signed by it, generated once
//! per test process (rcgen) and written as PEM files into a directory of that process; a rustls
//! client configuration that trusts the CA; and wss:// clients (tungstenite over rustls).

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use rcgen::{BasicConstraints, CertificateParams, CertifiedKey, DnType, IsCa, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, ServerName};
use syncws::TlsConfig;

use super::tcp;

/// A rustls client stream over TCP.
pub(crate) type TlsStream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;
/// A tungstenite client over TLS.
pub(crate) type Wss = tungstenite::WebSocket<TlsStream>;

/// The directory of this test process's generated files (below cargo's temporary directory
/// for integration tests). Directories left by earlier processes are removed once old.
fn process_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("syncws-tls");
        sweep_stale(&base);
        let dir = base.join(format!("pid-{}", std::process::id()));
        // A leftover of an earlier process with the same id is replaced.
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the TLS fixture directory");
        dir
    })
}

/// Removes the directories of earlier test processes that are more than an hour old.
fn sweep_stale(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    let hour = Duration::from_secs(3600);
    for e in entries.flatten() {
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .is_some_and(|age| age > hour);
        if old {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// A private directory for a test's own files (inside the process directory), removed on drop.
#[derive(Debug)]
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(name: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = process_dir().join(format!("{name}-{}", N.fetch_add(1, Ordering::Relaxed)));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        Self(dir)
    }

    /// Writes `contents` to `file` in the directory; returns its path.
    pub(crate) fn write(&self, file: &str, contents: &str) -> PathBuf {
        let p = self.0.join(file);
        std::fs::write(&p, contents).expect("write temp file");
        p
    }

    /// The path of `file` in the directory (which need not exist).
    pub(crate) fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Parameters of a CA certificate called `cn`.
pub(crate) fn ca_params(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p
}

/// Parameters of a server certificate for "localhost".
pub(crate) fn localhost_params() -> CertificateParams {
    let mut p = CertificateParams::new(vec!["localhost".to_string()]).expect("leaf params");
    p.distinguished_name.push(DnType::CommonName, "localhost");
    p
}

/// A self-signed certificate for "localhost" (ECDSA P-256, PKCS#8 key), independent of the CA.
pub(crate) fn self_signed() -> CertifiedKey {
    rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("rcgen")
}

/// The generated CA and the server certificate it signed, with their files.
#[derive(Debug)]
pub(crate) struct TlsFixture {
    /// The CA certificate (what clients trust).
    pub(crate) ca_der: CertificateDer<'static>,
    /// The CA certificate as a PEM file.
    pub(crate) ca_pem_path: PathBuf,
    /// The server certificate (for "localhost"), PEM.
    pub(crate) cert_pem: String,
    /// The server's private key, PKCS#8 PEM.
    pub(crate) key_pem: String,
    /// The server's private key, PKCS#8 DER.
    pub(crate) key_pkcs8_der: Vec<u8>,
    /// The server certificate file.
    pub(crate) cert_path: PathBuf,
    /// The server key file.
    pub(crate) key_path: PathBuf,
}

/// The process-wide fixture, generated on first use.
pub(crate) fn fixture() -> &'static TlsFixture {
    static FIXTURE: OnceLock<TlsFixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = process_dir();
        let ca_key = KeyPair::generate().expect("CA key");
        let ca = ca_params("syncws test CA")
            .self_signed(&ca_key)
            .expect("CA certificate");
        let key = KeyPair::generate().expect("server key");
        let cert = localhost_params()
            .signed_by(&key, &ca, &ca_key)
            .expect("server certificate");
        let write = |file: &str, contents: &str| {
            let p = dir.join(file);
            std::fs::write(&p, contents).expect("write fixture file");
            p
        };
        TlsFixture {
            ca_der: ca.der().clone(),
            ca_pem_path: write("ca.pem", &ca.pem()),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            key_pkcs8_der: key.serialize_der(),
            cert_path: write("server.pem", &cert.pem()),
            key_path: write("server-key.pem", &key.serialize_pem()),
        }
    })
}

impl TlsFixture {
    /// The server's TLS configuration: the certificate and key files.
    pub(crate) fn server_config(&self) -> TlsConfig {
        TlsConfig::new(&self.cert_path, &self.key_path)
    }

    /// A client configuration that trusts the CA (and nothing else).
    pub(crate) fn client_config(&self) -> Arc<rustls::ClientConfig> {
        client_config(&[&self.ca_der])
    }
}

/// A client configuration trusting only `trusted` (ring provider, safe default versions).
pub(crate) fn client_config(trusted: &[&CertificateDer<'_>]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in trusted {
        roots.add((*c).clone().into_owned()).expect("add root");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// A TLS client stream to `addr` for the name "localhost" (the handshake runs on first use).
pub(crate) fn tls_stream(addr: SocketAddr, config: Arc<rustls::ClientConfig>) -> TlsStream {
    let name = ServerName::try_from("localhost").expect("server name");
    let conn = rustls::ClientConnection::new(config, name).expect("client connection");
    rustls::StreamOwned::new(conn, tcp(addr))
}

/// Connects a wss client to `wss://localhost:port/`; `Err` with the reason when it cannot.
pub(crate) fn try_wss(addr: SocketAddr, config: Arc<rustls::ClientConfig>) -> Result<Wss, String> {
    tungstenite::client(
        format!("wss://localhost:{}/", addr.port()),
        tls_stream(addr, config),
    )
    .map(|(ws, _)| ws)
    .map_err(|e| e.to_string())
}

/// Connects a wss client, which must succeed.
pub(crate) fn wss(addr: SocketAddr, config: Arc<rustls::ClientConfig>) -> Wss {
    try_wss(addr, config).expect("wss client could not connect")
}
