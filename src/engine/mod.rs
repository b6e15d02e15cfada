//! The reorg-aware state machine: pure, synchronous, no I/O.
//!
//! The flow for every delivered block is: [`Engine::plan`] decides a [`Plan`] (apply a
//! [`Transition`], fetch the parent first, or nothing); the driver reads the base
//! balances the transition needs; [`Engine::build`] folds the new blocks into a
//! [`Changeset`](crate::model::Changeset); the store applies it atomically;
//! [`Engine::commit`] advances the window. The [`Watcher`](crate::watcher::Watcher) is that
//! driver.

mod base_state;
mod config;
mod fold;
mod machine;
mod plan;
mod quarantine;
mod rates;
mod rebase;
mod transition;

pub use base_state::BaseState;
pub use config::EngineConfig;
pub use machine::Engine;
pub use plan::Plan;
pub use transition::Transition;
