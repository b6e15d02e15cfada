//! Shared test support.
pub mod cluster;
#[cfg(feature = "postgres")]
pub mod pg;
pub mod process;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(feature = "tls")]
pub mod tls;
