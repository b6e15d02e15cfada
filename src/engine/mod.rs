//! The reorg-aware state machine (pure, no I/O) and the watcher that drives it.
//!
//! The flow for every delivered block is: [`Engine::plan`] decides a [`Transition`]
//! (commit, reorg, no-op, or "fetch the parent first"); the watcher reads the base
//! balances the transition needs; [`Engine::build`] folds the new blocks into a
//! [`Changeset`]; the store applies it atomically; [`Engine::commit`] advances the window.

mod changeset;
mod config;
mod fold;
mod machine;
mod transition;
mod window;

pub use changeset::{BaseState, BlockChanges, Changeset};
pub use config::EngineConfig;
pub use machine::Engine;
pub use transition::Transition;
pub use window::Window;
