//! How the crate connects to its servers: hung, busy or frozen servers are typed errors
//! the watcher recovers from, TLS with
//! a private CA, and no error or help text carries a password.

#[path = "../support/mod.rs"]
mod support;

mod frozen;
mod secrets;
mod timeouts;
mod tls;
