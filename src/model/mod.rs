//! Domain types: blocks, balance events, oracle prices, assets and valuations.
//!
//! Everything here is plain data on `alloy-primitives` types. Token amounts are exact
//! [`U256`](alloy_primitives::U256); values (balance × price × factor) are
//! [`rust_decimal::Decimal`].

mod asset;
mod block;
mod collateral;
mod event;
mod identity;
mod price;

pub use asset::{Asset, AssetError, AssetRegistry, BPS_DENOMINATOR};
pub use block::{Block, BlockHeader, BlockNumber, BlockRef};
pub use collateral::{
    AssetValuation, BalanceView, CachedAsset, CachedCollateral, Collateral, PriceStatus,
    Unrepresentable, Valuation,
};
pub use event::{AssetId, BalanceChange, BalanceEvent, BalanceKey, Effect, LogId, UserId};
pub use identity::StoreIdentity;
pub use price::{Answer, MAX_PRICE_DECIMALS, Price, PriceRejection, PriceUpdate, PriceView};
