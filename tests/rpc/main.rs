//! `RpcBlockSource` against real Hardhat nodes (the support installs Hardhat with
//! `npm ci --prefix tests/chain` on first use): one node through reorgs, and two endpoints
//! with one killed or lagging.

#[cfg(feature = "postgres")]
#[path = "../support/mod.rs"]
mod support;

mod dev_node;
mod fallback;
mod node;
#[cfg(feature = "cli")]
mod service;
