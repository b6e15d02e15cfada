//! [`BlockSource`](crate::BlockSource) backends.

#[cfg(feature = "rpc")]
pub mod rpc;
mod scripted;
mod simulated;

pub use scripted::ScriptedChain;
pub use simulated::{BlockBuilder, SimulatedChain};
