//! Two simulated chains, one store and one watcher each: Ethereum (its ETH/USD feed, USDC)
//! and Base (USDC, WETH). Base's WETH is valued with the price of Ethereum's feed; a reorg
//! on Base replaces a deposit while Ethereum goes on. Prints the user's collateral per
//! chain and in total, and its lines by symbol (USDC on both chains is one line).
//!
//! ```sh
//! cargo run --example multichain
//! ```

use std::sync::Arc;

use alloy_primitives::{Address, I256, U256};
use reorg_collateral::chains::{ChainId, MultiChainReader, MultiCollateral};
use reorg_collateral::model::{Asset, AssetRegistry};
use reorg_collateral::reader::CollateralReader;
use reorg_collateral::source::SimulatedChain;
use reorg_collateral::store::MemoryStore;
use reorg_collateral::{EngineConfig, Watcher, WatcherConfig};

const BASE: ChainId = ChainId(8453);
// Ethereum's tokens.
const ETH_USDC: Address = Address::repeat_byte(0xA1);
const ETH_WETH: Address = Address::repeat_byte(0xA2);
// Base's tokens (other addresses: other assets, the same symbols).
const BASE_USDC: Address = Address::repeat_byte(0xB1);
const BASE_WETH: Address = Address::repeat_byte(0xB2);
const ALICE: Address = Address::repeat_byte(0x11);

fn units(whole: u64, decimals: u8) -> U256 {
    U256::from(whole) * U256::from(10u64).pow(U256::from(decimals))
}

fn usd(price: i64) -> I256 {
    I256::try_from(price * 100_000_000).expect("small")
}

fn show(step: &str, c: &MultiCollateral) {
    println!("\n== {step}");
    for (chain, state) in &c.at {
        let one = &c.chains[chain];
        println!(
            "   {chain:<11} {state}: confirmed {:>10}  pending {:>10}",
            one.confirmed.total.normalize(),
            one.pending.total.normalize()
        );
    }
    println!(
        "   total                 confirmed {:>10}  pending {:>10}  complete: {}",
        c.confirmed.normalize(),
        c.pending.normalize(),
        c.complete
    );
    for (symbol, line) in c.by_symbol() {
        println!(
            "     {symbol:<5} on {} chain(s): confirmed {:>10}  pending {:>10}",
            line.assets.len(),
            line.confirmed.normalize(),
            line.pending.normalize()
        );
    }
}

async fn watcher(
    assets: AssetRegistry,
    chain: &Arc<SimulatedChain>,
    store: &Arc<MemoryStore>,
) -> Result<Watcher, reorg_collateral::Error> {
    let mut config = WatcherConfig::new(EngineConfig::new(assets, 2)); // final after 2 blocks
    config.start_block = 1;
    Watcher::new(config, chain.clone(), store.clone()).await
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let eth_assets = AssetRegistry::new([
        Asset::new(ETH_USDC, "USDC", 6, 9_000),
        Asset::new(ETH_WETH, "WETH", 18, 8_000),
    ])?;
    let base_assets = AssetRegistry::new([
        Asset::new(BASE_USDC, "USDC", 6, 8_500),
        Asset::new(BASE_WETH, "WETH", 18, 7_500),
    ])?;
    let (eth, base) = (
        Arc::new(SimulatedChain::new(1)),
        Arc::new(SimulatedChain::new(1)),
    );
    let (eth_store, base_store) = (Arc::new(MemoryStore::new()), Arc::new(MemoryStore::new()));
    let mut eth_watcher = watcher(eth_assets.clone(), &eth, &eth_store).await?;
    let mut base_watcher = watcher(base_assets.clone(), &base, &base_store).await?;

    // One reader per chain; Base's WETH takes Ethereum's ETH/USD price.
    let eth_reader = CollateralReader::new(eth_store.clone(), eth_watcher.valuator().clone());
    let base_reader = CollateralReader::new(base_store.clone(), base_watcher.valuator().clone())
        .with_price_from(BASE_WETH, eth_store.clone(), ChainId::ETHEREUM, ETH_WETH)?;
    let reader = MultiChainReader::new([(ChainId::ETHEREUM, eth_reader), (BASE, base_reader)])?;

    eth.mine(|b| {
        b.price(ETH_USDC, usd(1), 8).price(ETH_WETH, usd(3_000), 8);
        b.deposit(ETH_USDC, ALICE, units(10_000, 6));
    });
    base.mine(|b| {
        b.price(BASE_USDC, usd(1), 8);
        b.deposit(BASE_USDC, ALICE, units(2_000, 6));
        b.deposit(BASE_WETH, ALICE, units(1, 18));
    });
    eth_watcher.sync().await?;
    base_watcher.sync().await?;
    show(
        "one block on each chain, nothing final",
        &reader.collateral(ALICE).await?,
    );

    // Ethereum's price moves; Base's WETH is revalued with it (pending × pending).
    eth.mine(|b| {
        b.price(ETH_WETH, usd(3_200), 8);
    });
    eth_watcher.sync().await?;
    show(
        "a new ETH/USD price on Ethereum",
        &reader.collateral(ALICE).await?,
    );

    // A reorg on Base replaces the WETH deposit with a smaller one; Ethereum is untouched.
    base.reorg(1);
    base.mine(|b| {
        b.price(BASE_USDC, usd(1), 8);
        b.deposit(BASE_USDC, ALICE, units(2_000, 6));
        b.deposit(BASE_WETH, ALICE, units(1, 17));
    });
    base_watcher.sync().await?;
    show(
        "a reorg on Base replaced its block",
        &reader.collateral(ALICE).await?,
    );

    // Both chains finalize: confirmed balances × confirmed prices.
    for _ in 0..2 {
        eth.mine(|_| {});
        base.mine(|_| {});
    }
    eth_watcher.sync().await?;
    base_watcher.sync().await?;
    show(
        "both chains finalized their first blocks",
        &reader.collateral(ALICE).await?,
    );
    Ok(())
}
