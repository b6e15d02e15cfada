//! [`CollateralCache`](crate::CollateralCache) backends.

mod memory;
#[cfg(feature = "redis")]
mod redis;

#[cfg(feature = "redis")]
pub use self::redis::{
    BadStreamId, RedisCacheConfig, RedisCollateralCache, RedisPublisher, RedisStreamConsumer,
    RedisStreamPublisher, Resync, StreamEntry, StreamEvent, StreamId, entry_ids, redact_redis_url,
};
#[cfg(feature = "redis")]
pub use self::redis::{ChainEntries, RedisChainCache};
#[cfg(feature = "redis-cluster")]
pub use self::redis::{ClusterError, ClusterSnapshot, RedisClusterCache, RedisClusterChainCache};
pub use memory::MemoryCache;
