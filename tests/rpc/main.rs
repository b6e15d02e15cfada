//! `RpcBlockSource` against real Hardhat nodes (the support installs Hardhat with
//! `npm ci --prefix tests/chain` on first use): one node through reorgs, canonical WETH9
//! and an OpenZeppelin ERC-4626 vault compiled from their npm sources, and two endpoints
//! with one killed or lagging; reconciliation and opening balances (`reconcile`,
//! `reconcile_cli`).

#[cfg(feature = "postgres")]
#[path = "../support/mod.rs"]
mod support;

mod dev_node;
mod erc4626;
mod erc4626_value;
mod fallback;
mod fault_reconcile;
mod multicall3;
mod node;
mod published;
mod quarantine;
mod reconcile;
#[cfg(feature = "cli")]
mod reconcile_cli;
#[cfg(feature = "cli")]
mod service;
mod two_chains;
mod undecodable;
mod usdc;
mod weth9;
