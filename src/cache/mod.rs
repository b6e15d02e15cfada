//! [`CollateralCache`](crate::CollateralCache) backends.

mod memory;
#[cfg(feature = "redis")]
mod redis;

#[cfg(feature = "redis")]
pub use self::redis::{RedisCollateralCache, RedisPublisher};
pub use memory::MemoryCache;
