//! [`BlockSource`](crate::BlockSource) backends.

#[cfg(feature = "rpc")]
pub mod rpc;
mod scripted;
mod simulated;
mod simulated_on_chain;

pub use scripted::ScriptedChain;
pub use simulated::{BlockBuilder, SimulatedChain};
pub use simulated_on_chain::SimulatedOnChain;
