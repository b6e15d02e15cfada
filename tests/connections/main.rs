//! How the crate connects to its servers: hung or busy servers are typed timeouts, TLS with
//! a private CA, and no error or help text carries a password.

#[path = "../support/mod.rs"]
mod support;

mod secrets;
mod timeouts;
mod tls;
