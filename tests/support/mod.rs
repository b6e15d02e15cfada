//! Shared test support.
#[cfg(feature = "cli")]
pub mod cli;
#[cfg(feature = "migration")]
pub mod legacy;
#[cfg(feature = "postgres")]
pub mod pg;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(feature = "tls")]
pub mod tls;
