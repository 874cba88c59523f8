//! `--tls-cert FILE --tls-key FILE [--tls-chain FILE]`, shared by the examples.

/// The TLS configuration the three flags ask for: `Ok(None)` without TLS, `Err` with a message
/// when the flags do not fit together (or the crate was built without the `tls` feature).
pub(crate) fn tls_config(
    cert: Option<String>,
    key: Option<String>,
    chain: Option<String>,
) -> Result<Option<TlsSetting>, String> {
    match (cert, key) {
        #[cfg(feature = "tls")]
        (Some(c), Some(k)) => {
            let mut tls = syncws::TlsConfig::new(c, k);
            if let Some(ch) = chain {
                tls = tls.chain(ch);
            }
            Ok(Some(tls))
        }
        #[cfg(not(feature = "tls"))]
        (Some(_), Some(_)) => {
            let _ = chain;
            Err("built without the `tls` feature".into())
        }
        (None, None) if chain.is_none() => Ok(None),
        _ => Err("--tls-cert and --tls-key go together (--tls-chain needs both)".into()),
    }
}

/// What [`tls_config`] returns: a `syncws::TlsConfig` when the `tls` feature is on.
#[cfg(feature = "tls")]
pub(crate) type TlsSetting = syncws::TlsConfig;
/// What [`tls_config`] returns: nothing can be built without the `tls` feature.
#[cfg(not(feature = "tls"))]
pub(crate) type TlsSetting = std::convert::Infallible;
