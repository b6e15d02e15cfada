//! [`Reconciler`]: compares the store's confirmed balances with the chain's `balanceOf`
//! at the finalized block, and reports every difference as a [`Drift`]. It writes
//! nothing; for the assets whose chain is the truth
//! ([`ReconcilerConfig::chain_is_truth`]) it also returns the corrections to write
//! (`Reconciled { origin: Drift }`, read at the store's head), which
//! [`Watcher::reconcile_with`](super::Watcher::reconcile_with) queues for the next block.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;

use alloy_primitives::{I256, U256};

use super::Watcher;
use crate::error::{SourceError, StoreError};
use crate::model::{
    AssetId, BalanceKey, BlockNumber, BlockRef, Correction, CorrectionOrigin, UserId, difference,
};
use crate::traits::{BalanceReadError, BalanceStore, ChainBalances};

/// Which keys one [`Reconciler::run`] compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sample {
    /// Every holder of every asset, each run.
    All,
    /// At most this many (user, asset) keys per run, rotating through all holders in
    /// order, so every key is compared once every `holders / keys` runs.
    Rotating {
        /// Keys compared per run.
        keys: usize,
    },
}

/// Settings of a [`Reconciler`].
#[derive(Clone, Debug)]
pub struct ReconcilerConfig {
    /// The assets to compare.
    pub assets: Vec<AssetId>,
    /// Which keys a run compares.
    pub sample: Sample,
    /// Assets whose chain is the truth: a drift of theirs becomes a correction row.
    /// Empty by default: the reconciler only reports.
    pub chain_is_truth: BTreeSet<AssetId>,
}

impl ReconcilerConfig {
    /// Every holder of `assets`, report only.
    pub fn new(assets: impl IntoIterator<Item = AssetId>) -> Self {
        Self {
            assets: assets.into_iter().collect(),
            sample: Sample::All,
            chain_is_truth: BTreeSet::new(),
        }
    }
}

/// A confirmed balance that differs from the chain's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Drift {
    /// The asset.
    pub asset: AssetId,
    /// The holder.
    pub user: UserId,
    /// The finalized block compared at.
    pub block: BlockRef,
    /// The store's confirmed balance.
    pub ours: U256,
    /// `balanceOf(user)` at `block`.
    pub chain_value: U256,
    /// `chain_value − ours`.
    pub difference: I256,
}

impl fmt::Display for Drift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} of {} at {}: ours {}, chain {}, difference {}",
            self.user, self.asset, self.block, self.ours, self.chain_value, self.difference
        )
    }
}

/// What one [`Reconciler::run`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    /// The finalized block compared at (`None`: nothing is finalized yet, nothing compared).
    pub at: Option<BlockRef>,
    /// Keys compared (read from the chain).
    pub compared: usize,
    /// Keys left out because a correction of theirs is not final yet.
    pub skipped: usize,
    /// Every difference found.
    pub drifts: Vec<Drift>,
    /// Keys whose `balanceOf` failed on its own (the token reverted, or is not an
    /// ERC-20): not compared, the others were.
    pub unread: Vec<BalanceReadError>,
    /// Corrections for the drifts of assets whose chain is the truth, read at the store's
    /// head; nothing is written until the watcher applies them.
    pub corrections: Vec<Correction>,
}

impl ReconcileReport {
    /// Whether the confirmed balances equal the chain's (no drift, and no key left unread).
    pub fn is_clean(&self) -> bool {
        self.drifts.is_empty() && self.unread.is_empty()
    }
}

/// Why a reconciliation failed. Nothing is written by a reconciliation, failed or not.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReconcileError {
    /// A store read failed (nothing was written).
    #[error("reconcile: store read failed (nothing was written): {0}")]
    Store(#[from] StoreError),
    /// A `balanceOf` read failed (nothing was written).
    #[error("reconcile: chain read failed (nothing was written): {0}")]
    Source(#[from] SourceError),
    /// The finalized block moved during every one of the reads (a busy writer): try later.
    #[error(
        "reconcile: the finalized block kept moving during {attempts} reads (nothing was written)"
    )]
    Moving {
        /// Reads tried.
        attempts: u32,
    },
}

/// Compares the store's confirmed balances with the chain's `balanceOf` at the finalized block
/// and reports each difference as a [`Drift`]. It writes nothing; for the assets whose chain
/// is the truth ([`ReconcilerConfig::chain_is_truth`]) it also returns the corrections to
/// write, which [`Watcher::reconcile_with`] queues for the next block.
#[derive(Debug)]
pub struct Reconciler {
    chain: Arc<dyn ChainBalances>,
    config: ReconcilerConfig,
    /// Where the rotating sample continues.
    cursor: usize,
    /// Keys with a correction not yet final: the height it was read at.
    outstanding: HashMap<BalanceKey, BlockNumber>,
    last: ReconcileReport,
}

/// Reads tried before [`ReconcileError::Moving`].
const ATTEMPTS: u32 = 3;

impl Reconciler {
    /// A reconciler reading the chain through `chain` (e.g. an
    /// `RpcBlockSource` (feature `rpc`)).
    pub fn new(chain: Arc<dyn ChainBalances>, config: ReconcilerConfig) -> Self {
        Self {
            chain,
            config,
            cursor: 0,
            outstanding: HashMap::new(),
            last: ReconcileReport::default(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &ReconcilerConfig {
        &self.config
    }

    /// The drifts of the last run.
    pub fn drifts(&self) -> &[Drift] {
        &self.last.drifts
    }

    /// The last run's report.
    pub fn last_report(&self) -> &ReconcileReport {
        &self.last
    }

    /// One comparison at the store's finalized block: the keys of [`Sample`], their
    /// confirmed balances, `balanceOf` at the finalized block's hash (batched), each
    /// difference logged at `warn` and reported. Keys of a correction read at or above the
    /// finalized height are left out (no double correction). For assets whose chain is the
    /// truth, the drifting keys are read again at the store's head and returned as
    /// corrections. Writes nothing.
    pub async fn run(
        &mut self,
        store: &dyn BalanceStore,
    ) -> Result<ReconcileReport, ReconcileError> {
        let mut report = ReconcileReport::default();
        let (fin, keys, ours) = match self.read_confirmed(store).await? {
            Some(read) => read,
            None => {
                self.last = report.clone();
                return Ok(report);
            }
        };
        report.at = Some(fin);
        self.outstanding.retain(|_, read_at| *read_at >= fin.number);
        let (keys, ours): (Vec<_>, Vec<_>) = keys
            .into_iter()
            .zip(ours)
            .filter(|(k, _)| {
                let skip = self.outstanding.contains_key(k);
                report.skipped += usize::from(skip);
                !skip
            })
            .unzip();
        let chain = self.chain.balances_each(&keys, fin).await?;
        for ((key, ours), read) in keys.iter().zip(ours).zip(chain) {
            let chain_value = match read {
                Ok(value) => value,
                Err(e) => {
                    tracing::warn!(asset = %key.asset, user = %key.user, block = %fin, error = %e, "balance not read");
                    report.unread.push(e);
                    continue;
                }
            };
            report.compared += 1;
            if ours != chain_value {
                let drift = Drift {
                    asset: key.asset,
                    user: key.user,
                    block: fin,
                    ours,
                    chain_value,
                    difference: difference(ours, chain_value),
                };
                tracing::warn!(asset = %drift.asset, user = %drift.user, block = %fin, ours = %ours, chain = %chain_value, difference = %drift.difference, "balance drift");
                report.drifts.push(drift);
            }
        }
        let truth: Vec<BalanceKey> = report
            .drifts
            .iter()
            .filter(|d| self.config.chain_is_truth.contains(&d.asset))
            .map(|d| BalanceKey {
                user: d.user,
                asset: d.asset,
            })
            .collect();
        if !truth.is_empty()
            && let Some(head) = store.head().await?
        {
            let values = self.chain.balances_each(&truth, head.id()).await?;
            for (key, read) in truth.into_iter().zip(values) {
                let balance = match read {
                    Ok(balance) => balance,
                    Err(e) => {
                        tracing::warn!(asset = %key.asset, user = %key.user, error = %e, "correction not read");
                        report.unread.push(e);
                        continue;
                    }
                };
                self.outstanding.insert(key, head.number);
                report.corrections.push(Correction {
                    asset: key.asset,
                    user: key.user,
                    balance,
                    origin: CorrectionOrigin::Drift,
                    read_at: head.id(),
                });
            }
        }
        self.last = report.clone();
        Ok(report)
    }

    /// The finalized block, the keys to compare and their confirmed balances, read until
    /// the finalized block is the same before and after.
    async fn read_confirmed(
        &mut self,
        store: &dyn BalanceStore,
    ) -> Result<Option<(BlockRef, Vec<BalanceKey>, Vec<U256>)>, ReconcileError> {
        for _ in 0..ATTEMPTS {
            let Some(fin) = store.window().await?.finalized.map(|h| h.id()) else {
                return Ok(None);
            };
            let mut all = Vec::new();
            for asset in &self.config.assets {
                for user in store.holders(*asset).await? {
                    all.push(BalanceKey {
                        user,
                        asset: *asset,
                    });
                }
            }
            let keys = self.sample(all);
            let users: Vec<UserId> = {
                let set: BTreeSet<UserId> = keys.iter().map(|k| k.user).collect();
                set.into_iter().collect()
            };
            let views = store.user_balances_many(&users).await?;
            let mut confirmed = HashMap::new();
            for (user, held) in users.iter().zip(views) {
                for (asset, view) in held {
                    confirmed.insert(BalanceKey { user: *user, asset }, view.confirmed);
                }
            }
            let after = store.window().await?.finalized.map(|h| h.id());
            if after == Some(fin) {
                let ours = keys
                    .iter()
                    .map(|k| confirmed.get(k).copied().unwrap_or_default())
                    .collect();
                return Ok(Some((fin, keys, ours)));
            }
        }
        Err(ReconcileError::Moving { attempts: ATTEMPTS })
    }

    /// The keys of this run out of all holders' keys (ordered by asset, then user).
    fn sample(&mut self, all: Vec<BalanceKey>) -> Vec<BalanceKey> {
        match self.config.sample {
            Sample::All => all,
            Sample::Rotating { keys } => {
                if all.is_empty() {
                    return all;
                }
                let n = keys.clamp(1, all.len());
                let start = self.cursor % all.len();
                self.cursor = (start + n) % all.len();
                all.iter().cycle().skip(start).take(n).copied().collect()
            }
        }
    }
}

impl Watcher {
    /// Runs `reconciler` against this watcher's store and queues the corrections it returns
    /// (assets whose chain is the truth) for the next block
    /// ([`queue_corrections`](Self::queue_corrections)); they are written by the next
    /// [`sync`](Self::sync) that applies a child of the block they were read at.
    pub async fn reconcile_with(
        &mut self,
        reconciler: &mut Reconciler,
    ) -> Result<ReconcileReport, ReconcileError> {
        let report = reconciler.run(self.store.as_ref()).await?;
        self.queue_corrections(report.corrections.iter().copied());
        Ok(report)
    }
}
