//! Test utilities for this crate and for users' own backends (feature `testing`):
//! the [replay oracle](oracle), a [harness] that drives a [`Watcher`](crate::Watcher)
//! over a [`SimulatedChain`](crate::source::SimulatedChain) and checks every step against
//! it, the [conformance] suite every backend runs, and proptest [strategies](strategy).

mod backends;
pub mod conformance;
pub mod harness;
pub mod multichain;
pub mod oracle;
pub mod recorder;
pub mod strategy;

pub use crate::conformance_tests;
pub use backends::Backends;
pub use harness::Harness;
pub use oracle::{Expected, replay};
pub use recorder::RecordingStore;
