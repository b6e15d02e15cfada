use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use alloy_primitives::{Address, B256, I256, U256, keccak256};
use async_trait::async_trait;

use crate::error::SourceError;
use crate::model::{
    AssetId, BalanceChange, BalanceEvent, Block, BlockHeader, BlockNumber, Correction,
    CorrectionOrigin, LogId, PriceUpdate, RateUpdate, UserId,
};
use crate::traits::BlockSource;

/// Seconds between simulated blocks.
pub const BLOCK_TIME: u64 = 12;

/// An in-memory chain that can mine, reorg and finalize: the in-memory [`BlockSource`],
/// used by the quickstart, the tests and the benchmarks.
///
/// Block hashes are derived from the block's height and a fork counter, so a block mined
/// after [`reorg`](Self::reorg) differs from the one it replaces even with the same events.
#[derive(Debug)]
pub struct SimulatedChain {
    inner: Mutex<SimInner>,
}

#[derive(Debug)]
struct SimInner {
    blocks: HashMap<B256, Block>,
    canonical: Vec<B256>,
    start: BlockNumber,
    genesis_time: u64,
    finalized: Option<BlockNumber>,
    forks: u64,
    rounds: HashMap<AssetId, U256>,
}

/// An oracle update before the block exists: `(asset, answer, decimals, round, updated_at)`;
/// `None` round or time means "next round" and "block timestamp".
type PriceDraft = (AssetId, I256, u8, Option<U256>, Option<u64>);

/// Collects the events of a block being mined; see [`SimulatedChain::mine`].
#[derive(Debug, Default)]
pub struct BlockBuilder {
    events: Vec<(AssetId, BalanceChange)>,
    prices: Vec<PriceDraft>,
    /// Positions in `events` of events that are further parts of the previous one's log.
    joined: Vec<usize>,
    rates: Vec<(AssetId, U256)>,
}

impl BlockBuilder {
    /// An ERC-20 `Transfer` of `amount` of `asset` from `from` to `to` (zero address = mint/burn).
    pub fn transfer(
        &mut self,
        asset: AssetId,
        from: Address,
        to: Address,
        amount: U256,
    ) -> &mut Self {
        self.events
            .push((asset, BalanceChange::Transfer { from, to, amount }));
        self
    }

    /// A deposit crediting `user`.
    pub fn deposit(&mut self, asset: AssetId, user: UserId, amount: U256) -> &mut Self {
        self.events
            .push((asset, BalanceChange::Deposit { user, amount }));
        self
    }

    /// A withdrawal debiting `user`.
    pub fn withdraw(&mut self, asset: AssetId, user: UserId, amount: U256) -> &mut Self {
        self.events
            .push((asset, BalanceChange::Withdraw { user, amount }));
        self
    }

    /// An absolute balance report for `user`.
    pub fn set_balance(&mut self, asset: AssetId, user: UserId, balance: U256) -> &mut Self {
        self.events
            .push((asset, BalanceChange::Set { user, balance }));
        self
    }

    /// An oracle answer for `asset` with the next round and the block's timestamp.
    pub fn price(&mut self, asset: AssetId, answer: I256, decimals: u8) -> &mut Self {
        self.prices.push((asset, answer, decimals, None, None));
        self
    }

    /// An oracle answer with an explicit round and `updated_at` (to simulate old rounds and stale feeds).
    pub fn price_round(
        &mut self,
        asset: AssetId,
        answer: I256,
        decimals: u8,
        round: U256,
        updated_at: u64,
    ) -> &mut Self {
        self.prices
            .push((asset, answer, decimals, Some(round), Some(updated_at)));
        self
    }

    /// An oracle answer with an explicit round and the block's timestamp as `updated_at`.
    pub fn price_at_round(
        &mut self,
        asset: AssetId,
        answer: I256,
        decimals: u8,
        round: U256,
    ) -> &mut Self {
        self.prices
            .push((asset, answer, decimals, Some(round), None));
        self
    }

    /// A correction row: `user`'s balance of `asset` read from the chain at the parent
    /// (placed before the block's own events, with a synthetic log id).
    pub fn correction(
        &mut self,
        asset: AssetId,
        user: UserId,
        balance: U256,
        origin: CorrectionOrigin,
    ) -> &mut Self {
        self.events.push((
            asset,
            BalanceChange::Reconciled {
                user,
                balance,
                origin,
            },
        ));
        self
    }

    /// A vault rate of `asset` read at this block (`convertToAssets` of one whole share;
    /// the asset must be priced `PriceSource::Derived`).
    pub fn rate(&mut self, asset: AssetId, rate: U256) -> &mut Self {
        self.rates.push((asset, rate));
        self
    }

    /// Any decoded event, e.g. one of a user's own contracts.
    pub fn event(&mut self, asset: AssetId, change: BalanceChange) -> &mut Self {
        self.events.push((asset, change));
        self
    }

    /// An event decoded from the same log as the previous event (its next
    /// [`part`](BalanceEvent::part)), as a decoder's `decode_all` emits several; the first
    /// event of a block starts a log of its own.
    pub fn event_of_same_log(&mut self, asset: AssetId, change: BalanceChange) -> &mut Self {
        self.joined.push(self.events.len());
        self.events.push((asset, change));
        self
    }
}

impl SimulatedChain {
    /// A chain whose first block (empty, the anchor) is at height `start`.
    pub fn new(start: BlockNumber) -> Self {
        let chain = Self {
            inner: Mutex::new(SimInner {
                blocks: HashMap::new(),
                canonical: Vec::new(),
                start,
                genesis_time: 1_700_000_000,
                finalized: None,
                forks: 0,
                rounds: HashMap::new(),
            }),
        };
        chain.mine(|_| {});
        chain
    }

    fn lock(&self) -> MutexGuard<'_, SimInner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Mines a block on the canonical head with the events `build` adds, and returns it.
    pub fn mine(&self, build: impl FnOnce(&mut BlockBuilder)) -> Block {
        let mut builder = BlockBuilder::default();
        build(&mut builder);
        let mut inner = self.lock();
        let number = inner.start + inner.canonical.len() as u64;
        let parent_hash = inner.canonical.last().copied().unwrap_or(B256::ZERO);
        let mut seed = [0u8; 24];
        seed[..8].copy_from_slice(&number.to_be_bytes());
        seed[8..16].copy_from_slice(&inner.forks.to_be_bytes());
        seed[16..].copy_from_slice(&parent_hash[..8]);
        let hash = keccak256(seed);
        let timestamp = inner.genesis_time + number * BLOCK_TIME;
        let header = BlockHeader {
            number,
            hash,
            parent_hash,
            timestamp,
        };
        let log_id = |i: usize| LogId {
            tx_hash: keccak256([hash.as_slice(), &(i as u64).to_be_bytes()].concat()),
            log_index: i as u64,
        };
        // Correction rows first, with their synthetic ids (read at the parent); the
        // block's own events after them, numbered from 0 (an event that joined the one
        // before it is the next part of the same log).
        let joined = builder.joined;
        let (corrections, own): (Vec<_>, Vec<_>) = builder
            .events
            .into_iter()
            .enumerate()
            .partition(|(_, (_, c))| matches!(c, BalanceChange::Reconciled { .. }));
        let mut events: Vec<BalanceEvent> = corrections
            .into_iter()
            .enumerate()
            .map(|(i, (_, (asset, change)))| {
                let user = match change {
                    BalanceChange::Reconciled { user, .. } => user,
                    _ => Address::ZERO,
                };
                BalanceEvent {
                    part: 0,
                    log: Correction::log_id(0, number.saturating_sub(1), user, asset, i as u64),
                    asset,
                    change,
                }
            })
            .collect();
        let (mut log, mut part) = (0usize, 0u16);
        for (n, (i, (asset, change))) in own.into_iter().enumerate() {
            if n > 0 && joined.contains(&i) {
                part += 1;
            } else if n > 0 {
                (log, part) = (log + 1, 0);
            }
            events.push(BalanceEvent {
                part,
                log: log_id(log),
                asset,
                change,
            });
        }
        let own_events = events.iter().any(|e| !e.log.is_correction());
        let offset = if own_events { log + 1 } else { 0 };
        let mut prices = Vec::with_capacity(builder.prices.len());
        for (i, (asset, answer, decimals, round, updated_at)) in
            builder.prices.into_iter().enumerate()
        {
            let round_id = match round {
                Some(r) => r,
                None => {
                    let next =
                        inner.rounds.get(&asset).copied().unwrap_or_default() + U256::from(1);
                    inner.rounds.insert(asset, next);
                    next
                }
            };
            prices.push(PriceUpdate {
                log: log_id(offset + i),
                asset,
                answer,
                decimals,
                round_id,
                updated_at: updated_at.unwrap_or(timestamp),
            });
        }
        let block = Block {
            header,
            events,
            prices,
            rates: builder
                .rates
                .into_iter()
                .map(|(asset, rate)| RateUpdate {
                    asset,
                    rate,
                    block: number,
                })
                .collect(),
        };
        inner.blocks.insert(hash, block.clone());
        inner.canonical.push(hash);
        block
    }

    /// Drops the newest `depth` canonical blocks (they stay known by hash, as uncles do);
    /// blocks mined afterwards form the new fork. Oracle rounds keep increasing across forks.
    pub fn reorg(&self, depth: u64) {
        let mut inner = self.lock();
        let keep = inner.canonical.len().saturating_sub(depth as usize).max(1);
        inner.canonical.truncate(keep);
        inner.forks += 1;
    }

    /// Sets the height the chain reports as finalized.
    pub fn set_finalized(&self, number: Option<BlockNumber>) {
        self.lock().finalized = number;
    }

    /// The canonical chain, oldest first.
    pub fn canonical(&self) -> Vec<Block> {
        let inner = self.lock();
        inner
            .canonical
            .iter()
            .map(|h| inner.blocks[h].clone())
            .collect()
    }

    /// The canonical head's height.
    pub fn head_number(&self) -> BlockNumber {
        let inner = self.lock();
        inner.start + inner.canonical.len() as u64 - 1
    }

    /// The first block's height.
    pub fn start(&self) -> BlockNumber {
        self.lock().start
    }
}

#[async_trait]
impl BlockSource for SimulatedChain {
    async fn head(&self) -> Result<BlockNumber, SourceError> {
        Ok(self.head_number())
    }

    async fn block_by_number(&self, number: BlockNumber) -> Result<Option<Block>, SourceError> {
        let inner = self.lock();
        let Some(index) = number.checked_sub(inner.start) else {
            return Ok(None);
        };
        Ok(inner
            .canonical
            .get(index as usize)
            .map(|h| inner.blocks[h].clone()))
    }

    async fn block_by_hash(&self, hash: B256) -> Result<Option<Block>, SourceError> {
        Ok(self.lock().blocks.get(&hash).cloned())
    }

    /// A simulation is no chain: `None` (the store's claim records no chain id).
    async fn chain_id(&self) -> Result<Option<u64>, SourceError> {
        Ok(None)
    }

    async fn finalized(&self) -> Result<Option<BlockNumber>, SourceError> {
        Ok(self.lock().finalized)
    }
}
