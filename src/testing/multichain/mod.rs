//! Several simulated chains at once, one store per chain, each driven by its own
//! [`Harness`] (its own watcher, finality, window and writer), read together through a
//! [`MultiChainReader`] in which the second chain's WETH (and the stETH its feed prices)
//! is priced by the first chain's WETH feed.
//!
//! After every step on one chain: that chain's store equals the replay oracle of that
//! chain (the harness's own check), every other chain's store is exactly what it was before
//! the step (balances, log, prices, rates, quarantines, checkpoint: a reorg, a head moving
//! back, a finalization or a restart on one chain touches no other chain), and the
//! multi-chain collateral equals the sum of the per-chain oracle valuations with the
//! cross-chain price applied confirmed × confirmed, pending × pending.
//!
//! Every chain starts from the same anchor at [`START`] with the same genesis time, so
//! their blocks have **identical hashes** at a height as long as their fork counters agree
//! (a simulated block's hash is derived from its height, the chain's fork count and its
//! parent, not from its events): stores must not confuse chains by block hash.

mod check;
mod snapshot;

use std::sync::Arc;

use proptest::collection::vec;
use proptest::prelude::*;

pub use snapshot::StoreSnapshot;

use super::backends::Backends;
use super::harness::{Harness, START};
use super::strategy::{self, Op};
use crate::chains::{ChainId, MultiChainReader};
use crate::model::AssetId;
use crate::reader::CollateralReader;
use crate::traits::BalanceStore;

/// The chain ids the harness gives its chains, in order (Ethereum, Optimism, Base).
pub const CHAIN_IDS: [ChainId; 3] = [ChainId(1), ChainId(10), ChainId(8453)];

/// A price of one chain's asset read from another chain's store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CrossPrice {
    /// Index of the chain whose asset is priced.
    pub chain: usize,
    /// The asset (its price key) on that chain.
    pub asset: AssetId,
    /// Index of the chain whose feed prices it.
    pub from: usize,
    /// The feed's key there.
    pub key: AssetId,
}

/// Several [`Harness`]es, one per chain, and the [`MultiChainReader`] over their stores.
#[derive(Debug)]
pub struct MultiHarness {
    /// Each chain's id and harness.
    pub chains: Vec<(ChainId, Harness)>,
    /// The reader over every chain's store.
    pub reader: MultiChainReader,
    /// The cross-chain price the reader applies (chain 1's WETH from chain 0's WETH feed).
    pub cross: CrossPrice,
    /// A reader of the same chains over other handles of their stores (see
    /// [`compare_with`](Self::compare_with)), whose collateral must equal `reader`'s.
    pub reference: Option<MultiChainReader>,
}

impl MultiHarness {
    /// One chain per backends (2 or 3), confirming at depth `confirmations`, with 5 users;
    /// each chain's writer claims its store for its id of [`CHAIN_IDS`].
    ///
    /// # Panics
    /// With fewer than 2 or more than 3 backends, or if the chains' anchors do not share
    /// their hash (see the module docs).
    pub async fn new(backends: Vec<Backends>, confirmations: u64) -> Self {
        assert!(
            (2..=CHAIN_IDS.len()).contains(&backends.len()),
            "a multi-chain harness runs 2 or 3 chains"
        );
        let mut chains = Vec::with_capacity(backends.len());
        for (id, b) in CHAIN_IDS.iter().zip(backends) {
            chains.push((*id, Harness::on_chain(b, confirmations, *id).await));
        }
        let anchors: Vec<_> = chains
            .iter()
            .map(|(_, h)| h.chain.canonical()[0].header.hash)
            .collect();
        assert!(
            anchors.windows(2).all(|w| w[0] == w[1]),
            "the chains' anchors share their hash on purpose"
        );
        let weth = chains[0].1.assets[1].id;
        let cross = CrossPrice {
            chain: 1,
            asset: weth,
            from: 0,
            key: weth,
        };
        let stores: Vec<_> = chains
            .iter()
            .map(|(_, h)| h.backends.store.clone())
            .collect();
        let reader = Self::build_reader(&chains, &stores, cross);
        Self {
            chains,
            reader,
            cross,
            reference: None,
        }
    }

    /// After every step, also compares every user's collateral with that of a reader built
    /// the same way over `stores` (one per chain, in order: other handles of the same
    /// stores, e.g. decorators, so that the two readers take different read paths, the
    /// Postgres one-statement read and the separate reads).
    ///
    /// # Panics
    /// Unless there is one store per chain.
    pub fn compare_with(&mut self, stores: Vec<Arc<dyn BalanceStore>>) {
        assert_eq!(stores.len(), self.chains.len(), "one store per chain");
        self.reference = Some(Self::build_reader(&self.chains, &stores, self.cross));
    }

    fn build_reader(
        chains: &[(ChainId, Harness)],
        stores: &[Arc<dyn BalanceStore>],
        cross: CrossPrice,
    ) -> MultiChainReader {
        let readers = chains.iter().enumerate().map(|(i, (id, h))| {
            let valuator = h.watcher.valuator().clone();
            let reader = CollateralReader::new(stores[i].clone(), valuator);
            let reader = if i == cross.chain {
                let (from_id, _) = &chains[cross.from];
                reader
                    .with_price_from(cross.asset, stores[cross.from].clone(), *from_id, cross.key)
                    .expect("WETH is its own price key")
            } else {
                reader
            };
            (*id, reader)
        });
        MultiChainReader::new(readers).expect("distinct chains")
    }

    /// Applies `op` to chain `chain` (modulo the number of chains), checks that chain
    /// against its oracle, every other chain's store unchanged, and the multi-chain
    /// collateral against the oracles.
    pub async fn step(&mut self, chain: u8, op: &Op) {
        let i = usize::from(chain) % self.chains.len();
        let mut others = Vec::new();
        for (j, (_, h)) in self.chains.iter().enumerate() {
            if j != i {
                others.push((j, StoreSnapshot::take(h).await));
            }
        }
        self.chains[i].1.step(op).await;
        for (j, before) in others {
            let (id, h) = &self.chains[j];
            let after = StoreSnapshot::take(h).await;
            assert_eq!(
                after, before,
                "a step on {} changed the store of {id}",
                self.chains[i].0
            );
        }
        self.check().await;
    }

    /// Runs every `(chain, op)` step, checking after each.
    pub async fn run(&mut self, steps: &[(u8, Op)]) {
        for (n, (chain, op)) in steps.iter().enumerate() {
            tracing::debug!(step = n, chain, ?op, "multi-chain harness step");
            self.step(*chain, op).await;
        }
    }
}

/// A multi-chain scenario over `chains` chains: up to `len` steps, each on one chain,
/// interleaved at random (mine, reorg of depth `1..=max_depth`, finalized tag, redelivery,
/// gap, restart of the chain's writer, head moving back).
pub fn scenario(chains: u8, len: usize, max_depth: u64) -> impl Strategy<Value = Vec<(u8, Op)>> {
    vec((0..chains, strategy::op(5, 5, max_depth)), 1..=len)
}
