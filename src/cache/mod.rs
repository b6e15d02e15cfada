//! [`CollateralCache`](crate::CollateralCache) backends.

mod memory;
#[cfg(feature = "redis")]
mod redis;

#[cfg(feature = "redis-cluster")]
pub use self::redis::{ClusterSnapshot, RedisClusterCache};
#[cfg(feature = "redis")]
pub use self::redis::{RedisCacheConfig, RedisCollateralCache, RedisPublisher, redact_redis_url};
pub use memory::MemoryCache;
