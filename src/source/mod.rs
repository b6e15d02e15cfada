//! [`BlockSource`](crate::BlockSource) backends.

mod scripted;
mod simulated;

pub use scripted::ScriptedChain;
pub use simulated::{BlockBuilder, SimulatedChain};
