//! Rebasing tokens: balances held as shares, converted with a per-asset index.
//!
//! A rebasing token (Ampleforth's UFragments) changes every holder's balance with one
//! event. The store keeps such an asset's balances in *shares* (UFragments' gons) and one
//! [`AssetIndex`] per asset, block-scoped and reorg-aware like a price: a rebase is one
//! index row, not one row per holder. Readers convert shares to a balance with the
//! confirmed index on the confirmed side and the pending index on the pending side.
//!
//! An asset is rebasing from the first [`BalanceChange::Rebase`](super::BalanceChange::Rebase)
//! the chain delivers for it (UFragments' decoder emits one with the initial mint,
//! see [`crate::decode::ufragments`]); before that its amounts are taken as they are.
//! The index is chain state only, with no chain id in it: an `AssetId` that gains a chain
//! carries it into the index's key unchanged.

use alloy_primitives::{U256, U512};

use super::AssetId;

/// An asset's index: a holder with `shares` holds `floor(shares × num ÷ den)` tokens, and
/// an amount of `amount` tokens moved by an event is `amount × den ÷ num` shares.
///
/// UFragments ([`IndexFormula::DivByIndex`]) is `num = 1`, `den = gonsPerFragment`: a
/// transfer of `value` moves `value × gonsPerFragment` gons exactly (as the token does),
/// and a balance is `gons ÷ gonsPerFragment`, floored (as `balanceOf` is).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AssetIndex {
    /// Numerator of tokens per share (positive).
    pub num: U256,
    /// Denominator of tokens per share (positive).
    pub den: U256,
}

impl AssetIndex {
    /// UFragments' index for `gons_per_fragment` (`num = 1`).
    pub fn div_by(gons_per_fragment: U256) -> Self {
        Self {
            num: U256::from(1),
            den: gons_per_fragment,
        }
    }

    /// Whether the index can convert (both parts positive).
    pub fn is_valid(&self) -> bool {
        !self.num.is_zero() && !self.den.is_zero()
    }

    /// The balance `shares` make: `floor(shares × num ÷ den)` (exact, in 512 bits); `None`
    /// for an invalid index or a balance past `U256::MAX`.
    pub fn balance(&self, shares: U256) -> Option<U256> {
        mul_div(shares, self.num, self.den)
    }

    /// The shares an event's token amount moves: `floor(amount × den ÷ num)`; `None` for
    /// an invalid index or a share count past `U256::MAX`.
    pub fn shares(&self, amount: U256) -> Option<U256> {
        mul_div(amount, self.den, self.num)
    }
}

/// `floor(a × b ÷ c)` in 512 bits; `None` if `c` is zero or the quotient exceeds 256 bits.
fn mul_div(a: U256, b: U256, c: U256) -> Option<U256> {
    if c.is_zero() {
        return None;
    }
    let product: U512 = a.widening_mul(b);
    let quotient = product / U512::from(c);
    let limbs = quotient.as_limbs();
    limbs[4..]
        .iter()
        .all(|l| *l == 0)
        .then(|| U256::from_limbs([limbs[0], limbs[1], limbs[2], limbs[3]]))
}

/// How a rebasing token's supply change becomes an index (see [`AssetIndex`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IndexFormula {
    /// UFragments: `balance = gons ÷ gonsPerFragment`; `LogRebase(epoch, totalSupply)` sets
    /// `gonsPerFragment = total_gons ÷ totalSupply` (integer division, as the token does).
    DivByIndex {
        /// The token's `TOTAL_GONS` constant.
        total_gons: U256,
    },
}

impl IndexFormula {
    /// The index after a rebase to `total_supply`; `None` for a zero supply.
    pub fn index(&self, total_supply: U256) -> Option<AssetIndex> {
        match self {
            IndexFormula::DivByIndex { total_gons } => {
                let gpf = total_gons.checked_div(total_supply)?;
                (!gpf.is_zero()).then(|| AssetIndex::div_by(gpf))
            }
        }
    }
}

/// The index of one asset after one block, as a block writes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IndexUpdate {
    /// The rebasing asset.
    pub asset: AssetId,
    /// Its index after the block.
    pub index: AssetIndex,
    /// Whether the block changed it (a rebase): every holder's balance may have changed.
    /// `false` for a block that only moved shares of the asset.
    pub rebased: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ufragments_rounding() {
        // UFragments: TOTAL_GONS = MAX - MAX % INITIAL_FRAGMENTS_SUPPLY (50M × 10^9).
        let initial = U256::from(50_000_000u64) * U256::from(10u64).pow(U256::from(9));
        let total_gons = U256::MAX - U256::MAX % initial;
        let f = IndexFormula::DivByIndex { total_gons };
        let i = f.index(initial).unwrap();
        assert_eq!(i.balance(total_gons), Some(initial));
        // A rebase to an odd supply: gonsPerFragment is floored, balances floored.
        let supply = initial + U256::from(7);
        let j = f.index(supply).unwrap();
        assert_eq!(j.den, total_gons / supply);
        assert_eq!(
            j.balance(total_gons),
            Some(total_gons / (total_gons / supply))
        );
        assert_eq!(j.shares(U256::from(3)), Some(U256::from(3) * j.den));
        assert_eq!(f.index(U256::ZERO), None);
        assert!(
            AssetIndex::div_by(U256::ZERO)
                .balance(U256::from(1))
                .is_none()
        );
        let huge = AssetIndex {
            num: U256::MAX,
            den: U256::from(1),
        };
        assert_eq!(huge.balance(U256::from(2)), None);
        assert_eq!(huge.balance(U256::from(1)), Some(U256::MAX));
    }
}
