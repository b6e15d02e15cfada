use std::sync::Arc;

use alloy_primitives::{Address, I256, U256};

use super::SimulatedChain;
use crate::model::{Asset, BlockNumber};

/// A deterministic, seeded script of chain activity over a [`SimulatedChain`]: blocks of
/// deposits, absolute balance reports, transfers and oracle updates, with shallow reorgs
/// (depth ≤ 2, always replaced by at least as many blocks, so heights never go down).
///
/// Two scripts with the same seed, users and assets produce identical chains step by
/// step, which lets a test compare a crashed-and-restarted run with an uninterrupted one.
#[derive(Debug)]
pub struct ScriptedChain {
    /// The chain the script mines on; hand a clone to the watcher as its `BlockSource`.
    pub chain: Arc<SimulatedChain>,
    users: Vec<Address>,
    assets: Vec<Asset>,
    state: u64,
}

impl ScriptedChain {
    /// The assets the demos and the CLI script over: USDC (6 decimals, 90 %) and WETH
    /// (18 decimals, 80 %).
    pub fn demo_assets() -> Vec<Asset> {
        vec![
            Asset::new(Address::repeat_byte(0xA1), "USDC", 6, 9_000),
            Asset::new(Address::repeat_byte(0xA2), "WETH", 18, 8_000),
        ]
    }

    /// The `i`-th demo user: `0x00…0(i+1)`.
    pub fn demo_user(i: usize) -> Address {
        let mut b = [0u8; 20];
        b[12..].copy_from_slice(&(i as u64 + 1).to_be_bytes());
        Address::from(b)
    }

    /// A script starting at block `start`.
    pub fn new(seed: u64, start: BlockNumber, users: Vec<Address>, assets: Vec<Asset>) -> Self {
        Self {
            chain: Arc::new(SimulatedChain::new(start)),
            users,
            assets,
            state: seed.max(1),
        }
    }

    fn next(&mut self, n: u64) -> u64 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        self.state % n.max(1)
    }

    fn pick_user(&mut self) -> Address {
        let i = self.next(self.users.len() as u64) as usize;
        self.users[i]
    }

    /// An asset and the factor that turns script amounts (up to 10^9) into whole-token
    /// scale for its decimals.
    fn pick_asset(&mut self) -> (Address, U256) {
        let i = self.next(self.assets.len() as u64) as usize;
        let scale = U256::from(10u64).pow(U256::from(self.assets[i].decimals.saturating_sub(6)));
        (self.assets[i].id, scale)
    }

    /// Mines one block of `events` balance events (plus, sometimes, a price update).
    pub fn mine(&mut self, events: usize) {
        let mut ops = Vec::with_capacity(events);
        for _ in 0..events {
            let (user, other, (asset, scale)) =
                (self.pick_user(), self.pick_user(), self.pick_asset());
            let amount = U256::from(self.next(1_000_000_000) + 1) * scale;
            ops.push((self.next(3), user, other, asset, amount));
        }
        // Every asset is priced in the script's first block; later, one in four blocks
        // updates one feed.
        let mut prices = Vec::new();
        if self.chain.head_number() == self.chain.start() {
            for asset in self.assets.clone() {
                prices.push((asset.id, self.next(5_000_000_000_000) as i64 + 1));
            }
        } else if self.next(4) == 0 {
            let (asset, _) = self.pick_asset();
            prices.push((asset, self.next(5_000_000_000_000) as i64 + 1));
        }
        self.chain.mine(|b| {
            for (kind, user, other, asset, amount) in ops {
                match kind {
                    0 => {
                        b.deposit(asset, user, amount);
                    }
                    1 => {
                        // Report an absolute balance, then move part of it: always valid.
                        b.set_balance(asset, user, amount * U256::from(2));
                        b.transfer(asset, user, other, amount);
                    }
                    _ => {
                        b.set_balance(asset, user, amount);
                    }
                }
            }
            for (asset, answer) in prices {
                b.price(asset, I256::try_from(answer).unwrap_or(I256::ONE), 8);
            }
        });
    }

    /// One step: usually a new block, sometimes a reorg of depth 1–2 replaced by one more
    /// block than it removed.
    pub fn step(&mut self, events: usize) {
        if self.next(5) == 0 && self.chain.head_number() > self.chain.start() + 3 {
            let depth = self.next(2) + 1;
            self.chain.reorg(depth);
            for _ in 0..=depth {
                self.mine(events);
            }
        } else {
            self.mine(events);
        }
    }
}
