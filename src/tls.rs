//! The process-wide TLS setup shared by the Postgres and Redis connections.

/// With the `tls` feature, makes rustls' ring provider the process default if none is
/// installed yet: when another dependency also enables aws-lc-rs (alloy's WebSocket
/// transport does), rustls cannot pick one by itself and would panic on the first TLS
/// connection. An application that installed its own provider keeps it.
pub(crate) fn ensure_crypto_provider() {
    #[cfg(feature = "tls")]
    {
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
    }
}
