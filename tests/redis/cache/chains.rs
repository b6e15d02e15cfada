//! The multi-chain layout: one hash per user holding every chain (`c<chain>` fields), a
//! watermark per chain, per-chain writes that leave other chains alone, the one-round-trip
//! `MultiChainCache` read, and the single-chain layout unchanged beside it.

use crate::support;

use std::collections::BTreeMap;
use std::sync::Arc;

use alloy_primitives::{Address, B256};
use reorg_collateral::cache::{MemoryCache, RedisChainCache, RedisCollateralCache};
use reorg_collateral::chains::{ChainHeads, ChainId, MultiChainCache};
use reorg_collateral::model::{BlockRef, CachedAsset, CachedCollateral, StateRef};
use reorg_collateral::store::MemoryStore;
use reorg_collateral::testing::{Backends, conformance_tests};
use reorg_collateral::traits::CollateralCache;
use rust_decimal::Decimal;
use support::redis::fresh_cache;

const ETH: ChainId = ChainId(1);
const BASE: ChainId = ChainId(8453);

fn state(number: u64, hash: u8) -> StateRef {
    StateRef {
        head: BlockRef {
            number,
            hash: B256::repeat_byte(hash),
        },
        finalized: Some(number.saturating_sub(2)),
    }
}

fn entry(user: Address, at: StateRef, asset: u8, value: i64) -> CachedCollateral {
    let v = Decimal::new(value, 2);
    CachedCollateral {
        user,
        block: at.head.number,
        hash: at.head.hash,
        finalized: at.finalized,
        confirmed: v,
        pending: v,
        assets: [(
            Address::repeat_byte(asset),
            CachedAsset {
                confirmed: Some(v),
                pending: Some(v),
                unrepresentable: Default::default(),
                quarantined: Default::default(),
            },
        )]
        .into(),
        complete: true,
    }
}

async fn hash_fields(cache: &RedisCollateralCache, user: &Address) -> BTreeMap<String, String> {
    let mut conn = cache.connection();
    redis::AsyncCommands::hgetall(&mut conn, cache.key(user))
        .await
        .unwrap()
}

async fn backends(tag: &str) -> Backends {
    let store = Arc::new(MemoryStore::new());
    let cache: RedisChainCache = fresh_cache(tag).await.for_chain(BASE);
    Backends::new(store).with_cache(Arc::new(cache))
}

// The conformance suite with one chain's cache of the multi-chain layout under test.
conformance_tests!(async || backends("chainconf").await, random_walks: 1..=2, steps: 40);

/// Two chains' caches write the same users' hash, each only its own field and watermark;
/// a write of one chain with a watermark is one transaction of its own; `clear` of one
/// chain drops only its field, watermark and session mark.
#[tokio::test]
async fn chains_share_a_hash_and_write_only_their_field() {
    let base = fresh_cache("chains").await;
    let (eth, l2) = (base.for_chain(ETH), base.for_chain(BASE));
    assert_eq!(eth.field(), "c1");
    assert_eq!(
        l2.watermark_key(),
        format!("{{{}}}:~watermark:c8453", base.prefix())
    );
    assert_eq!(eth.key(&Address::ZERO), base.key(&Address::ZERO));
    let (u1, u2) = (Address::repeat_byte(0xb1), Address::repeat_byte(0xb2));
    let (s1, s2) = (state(10, 1), state(500, 2));
    eth.write(
        &[entry(u1, s1, 0xa1, 1_000), entry(u2, s1, 0xa1, 5)],
        Some(s1),
    )
    .await
    .unwrap();
    l2.write(&[entry(u1, s2, 0xa1, 250)], Some(s2))
        .await
        .unwrap();

    let fields = hash_fields(&base, &u1).await;
    assert_eq!(
        fields.keys().cloned().collect::<Vec<_>>(),
        vec!["c1".to_owned(), "c8453".to_owned()]
    );
    assert!(
        fields["c1"].starts_with(&format!("10|0x{}|8|10.00|10.00|1;0x", "01".repeat(32))),
        "{}",
        fields["c1"]
    );
    assert_eq!(eth.get(u1).await.unwrap(), Some(entry(u1, s1, 0xa1, 1_000)));
    assert_eq!(l2.get(u1).await.unwrap(), Some(entry(u1, s2, 0xa1, 250)));
    assert_eq!(
        l2.get(u2).await.unwrap(),
        None,
        "u2 holds nothing on chain 8453"
    );
    assert_eq!(
        l2.get_many(&[u2, u1]).await.unwrap(),
        vec![None, Some(entry(u1, s2, 0xa1, 250))]
    );
    assert_eq!(eth.watermark().await.unwrap(), Some(s1));
    assert_eq!(
        l2.get_with_watermark(u1).await.unwrap(),
        (Some(entry(u1, s2, 0xa1, 250)), Some(s2))
    );

    // A new write of chain 1 replaces its field only.
    let s1b = state(11, 3);
    eth.write(&[entry(u1, s1b, 0xa2, 7)], Some(s1b))
        .await
        .unwrap();
    assert_eq!(eth.get(u1).await.unwrap(), Some(entry(u1, s1b, 0xa2, 7)));
    assert_eq!(l2.get(u1).await.unwrap(), Some(entry(u1, s2, 0xa1, 250)));
    assert_eq!(l2.watermark().await.unwrap(), Some(s2));

    // Sessions are per chain: another session on chain 1 leaves chain 8453's intact.
    l2.begin_session(7).await.unwrap();
    eth.begin_session(8).await.unwrap();
    assert!(
        l2.write_in_session(&[], Some(state(501, 4)), 7)
            .await
            .unwrap()
    );
    assert!(
        !eth.write_in_session(&[], Some(state(12, 4)), 9)
            .await
            .unwrap()
    );
    assert_eq!(
        eth.watermark().await.unwrap(),
        Some(s1b),
        "refused: not its session"
    );
    assert_eq!(l2.watermark().await.unwrap(), Some(state(501, 4)));

    eth.clear().await.unwrap();
    assert_eq!(eth.get(u1).await.unwrap(), None);
    assert_eq!(eth.watermark().await.unwrap(), None);
    assert_eq!(l2.get(u1).await.unwrap(), Some(entry(u1, s2, 0xa1, 250)));
    assert_eq!(
        hash_fields(&base, &u2).await,
        BTreeMap::new(),
        "u2's last field went"
    );
    l2.clear().await.unwrap();
    assert_eq!(hash_fields(&base, &u1).await, BTreeMap::new());
}

/// `MultiChainCache::redis` reads every chain of a user in one round trip and says which
/// chains are current against the stores' states; it answers what the generic path over
/// the per-chain caches answers, and what the memory caches answer for the same writes.
#[tokio::test]
async fn multi_chain_reads_agree_with_per_chain_caches() {
    let base = fresh_cache("multi").await;
    let (eth, l2) = (base.for_chain(ETH), base.for_chain(BASE));
    let (m_eth, m_l2) = (MemoryCache::new(), MemoryCache::new());
    let user = Address::repeat_byte(0xb1);
    let (s1, s2) = (state(10, 1), state(500, 2));
    for (c, m, at, v) in [(&eth, &m_eth, s1, 100), (&l2, &m_l2, s2, 40)] {
        c.write(&[entry(user, at, 0xa1, v)], Some(at))
            .await
            .unwrap();
        m.write(&[entry(user, at, 0xa1, v)], Some(at))
            .await
            .unwrap();
    }
    let fast = MultiChainCache::redis(base.clone(), [BASE, ETH]);
    let generic = MultiChainCache::new(BTreeMap::from([
        (ETH, Arc::new(eth.clone()) as Arc<dyn CollateralCache>),
        (BASE, Arc::new(l2.clone()) as Arc<dyn CollateralCache>),
    ]));
    let memory = MultiChainCache::new(BTreeMap::from([
        (ETH, Arc::new(m_eth) as Arc<dyn CollateralCache>),
        (BASE, Arc::new(m_l2) as Arc<dyn CollateralCache>),
    ]));
    assert_eq!(fast.chains(), vec![ETH, BASE]);

    // Both chains' stores at the watermarks: current everywhere.
    let stores: ChainHeads = [(ETH, s1), (BASE, s2)].into();
    let got = fast.get(user, &stores).await.unwrap();
    assert!(got.is_current());
    assert_eq!(got.watermarks(), stores);
    assert_eq!(
        got.chains[&BASE].entry,
        Some(entry(user, s2, 0xa1, 40)),
        "each chain's entry says which block of which chain it reflects"
    );
    assert_eq!(generic.get(user, &stores).await.unwrap(), got);
    assert_eq!(memory.get(user, &stores).await.unwrap(), got);

    // Chain 8453's store moved on without its cache: current for chain 1 only.
    let ahead: ChainHeads = [(ETH, s1), (BASE, state(501, 5))].into();
    let got = fast.get(user, &ahead).await.unwrap();
    assert!(!got.is_current());
    assert_eq!(got.current_chains(), vec![ETH]);
    assert_eq!(generic.get(user, &ahead).await.unwrap(), got);
    assert_eq!(memory.get(user, &ahead).await.unwrap(), got);

    // A user with nothing cached: no entries, current where the watermark is.
    let nobody = Address::repeat_byte(0xee);
    let got = fast.get(nobody, &stores).await.unwrap();
    assert!(got.is_current() && got.chains.values().all(|c| c.entry.is_none()));
    base.for_chain(ETH).clear().await.unwrap();
    base.for_chain(BASE).clear().await.unwrap();
}

/// A prefix of the single-chain layout keeps its keys exactly as before (`~total` and
/// `0x<asset>` fields, `{<prefix>}:~watermark`); reading it through the multi-chain path is
/// refused as corrupt rather than misread.
#[tokio::test]
async fn single_chain_layout_is_unchanged_and_not_misread() {
    let single = fresh_cache("single").await;
    let user = Address::repeat_byte(0xb1);
    let s = state(10, 1);
    single
        .write(&[entry(user, s, 0xa1, 100)], Some(s))
        .await
        .unwrap();
    let fields = hash_fields(&single, &user).await;
    assert_eq!(
        fields.keys().cloned().collect::<Vec<_>>(),
        vec![format!("0x{}", "a1".repeat(20)), "~total".to_owned()]
    );
    assert_eq!(
        single.watermark_key(),
        format!("{{{}}}:~watermark", single.prefix())
    );
    assert_eq!(single.get_with_watermark(user).await.unwrap().1, Some(s));
    let err = MultiChainCache::redis(single.clone(), [ETH])
        .get(user, &ChainHeads::new())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not c<chain id>"), "{err}");
    single.clear().await.unwrap();
}

/// A simulated chain that names its chain id.
#[derive(Debug)]
struct Named(reorg_collateral::source::SimulatedChain, u64);

#[async_trait::async_trait]
impl reorg_collateral::traits::BlockSource for Named {
    async fn head(&self) -> Result<u64, reorg_collateral::error::SourceError> {
        self.0.head().await
    }
    async fn block_by_number(
        &self,
        number: u64,
    ) -> Result<Option<reorg_collateral::model::Block>, reorg_collateral::error::SourceError> {
        self.0.block_by_number(number).await
    }
    async fn block_by_hash(
        &self,
        hash: B256,
    ) -> Result<Option<reorg_collateral::model::Block>, reorg_collateral::error::SourceError> {
        self.0.block_by_hash(hash).await
    }
    async fn chain_id(&self) -> Result<Option<u64>, reorg_collateral::error::SourceError> {
        Ok(Some(self.1))
    }
    async fn finalized(&self) -> Result<Option<u64>, reorg_collateral::error::SourceError> {
        self.0.finalized().await
    }
}

/// Stream entries name the chain of the update, the quarantine, the resume and the lag (`chain
/// <id>`, added after the fields a consumer knew; in-process, `Notification::chain`), the
/// consumer reads it, and an entry without it (an older publisher) still reads, as of no
/// chain.
#[tokio::test]
async fn stream_entries_name_the_chain() {
    use reorg_collateral::cache::{
        RedisStreamConsumer, RedisStreamPublisher, Resync, StreamEvent, StreamId,
    };
    use reorg_collateral::model::{Asset, AssetRegistry};
    use reorg_collateral::watcher::Notification;
    use reorg_collateral::{EngineConfig, Watcher, WatcherConfig};

    let cache = fresh_cache("streamchain").await;
    let key = format!("{}:stream", cache.prefix());
    let token = Address::repeat_byte(0xa1);
    let source = Arc::new(Named(
        reorg_collateral::source::SimulatedChain::new(0),
        8453,
    ));
    let assets = AssetRegistry::new([Asset::new(token, "TKN", 6, 10_000)]).unwrap();
    let mut config = WatcherConfig::new(EngineConfig::new(assets, 3));
    config.start_block = 1;
    let mut watcher = Watcher::new(config, source.clone(), Arc::new(MemoryStore::new()))
        .await
        .unwrap();
    let publisher =
        RedisStreamPublisher::spawn(watcher.subscribe(), cache.connection(), key.clone(), 1_000);
    let mut subscription = watcher.subscribe();
    let holder = Address::repeat_byte(1);
    source.0.mine(|b| {
        b.deposit(token, holder, alloy_primitives::U256::from(5));
    });
    watcher.sync().await.unwrap();
    watcher.flush().await;
    // An overdraw quarantines the token at block 2; a resume at block 3 lifts it.
    source.0.mine(|b| {
        b.withdraw(token, holder, alloy_primitives::U256::from(6));
    });
    watcher.sync().await.unwrap();
    watcher.flush().await;
    assert!(watcher.resume(token).await.unwrap());
    source.0.mine(|_| {});
    watcher.sync().await.unwrap();
    watcher.flush().await;
    drop(watcher);
    let appended = publisher.await.unwrap();
    let mut told = Vec::new();
    while let Some(n) = subscription.recv().await {
        told.push(n);
    }
    assert_eq!(told.len() as u64, appended, "every notification appended");
    let kinds: Vec<_> = told
        .iter()
        .map(|n| match n {
            Notification::Update(u) => ("update", u.block.number, Some(u.chain)),
            Notification::Quarantined { chain, quarantine } => {
                ("quarantined", quarantine.block.number, Some(*chain))
            }
            Notification::Resumed { chain, block, .. } => ("resumed", block.number, Some(*chain)),
            Notification::Lagged { chain, missed, .. } => ("lagged", *missed, Some(*chain)),
        })
        .collect();
    assert!(kinds.contains(&("quarantined", 2, Some(BASE))), "{kinds:?}");
    assert!(kinds.contains(&("resumed", 3, Some(BASE))), "{kinds:?}");
    assert!(
        told.iter().all(|n| n.chain() == Some(BASE)),
        "every notification names the watcher's chain: {told:?}"
    );
    // An entry of an older publisher: no `chain` field.
    let mut conn = cache.connection();
    redis::cmd("XADD")
        .arg(&key)
        .arg("*")
        .arg("seq")
        .arg(appended + 1)
        .arg("kind")
        .arg("update")
        .arg("block")
        .arg(7)
        .arg("message")
        .arg("update|7|0x00|step|-")
        .query_async::<()>(&mut conn)
        .await
        .unwrap();
    // A publisher's lag entry names its chain (here written as the publisher writes it).
    redis::cmd("XADD")
        .arg(&key)
        .arg("*")
        .arg("seq")
        .arg(appended + 2)
        .arg("kind")
        .arg("lagged")
        .arg("block")
        .arg("-")
        .arg("message")
        .arg(format!("lagged|3|-|{}", BASE.0))
        .arg("chain")
        .arg(BASE.0)
        .query_async::<()>(&mut conn)
        .await
        .unwrap();
    redis::cmd("INCRBY")
        .arg(format!("{key}:seq"))
        .arg(2)
        .query_async::<()>(&mut conn)
        .await
        .unwrap();
    let mut consumer = RedisStreamConsumer::after(cache.connection(), key.clone(), StreamId::ZERO);
    let events = consumer.next().await.unwrap();
    let read: Vec<_> = events
        .iter()
        .map(|e| match e {
            StreamEvent::Update(u) => ("update", u.block, u.chain),
            StreamEvent::AssetState(s) => (
                if s.message.starts_with("quarantined|") {
                    "quarantined"
                } else {
                    "resumed"
                },
                s.block,
                s.chain,
            ),
            StreamEvent::Resync(Resync::Publisher { missed, chain, .. }) => {
                ("lagged", *missed, *chain)
            }
            other => panic!("{other:?}"),
        })
        .collect();
    let mut want: Vec<_> = kinds.iter().map(|(k, b, c)| (*k, *b, *c)).collect();
    want.push(("update", 7, None));
    want.push(("lagged", 3, Some(BASE)));
    assert_eq!(
        read, want,
        "the stream says what the subscription said, chains included"
    );
    redis::AsyncCommands::del::<_, ()>(&mut conn, &[key.clone(), format!("{key}:seq")])
        .await
        .unwrap();
}
