//! Three chains in one database (one schema each, through the chains catalog): three
//! watchers writing and multi-chain readers reading at once. No client ever sees a
//! deadlock (`40P01`) or a serialization failure (`40001`): every error of every client is
//! counted and classified; the writers see none at all. Each chain ends equal to its own
//! replay oracle. Nothing is timed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use reorg_collateral::chains::{ChainId, MultiChainReader};
use reorg_collateral::model::AssetRegistry;
use reorg_collateral::source::ScriptedChain;
use reorg_collateral::store::PostgresStore;
use reorg_collateral::valuation::Valuator;
use reorg_collateral::{CollateralReader, Watcher};

use super::{USERS, assert_oracle, config, script, source};
use crate::support::pg::{database_url, drop_schema_with_chains, unique_schema_name};

/// Steps each chain's script takes (blocks, sometimes a reorg).
const STEPS: usize = 60;
/// Balance events per block.
const EVENTS: usize = 6;
/// Concurrent readers.
const READERS: usize = 3;
/// Successful reads each reader makes at least (it keeps reading until the writers end).
const MIN_READS: u64 = 10;

/// The SQLSTATE of the first database error in `e`'s source chain.
fn sqlstate(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut next = Some(e);
    while let Some(e) = next {
        if let Some(sqlx::Error::Database(d)) = e.downcast_ref::<sqlx::Error>() {
            return d.code().map(|c| c.into_owned());
        }
        next = e.source();
    }
    None
}

/// The client errors seen: every one, and the deadlocks / serialization failures among
/// them.
#[derive(Debug, Default)]
struct Errors {
    all: std::sync::Mutex<Vec<String>>,
    conflicts: AtomicU64,
}

impl Errors {
    fn record(&self, who: &str, e: &(dyn std::error::Error + 'static)) {
        let code = sqlstate(e);
        if matches!(code.as_deref(), Some("40P01" | "40001")) {
            self.conflicts.fetch_add(1, Ordering::Relaxed);
        }
        self.all
            .lock()
            .unwrap()
            .push(format!("{who}: {e} (sqlstate {code:?})"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_chains_write_and_read_at_once_without_conflicts() {
    let url = database_url();
    let base_schema = unique_schema_name();
    let base = PostgresStore::connect_in_schema(&url, &base_schema)
        .await
        .expect("base store");
    let ids = [1u64, 10, 8453];
    let mut stores = Vec::new();
    for id in ids {
        stores.push(Arc::new(if id == 1 {
            base.clone()
        } else {
            base.chain(ChainId(id)).await.expect("chain store")
        }));
    }
    let mut scripts: Vec<ScriptedChain> = ids.iter().map(|id| script(100 + id)).collect();

    // Watchers claim first (the base's claim makes its catalog row chain 1).
    let mut watchers = Vec::new();
    for ((id, store), script) in ids.iter().zip(&stores).zip(&scripts) {
        watchers.push(
            Watcher::new(config(), source(script, Some(*id)), store.clone())
                .await
                .expect("claim"),
        );
    }
    assert_eq!(
        base.chains().await.unwrap(),
        vec![
            (ChainId(1), base_schema.clone()),
            (ChainId(10), format!("{base_schema}_c10")),
            (ChainId(8453), format!("{base_schema}_c8453")),
        ]
    );

    let registry = Arc::new(AssetRegistry::new(ScriptedChain::demo_assets()).unwrap());
    let reader = MultiChainReader::new(ids.iter().zip(&stores).map(|(id, store)| {
        let store: Arc<dyn reorg_collateral::BalanceStore> = store.clone();
        (
            ChainId(*id),
            CollateralReader::new(store, Valuator::new(registry.clone(), u64::MAX)),
        )
    }))
    .expect("reader");

    let errors = Arc::new(Errors::default());
    let writing = Arc::new(AtomicBool::new(true));
    let mut writers = Vec::new();
    for (i, (mut watcher, mut script)) in watchers.into_iter().zip(scripts.drain(..)).enumerate() {
        let errors = errors.clone();
        // Polled together on this task (a watcher's future is not `Send`): their
        // statements interleave on the server.
        writers.push(async move {
            for _ in 0..STEPS {
                script.step(EVENTS);
                if let Err(e) = watcher.sync().await {
                    errors.record(&format!("writer {i}"), &e);
                    // Retry the same chain position once; a second failure ends the writer.
                    if let Err(e) = watcher.sync().await {
                        errors.record(&format!("writer {i}"), &e);
                        break;
                    }
                }
            }
            (script, watcher.stats())
        });
    }
    let mut readers = Vec::new();
    // Readers on their own tasks, in parallel with the writers.
    for r in 0..READERS {
        let (reader, errors, writing) = (reader.clone(), errors.clone(), writing.clone());
        readers.push(tokio::spawn(async move {
            let mut ok = 0u64;
            let mut turn = 0usize;
            while writing.load(Ordering::Acquire) || ok < MIN_READS {
                let user = ScriptedChain::demo_user((r + turn) % USERS);
                turn += 1;
                match reader.collateral(user).await {
                    Ok(_) => ok += 1,
                    Err(e) => errors.record(&format!("reader {r}"), &e),
                }
                tokio::task::yield_now().await;
            }
            ok
        }));
    }

    let finished = futures::future::join_all(writers).await;
    writing.store(false, Ordering::Release);
    let mut reads = 0;
    for r in readers {
        reads += r.await.expect("reader task");
    }

    let all = errors.all.lock().unwrap().clone();
    assert_eq!(
        errors.conflicts.load(Ordering::Relaxed),
        0,
        "deadlocks or serialization failures seen by the clients: {all:#?}"
    );
    let writer_errors: Vec<_> = all.iter().filter(|e| e.starts_with("writer")).collect();
    assert!(
        writer_errors.is_empty(),
        "writers failed: {writer_errors:#?}"
    );
    let reader_db_errors: Vec<_> = all
        .iter()
        .filter(|e| e.starts_with("reader") && !e.ends_with("(sqlstate None)"))
        .collect();
    assert!(
        reader_db_errors.is_empty(),
        "readers saw database errors: {reader_db_errors:#?}"
    );
    assert!(reads >= READERS as u64 * MIN_READS);

    for ((id, store), (script, stats)) in ids.iter().zip(&stores).zip(&finished) {
        assert!(
            stats.blocks_applied >= STEPS as u64,
            "chain {id}: {stats:?}"
        );
        assert_oracle(store, script, &format!("chain {id}")).await;
    }
    // With the writers stopped, the multi-chain read is each chain's own.
    for i in 0..USERS {
        let user = ScriptedChain::demo_user(i);
        let multi = reader.collateral(user).await.expect("final read");
        for (id, store) in ids.iter().zip(&stores) {
            let store: Arc<dyn reorg_collateral::BalanceStore> = store.clone();
            let own = CollateralReader::new(store, Valuator::new(registry.clone(), u64::MAX))
                .collateral(user)
                .await
                .expect("one chain's read");
            assert_eq!(multi.chains.get(&ChainId(*id)), Some(&own), "chain {id}");
        }
    }

    drop_schema_with_chains(base.pool(), &base_schema).await;
}
