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
//!
//! Lido's stETH ([`IndexFormula::SharesRatio`], see [`crate::decode::steth`]) is the other
//! shape: its events name shares, which the fold moves as they are
//! ([`BalanceChange::TransferShares`](super::BalanceChange::TransferShares)), and its index
//! is `num = totalPooledEther`, `den = totalShares`.

use alloy_primitives::{U256, U512};

use super::AssetId;

/// An asset's index: a holder with `shares` holds `floor(shares × num ÷ den)` tokens, and
/// an amount of `amount` tokens moved by an event is `amount × den ÷ num` shares.
///
/// UFragments ([`IndexFormula::DivByIndex`]) is `num = 1`, `den = gonsPerFragment`: a
/// transfer of `value` moves `value × gonsPerFragment` gons exactly (as the token does),
/// and a balance is `gons ÷ gonsPerFragment`, floored (as `balanceOf` is).
///
/// stETH ([`IndexFormula::SharesRatio`]) is `num = totalPooledEther`, `den = totalShares`:
/// a balance is `shares × totalPooledEther ÷ totalShares`, floored, as `balanceOf` (through
/// `getPooledEthByShares`) is.
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

    /// stETH's index for `total_pooled_ether` and `total_shares` (`TokenRebased`'s
    /// `postTotalEther` and `postTotalShares`, or `getTotalPooledEther()` and
    /// `getTotalShares()`); `None` if either is zero (no index converts then).
    pub fn shares_ratio(total_pooled_ether: U256, total_shares: U256) -> Option<Self> {
        let index = Self {
            num: total_pooled_ether,
            den: total_shares,
        };
        index.is_valid().then_some(index)
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
    /// Lido stETH: `balance = shares × totalPooledEther ÷ totalShares` (floor, as
    /// `getPooledEthByShares` is). Its events name shares (`TransferShares`, `SharesBurnt`),
    /// moved as they are, and `TokenRebased` carries the index's two parts
    /// ([`AssetIndex::shares_ratio`]; see [`crate::decode::steth`]). It has no one-number
    /// index: [`IndexFormula::index`] is `None` for it.
    SharesRatio,
}

impl IndexFormula {
    /// The index after a rebase to `total_supply`; `None` for a zero supply, and for
    /// [`IndexFormula::SharesRatio`] (whose index is two numbers:
    /// [`AssetIndex::shares_ratio`]).
    pub fn index(&self, total_supply: U256) -> Option<AssetIndex> {
        match self {
            IndexFormula::DivByIndex { total_gons } => {
                let gpf = total_gons.checked_div(total_supply)?;
                (!gpf.is_zero()).then(|| AssetIndex::div_by(gpf))
            }
            IndexFormula::SharesRatio => None,
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

    #[test]
    fn steth_shares_ratio_rounding() {
        // Mainnet-sized totals (about 9.4M ether over 8.0M shares); expected values from
        // exact integer arithmetic (Python).
        let pooled = U256::from(9_412_345_678_901_234_567_890_123u128);
        let total = U256::from(7_987_654_321_098_765_432_109_877u128);
        let i = AssetIndex::shares_ratio(pooled, total).unwrap();
        assert_eq!((i.num, i.den), (pooled, total));
        let one_ether = U256::from(10u64).pow(U256::from(18));
        assert_eq!(
            i.balance(one_ether),
            Some(U256::from(1_178_361_669_212_356_638u64))
        );
        // Floored, as `getPooledEthByShares` is: 7 × 1.178… = 8.24… → 8.
        assert_eq!(i.balance(U256::from(1)), Some(U256::from(1)));
        assert_eq!(i.balance(U256::from(7)), Some(U256::from(8)));
        // shares × pooled past 2^256 is still exact (512-bit product).
        let big = U256::from(1) << 255;
        let expected: U256 =
            "68222479777635033965664775829787807692896066449467939002268746768261627242982"
                .parse()
                .unwrap();
        assert_eq!(i.balance(big), Some(expected));
        // A balance past U256::MAX is refused, not wrapped.
        assert_eq!(i.balance(U256::MAX), None);
        let below = AssetIndex::shares_ratio(total - U256::from(1), total).unwrap();
        let expected: U256 =
            "115792089237316195423570970512305793336818067717333858966841305900894878802208"
                .parse()
                .unwrap();
        assert_eq!(below.balance(U256::MAX), Some(expected));
        // Token amounts back to shares floor too; never more shares than were held.
        for shares in [1u64, 7, 1_000_003, 10u64.pow(18)] {
            let s = U256::from(shares);
            assert!(i.shares(i.balance(s).unwrap()).unwrap() <= s);
        }
        // No index from a zero part; the formula has no one-number index.
        assert_eq!(AssetIndex::shares_ratio(U256::ZERO, total), None);
        assert_eq!(AssetIndex::shares_ratio(pooled, U256::ZERO), None);
        assert_eq!(IndexFormula::SharesRatio.index(pooled), None);
    }
}
