//! The head memo: the balances at the watcher's head that the watcher wrote itself.
//!
//! Applying a block needs the balances of the keys it touches just before it (the store's
//! [`balances_at`](crate::traits::StoreWriter::balances_at) of the parent). When the block extends
//! the head, every key the watcher wrote since its last reorg already has its value at the
//! head in memory: the value after the last block that touched it. Reading those again
//! from the store is a wasted round trip's worth of work (on Postgres, a quarter of a
//! catch-up changeset's time). The watcher is the store's single writer, so nothing else
//! changes these values behind its back.

use std::collections::HashMap;

use alloy_primitives::U256;

use crate::model::{BalanceKey, BlockNumber, Changeset};

/// Per key, its balance at the head (`head`), for keys written since the last reorg.
///
/// Invariant: every entry is the key's balance at `head`, the head of the chain as the
/// store holds it. Kept by [`record`](Self::record) after every changeset the store
/// committed; a changeset that reverts blocks empties it (values at the old head are not
/// values at the new one). When it holds `capacity` keys, it takes no new ones.
#[derive(Debug)]
pub(super) struct HeadMemo {
    head: Option<BlockNumber>,
    values: HashMap<BalanceKey, U256>,
    capacity: usize,
}

impl HeadMemo {
    /// An empty memo holding at most `capacity` keys (0 disables it).
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            head: None,
            values: HashMap::new(),
            capacity,
        }
    }

    /// Takes in a changeset the store has committed.
    pub(super) fn record(&mut self, changes: &Changeset) {
        if self.capacity == 0 {
            return;
        }
        if !changes.revert.is_empty() {
            self.values.clear();
        }
        // Blocks ascend: a later block's value replaces an earlier one. When full, keys
        // held are still updated and new keys are left to the store.
        for b in &changes.blocks {
            for (key, value) in &b.balances {
                if let Some(held) = self.values.get_mut(key) {
                    *held = *value;
                } else if self.values.len() < self.capacity {
                    self.values.insert(*key, *value);
                }
            }
        }
        if let Some(head) = changes.new_head() {
            self.head = Some(head.number);
        }
    }

    /// Forgets everything (e.g. after a failed write, when the store's state is unknown).
    pub(super) fn clear(&mut self) {
        self.values.clear();
        self.head = None;
    }

    /// The balances of `keys` at `at` that are known here, in order: all `None` unless
    /// `at` is the head.
    pub(super) fn lookup(&self, keys: &[BalanceKey], at: BlockNumber) -> Vec<Option<U256>> {
        if self.head != Some(at) || self.values.is_empty() {
            return vec![None; keys.len()];
        }
        keys.iter().map(|k| self.values.get(k).copied()).collect()
    }

    /// How many keys are held.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.values.len()
    }
}

#[cfg(test)]
mod tests {
    use alloy_primitives::{Address, B256};

    use super::*;
    use crate::model::{Block, BlockChanges, BlockHeader};

    fn key(user: u8) -> BalanceKey {
        BalanceKey {
            user: Address::repeat_byte(user),
            asset: Address::repeat_byte(0xA1),
        }
    }

    fn header(number: u64) -> BlockHeader {
        BlockHeader {
            number,
            hash: B256::repeat_byte(number as u8),
            parent_hash: B256::repeat_byte(number as u8 - 1),
            timestamp: number,
        }
    }

    fn applied(number: u64, balances: &[(u8, u64)]) -> BlockChanges {
        BlockChanges {
            block: Block::empty(header(number)),
            balances: balances
                .iter()
                .map(|&(u, v)| (key(u), U256::from(v)))
                .collect(),
            prices: Vec::new(),
            rejected_prices: Vec::new(),
            indexes: Vec::new(),
            asset_states: Vec::new(),
            rates: Vec::new(),
        }
    }

    #[test]
    fn latest_value_per_key_at_the_head_only() {
        let mut memo = HeadMemo::new(10);
        memo.record(&Changeset {
            blocks: vec![applied(5, &[(1, 10), (2, 20)]), applied(6, &[(1, 11)])],
            ..Changeset::default()
        });
        let keys = [key(1), key(2), key(3)];
        assert_eq!(
            memo.lookup(&keys, 6),
            vec![Some(U256::from(11)), Some(U256::from(20)), None]
        );
        assert_eq!(memo.lookup(&keys, 5), vec![None; 3], "not the head");
        // Finality alone changes no value and keeps the head.
        memo.record(&Changeset {
            finalize: Some(header(5)),
            ..Changeset::default()
        });
        assert_eq!(memo.lookup(&keys[..1], 6), vec![Some(U256::from(11))]);
    }

    #[test]
    fn a_reorg_empties_it_and_a_full_memo_takes_no_new_keys() {
        let mut memo = HeadMemo::new(2);
        memo.record(&Changeset {
            blocks: vec![applied(5, &[(1, 10)])],
            ..Changeset::default()
        });
        memo.record(&Changeset {
            revert: vec![header(5)],
            blocks: vec![applied(5, &[(2, 7)])],
            ..Changeset::default()
        });
        assert_eq!(
            memo.lookup(&[key(1), key(2)], 5),
            vec![None, Some(U256::from(7))],
            "key 1's value belonged to the reverted block"
        );
        memo.record(&Changeset {
            blocks: vec![applied(6, &[(3, 1), (4, 1)])],
            ..Changeset::default()
        });
        assert_eq!(
            memo.lookup(&[key(2), key(3), key(4)], 6),
            vec![Some(U256::from(7)), Some(U256::from(1)), None],
            "full at capacity 2: key 4 is left to the store"
        );
        memo.record(&Changeset {
            blocks: vec![applied(7, &[(2, 8)])],
            ..Changeset::default()
        });
        assert_eq!(
            memo.lookup(&[key(2)], 7),
            vec![Some(U256::from(8))],
            "held keys stay current"
        );
        assert_eq!(memo.len(), 2);
        let mut off = HeadMemo::new(0);
        off.record(&Changeset {
            blocks: vec![applied(5, &[(1, 10)])],
            ..Changeset::default()
        });
        assert_eq!(off.lookup(&[key(1)], 5), vec![None]);
    }
}
