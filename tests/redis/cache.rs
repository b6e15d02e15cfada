//! The Redis collateral cache: conformance against the replay oracle, atomic reads,
//! flush / outage fallback, rebuild and verify, pub/sub.

use crate::support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use alloy_primitives::{Address, I256, U256};
use reorg_collateral::cache::{RedisCollateralCache, RedisPublisher};
use reorg_collateral::model::{CachedAsset, CachedCollateral};
use reorg_collateral::store::MemoryStore;
use reorg_collateral::testing::{Backends, Harness, conformance_tests};
use reorg_collateral::traits::CollateralCache;
use rust_decimal::Decimal;
use support::redis::{PrivateRedis, fresh_cache, redis_url, unique_prefix};

async fn backends(tag: &str) -> Backends {
    let store = Arc::new(MemoryStore::new());
    Backends::new(store.clone(), store).with_cache(Arc::new(fresh_cache(tag).await))
}

// The conformance suite with the Redis cache under test (memory store): one test per
// scenario, each under its own key prefix.
conformance_tests!(async || backends("conf").await, random_walks: 1..=3, steps: 50);

/// A reader (on its own connection) never sees half of a put: totals always equal the sum
/// of the asset values it reads with them, while a writer rewrites the entry concurrently.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_are_atomic_per_put() {
    let cache = Arc::new(fresh_cache("atomic").await);
    let user = Address::repeat_byte(7);
    let entry = |n: i64| {
        let assets: std::collections::BTreeMap<_, _> = (1..=3u8)
            .map(|a| {
                (
                    Address::repeat_byte(a),
                    CachedAsset {
                        confirmed: Some(Decimal::from(n * i64::from(a))),
                        pending: Some(Decimal::from(n)),
                        unrepresentable: Default::default(),
                    },
                )
            })
            .collect();
        CachedCollateral {
            user,
            block: n as u64,
            confirmed: Decimal::from(n * 6),
            pending: Decimal::from(n * 3),
            assets,
            complete: true,
        }
    };
    cache.put(&[entry(1)]).await.unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let cache = RedisCollateralCache::connect(&redis_url(), cache.prefix())
            .await
            .unwrap();
        let done = done.clone();
        tokio::spawn(async move {
            let mut reads = 0;
            while !done.load(Ordering::Relaxed) {
                let e = cache.get(user).await.unwrap().expect("entry present");
                let sum: Decimal = e.assets.values().filter_map(|a| a.confirmed).sum();
                assert_eq!(sum, e.confirmed, "torn read at block {}", e.block);
                assert_eq!(
                    Decimal::from(e.block * 6),
                    e.confirmed,
                    "totals from another put"
                );
                reads += 1;
            }
            reads
        })
    };
    for n in 2..400 {
        cache.put(&[entry(n)]).await.unwrap();
    }
    done.store(true, Ordering::Relaxed);
    assert!(reader.await.unwrap() > 10);
}

/// Flushing the cache mid-run: ingestion goes on, reads fall back to the store, `verify`
/// reports the gap, `rebuild` repopulates with progress, and `verify` is then clean.
#[tokio::test]
async fn flushed_cache_falls_back_rebuilds_and_verifies() {
    let cache = Arc::new(fresh_cache("flush").await);
    let store = Arc::new(MemoryStore::new());
    let mut h = Harness::new(
        Backends::new(store.clone(), store).with_cache(cache.clone()),
        3,
    )
    .await;
    let (usdc, alice) = (h.assets[0].id, h.users[0]);
    h.chain.mine(|b| {
        b.price(usdc, I256::try_from(100_000_000i64).unwrap(), 8);
        b.deposit(usdc, alice, U256::from(5_000_000u64));
    });
    h.sync().await;
    assert!(h.watcher.verify_cache().await.unwrap().is_empty());

    cache.clear().await.unwrap();
    assert_eq!(cache.get(alice).await.unwrap(), None);
    let mismatches = h.watcher.verify_cache().await.unwrap();
    assert_eq!(mismatches.len(), 1, "verify must report the flushed entry");
    assert_eq!(mismatches[0].user, alice);
    let fallback = h.watcher.cached_collateral(alice).await.unwrap().entry;
    let truth = h.watcher.collateral(alice).await.unwrap();
    assert_eq!(
        (fallback.confirmed, fallback.pending),
        (truth.confirmed.total, truth.pending.total),
        "store fallback"
    );
    assert_eq!(
        fallback.pending,
        Decimal::new(45, 1),
        "5 USDC × $1 × 90 %, still pending"
    );

    h.chain.mine(|b| {
        b.deposit(usdc, h.users[1], U256::from(1_000_000u64));
    });
    h.sync().await; // ingestion goes on
    let mut progress = Vec::new();
    let n = h
        .watcher
        .rebuild_cache(|done, total| progress.push((done, total)))
        .await
        .unwrap();
    assert_eq!(n, 2);
    assert_eq!(progress.last(), Some(&(2, 2)));
    assert!(h.watcher.verify_cache().await.unwrap().is_empty());

    // An entry of the previous layout (a string) is reported, not an error, and a rebuild
    // replaces it.
    let mut conn = cache.connection();
    redis::AsyncCommands::set::<_, _, ()>(&mut conn, cache.key(&alice), "7|1|4.5|4.5")
        .await
        .unwrap();
    let mismatches = h.watcher.verify_cache().await.unwrap();
    assert_eq!(mismatches.len(), 1);
    assert_eq!((mismatches[0].user, &mismatches[0].cached), (alice, &None));
    let why = mismatches[0].unreadable.as_deref().unwrap_or_default();
    assert!(why.contains("not a hash"), "{why}");
    h.watcher.rebuild_cache(|_, _| {}).await.unwrap();
    assert!(h.watcher.verify_cache().await.unwrap().is_empty());
    h.check().await;
}

/// Redis killed mid-run: ingestion goes on (cache errors are counted, not returned), the
/// cache catches up after the server returns and a rebuild, and verify is clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_mid_run_does_not_stop_ingestion() {
    let mut server = PrivateRedis::start();
    let cache = Arc::new(
        RedisCollateralCache::connect(&server.url(), "outage")
            .await
            .unwrap(),
    );
    let store = Arc::new(MemoryStore::new());
    let mut h = Harness::new(
        Backends::new(store.clone(), store.clone()).with_cache(cache.clone()),
        3,
    )
    .await;
    let usdc = h.assets[0].id;
    h.chain.mine(|b| {
        b.price(usdc, I256::try_from(100_000_000i64).unwrap(), 8);
        b.deposit(usdc, h.users[0], U256::from(7_000_000u64));
    });
    h.sync().await;
    assert_eq!(h.watcher.refresh_status().cache_errors, 0);

    server.kill();
    for i in 0..4u64 {
        h.chain.mine(|b| {
            b.deposit(
                usdc,
                h.users[(i % 3) as usize],
                U256::from(1_000_000u64 + i),
            );
        });
        h.sync().await; // must not fail
    }
    assert!(
        h.watcher.refresh_status().cache_errors > 0,
        "cache writes should have failed while Redis was down"
    );
    let c = h.watcher.cached_collateral(h.users[1]).await.unwrap().entry;
    assert!(
        !c.pending.is_zero(),
        "reads fall back to the store while Redis is down"
    );

    server.restart();
    let mut rebuilt = None;
    for _ in 0..40 {
        match h.watcher.rebuild_cache(|_, _| {}).await {
            Ok(n) => {
                rebuilt = Some(n);
                break;
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
    assert_eq!(rebuilt, Some(3), "rebuild after Redis came back");
    assert!(h.watcher.verify_cache().await.unwrap().is_empty());
    h.check().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collateral_changes_are_published() {
    let cache = Arc::new(fresh_cache("pubsub").await);
    let channel = unique_prefix("chan");
    let client = redis::Client::open(redis_url()).unwrap();
    let mut sub = client.get_async_pubsub().await.unwrap();
    sub.subscribe(&channel).await.unwrap();
    let store = Arc::new(MemoryStore::new());
    let mut h = Harness::new(
        Backends::new(store.clone(), store).with_cache(cache.clone()),
        3,
    )
    .await;
    let publisher =
        RedisPublisher::spawn(h.watcher.subscribe(), cache.connection(), channel.clone());
    let (usdc, alice) = (h.assets[0].id, h.users[0]);
    h.chain.mine(|b| {
        b.price(usdc, I256::try_from(100_000_000i64).unwrap(), 8);
        b.deposit(usdc, alice, U256::from(2_000_000u64));
    });
    h.sync().await;
    use futures::StreamExt;
    let msg = tokio::time::timeout(std::time::Duration::from_secs(5), sub.on_message().next())
        .await
        .expect("a notification within 5 s")
        .expect("stream open");
    let payload: String = msg.get_payload().unwrap();
    let mut lines = payload.lines();
    let head: Vec<&str> = lines.next().unwrap().split('|').collect();
    let block = h.watcher.window().head().unwrap().id();
    assert_eq!(
        head[..3],
        ["update", &block.number.to_string(), &block.hash.to_string()]
    );
    assert_eq!(
        head[3], "step",
        "alice's own change comes before the price fan-out"
    );
    let user: Vec<&str> = lines
        .next()
        .expect("one line per user")
        .split('|')
        .collect();
    assert_eq!(user[0], format!("{alice:#x}"));
    assert_eq!(
        user[2].parse::<Decimal>().unwrap(),
        Decimal::new(18, 1),
        "2 USDC × $1 × 90 %"
    );
    assert_eq!(lines.next(), None, "one user changed");
    drop(h);
    assert!(publisher.await.unwrap() >= 1);
}

/// `clear` deletes only its own entries: not those of a prefix that extends it (`p` and
/// `p:v2` are separate caches) nor other keys on the server.
#[tokio::test]
async fn clear_only_deletes_its_own_prefix() {
    let url = redis_url();
    let base = unique_prefix("clear");
    let outer = RedisCollateralCache::connect(&url, &base).await.unwrap();
    let nested = RedisCollateralCache::connect(&url, &format!("{base}:v2"))
        .await
        .unwrap();
    let user = Address::repeat_byte(9);
    let entry = CachedCollateral {
        user,
        block: 1,
        confirmed: Decimal::ONE,
        pending: Decimal::ONE,
        assets: std::collections::BTreeMap::new(),
        complete: true,
    };
    outer.put(std::slice::from_ref(&entry)).await.unwrap();
    nested.put(std::slice::from_ref(&entry)).await.unwrap();
    let mut conn = outer.connection();
    let other = format!("{base}:not-a-cache-key");
    redis::AsyncCommands::set::<_, _, ()>(&mut conn, &other, "keep")
        .await
        .unwrap();

    outer.clear().await.unwrap();
    assert_eq!(outer.get(user).await.unwrap(), None);
    assert_eq!(
        nested.get(user).await.unwrap(),
        Some(entry),
        "clearing {base} must not touch {base}:v2"
    );
    let kept: Option<String> = redis::AsyncCommands::get(&mut conn, &other).await.unwrap();
    assert_eq!(kept.as_deref(), Some("keep"));

    nested.clear().await.unwrap();
    redis::AsyncCommands::del::<_, ()>(&mut conn, &other)
        .await
        .unwrap();
}

/// A put of many users is one atomic step across users too: a reader on another connection
/// that reads the first and the last user of the batch in one `get_many` (one
/// `MULTI`/`EXEC` of `HGETALL`s) always sees them at the same block. The batch (~300 kB)
/// spans many of the server's socket reads, so a plain pipeline would be seen half-applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_user_put_is_atomic_across_users() {
    let cache = Arc::new(fresh_cache("atomic_users").await);
    let users: Vec<Address> = (1..=2_000u16)
        .map(|i| Address::left_padding_from(&i.to_be_bytes()))
        .collect();
    let batch = |n: u64| -> Vec<CachedCollateral> {
        users
            .iter()
            .map(|&user| CachedCollateral {
                user,
                block: n,
                confirmed: Decimal::from(n),
                pending: Decimal::from(n),
                assets: std::collections::BTreeMap::new(),
                complete: true,
            })
            .collect()
    };
    cache.put(&batch(1)).await.unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let cache = RedisCollateralCache::connect(&redis_url(), cache.prefix())
            .await
            .unwrap();
        let (pair, done) = ([users[0], users[1_999]], done.clone());
        tokio::spawn(async move {
            let mut reads = 0u32;
            while !done.load(Ordering::Relaxed) {
                let read = cache.get_many(&pair).await.unwrap();
                let [Some(a), Some(b)] = &read[..] else {
                    panic!("missing entries: {read:?}");
                };
                assert_eq!(a.block, b.block, "a reader saw half of a put");
                reads += 1;
            }
            reads
        })
    };
    for n in 2..100 {
        cache.put(&batch(n)).await.unwrap();
    }
    done.store(true, Ordering::Relaxed);
    assert!(reader.await.unwrap() > 10);
    cache.clear().await.unwrap();
}

/// A put that fails while Redis still holds the older entries (here: the server refuses
/// writes) must not leave those entries served as current: until the cache is healed,
/// `cached_collateral` reads the store, and the next successful refresh rewrites them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_put_does_not_leave_stale_entries_behind() {
    let server = PrivateRedis::start();
    let cache = Arc::new(
        RedisCollateralCache::connect(&server.url(), "stale")
            .await
            .unwrap(),
    );
    let store = Arc::new(MemoryStore::new());
    let mut h = Harness::new(
        Backends::new(store.clone(), store).with_cache(cache.clone()),
        3,
    )
    .await;
    let (usdc, alice, bob) = (h.assets[0].id, h.users[0], h.users[1]);
    h.chain.mine(|b| {
        b.price(usdc, I256::try_from(100_000_000i64).unwrap(), 8);
        b.deposit(usdc, alice, U256::from(1_000_000u64));
    });
    h.sync().await;

    // The server refuses every write from now on (reads still work).
    let mut admin = cache.connection();
    let refuse_writes = |n: u8| {
        let mut cmd = redis::cmd("CONFIG");
        cmd.arg("SET").arg("min-replicas-to-write").arg(n);
        cmd
    };
    refuse_writes(1)
        .query_async::<()>(&mut admin)
        .await
        .unwrap();
    h.chain.mine(|b| {
        b.deposit(usdc, alice, U256::from(9_000_000u64));
    });
    h.sync().await;
    // At least one failed write (the circuit breaker may have retried since).
    let status = h.watcher.refresh_status();
    assert!(status.cache_errors >= 1, "{status:?}");
    assert!(status.failing.is_some(), "{status:?}");
    assert_eq!(
        h.watcher.stale_cache_entries(),
        1,
        "alice's entry is outdated"
    );
    let truth = CachedCollateral::from(&h.watcher.collateral(alice).await.unwrap());
    let served = h.watcher.cached_collateral(alice).await.unwrap().entry;
    assert_eq!(
        (served.confirmed, served.pending),
        (truth.confirmed, truth.pending),
        "an entry whose refresh failed must not be served as current"
    );

    // Writes work again: the next step (which does not touch alice) heals her entry.
    refuse_writes(0)
        .query_async::<()>(&mut admin)
        .await
        .unwrap();
    h.chain.mine(|b| {
        b.deposit(usdc, bob, U256::from(1_000_000u64));
    });
    h.sync().await;
    assert_eq!(h.watcher.refresh_status().cache_errors, 1);
    assert_eq!(h.watcher.stale_cache_entries(), 0);
    assert!(h.watcher.verify_cache().await.unwrap().is_empty());
    h.check().await;
}

/// Entries round-trip exactly through the hash layout (missing prices, no assets, several
/// assets, `Decimal::MAX`, scale 28, negative totals), `get_many` keeps the order and
/// reports misses, and a field that does not parse is `CacheError::Corrupt` naming the user.
#[tokio::test]
async fn entries_round_trip_and_corrupt_values_are_reported() {
    let cache = fresh_cache("encoding").await;
    let big = Decimal::MAX;
    let assets = |n: u8| -> std::collections::BTreeMap<Address, CachedAsset> {
        (1..=n)
            .map(|a| {
                let value = (a % 2 == 0).then(|| Decimal::new(i64::from(a) * 1_001, 3));
                let asset = CachedAsset {
                    confirmed: value,
                    pending: Some(big),
                    unrepresentable: Default::default(),
                };
                (Address::repeat_byte(a), asset)
            })
            .collect()
    };
    let entries: Vec<CachedCollateral> = (0..3u8)
        .map(|i| CachedCollateral {
            user: Address::repeat_byte(0xB0 + i),
            block: u64::MAX - u64::from(i),
            confirmed: Decimal::new(-12_345, 28),
            pending: big,
            assets: assets(i * 2),
            complete: i == 1,
        })
        .collect();
    cache.put(&entries).await.unwrap();
    for e in &entries {
        assert_eq!(cache.get(e.user).await.unwrap().as_ref(), Some(e));
    }
    let missing = Address::repeat_byte(0xEE);
    let users = [entries[2].user, missing, entries[0].user];
    let read = cache.get_many(&users).await.unwrap();
    assert_eq!(
        read,
        [Some(entries[2].clone()), None, Some(entries[0].clone())]
    );
    assert_eq!(cache.get_many(&[]).await.unwrap(), []);

    let mut conn = cache.connection();
    let key = cache.key(&missing);
    let asset = format!("0x{}", "a1".repeat(20));
    for (field, bad) in [
        ("~total", "7|x|1|1"),
        ("~total", "-1|1|1|1"),
        ("zz", "1|1"),
        (asset.as_str(), "1"),
    ] {
        let mut hset = redis::cmd("HSET");
        hset.arg(&key)
            .arg("~total")
            .arg("7|1|1|1")
            .arg(field)
            .arg(bad);
        redis::pipe()
            .atomic()
            .del(&key)
            .add_command(hset)
            .exec_async(&mut conn)
            .await
            .unwrap();
        match cache.get(missing).await {
            Err(reorg_collateral::CacheError::Corrupt { user, .. }) => assert_eq!(user, missing),
            other => panic!("{field} = {bad:?} read as {other:?}"),
        }
    }
    cache.clear().await.unwrap();
}

/// Upgrading from the string layout: a user's key holding a string (what earlier versions
/// wrote) reads as `CacheError::Corrupt` (so the watcher reads the store), in `get` and
/// `get_many`, and the next put replaces it with the hash.
#[tokio::test]
async fn string_entries_of_the_old_layout_are_errors_until_rewritten() {
    let cache = fresh_cache("upgrade").await;
    let (old, other) = (Address::repeat_byte(0xC1), Address::repeat_byte(0xC2));
    let mut conn = cache.connection();
    redis::AsyncCommands::set::<_, _, ()>(
        &mut conn,
        cache.key(&old),
        format!("7|1|1010.0|1010.0|{}|1010.0|1010.0", "a1".repeat(20)),
    )
    .await
    .unwrap();
    let entry = |user, block| CachedCollateral {
        user,
        block,
        confirmed: Decimal::new(1_010, 0),
        pending: Decimal::new(2_020, 0),
        assets: [(
            Address::repeat_byte(0xA1),
            CachedAsset {
                confirmed: Some(Decimal::new(1_010, 0)),
                pending: None,
                unrepresentable: Default::default(),
            },
        )]
        .into(),
        complete: false,
    };
    cache.put(&[entry(other, 7)]).await.unwrap();
    match cache.get(old).await {
        Err(reorg_collateral::CacheError::Corrupt { user, detail, .. }) => {
            assert_eq!(user, old);
            assert!(detail.contains("not a hash"), "{detail}");
        }
        got => panic!("a string entry read as {got:?}"),
    }
    match cache.get_many(&[other, old]).await {
        Err(reorg_collateral::CacheError::Corrupt { user, .. }) => assert_eq!(user, old),
        got => panic!("a string entry read as {got:?}"),
    }

    cache.put(&[entry(old, 8), entry(other, 8)]).await.unwrap();
    assert_eq!(cache.get(old).await.unwrap(), Some(entry(old, 8)));
    assert_eq!(
        cache.get_many(&[other, old]).await.unwrap(),
        [Some(entry(other, 8)), Some(entry(old, 8))]
    );
    let kind: String = redis::cmd("TYPE")
        .arg(cache.key(&old))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(kind, "hash");
    cache.clear().await.unwrap();
}

/// The documented layout, read as a user without this crate would: `HGET` of a total and of
/// an asset, and a put that drops an asset removes its field.
#[tokio::test]
async fn layout_is_readable_with_plain_hget() {
    let cache = fresh_cache("layout").await;
    let (user, a, b) = (
        Address::repeat_byte(0xB0),
        Address::repeat_byte(0xA1),
        Address::repeat_byte(0x0C),
    );
    let value = |c: Option<i64>, p: i64| CachedAsset {
        confirmed: c.map(|c| Decimal::new(c, 1)),
        pending: Some(Decimal::new(p, 1)),
        unrepresentable: Default::default(),
    };
    let mut entry = CachedCollateral {
        user,
        block: 42,
        confirmed: Decimal::new(10_100, 1),
        pending: Decimal::new(10_105, 1),
        assets: [(a, value(Some(10_100), 10_100)), (b, value(None, 5))].into(),
        complete: false,
    };
    cache.put(std::slice::from_ref(&entry)).await.unwrap();
    let key = format!("{{{}:0x{}}}", cache.prefix(), "b0".repeat(20));
    assert_eq!(cache.key(&user), key);
    let mut conn = cache.connection();
    let hget = |field: String| {
        let mut conn = conn.clone();
        let key = key.clone();
        async move {
            redis::AsyncCommands::hget::<_, _, Option<String>>(&mut conn, key, field)
                .await
                .unwrap()
        }
    };
    assert_eq!(
        hget("~total".into()).await.as_deref(),
        Some("42|1010.0|1010.5|0")
    );
    let a_field = format!("0x{}", "a1".repeat(20));
    let b_field = format!("0x{}", "0c".repeat(20));
    assert_eq!(
        hget(a_field.clone()).await.as_deref(),
        Some("1010.0|1010.0")
    );
    assert_eq!(hget(b_field.clone()).await.as_deref(), Some("-|0.5"));

    entry.assets.remove(&b);
    cache.put(std::slice::from_ref(&entry)).await.unwrap();
    assert_eq!(
        hget(b_field).await,
        None,
        "a dropped asset's field is removed"
    );
    let len: usize = redis::AsyncCommands::hlen(&mut conn, &key).await.unwrap();
    assert_eq!(len, 2, "~total and one asset");
    assert_eq!(cache.get(user).await.unwrap(), Some(entry));
    cache.clear().await.unwrap();
}
