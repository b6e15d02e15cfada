//! How the crate connects to its servers: a hung, busy or frozen server is a typed error the
//! watcher recovers from, TLS works with a private CA, and no error or help text carries a
//! password.

#[path = "../support/mod.rs"]
mod support;

mod frozen;
mod secrets;
mod timeouts;
mod tls;
