//! The opening index of each rebasing asset: a watcher that starts after a rebasing token's
//! deployment has no index for it (the store is empty), so its shares would read 1:1 and its
//! opening balances would not convert. At its first block, if that is the configured start
//! block, it reads each asset's index at the block's parent
//! ([`ChainBalances::index_at`](crate::traits::ChainBalances::index_at)) and writes it as a
//! `Rebase` row with a synthetic correction id, before the opening balances of that block
//! (which the fold then converts to shares with it).

use alloy_primitives::Address;

use super::Watcher;
use crate::engine::Transition;
use crate::error::Error;
use crate::model::{BalanceChange, BalanceEvent, BlockRef, Correction};

impl Watcher {
    /// Adds the opening index rows to the start block of `transition`, if it holds the
    /// watcher's first block and the source reads indexes.
    pub(super) async fn add_opening_indexes(
        &self,
        transition: &mut Transition,
    ) -> Result<(), Error> {
        if self.engine.window().head().is_some() {
            return Ok(());
        }
        let source = self.source.clone();
        let Some(chain) = source.chain_balances() else {
            return Ok(());
        };
        let start = self.config.start_block;
        let Some(block) = transition
            .new_blocks()
            .iter()
            .find(|b| b.header.number == start && start > 0)
        else {
            return Ok(());
        };
        let parent = BlockRef {
            number: start - 1,
            hash: block.header.parent_hash,
        };
        let mut assets: Vec<_> = self.config.engine.assets.iter().map(|a| a.id).collect();
        assets.sort();
        let mut indexes = Vec::new();
        for asset in assets {
            if let Some(index) = chain.index_at(asset, parent).await? {
                indexes.push((asset, index));
            }
        }
        if indexes.is_empty() {
            return Ok(());
        }
        tracing::info!(
            block = start,
            indexes = indexes.len(),
            "opening indexes read"
        );
        let chain_id = self.chain_id;
        let Some(block) = transition
            .new_blocks_mut()
            .iter_mut()
            .find(|b| b.header.number == start)
        else {
            return Ok(());
        };
        let existing = block
            .events
            .iter()
            .take_while(|e| e.log.is_correction())
            .count();
        let rows = indexes.into_iter().enumerate().map(|(i, (asset, index))| {
            let i = (existing + i) as u64;
            BalanceEvent {
                part: 0,
                log: Correction::log_id(chain_id, parent.number, Address::ZERO, asset, i),
                asset,
                change: BalanceChange::Rebase { index },
            }
        });
        block.events.splice(existing..existing, rows);
        Ok(())
    }
}
