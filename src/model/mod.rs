//! Domain types: blocks, balance events, oracle prices, assets and valuations, and the
//! store's wire contract ([`Changeset`], [`Window`]).
//!
//! Everything here is plain data on `alloy-primitives` types. Token amounts are exact
//! [`U256`](alloy_primitives::U256); values (balance × price × factor) are
//! [`rust_decimal::Decimal`].

mod asset;
mod block;
mod changeset;
mod collateral;
mod correction;
mod decode_detail;
mod event;
mod fault_correction;
mod identity;
mod index;
mod lag;
mod price;
mod price_source;
mod quarantine;
mod rate;
mod window;

pub use asset::{Asset, AssetError, AssetRegistry, BPS_DENOMINATOR};
pub use block::{Block, BlockHeader, BlockId, BlockNumber, BlockRef};
pub use changeset::{BlockChanges, Changeset};
pub use collateral::{
    AssetValuation, BalanceView, CachedAsset, CachedCollateral, Collateral, PriceStatus,
    QuarantinedSides, Unrepresentable, Valuation,
};
pub use correction::{
    CORRECTION_LOG_INDEX, Correction, CorrectionOrigin, corrections_first, difference,
};
pub use decode_detail::{DECODE_DETAIL_MAX, DecodeDetail};
pub use event::{AssetId, BalanceChange, BalanceEvent, BalanceKey, Effect, LogId, UserId};
pub use fault_correction::{FAULT_CORRECTION_LOG_INDEX, fault_correction, fault_correction_log};
pub use identity::StoreIdentity;
pub use index::{AssetIndex, IndexFormula, IndexUpdate};
pub use lag::Lag;
pub use price::{Answer, MAX_PRICE_DECIMALS, Price, PriceRejection, PriceUpdate, PriceView};
pub use price_source::PriceSource;
pub use quarantine::ResumeRequest;
pub use quarantine::{
    AssetState, AssetStateView, FaultPolicy, FaultReason, Quarantine, RESUME_LOG_INDEX, resume_log,
};
pub use rate::{RateRejection, RateUpdate, RateView};
pub use window::{StateRef, Window};
