//! Lido stETH's events as the contract emits them (logs ABI-encoded by hand from the
//! published signatures), decoded and folded by the engine, compared with a model of the
//! contract's `sharesOf` / `balanceOf`.

use std::collections::BTreeMap;

use alloy_primitives::{Address, B256, Log, LogData, U256, keccak256};
use alloy_sol_types::SolEvent;

use super::steth::{SharesBurnt, TokenRebased, TransferShares};
use super::{Contract, Decoded, DecodedLog, Decoders};
use crate::engine::{BaseState, Engine, EngineConfig, Plan};
use crate::error::SourceError;
use crate::model::{
    Asset, AssetIndex, AssetRegistry, BalanceChange, BalanceEvent, BalanceKey, Block, BlockHeader,
    BlockRef, IndexFormula, LogId, Window,
};

const STETH: Address = Address::repeat_byte(0xAE);
const DEAD: Address = Address::new([
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xde, 0xad,
]);

/// The signatures as `@lido-sdk/contracts` 3.0.5's stETH ABI lists them.
const TRANSFER: &str = "Transfer(address,address,uint256)";
const TRANSFER_SHARES: &str = "TransferShares(address,address,uint256)";
const SHARES_BURNT: &str = "SharesBurnt(address,uint256,uint256,uint256)";
const TOKEN_REBASED: &str = "TokenRebased(uint256,uint256,uint256,uint256,uint256,uint256,uint256)";
const SUBMITTED: &str = "Submitted(address,uint256,address)";

fn decoders() -> Decoders {
    Decoders::new().with(
        STETH,
        Contract::Rebasing {
            asset: STETH,
            formula: IndexFormula::SharesRatio,
        },
    )
}

fn word(a: Address) -> B256 {
    B256::left_padding_from(a.as_slice())
}

/// A log of the stETH contract: `signature`'s topic, then `indexed` topics, then `data`
/// words, as the EVM's `LOGn` writes them.
fn raw(signature: &str, indexed: &[B256], data: &[U256]) -> Log {
    let mut topics = vec![keccak256(signature)];
    topics.extend_from_slice(indexed);
    let bytes: Vec<u8> = data.iter().flat_map(|w| w.to_be_bytes::<32>()).collect();
    Log {
        address: STETH,
        data: LogData::new(topics, bytes.into()).expect("at most four topics"),
    }
}

fn decode_all(log: &Log) -> Result<Vec<BalanceChange>, SourceError> {
    let mut out = DecodedLog::new();
    let block = BlockRef {
        number: 1,
        hash: B256::ZERO,
    };
    let id = LogId {
        tx_hash: B256::repeat_byte(1),
        log_index: 0,
    };
    decoders().decode_all(block, log, id, &mut out)?;
    Ok(out
        .iter()
        .map(|d| match d {
            Decoded::Balance(e) => e.change,
            Decoded::Price(_) => panic!("a price from a token"),
        })
        .collect())
}

/// Lido's share accounting (StETH.sol / Lido.sol, V2), emitting the logs it emits.
#[derive(Default)]
struct Lido {
    shares: BTreeMap<Address, U256>,
    total_shares: U256,
    pooled: U256,
    /// The logs of each transaction, one block each.
    txs: Vec<Vec<Log>>,
}

impl Lido {
    fn shares_by_eth(&self, eth: U256) -> U256 {
        eth * self.total_shares / self.pooled
    }
    fn eth_by_shares(&self, shares: U256) -> U256 {
        shares * self.pooled / self.total_shares
    }
    fn balance_of(&self, user: Address) -> U256 {
        self.eth_by_shares(self.shares.get(&user).copied().unwrap_or_default())
    }
    fn transfer_events(&self, from: Address, to: Address, amount: U256, shares: U256) -> [Log; 2] {
        [
            raw(TRANSFER, &[word(from), word(to)], &[amount]),
            raw(TRANSFER_SHARES, &[word(from), word(to)], &[shares]),
        ]
    }
    fn mint(&mut self, to: Address, shares: U256) {
        *self.shares.entry(to).or_default() += shares;
        self.total_shares += shares;
    }
    /// `_bootstrapInitialHolder`: one share per wei to `0xdead`.
    fn bootstrap(&mut self, eth: U256) {
        self.mint(DEAD, eth);
        self.pooled += eth;
        let mut logs = vec![raw(SUBMITTED, &[word(DEAD)], &[eth, U256::ZERO])];
        logs.extend(self.transfer_events(Address::ZERO, DEAD, eth, eth));
        self.txs.push(logs);
    }
    /// `submit`: shares at the current ratio (floored), then the ether.
    fn submit(&mut self, user: Address, eth: U256) {
        let shares = self.shares_by_eth(eth);
        self.mint(user, shares);
        self.pooled += eth;
        let mut logs = vec![raw(SUBMITTED, &[word(user)], &[eth, U256::ZERO])];
        logs.extend(self.transfer_events(Address::ZERO, user, self.eth_by_shares(shares), shares));
        self.txs.push(logs);
    }
    fn move_shares(&mut self, from: Address, to: Address, shares: U256) {
        let f = self.shares.get_mut(&from).expect("a holder");
        *f = f.checked_sub(shares).expect("BALANCE_EXCEEDED");
        *self.shares.entry(to).or_default() += shares;
    }
    /// `transfer(to, amount)`: `getSharesByPooledEth(amount)` shares.
    fn transfer(&mut self, from: Address, to: Address, amount: U256) {
        let shares = self.shares_by_eth(amount);
        self.move_shares(from, to, shares);
        let logs = self.transfer_events(from, to, amount, shares).to_vec();
        self.txs.push(logs);
    }
    /// `transferShares(to, shares)`.
    fn transfer_shares(&mut self, from: Address, to: Address, shares: U256) {
        self.move_shares(from, to, shares);
        let amount = self.eth_by_shares(shares);
        let logs = self.transfer_events(from, to, amount, shares).to_vec();
        self.txs.push(logs);
    }
    /// `handleOracleReport`: burn (withdrawals), rewards, fee shares minted to `treasury`,
    /// then `TokenRebased` with the post totals.
    fn report(&mut self, burn: (Address, U256), rewards: U256, treasury: Address, fee: U256) {
        let (pre_shares, pre_ether) = (self.total_shares, self.pooled);
        let mut logs = Vec::new();
        let (account, burnt) = burn;
        let pre_amount = self.eth_by_shares(burnt);
        self.move_shares(account, Address::ZERO, burnt);
        self.shares.remove(&Address::ZERO);
        self.total_shares -= burnt;
        let post_amount = self.eth_by_shares(burnt);
        logs.push(raw(
            SHARES_BURNT,
            &[word(account)],
            &[pre_amount, post_amount, burnt],
        ));
        self.pooled += rewards;
        self.mint(treasury, fee);
        logs.extend(self.transfer_events(Address::ZERO, treasury, self.eth_by_shares(fee), fee));
        logs.push(raw(
            TOKEN_REBASED,
            &[B256::with_last_byte(7)],
            &[
                U256::from(86_400),
                pre_shares,
                pre_ether,
                self.total_shares,
                self.pooled,
                fee,
            ],
        ));
        self.txs.push(logs);
    }
}

/// The model's transactions decoded and folded by the engine, one block each: the last
/// shares written per holder and the last index.
fn fold(lido: &Lido) -> (BTreeMap<Address, U256>, Option<AssetIndex>) {
    let assets = AssetRegistry::new([Asset::new(STETH, "stETH", 18, 10_000)]).unwrap();
    let engine = Engine::new(EngineConfig::new(assets, 3), Window::default());
    let mut blocks = Vec::new();
    let mut parent = B256::ZERO;
    for (n, logs) in lido.txs.iter().enumerate() {
        let number = 100 + n as u64;
        let hash = keccak256(number.to_be_bytes());
        let at = BlockRef { number, hash };
        let mut events = Vec::new();
        for (i, log) in logs.iter().enumerate() {
            let id = LogId {
                tx_hash: hash,
                log_index: i as u64,
            };
            let mut out = DecodedLog::new();
            decoders().decode_all(at, log, id, &mut out).unwrap();
            events.extend(out.into_iter().map(|d| match d {
                Decoded::Balance(e) => e,
                Decoded::Price(_) => panic!("a price from a token"),
            }));
        }
        blocks.push(Block {
            header: BlockHeader {
                number,
                hash,
                parent_hash: parent,
                timestamp: number,
            },
            events,
            prices: Vec::new(),
            rates: Vec::new(),
        });
        parent = hash;
    }
    let Plan::Apply(t) = engine.plan(blocks).unwrap() else {
        panic!("a transition");
    };
    let changes = engine.build(t, BaseState::default(), None).unwrap();
    let mut shares = BTreeMap::new();
    let mut index = None;
    for b in &changes.blocks {
        for (BalanceKey { user, .. }, v) in &b.balances {
            shares.insert(*user, *v);
        }
        if let Some(u) = b.indexes.last() {
            index = Some(u.index);
        }
    }
    (shares, index)
}

fn ether(n: u64) -> U256 {
    U256::from(n) * U256::from(10u64).pow(U256::from(18))
}

fn user(b: u8) -> Address {
    Address::repeat_byte(b)
}

/// A Lido history: bootstrap, submits at 1:1, a transfer, a report with fees and a burn,
/// submits and transfers at the new ratio (amounts that do not divide), a second report.
fn history() -> Lido {
    let mut lido = Lido::default();
    lido.bootstrap(U256::from(10u64).pow(U256::from(15)));
    lido.submit(user(1), ether(32));
    lido.submit(user(2), ether(5) + U256::from(3));
    lido.transfer(user(1), user(3), ether(2));
    lido.report(
        (user(1), ether(1)),
        ether(1) / U256::from(7),
        user(9),
        U256::from(12_345_678_901u64),
    );
    lido.submit(user(4), ether(3) + U256::from(1));
    lido.transfer(user(2), user(4), U256::from(1_000_000_007u64));
    lido.transfer_shares(user(4), user(5), U256::from(999_999_999u64));
    lido.submit(user(2), U256::from(77_777_777_777u64));
    lido.report(
        (user(3), U256::from(123_456_789u64)),
        ether(2) / U256::from(3),
        user(9),
        U256::from(98_765_432_109u64),
    );
    lido
}

#[test]
fn signatures_are_the_published_abi() {
    assert_eq!(TransferShares::SIGNATURE, TRANSFER_SHARES);
    assert_eq!(SharesBurnt::SIGNATURE, SHARES_BURNT);
    assert_eq!(TokenRebased::SIGNATURE, TOKEN_REBASED);
    assert_eq!(TransferShares::SIGNATURE_HASH, keccak256(TRANSFER_SHARES));
    assert_eq!(SharesBurnt::SIGNATURE_HASH, keccak256(SHARES_BURNT));
    assert_eq!(TokenRebased::SIGNATURE_HASH, keccak256(TOKEN_REBASED));
}

#[test]
fn each_event_decodes_to_shares_or_an_index() {
    let (a, b) = (user(1), user(2));
    let shares = U256::from(1_000_003u64);
    // `Transfer` is ignored (its value is rounded; `TransferShares` carries the shares).
    assert_eq!(
        decode_all(&raw(TRANSFER, &[word(a), word(b)], &[U256::from(5)])).unwrap(),
        vec![]
    );
    assert_eq!(
        decode_all(&raw(TRANSFER_SHARES, &[word(a), word(b)], &[shares])).unwrap(),
        vec![BalanceChange::TransferShares {
            from: a,
            to: b,
            shares
        }]
    );
    let burnt = raw(
        SHARES_BURNT,
        &[word(a)],
        &[U256::from(9), U256::from(8), shares],
    );
    assert_eq!(
        decode_all(&burnt).unwrap(),
        vec![BalanceChange::TransferShares {
            from: a,
            to: Address::ZERO,
            shares
        }]
    );
    let totals = |shares: U256, ether: U256| {
        let data = [
            U256::from(1),
            U256::from(2),
            U256::from(3),
            shares,
            ether,
            U256::from(4),
        ];
        raw(TOKEN_REBASED, &[B256::with_last_byte(1)], &data)
    };
    let (s, e) = (U256::from(800u64), U256::from(943u64));
    assert_eq!(
        decode_all(&totals(s, e)).unwrap(),
        vec![BalanceChange::Rebase {
            index: AssetIndex::shares_ratio(e, s).unwrap()
        }]
    );
    // No index from zero totals, short data, a missing indexed topic: malformed.
    for bad in [
        totals(U256::ZERO, e),
        totals(s, U256::ZERO),
        raw(TRANSFER_SHARES, &[word(a), word(b)], &[]),
        raw(SHARES_BURNT, &[], &[U256::from(9), U256::from(8), shares]),
    ] {
        assert!(matches!(
            decode_all(&bad),
            Err(SourceError::Malformed { .. })
        ));
    }
    // `Submitted` and other events are not balance events.
    assert_eq!(
        decode_all(&raw(SUBMITTED, &[word(a)], &[U256::from(5), U256::ZERO])).unwrap(),
        vec![]
    );
}

#[test]
fn folded_history_has_the_contracts_shares_and_balances_at_a_report() {
    let lido = history();
    let (shares, index) = fold(&lido);
    let index = index.expect("an index from TokenRebased");
    assert_eq!(
        (index.num, index.den),
        (lido.pooled, lido.total_shares),
        "the index is the last report's totals"
    );
    let holders: Vec<Address> = lido.shares.keys().copied().collect();
    assert_eq!(holders, shares.keys().copied().collect::<Vec<_>>());
    for holder in holders {
        assert_eq!(shares[&holder], lido.shares[&holder], "sharesOf({holder})");
        assert_eq!(
            index.balance(shares[&holder]),
            Some(lido.balance_of(holder)),
            "balanceOf({holder}) right after a report"
        );
    }
}

#[test]
fn submits_after_a_report_keep_shares_exact_and_balances_within_their_rounding() {
    let mut lido = history();
    let submits = 5u64;
    for i in 0..submits {
        lido.submit(user(6), ether(1) + U256::from(i * 1_000_003 + 1));
    }
    let (shares, index) = fold(&lido);
    let index = index.expect("an index from TokenRebased");
    for (holder, held) in &lido.shares {
        assert_eq!(shares[holder], *held, "sharesOf({holder})");
        let ours = index.balance(*held).unwrap();
        let chain = lido.balance_of(*holder);
        // Each submit's floored share count raises the chain's ratio by less than one
        // share's worth: ours is at most one wei per submit (and the floor) below.
        assert!(
            ours <= chain && chain - ours <= U256::from(submits + 1),
            "balanceOf({holder}): ours {ours}, the chain's {chain}"
        );
    }
}

#[test]
fn decode_gives_the_one_event_of_a_log() {
    // `Decoders::decode` (one event per log) works for stETH: each log is at most one.
    let block = BlockRef {
        number: 1,
        hash: B256::ZERO,
    };
    let id = LogId {
        tx_hash: B256::ZERO,
        log_index: 0,
    };
    let log = raw(
        TRANSFER_SHARES,
        &[word(user(1)), word(user(2))],
        &[U256::from(3)],
    );
    let one = decoders().decode(block, &log, id).unwrap();
    assert_eq!(
        one,
        Some(Decoded::Balance(BalanceEvent {
            log: id,
            asset: STETH,
            change: BalanceChange::TransferShares {
                from: user(1),
                to: user(2),
                shares: U256::from(3),
            },
            part: 0,
        }))
    );
}
