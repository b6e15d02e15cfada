//! The in-memory engine over a simulated chain: deposits, a price feed, a reorg that
//! replaces the newest blocks, and confirmations. Prints each user's confirmed and
//! pending collateral after every step.
//!
//! ```sh
//! cargo run --example quickstart
//! ```

use std::sync::Arc;

use alloy_primitives::{Address, I256, U256};
use reorg_collateral::cache::MemoryCache;
use reorg_collateral::model::{Asset, AssetRegistry};
use reorg_collateral::source::SimulatedChain;
use reorg_collateral::store::MemoryStore;
use reorg_collateral::{EngineConfig, Error, Watcher, WatcherConfig};

const USDC: Address = Address::repeat_byte(0xA1);
const WETH: Address = Address::repeat_byte(0xA2);
const ALICE: Address = Address::repeat_byte(0x11);
const BOB: Address = Address::repeat_byte(0x22);

fn usdc(whole: u64) -> U256 {
    U256::from(whole) * U256::from(10u64).pow(U256::from(6))
}

fn weth(milli: u64) -> U256 {
    U256::from(milli) * U256::from(10u64).pow(U256::from(15))
}

fn usd(price: i64) -> I256 {
    I256::try_from(price * 100_000_000).expect("small")
}

async fn show(step: &str, watcher: &Watcher) -> Result<(), Error> {
    let w = watcher.window();
    println!(
        "\n== {step}: head #{}, finalized #{}",
        w.head().map_or(0, |h| h.number),
        w.finalized_number().map_or("-".into(), |n| n.to_string())
    );
    for (name, user) in [("alice", ALICE), ("bob", BOB)] {
        let c = watcher.collateral(user).await?;
        println!(
            "   {name:<5} confirmed {:>12}   pending {:>12}",
            c.confirmed.total.normalize(),
            c.pending.total.normalize()
        );
    }
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // USDC counts 90 %, WETH 80 % (collateral factors in basis points).
    let assets = AssetRegistry::new([
        Asset::new(USDC, "USDC", 6, 9_000),
        Asset::new(WETH, "WETH", 18, 8_000),
    ])?;
    let mut config = WatcherConfig::new(EngineConfig::new(assets, 3)); // final after 3 confirmations
    config.start_block = 1;

    let chain = Arc::new(SimulatedChain::new(1));
    let store = Arc::new(MemoryStore::new());
    let cache = Arc::new(MemoryCache::new());
    let mut watcher = Watcher::new(config, chain.clone(), store.clone())
        .await?
        .with_cache(cache);
    let mut changes = watcher.subscribe();

    chain.mine(|b| {
        b.price(USDC, usd(1), 8).price(WETH, usd(3_000), 8);
        b.deposit(USDC, ALICE, usdc(10_000));
        b.deposit(WETH, BOB, weth(2_000));
    });
    chain.mine(|b| {
        b.transfer(USDC, ALICE, BOB, usdc(2_500));
    });
    watcher.sync().await?;
    show("two blocks, nothing final yet", &watcher).await?;

    // The newest block (alice → bob transfer) is reorged out and replaced by a different one
    // that touches the same balance: alice withdraws instead, and WETH drops to $2,500.
    chain.reorg(1);
    chain.mine(|b| {
        b.withdraw(USDC, ALICE, usdc(1_000));
        b.price(WETH, usd(2_500), 8);
    });
    let report = watcher.sync().await?;
    println!(
        "\nreorg: {} block(s) rolled back, {} applied",
        report.reverted, report.applied
    );
    show("after the reorg", &watcher).await?;

    for _ in 0..3 {
        chain.mine(|_| {});
    }
    watcher.sync().await?;
    show("three more blocks: up to #3 is confirmed", &watcher).await?;

    watcher.flush().await;
    let mut notified = 0;
    while changes.try_recv().is_some() {
        notified += 1;
    }
    println!(
        "\n{notified} collateral updates (one per refresh); stats: {:?}",
        watcher.stats()
    );
    Ok(())
}
