//! [`CollateralCache`](crate::CollateralCache) backends.

mod memory;

pub use memory::MemoryCache;
