//! [`Explanation`]: why a user's collateral is what it is — per asset and side, the balance
//! with the log rows that produced it, the price used (round, block, age, source), the
//! factor and the arithmetic with its rounding. Built by
//! [`CollateralReader::explain`](super::CollateralReader::explain); its `Display` is the
//! text of `reorg-collateral explain`.

use std::fmt;

use alloy_primitives::U256;
use rust_decimal::Decimal;

use crate::model::{AssetId, Collateral, Effect, Price, PriceStatus, StateRef, UserId};
use crate::traits::{LogRecord, LogStatus};
use crate::valuation::Arithmetic;

/// Where a price came from. Today every price is the asset's own oracle feed, ingested by
/// the store from the feed's logs; derived prices will add variants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PriceOrigin {
    /// The asset's own feed (`Contract::Feed`), accepted by the engine from a block's log.
    Feed,
    /// A feed of another chain, read from that chain's store
    /// ([`CollateralReader::with_price_from`](super::CollateralReader::with_price_from)):
    /// the price's block is a block of that chain.
    OtherChain {
        /// The other chain.
        chain: crate::chains::ChainId,
        /// The key the price is stored under there.
        key: AssetId,
    },
}

/// The price one side of an asset was valued with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PriceUsed {
    /// The price: answer, decimals, round, the oracle's `updated_at` and the carrying block.
    pub price: Price,
    /// Seconds between `updated_at` and the valuation time (either way).
    pub age: u64,
    /// Where it came from.
    pub origin: PriceOrigin,
}

/// One side (confirmed or pending) of one asset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SideExplanation {
    /// The balance on this side (token's smallest unit).
    pub balance: U256,
    /// The latest log rows this side's balance is the fold of, latest first, at most the
    /// asked limit (confirmed rows for the confirmed side, every canonical row for the
    /// pending side). A memory store's retention may have dropped older rows.
    pub rows: Vec<LogRecord>,
    /// Whether older rows exist beyond `rows`.
    pub truncated: bool,
    /// The price this side was valued with, if any.
    pub price: Option<PriceUsed>,
    /// The price status of the valuation; `None` for a zero balance (left out of it).
    pub status: Option<PriceStatus>,
    /// The value that entered the total (equal to `arithmetic.value` unless the total
    /// itself could not hold it, then `None` and [`PriceStatus::Unrepresentable`]).
    pub value: Option<Decimal>,
    /// The arithmetic of the value, when the balance is not zero and a price is known (for
    /// vault shares, that of their underlying units at `rate`, when a rate is known).
    pub arithmetic: Option<Arithmetic>,
    /// For vault shares ([`PriceSource::Derived`](crate::model::PriceSource::Derived)): the
    /// rate this side was valued at, if any; `None` for every other asset.
    pub rate: Option<crate::model::RateUpdate>,
}

/// One asset of an [`Explanation`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssetExplanation {
    /// The asset.
    pub asset: AssetId,
    /// Its symbol.
    pub symbol: String,
    /// Its token decimals.
    pub decimals: u8,
    /// Its collateral factor in basis points.
    pub factor_bps: u16,
    /// The confirmed side.
    pub confirmed: SideExplanation,
    /// The pending side.
    pub pending: SideExplanation,
}

/// Why a user's collateral is what it is, read from one state of the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Explanation {
    /// The user.
    pub user: UserId,
    /// The state of the store it was read from (`None`: no block applied).
    pub state: Option<StateRef>,
    /// The valuation time (the head's timestamp), against which price ages are measured.
    pub now: u64,
    /// The most log rows shown per side.
    pub limit: usize,
    /// Per asset the user has any balance state in, ascending by asset.
    pub assets: Vec<AssetExplanation>,
    /// The collateral, equal to [`CollateralReader::collateral`](super::CollateralReader::collateral)
    /// of the same state.
    pub collateral: Collateral,
}

fn effect(e: &Effect) -> String {
    match e {
        Effect::Credit(a) => format!("+{a}"),
        Effect::Debit(a) => format!("-{a}"),
        Effect::Set(a) => format!("={a}"),
        Effect::Reconcile(a) => format!("={a} (correction)"),
    }
}

fn status(s: LogStatus) -> &'static str {
    match s {
        LogStatus::Pending => "pending",
        LogStatus::Confirmed => "confirmed",
        LogStatus::Reverted => "reverted",
    }
}

impl fmt::Display for SideExplanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "balance {}", self.balance)?;
        for r in &self.rows {
            writeln!(
                f,
                "      block #{} {} log {}:{} {} ({})",
                r.block.number,
                r.block.hash,
                r.log.tx_hash,
                r.log.log_index,
                effect(&r.effect),
                status(r.status)
            )?;
        }
        if self.truncated {
            writeln!(f, "      … older rows not shown")?;
        }
        match &self.price {
            Some(p) => writeln!(
                f,
                "    price {} / 10^{} (round {}, block #{}, updated at {}, age {} s, {:?})",
                p.price.answer,
                p.price.decimals,
                p.price.round_id,
                p.price.block,
                p.price.updated_at,
                p.age,
                p.origin
            )?,
            None => writeln!(f, "    price none")?,
        }
        if let Some(a) = &self.arithmetic {
            writeln!(f, "    value {a}")?;
        }
        match (self.status, self.value) {
            (None, _) => writeln!(f, "    zero balance: not counted"),
            (Some(s), Some(v)) => writeln!(f, "    counted {v} ({s:?})"),
            (Some(s), None) => writeln!(f, "    counted nothing ({s:?})"),
        }
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.state {
            Some(s) => writeln!(f, "collateral of {} at {s}, now {}", self.user, self.now)?,
            None => writeln!(f, "collateral of {}: no block applied", self.user)?,
        }
        for a in &self.assets {
            writeln!(
                f,
                "{} {} ({} decimals, factor {} bps)",
                a.symbol, a.asset, a.decimals, a.factor_bps
            )?;
            write!(f, "  confirmed {}", a.confirmed)?;
            write!(f, "  pending {}", a.pending)?;
        }
        let complete = |c: bool| if c { "complete" } else { "incomplete" };
        writeln!(
            f,
            "total confirmed {} ({}), pending {} ({})",
            self.collateral.confirmed.total,
            complete(self.collateral.confirmed.is_complete()),
            self.collateral.pending.total,
            complete(self.collateral.pending.is_complete())
        )
    }
}
