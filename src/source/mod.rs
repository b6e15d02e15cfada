//! [`BlockSource`](crate::BlockSource) backends.

mod simulated;

pub use simulated::{BlockBuilder, SimulatedChain};
