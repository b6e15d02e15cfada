//! Several chains in one cluster cache (`RedisClusterCache::for_chain`): each user's hash
//! holds every chain, each chain writes only its own fields, watermark and slot marks;
//! `MultiChainCache::redis_cluster` says chain by chain whether an entry is current; three
//! watchers of three simulated chains keep the cache equal to their stores.

use std::collections::BTreeMap;
use std::sync::Arc;

use alloy_primitives::{Address, B256};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;
use reorg_collateral::cache::{MemoryCache, RedisClusterCache, RedisClusterChainCache};
use reorg_collateral::chains::{ChainHeads, ChainId, MultiChainCache};
use reorg_collateral::model::{BlockRef, CachedAsset, CachedCollateral, StateRef};
use reorg_collateral::store::MemoryStore;
use reorg_collateral::testing::multichain::{self, CHAIN_IDS, MultiHarness};
use reorg_collateral::testing::strategy::{self, Op};
use reorg_collateral::testing::{Backends, conformance};
use reorg_collateral::traits::CollateralCache;
use rust_decimal::Decimal;

use super::cluster_cache;
use crate::support::redis_cluster::PrivateRedisCluster;

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

/// 40 users, spread over the slots of every master.
fn users() -> Vec<Address> {
    (1..=40u8)
        .map(|i| {
            let mut b = [0u8; 20];
            b[0] = i;
            b[19] = i.wrapping_mul(37);
            Address::from(b)
        })
        .collect()
}

async fn hash_fields(cache: &RedisClusterCache, user: &Address) -> BTreeMap<String, String> {
    let mut conn = cache.connection();
    redis::AsyncCommands::hgetall(&mut conn, cache.key(user))
        .await
        .unwrap()
}

/// What the cluster holds of `chain` for `users`: each user's fields of the chain, the
/// chain's watermark, expected marks and generation counter, raw.
async fn chain_state(
    base: &RedisClusterCache,
    chain: &RedisClusterChainCache,
    users: &[Address],
) -> (
    Vec<BTreeMap<String, String>>,
    Option<String>,
    BTreeMap<String, String>,
    Option<String>,
) {
    let mine = |f: &String| f == chain.field() || f == chain.generation_field();
    let mut fields = Vec::new();
    for user in users {
        let all = hash_fields(base, user).await;
        fields.push(all.into_iter().filter(|(f, _)| mine(f)).collect());
    }
    let mut conn = base.connection();
    let watermark: Option<String> = redis::AsyncCommands::get(&mut conn, chain.watermark_key())
        .await
        .unwrap();
    let expected: BTreeMap<String, String> =
        redis::AsyncCommands::hgetall(&mut conn, chain.expected_marks_key())
            .await
            .unwrap();
    let generation: Option<String> = redis::AsyncCommands::get(&mut conn, chain.generation_key())
        .await
        .unwrap();
    (fields, watermark, expected, generation)
}

/// Every conformance scenario against one chain's cache of the cluster's multi-chain layout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_chain_cache_conformance() {
    let _turn = super::one_cluster_at_a_time().await;
    let cluster = PrivateRedisCluster::start();
    conformance::run_all(|| async {
        let cache = cluster_cache(&cluster, "cluster_chain_conf").await;
        Backends::new(Arc::new(MemoryStore::new())).with_cache(Arc::new(cache.for_chain(BASE)))
    })
    .await;
}

/// Two chains write the same users' hashes across every master, each only its own fields,
/// watermark and marks; a rewrite of one chain (as after its reorg) leaves the other's
/// keys byte for byte; `MultiChainCache::redis_cluster` agrees with the per-chain caches
/// and with memory caches, tells a chain whose store moved on, and a chain whose slot lost
/// a write, from the chains that are current; the single-chain layout is not misread;
/// `clear` of one chain drops only its part.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chains_share_a_hash_on_the_cluster_and_write_only_their_part() {
    let _turn = super::one_cluster_at_a_time().await;
    let cluster = PrivateRedisCluster::start();
    let base = cluster_cache(&cluster, "cluster_chains").await;
    let (eth, l2) = (base.for_chain(ETH), base.for_chain(BASE));
    assert_eq!((eth.field(), eth.generation_field()), ("c1", "g1"));
    assert_eq!(
        l2.watermark_key(),
        format!("{{{}}}:~watermark:c8453", base.prefix())
    );
    let users = users();
    let slots: std::collections::BTreeSet<u16> = users
        .iter()
        .map(|u| cluster.keyslot(&base.key(u)))
        .collect();
    let masters: std::collections::BTreeSet<u16> =
        slots.iter().map(|s| cluster.master_of(*s)).collect();
    assert_eq!(masters.len(), 3, "the users are spread over every master");
    for s in [
        slots.first().copied().unwrap(),
        slots.last().copied().unwrap(),
    ] {
        assert_eq!(
            cluster.keyslot(&l2.slot_mark_key(s)),
            s,
            "a mark is in its slot"
        );
    }

    let (s1, s2) = (state(10, 1), state(500, 2));
    let eth_entries: Vec<_> = users.iter().map(|&u| entry(u, s1, 0xa1, 1_000)).collect();
    let l2_entries: Vec<_> = users
        .iter()
        .step_by(2)
        .map(|&u| entry(u, s2, 0xa2, 250))
        .collect();
    eth.write(&eth_entries, Some(s1)).await.unwrap();
    l2.write(&l2_entries, Some(s2)).await.unwrap();

    let (u1, u2) = (users[0], users[1]);
    let fields = hash_fields(&base, &u1).await;
    assert_eq!(
        fields.keys().cloned().collect::<Vec<_>>(),
        ["c1", "c8453", "g1", "g8453"].map(String::from).to_vec()
    );
    assert!(
        fields["c1"].starts_with(&format!("10|0x{}|8|10.00|10.00|1;0x", "01".repeat(32))),
        "the single-Redis chain layout's value: {}",
        fields["c1"]
    );
    assert_eq!(eth.get(u1).await.unwrap(), Some(eth_entries[0].clone()));
    assert_eq!(l2.get(u1).await.unwrap(), Some(l2_entries[0].clone()));
    assert_eq!(l2.get(u2).await.unwrap(), None, "u2 holds nothing on 8453");
    assert_eq!(
        eth.get_many(&users).await.unwrap(),
        eth_entries.iter().cloned().map(Some).collect::<Vec<_>>()
    );
    assert_eq!(eth.watermark().await.unwrap(), Some(s1));
    assert_eq!(l2.watermark().await.unwrap(), Some(s2));
    let snapshot = l2.snapshot(&users).await.unwrap();
    assert!(
        snapshot.consistent && snapshot.behind.is_empty(),
        "{snapshot:?}"
    );
    assert_eq!(snapshot.watermark, Some(s2));
    assert_eq!(
        l2.get_with_watermark(u1).await.unwrap(),
        (Some(l2_entries[0].clone()), Some(s2))
    );

    // Chain 1 rewrites every user (as after a reorg of it): chain 8453's keys are untouched.
    let before = chain_state(&base, &l2, &users).await;
    let s1b = state(11, 3);
    let eth_b: Vec<_> = users.iter().map(|&u| entry(u, s1b, 0xa3, 7)).collect();
    eth.write(&eth_b, Some(s1b)).await.unwrap();
    assert_eq!(chain_state(&base, &l2, &users).await, before);
    assert_eq!(eth.get(u1).await.unwrap(), Some(eth_b[0].clone()));
    assert_eq!(l2.get(u1).await.unwrap(), Some(l2_entries[0].clone()));

    // The multi-chain read agrees with the per-chain caches and with memory caches.
    let (m_eth, m_l2) = (MemoryCache::new(), MemoryCache::new());
    m_eth.write(&eth_b, Some(s1b)).await.unwrap();
    m_l2.write(&l2_entries, Some(s2)).await.unwrap();
    let fast = MultiChainCache::redis_cluster(base.clone(), [BASE, ETH]);
    let generic = MultiChainCache::new(BTreeMap::from([
        (ETH, Arc::new(eth.clone()) as Arc<dyn CollateralCache>),
        (BASE, Arc::new(l2.clone()) as Arc<dyn CollateralCache>),
    ]));
    let memory = MultiChainCache::new(BTreeMap::from([
        (ETH, Arc::new(m_eth) as Arc<dyn CollateralCache>),
        (BASE, Arc::new(m_l2) as Arc<dyn CollateralCache>),
    ]));
    assert_eq!(fast.chains(), vec![ETH, BASE]);
    let stores: ChainHeads = [(ETH, s1b), (BASE, s2)].into();
    for user in [u1, u2] {
        let got = fast.get(user, &stores).await.unwrap();
        assert!(got.is_current(), "{got:?}");
        assert_eq!(got.watermarks(), stores);
        assert_eq!(generic.get(user, &stores).await.unwrap(), got);
        assert_eq!(memory.get(user, &stores).await.unwrap(), got);
    }
    // Chain 8453's store moved on without its cache: current for chain 1 only.
    let ahead: ChainHeads = [(ETH, s1b), (BASE, state(501, 5))].into();
    let got = fast.get(u1, &ahead).await.unwrap();
    assert_eq!(got.current_chains(), vec![ETH]);
    assert_eq!(generic.get(u1, &ahead).await.unwrap(), got);
    assert_eq!(memory.get(u1, &ahead).await.unwrap(), got);

    // Chain 8453's write of u1's slot lost (its mark and u1's hash put back as before the
    // write, as a replica promoted before it received it would hold them): u1 is behind
    // for chain 8453 only.
    let slot = cluster.keyslot(&base.key(&u1));
    let mut conn = base.connection();
    let mut saved = Vec::new();
    for key in [base.key(&u1), l2.slot_mark_key(slot)] {
        let dump: Vec<u8> = redis::cmd("DUMP")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        saved.push((key, dump));
    }
    let s2b = state(501, 5);
    let l2_b: Vec<_> = l2_entries
        .iter()
        .map(|e| entry(e.user, s2b, 0xa2, 300))
        .collect();
    l2.write(&l2_b, Some(s2b)).await.unwrap();
    for (key, dump) in &saved {
        let () = redis::cmd("RESTORE")
            .arg(key)
            .arg(0)
            .arg(dump.as_slice())
            .arg("REPLACE")
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    let lost = l2.snapshot(&users).await.unwrap();
    assert_eq!(lost.behind, vec![u1], "{lost:?}");
    assert!(!lost.consistent);
    assert!(
        eth.snapshot(&users).await.unwrap().consistent,
        "chain 1 lost nothing"
    );
    let stores: ChainHeads = [(ETH, s1b), (BASE, s2b)].into();
    let got = fast.get(u1, &stores).await.unwrap();
    assert_eq!(got.current_chains(), vec![ETH], "{got:?}");
    assert_eq!(got.chains[&BASE].watermark, None);
    assert_eq!(
        got.chains[&BASE].entry,
        Some(l2_entries[0].clone()),
        "the old entry"
    );
    let other = users[2];
    assert!(
        fast.get(other, &stores).await.unwrap().is_current(),
        "another slot is whole"
    );
    assert_eq!(
        generic.get(u1, &stores).await.unwrap(),
        got,
        "the per-chain path says the same"
    );
    // The next write of u1 on chain 8453 heals it.
    l2.write(&[l2_b[0].clone()], Some(s2b)).await.unwrap();
    assert!(fast.get(u1, &stores).await.unwrap().is_current());

    // The single-chain layout on another prefix is refused, not misread.
    let single = cluster_cache(&cluster, "cluster_single").await;
    single
        .write(&[entry(u1, s1, 0xa1, 1)], Some(s1))
        .await
        .unwrap();
    let err = MultiChainCache::redis_cluster(single.clone(), [ETH])
        .get(u1, &ChainHeads::new())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not c<chain id>"), "{err}");
    single.clear().await.unwrap();

    // `clear` of one chain drops its part only.
    eth.clear().await.unwrap();
    assert_eq!(eth.get(u1).await.unwrap(), None);
    assert_eq!(eth.watermark().await.unwrap(), None);
    assert_eq!(l2.get(u1).await.unwrap(), Some(l2_b[0].clone()));
    assert_eq!(
        hash_fields(&base, &u2).await,
        BTreeMap::new(),
        "u2's last fields went"
    );
    l2.clear().await.unwrap();
    assert_eq!(hash_fields(&base, &u1).await, BTreeMap::new());
}

/// Three simulated chains, each with its own watcher writing its chain's cache of one
/// cluster cache, through random interleaved steps (mine, reorg, finalization, restart,
/// head moving back) and then a reorg of each chain in turn: after every step each chain's
/// cache equals its oracle (the harness's check), the other chains' fields, watermarks and
/// marks are untouched, and at the end `verify_cache` of every chain finds nothing and the
/// multi-chain read is current for every chain (and not for a chain whose store is ahead).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_chains_into_one_cluster_cache_equal_their_stores() {
    let _turn = super::one_cluster_at_a_time().await;
    let cluster = PrivateRedisCluster::start();
    let base = cluster_cache(&cluster, "cluster_three").await;
    let caches: Vec<RedisClusterChainCache> =
        CHAIN_IDS.iter().map(|c| base.for_chain(*c)).collect();
    let backends = caches
        .iter()
        .map(|c| Backends::new(Arc::new(MemoryStore::new())).with_cache(Arc::new(c.clone())))
        .collect();
    let mut h = MultiHarness::new(backends, 4).await;
    let users = h.chains[0].1.users.clone();

    let mut runner = TestRunner::deterministic();
    let mut steps = multichain::scenario(3, 24, 4)
        .new_tree(&mut runner)
        .unwrap()
        .current();
    for chain in 0..3u8 {
        let block = || {
            strategy::block(5, 5, 6)
                .new_tree(&mut TestRunner::deterministic())
                .unwrap()
                .current()
        };
        steps.push((chain, Op::Mine(block())));
        steps.push((
            chain,
            Op::Reorg {
                depth: 2,
                blocks: vec![block(), block()],
            },
        ));
    }
    let reorgs = steps
        .iter()
        .filter(|(_, op)| matches!(op, Op::Reorg { .. }))
        .count();
    assert!(reorgs >= 3, "the scenario reorgs every chain");
    for (chain, op) in &steps {
        let i = usize::from(*chain) % caches.len();
        let mut others = Vec::new();
        for (j, c) in caches.iter().enumerate() {
            if j != i {
                others.push((j, chain_state(&base, c, &users).await));
            }
        }
        h.step(*chain, op).await;
        for (j, before) in others {
            assert_eq!(
                chain_state(&base, &caches[j], &users).await,
                before,
                "a step {op:?} of {} touched the cache of {}",
                CHAIN_IDS[i],
                CHAIN_IDS[j]
            );
        }
    }

    let mut stores = ChainHeads::new();
    for (id, harness) in &mut h.chains {
        harness.watcher.flush().await;
        let mismatches = harness
            .watcher
            .verify_cache()
            .await
            .expect("verify the cache");
        assert!(mismatches.is_empty(), "cache of {id}: {mismatches:?}");
        let window = harness.backends.store.window().await.unwrap();
        stores.insert(*id, window.state().expect("a state"));
    }
    let multi = MultiChainCache::redis_cluster(base.clone(), CHAIN_IDS);
    for user in &users {
        let got = multi.get(*user, &stores).await.unwrap();
        assert!(got.is_current(), "{user}: {got:?}");
        for (i, c) in caches.iter().enumerate() {
            assert_eq!(got.chains[&CHAIN_IDS[i]].entry, c.get(*user).await.unwrap());
        }
    }
    let mut ahead = stores.clone();
    let last = ahead.get_mut(&CHAIN_IDS[2]).unwrap();
    last.head.number += 1;
    let got = multi.get(users[0], &ahead).await.unwrap();
    assert_eq!(got.current_chains(), CHAIN_IDS[..2].to_vec());
}
