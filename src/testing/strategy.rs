//! Abstract operations on a simulated chain, and proptest strategies that generate them.
//!
//! Amounts of debits are percentages of the current balance, so every generated chain is
//! valid; the small universe (5 users × 5 assets) makes consecutive blocks touch the same
//! balances all the time, which is where a wrong rollback shows.

use proptest::collection::vec;
use proptest::prelude::*;

/// One balance event, with users and assets as indices into the harness's lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventSpec {
    /// Credit `amount`.
    Deposit {
        /// User index.
        user: u8,
        /// Asset index.
        asset: u8,
        /// Raw amount.
        amount: u64,
    },
    /// Debit `percent` % of the current balance.
    Withdraw {
        /// User index.
        user: u8,
        /// Asset index.
        asset: u8,
        /// Share of the balance, 0..=100.
        percent: u8,
    },
    /// Move `percent` % of `from`'s balance to `to`.
    Transfer {
        /// Sender index.
        from: u8,
        /// Recipient index.
        to: u8,
        /// Asset index.
        asset: u8,
        /// Share of the sender's balance, 0..=100.
        percent: u8,
    },
    /// Report an absolute balance.
    Set {
        /// User index.
        user: u8,
        /// Asset index.
        asset: u8,
        /// Raw balance.
        amount: u64,
    },
    /// A correction row (an absolute balance read from the chain at the parent): applied
    /// before the block's other events whatever its position in the spec.
    Correction {
        /// User index.
        user: u8,
        /// Asset index.
        asset: u8,
        /// Raw balance.
        amount: u64,
        /// 0 opening, 1 drift, 2 resume.
        origin: u8,
    },
    /// A deposit of 10^30 units: a value that may not fit a `Decimal` (it must be flagged
    /// for that user, and nobody else's numbers may suffer).
    Huge {
        /// User index.
        user: u8,
        /// Asset index.
        asset: u8,
    },
    /// A debit of the whole balance plus `extra` (at least 1): it cannot apply, so it
    /// quarantines the asset (every other asset must go on).
    Overdraw {
        /// User index.
        user: u8,
        /// Asset index.
        asset: u8,
        /// Units above the balance, at least 1.
        extra: u64,
    },
    /// A log of the asset's contract its decoder rejected
    /// ([`BalanceChange::Undecodable`](crate::model::BalanceChange::Undecodable)): it
    /// quarantines the asset at that log (every other asset must go on).
    Undecodable {
        /// Asset index.
        asset: u8,
    },
}

/// One oracle update.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PriceSpec {
    /// Asset index.
    pub asset: u8,
    /// Raw answer (8 decimals); zero or negative ones must be rejected.
    pub answer: i64,
    /// Reuse the current round, which must be rejected.
    pub old_round: bool,
}

/// One vault rate read at a block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateSpec {
    /// Index into the harness's assets priced through a vault rate.
    pub asset: u8,
    /// Underlying units per whole share; zero must be rejected.
    pub rate: u64,
}

/// The contents of one block.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlockSpec {
    /// Balance events.
    pub events: Vec<EventSpec>,
    /// Oracle updates.
    pub prices: Vec<PriceSpec>,
    /// Vault rates read at the block (at most one per vault is kept).
    pub rates: Vec<RateSpec>,
}

/// One step of a scenario.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Mine a block and sync.
    Mine(BlockSpec),
    /// Drop `depth` blocks (clamped to the unconfirmed window), mine `blocks` (at least one) and sync.
    Reorg {
        /// Blocks rolled back.
        depth: u64,
        /// Replacement blocks.
        blocks: Vec<BlockSpec>,
    },
    /// Set the chain's finalized tag `lag` blocks below its head and sync.
    FinalizeTag {
        /// Distance below the head.
        lag: u64,
    },
    /// Deliver an already-applied block again (`back` blocks below the head).
    Redeliver {
        /// Distance below the head.
        back: u64,
    },
    /// Deliver a block that skips a height.
    Gap,
    /// Restart the watcher from the store's checkpoint.
    Restart,
    /// The source drops its newest `depth` blocks and mines nothing (a reorg to a shorter
    /// chain, an `evm_revert`): the watcher must roll its pending state back to the
    /// source's head.
    HeadBack {
        /// Blocks dropped (clamped to the unconfirmed window).
        depth: u64,
    },
    /// Ask the watcher to resume an asset ([`Watcher::resume`](crate::Watcher::resume)),
    /// then mine a block and sync (the block carries the resume).
    Resume {
        /// Asset index.
        asset: u8,
    },
}

/// A balance event over `users` users and `assets` assets.
pub fn event(users: u8, assets: u8) -> impl Strategy<Value = EventSpec> {
    let (u, a) = (0..users, 0..assets);
    prop_oneof![
        3 => (u.clone(), a.clone(), 1u64..1_000_000_000).prop_map(|(user, asset, amount)| EventSpec::Deposit { user, asset, amount }),
        2 => (u.clone(), a.clone(), 0u8..=100).prop_map(|(user, asset, percent)| EventSpec::Withdraw { user, asset, percent }),
        3 => (u.clone(), u.clone(), a.clone(), 0u8..=100).prop_map(|(from, to, asset, percent)| EventSpec::Transfer { from, to, asset, percent }),
        1 => (u.clone(), a.clone(), 0u64..1_000_000_000).prop_map(|(user, asset, amount)| EventSpec::Set { user, asset, amount }),
        1 => (u.clone(), a.clone(), 0u64..1_000_000_000, 0u8..3).prop_map(|(user, asset, amount, origin)| EventSpec::Correction { user, asset, amount, origin }),
        1 => (u, a).prop_map(|(user, asset)| EventSpec::Huge { user, asset }),
    ]
}

/// An oracle update; about one in eight is invalid (non-positive or an old round).
pub fn price(assets: u8) -> impl Strategy<Value = PriceSpec> {
    (
        0..assets,
        prop_oneof![7 => 1i64..10_000_000_000_000, 1 => -1_000i64..=0],
        prop::bool::weighted(0.1),
    )
        .prop_map(|(asset, answer, old_round)| PriceSpec {
            asset,
            answer,
            old_round,
        })
}

/// A vault rate; about one in ten is zero (rejected).
pub fn rate() -> impl Strategy<Value = RateSpec> {
    (
        0u8..4,
        prop_oneof![9 => 1u64..10_000_000_000, 1 => Just(0u64)],
    )
        .prop_map(|(asset, rate)| RateSpec { asset, rate })
}

/// A block with up to `max_events` events, a few price updates and maybe a vault rate.
pub fn block(users: u8, assets: u8, max_events: usize) -> impl Strategy<Value = BlockSpec> {
    (
        vec(event(users, assets), 0..=max_events),
        vec(price(assets), 0..=2),
        vec(rate(), 0..=1),
    )
        .prop_map(|(events, prices, rates)| BlockSpec {
            events,
            prices,
            rates,
        })
}

/// A scenario step; reorgs of depth `1..=max_depth`.
pub fn op(users: u8, assets: u8, max_depth: u64) -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => block(users, assets, 6).prop_map(Op::Mine),
        4 => (1..=max_depth, vec(block(users, assets, 6), 1..=4)).prop_map(|(depth, blocks)| Op::Reorg { depth, blocks }),
        1 => (0..=max_depth).prop_map(|lag| Op::FinalizeTag { lag }),
        1 => (0..=max_depth + 2).prop_map(|back| Op::Redeliver { back }),
        1 => Just(Op::Gap),
        1 => Just(Op::Restart),
        1 => (1..=max_depth).prop_map(|depth| Op::HeadBack { depth }),
    ]
}

/// A scenario of up to `len` steps over 5 users and the harness's 5 assets.
pub fn scenario(len: usize, max_depth: u64) -> impl Strategy<Value = Vec<Op>> {
    vec(op(5, 5, max_depth), 1..=len)
}

/// A balance event that, about one time in twelve, cannot apply (an [`EventSpec::Overdraw`]),
/// and about one time in thirteen, cannot be decoded (an [`EventSpec::Undecodable`]).
pub fn event_with_faults(users: u8, assets: u8) -> impl Strategy<Value = EventSpec> {
    prop_oneof![
        11 => event(users, assets),
        1 => (0..users, 0..assets, 1u64..1_000).prop_map(|(user, asset, extra)| EventSpec::Overdraw { user, asset, extra }),
        1 => (0..assets).prop_map(|asset| EventSpec::Undecodable { asset }),
    ]
}

/// A block like [`block`] whose events may quarantine their asset.
pub fn block_with_faults(
    users: u8,
    assets: u8,
    max_events: usize,
) -> impl Strategy<Value = BlockSpec> {
    (
        vec(event_with_faults(users, assets), 0..=max_events),
        vec(price(assets), 0..=2),
        vec(rate(), 0..=1),
    )
        .prop_map(|(events, prices, rates)| BlockSpec {
            events,
            prices,
            rates,
        })
}

/// A scenario like [`scenario`] with underflowing events ([`EventSpec::Overdraw`]) and
/// resumes ([`Op::Resume`]): the store must still equal the oracle after every step.
pub fn scenario_with_faults(len: usize, max_depth: u64) -> impl Strategy<Value = Vec<Op>> {
    let (users, assets) = (5, 3);
    let op = prop_oneof![
        8 => block_with_faults(users, assets, 6).prop_map(Op::Mine),
        4 => (1..=max_depth, vec(block_with_faults(users, assets, 6), 1..=4)).prop_map(|(depth, blocks)| Op::Reorg { depth, blocks }),
        1 => (0..=max_depth).prop_map(|lag| Op::FinalizeTag { lag }),
        1 => (0..=max_depth + 2).prop_map(|back| Op::Redeliver { back }),
        1 => Just(Op::Restart),
        1 => (1..=max_depth).prop_map(|depth| Op::HeadBack { depth }),
        2 => (0..assets).prop_map(|asset| Op::Resume { asset }),
    ];
    vec(op, 1..=len)
}
