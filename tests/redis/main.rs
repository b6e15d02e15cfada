//! Tests against the shared Redis (`REDIS_URL`) and private `redis-server`s: the Redis
//! collateral cache, and the real-time path on Postgres store plus Redis cache.

#[path = "../support/mod.rs"]
mod support;

mod cache;
#[cfg(feature = "redis-cluster")]
mod cluster;
mod realtime;
mod stream_asset_states;
