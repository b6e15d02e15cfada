//! Conformance scenarios at the edges (issue-driven): the log of a block that comes back,
//! writer identity, and a value that cannot be represented.

use std::sync::Arc;

use alloy_primitives::{Address, B256, I256, U256};

use super::Backends;
use crate::engine::EngineConfig;
use crate::error::StoreError;
use crate::model::{
    Asset, AssetRegistry, BalanceChange, BalanceEvent, BalanceKey, Block, BlockChanges,
    BlockHeader, Changeset, LogId, PriceStatus, StoreIdentity,
};
use crate::source::SimulatedChain;
use crate::testing::harness::{START, default_assets};
use crate::traits::{BlockSource, LogRecord, LogStatus};
use crate::watcher::{Watcher, WatcherConfig};

/// One row per (block hash, log, ordinal): after A → B → A at one height the log holds B's
/// rows (reverted) and A's (pending), and each further return revives rows instead of
/// appending duplicates. Drives the store directly with changesets.
pub async fn log_of_a_block_that_comes_back(backends: Backends) {
    let store = backends.store;
    let key = BalanceKey {
        user: Address::repeat_byte(0x01),
        asset: Address::repeat_byte(0xA1),
    };
    let header = |number, tag: u8, parent_hash| BlockHeader {
        number,
        hash: B256::repeat_byte(tag),
        parent_hash,
        timestamp: 1_700_000_000 + number,
    };
    let base = header(START, 0x10, B256::ZERO);
    let a = header(START + 1, 0x1A, base.hash);
    let b = header(START + 1, 0x1B, base.hash);
    let with_deposit = |h: BlockHeader, amount: u64| BlockChanges {
        block: Block {
            header: h,
            events: vec![BalanceEvent {
                part: 0,
                log: LogId {
                    tx_hash: h.hash,
                    log_index: 0,
                },
                asset: key.asset,
                change: BalanceChange::Deposit {
                    user: key.user,
                    amount: U256::from(amount),
                },
            }],
            prices: vec![],
            rates: Vec::new(),
        },
        balances: vec![(key, U256::from(amount))],
        prices: vec![],
        rejected_prices: vec![],
        indexes: Vec::new(),
        asset_states: Vec::new(),
        rates: Vec::new(),
    };
    let apply = |revert: Vec<BlockHeader>, block: BlockChanges| {
        let store = store.clone();
        async move {
            let changes = Changeset {
                revert,
                blocks: vec![block],
                finalize: None,
            };
            store.apply(&changes).await.expect("apply");
        }
    };
    let rows = || {
        let store = store.clone();
        async move {
            let mut rows: Vec<(B256, LogStatus)> = store
                .log(START + 1..=START + 1)
                .await
                .expect("log")
                .iter()
                .map(|r: &LogRecord| (r.block.hash, r.status))
                .collect();
            rows.sort_by_key(|(hash, _)| *hash);
            rows
        }
    };
    apply(
        vec![],
        BlockChanges {
            block: Block::empty(base),
            balances: vec![],
            prices: vec![],
            rejected_prices: vec![],
            indexes: Vec::new(),
            asset_states: Vec::new(),
            rates: Vec::new(),
        },
    )
    .await;
    apply(vec![], with_deposit(a, 100)).await;
    apply(vec![a], with_deposit(b, 7)).await;
    apply(vec![b], with_deposit(a, 100)).await;
    assert_eq!(
        rows().await,
        vec![(a.hash, LogStatus::Pending), (b.hash, LogStatus::Reverted)],
        "A -> B -> A: one row per block hash"
    );
    apply(vec![a], with_deposit(b, 7)).await;
    assert_eq!(
        rows().await,
        vec![(a.hash, LogStatus::Reverted), (b.hash, LogStatus::Pending)],
        "A -> B -> A -> B: rows revived, not appended"
    );
    let view = store.balance(key).await.expect("balance");
    assert_eq!(view.pending, U256::from(7), "B's balance is pending");
    let c = header(START + 2, 0x1C, b.hash);
    store
        .apply(&Changeset {
            revert: vec![],
            blocks: vec![BlockChanges {
                block: Block::empty(c),
                balances: vec![],
                prices: vec![],
                rejected_prices: vec![],
                indexes: Vec::new(),
                asset_states: Vec::new(),
                rates: Vec::new(),
            }],
            finalize: Some(b),
        })
        .await
        .expect("finalize B");
    assert_eq!(
        rows().await,
        vec![
            (a.hash, LogStatus::Reverted),
            (b.hash, LogStatus::Confirmed)
        ],
        "finalized: B confirmed, A still reverted"
    );
}

/// [`StoreWriter::claim_writer`](crate::StoreWriter::claim_writer): the first identity is recorded, claiming again with it
/// succeeds, another chain id or another asset registry is refused naming both.
pub async fn claim_writer_identity(backends: Backends) {
    let store = backends.store;
    let registry = AssetRegistry::new(default_assets()).expect("assets");
    let mine = StoreIdentity::new(Some(31_337), &registry);
    store.claim_writer(&mine).await.expect("first claim");
    store
        .claim_writer(&mine)
        .await
        .expect("same identity again");
    let other_chain = StoreIdentity::new(Some(1), &registry);
    let fewer_assets = AssetRegistry::new(default_assets().into_iter().take(2)).expect("assets");
    let other_registry = StoreIdentity::new(Some(31_337), &fewer_assets);
    for claimed in [
        other_chain,
        other_registry,
        StoreIdentity::new(None, &registry),
    ] {
        match store.claim_writer(&claimed).await {
            Err(StoreError::IdentityMismatch {
                stored, claimed: c, ..
            }) => {
                assert_eq!((stored, c), (mine, claimed), "the error names both");
            }
            other => panic!("claim with {claimed} over {mine}: {other:?}"),
        }
    }
    store
        .claim_writer(&mine)
        .await
        .expect("the recorded identity still claims");
}

/// One user's value that cannot be represented is that user's flagged asset, not everyone's
/// failure: a 0-decimals token at $1, Bob holds 10, Alice 10^30. The sync succeeds, Alice's
/// valuation (and cache entry, if a cache is under test) marks the asset unrepresentable
/// and incomplete, Bob's is exact.
pub async fn one_unrepresentable_user(backends: Backends) {
    let token = Asset::new(Address::repeat_byte(0xA0), "ZERO", 0, 10_000);
    let registry = AssetRegistry::new([token.clone()]).expect("asset");
    let mut config = WatcherConfig::new(EngineConfig::new(registry, 3));
    config.start_block = START;
    config.max_price_age = u64::MAX;
    let chain = Arc::new(SimulatedChain::new(START));
    let (alice, bob) = (Address::repeat_byte(0xA1), Address::repeat_byte(0xB0));
    chain.mine(|b| {
        b.price(token.id, I256::try_from(100_000_000u64).expect("answer"), 8);
        b.deposit(token.id, bob, U256::from(10));
        b.deposit(token.id, alice, U256::from(10u64).pow(U256::from(30)));
    });
    let source: Arc<dyn BlockSource> = chain.clone();
    let watcher = Watcher::new(config, source, backends.store.clone())
        .await
        .expect("watcher");
    let (_, cache) = backends.with_some_cache();
    let mut watcher = watcher.with_cache(cache.clone());
    watcher
        .sync()
        .await
        .expect("a huge balance does not fail the sync");

    let a = watcher.collateral(alice).await.expect("Alice's collateral");
    assert_eq!(a.pending.assets[0].status, PriceStatus::Unrepresentable);
    assert_eq!(a.pending.assets[0].value, None);
    assert_eq!(a.pending.total, rust_decimal::Decimal::ZERO);
    assert!(!a.pending.is_complete());
    let b = watcher.collateral(bob).await.expect("Bob's collateral");
    assert_eq!(b.pending.total, rust_decimal::Decimal::from(10));
    assert!(b.pending.is_complete());
    watcher.flush().await;
    let a = cache
        .get(alice)
        .await
        .expect("get")
        .expect("Alice has an entry");
    assert!(a.assets[&token.id].unrepresentable.pending, "{a:?}");
    assert!(!a.complete);
    let b = cache
        .get(bob)
        .await
        .expect("get")
        .expect("Bob has an entry");
    assert_eq!(b.pending, rust_decimal::Decimal::from(10));
    assert!(b.complete);
}
