//! The stored layout: one hash per user under its prefix, exact round trips, corrupt and
//! old-layout values reported, plain `HGET` readable, `clear` confined to its prefix.

use crate::support;

use alloy_primitives::Address;
use reorg_collateral::cache::RedisCollateralCache;
use reorg_collateral::model::{CachedAsset, CachedCollateral};
use reorg_collateral::traits::CollateralCache;
use rust_decimal::Decimal;
use support::redis::{fresh_cache, redis_url, unique_prefix};

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
        hash: alloy_primitives::B256::ZERO,
        finalized: None,
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
                    quarantined: Default::default(),
                };
                (Address::repeat_byte(a), asset)
            })
            .collect()
    };
    let entries: Vec<CachedCollateral> = (0..3u8)
        .map(|i| CachedCollateral {
            user: Address::repeat_byte(0xB0 + i),
            block: u64::MAX - u64::from(i),
            hash: alloy_primitives::B256::ZERO,
            finalized: None,
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
        hash: alloy_primitives::B256::ZERO,
        finalized: None,
        confirmed: Decimal::new(1_010, 0),
        pending: Decimal::new(2_020, 0),
        assets: [(
            Address::repeat_byte(0xA1),
            CachedAsset {
                confirmed: Some(Decimal::new(1_010, 0)),
                pending: None,
                unrepresentable: Default::default(),
                quarantined: Default::default(),
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
        quarantined: Default::default(),
    };
    let mut entry = CachedCollateral {
        user,
        block: 42,
        hash: alloy_primitives::B256::repeat_byte(0xAB),
        finalized: Some(40),
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
        Some(format!("42|0x{}|40|1010.0|1010.5|0", "ab".repeat(32)).as_str())
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

/// An entry and a watermark of the layout before they named the head's hash and the
/// finalized height are never taken as current: the entry reads as `Corrupt` (alone and
/// with the watermark), the watermark as none, so a reader falls back to the store and a
/// restarted watcher refreshes every holder.
#[tokio::test]
async fn entries_and_watermarks_of_the_older_layout_are_never_current() {
    let cache = fresh_cache("oldstate").await;
    let user = Address::repeat_byte(0xB7);
    let mut conn = cache.connection();
    let hash = format!("0x{}", "ab".repeat(32));
    redis::cmd("HSET")
        .arg(cache.key(&user))
        .arg("~total")
        .arg("42|1010.0|1010.5|1")
        .arg(format!("0x{}", "a1".repeat(20)))
        .arg("1010.0|1010.5")
        .query_async::<()>(&mut conn)
        .await
        .unwrap();
    redis::cmd("SET")
        .arg(cache.watermark_key())
        .arg(format!("42|{hash}"))
        .query_async::<()>(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        cache.watermark().await.unwrap(),
        None,
        "an old watermark is none"
    );
    match cache.get(user).await {
        Err(reorg_collateral::CacheError::Corrupt {
            user: u, detail, ..
        }) => {
            assert_eq!(u, user);
            assert!(detail.contains("older layout"), "{detail}");
        }
        other => panic!("an old entry read as {other:?}"),
    }
    assert!(matches!(
        cache.get_with_watermark(user).await,
        Err(reorg_collateral::CacheError::Corrupt { .. })
    ));
    cache.clear().await.unwrap();
}
