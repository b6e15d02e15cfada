//! The embedded default's memory over 1,000,000 blocks: the resident set of a process whose
//! `MemoryStore` takes a million one-block changesets (a deposit per block, a price every
//! 10th, finality 12 blocks behind, as the watcher writes them at the head), sampled every
//! 100,000 blocks, with the default retention next to `Retention::UNBOUNDED`.
//!
//! Memory, not time: each configuration runs in a process of its own (this binary
//! re-executed), so one's freed pages do not flatter the other. Run with
//! `cargo bench --bench memory_retention`; the figures go to BENCHMARKS.md.

use std::process::Command;

use alloy_primitives::{Address, B256, I256, U256};
use reorg_collateral::model::{
    BalanceChange, BalanceEvent, BalanceKey, Block, BlockChanges, BlockHeader, Changeset, LogId,
    Price,
};
use reorg_collateral::prelude::*;
use reorg_collateral::store::{MemoryStore, Retention};

const TOKEN: Address = Address::repeat_byte(0xA1);
const BLOCKS: u64 = 1_000_000;
const SAMPLE: u64 = 100_000;
const CONFIRMATIONS: u64 = 12;
const USERS: u64 = 1_000;
/// Set in the child processes: which retention to measure.
const CHILD: &str = "MEMORY_RETENTION_CHILD";

fn header(n: u64) -> BlockHeader {
    let hash = |n: u64| B256::from(U256::from(n + 1));
    BlockHeader {
        number: n,
        hash: hash(n),
        parent_hash: if n == 0 { B256::ZERO } else { hash(n - 1) },
        timestamp: n * 12,
    }
}

/// Block `n` as a changeset: a deposit of one unit to a user, a price every 10th block.
fn changeset(n: u64) -> Changeset {
    let user = Address::left_padding_from(&(n % USERS + 1).to_be_bytes());
    let prices = if n.is_multiple_of(10) {
        vec![Price {
            asset: TOKEN,
            answer: I256::try_from(100_000_000 + n as i64).expect("small"),
            decimals: 8,
            round_id: U256::from(n + 1),
            updated_at: n * 12,
            block: n,
        }]
    } else {
        Vec::new()
    };
    Changeset {
        revert: Vec::new(),
        blocks: vec![BlockChanges {
            block: Block {
                events: vec![BalanceEvent {
                    part: 0,
                    log: LogId {
                        tx_hash: B256::from(U256::from(n)),
                        log_index: 0,
                    },
                    asset: TOKEN,
                    change: BalanceChange::Deposit {
                        user,
                        amount: U256::from(1),
                    },
                }],
                ..Block::empty(header(n))
            },
            balances: vec![(BalanceKey { user, asset: TOKEN }, U256::from(n / USERS + 1))],
            prices,
            rejected_prices: Vec::new(),
            indexes: Vec::new(),
            asset_states: Vec::new(),
            rates: Vec::new(),
        }],
        finalize: n.checked_sub(CONFIRMATIONS).map(header),
    }
}

/// This process's resident set and its peak, in KiB (`/proc/self/status`).
fn rss_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn child(retention: &str) {
    let store = match retention {
        "unbounded" => MemoryStore::with_retention(Retention::UNBOUNDED),
        _ => MemoryStore::new(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let (rss, _) = rss_kib();
    println!("{retention}\t0\t{rss}");
    runtime.block_on(async {
        for n in 0..BLOCKS {
            store.apply(&changeset(n)).await.expect("apply");
            if (n + 1).is_multiple_of(SAMPLE) {
                let (rss, peak) = rss_kib();
                println!("{retention}\t{}\t{rss}\t{peak}", n + 1);
            }
        }
    });
    eprintln!("{retention}: retained {:?}", store.retained());
}

fn main() {
    if let Ok(retention) = std::env::var(CHILD) {
        child(&retention);
        return;
    }
    // `cargo bench` passes `--bench`; a filter that names neither configuration runs both.
    let exe = std::env::current_exe().expect("this binary");
    println!("retention\tblocks\trss_kib\tpeak_kib");
    for retention in ["default", "unbounded"] {
        let out = Command::new(&exe)
            .env(CHILD, retention)
            .output()
            .expect("run a measuring process");
        assert!(
            out.status.success(),
            "{retention}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        print!("{}", String::from_utf8_lossy(&out.stdout));
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
    }
}
