//! Shared test support.
#[cfg(feature = "cli")]
pub mod cli;
pub mod cluster;
#[cfg(feature = "migration")]
pub mod legacy;
#[cfg(feature = "postgres")]
pub mod pg;
#[cfg(feature = "postgres")]
pub mod pg_replica;
pub mod process;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(feature = "redis-cluster")]
pub mod redis_cluster;
#[cfg(feature = "tls")]
pub mod tls;
