//! Unit tests of the token kinds with events of their own (WETH9, Tether, ERC-4626): real
//! ABI-encoded logs built with the kinds' `sol!` types, decoded through the registry, and
//! folded with the events' own effects to check that nothing counts twice.

use std::collections::BTreeMap;

use alloy_primitives::{B256, Bytes, LogData, U256, b256};
use alloy_sol_types::{SolEvent, sol};

use super::*;

const WETH: Address = Address::repeat_byte(0xE1);
const USDT: Address = Address::repeat_byte(0x7E);
const VAULT: Address = Address::repeat_byte(0x46);
const OWNER: Address = Address::repeat_byte(0x0A);
const ALICE: Address = Address::repeat_byte(0x01);
const BOB: Address = Address::repeat_byte(0x02);
const CAROL: Address = Address::repeat_byte(0x03);

sol! {
    /// ERC-20 approval: tracked contracts emit it, it moves nothing.
    #[derive(Debug)]
    event Approval(address indexed owner, address indexed spender, uint256 value);
}

/// Later Tether deployments index the blacklisted user.
mod later_tether {
    alloy_sol_types::sol! {
        #[derive(Debug)]
        event DestroyedBlackFunds(address indexed _blackListedUser, uint _balance);
    }
}

fn block() -> BlockRef {
    BlockRef {
        number: 11,
        hash: B256::repeat_byte(11),
    }
}

fn id(i: u64) -> LogId {
    LogId {
        tx_hash: B256::repeat_byte(0xDD),
        log_index: i,
    }
}

fn log<E: SolEvent>(address: Address, event: &E) -> Log {
    Log {
        address,
        data: event.encode_log_data(),
    }
}

fn transfer(address: Address, from: Address, to: Address, value: u64) -> Log {
    log(
        address,
        &Transfer {
            from,
            to,
            value: U256::from(value),
        },
    )
}

/// The balance change `d` decodes `log` to, if any.
fn change(d: &Decoders, log: &Log) -> Option<BalanceChange> {
    match d.decode(block(), log, id(0)).unwrap() {
        Some(Decoded::Balance(e)) => Some(e.change),
        Some(Decoded::Price(p)) => panic!("a balance kind decoded a price: {p:?}"),
        None => None,
    }
}

/// Balances after decoding `logs` in order and applying each event's effects.
fn fold(d: &Decoders, logs: &[Log]) -> BTreeMap<Address, U256> {
    let mut balances = BTreeMap::new();
    for (i, l) in logs.iter().enumerate() {
        let Some(Decoded::Balance(event)) = d.decode(block(), l, id(i as u64)).unwrap() else {
            continue;
        };
        for (key, effect) in event.effects() {
            let b: &mut U256 = balances.entry(key.user).or_default();
            *b = effect.apply(*b).expect("the sequence never underflows");
        }
    }
    balances.retain(|_, v| !v.is_zero());
    balances
}

fn balances(pairs: &[(Address, u64)]) -> BTreeMap<Address, U256> {
    pairs.iter().map(|(a, v)| (*a, U256::from(*v))).collect()
}

#[test]
fn event_signatures_are_the_deployed_contracts() {
    // topic0 of the events as emitted on Ethereum mainnet (WETH9 0xC02a…6Cc2, TetherToken
    // 0xdAC1…1ec7) and by OpenZeppelin's ERC4626: a `sol!` declaration with another
    // parameter type would hash differently and decode nothing.
    let expected = [
        (
            weth9::Deposit::SIGNATURE_HASH,
            b256!("e1fffcc4923d04b559f4d29a8bfc6cda04eb5b0d3c460751c2402c5c5cc9109c"),
        ),
        (
            weth9::Withdrawal::SIGNATURE_HASH,
            b256!("7fcf532c15f0a6db0bd6d0e038bea71d30d808c7d98cb3bf7268a95bf5081b65"),
        ),
        (
            tether::Issue::SIGNATURE_HASH,
            b256!("cb8241adb0c3fdb35b70c24ce35c5eb0c17af7431c99f827d44a445ca624176a"),
        ),
        (
            tether::Redeem::SIGNATURE_HASH,
            b256!("702d5967f45f6513a38ffc42d6ba9bf230bd40e8f53b16363c7eb4fd2deb9a44"),
        ),
        (
            tether::DestroyedBlackFunds::SIGNATURE_HASH,
            b256!("61e6e66b0d6339b2980aecc6ccc0039736791f0ccde9ed512e789a7fbdd698c6"),
        ),
        (
            erc4626::Deposit::SIGNATURE_HASH,
            b256!("dcbc1c05240f31ff3ad067ef1ee35ce4997762752e3a095284754544f4c709d7"),
        ),
        (
            erc4626::Withdraw::SIGNATURE_HASH,
            b256!("fbde797d201c681b91056529119e0b02407c7bb96a4a2c75c01fc9667232c8db"),
        ),
    ];
    for (i, (declared, deployed)) in expected.iter().enumerate() {
        assert_eq!(declared, deployed, "signature {i}");
    }
    // WETH9's Deposit has the signature of the crate's own Deposit; its Withdrawal does not.
    assert_eq!(weth9::Deposit::SIGNATURE_HASH, Deposit::SIGNATURE_HASH);
    assert_ne!(weth9::Withdrawal::SIGNATURE_HASH, Withdraw::SIGNATURE_HASH);
}

#[test]
fn weth9_wraps_and_unwraps() {
    let d = Decoders::new().with(WETH, Contract::Weth9 { asset: WETH });
    let wad = U256::from(7u64);
    assert_eq!(
        change(&d, &log(WETH, &weth9::Deposit { dst: ALICE, wad })),
        Some(BalanceChange::Deposit {
            user: ALICE,
            amount: wad
        })
    );
    assert_eq!(
        change(&d, &log(WETH, &weth9::Withdrawal { src: ALICE, wad })),
        Some(BalanceChange::Withdraw {
            user: ALICE,
            amount: wad
        })
    );
    let approval = Approval {
        owner: ALICE,
        spender: BOB,
        value: wad,
    };
    assert_eq!(change(&d, &log(WETH, &approval)), None);

    // Wrap 10, send 4 to Bob, unwrap 6: what WETH9's balanceOf says after each call.
    let sequence = [
        log(
            WETH,
            &weth9::Deposit {
                dst: ALICE,
                wad: U256::from(10),
            },
        ),
        transfer(WETH, ALICE, BOB, 4),
        log(
            WETH,
            &weth9::Withdrawal {
                src: ALICE,
                wad: U256::from(6),
            },
        ),
    ];
    assert_eq!(fold(&d, &sequence), balances(&[(BOB, 4)]));
    // The crate's own balance events decode WETH9's Deposit (same signature) but not its
    // Withdrawal: Alice would keep 6 she unwrapped. This is why WETH9 is a kind of its own.
    let own = Decoders::new().with(WETH, Contract::BalanceEvents { asset: WETH });
    assert_eq!(fold(&own, &sequence), balances(&[(ALICE, 10)]));
}

#[test]
fn weth9_malformed_withdrawal_names_the_event_and_log() {
    let d = Decoders::new().with(WETH, Contract::Weth9 { asset: WETH });
    // `src` is indexed: a Withdrawal without its second topic is malformed.
    let bad = Log {
        address: WETH,
        data: LogData::new_unchecked(
            vec![weth9::Withdrawal::SIGNATURE_HASH],
            Bytes::from(U256::from(1).to_be_bytes_vec()),
        ),
    };
    let err = d.decode(block(), &bad, id(5)).unwrap_err();
    assert!(
        matches!(&err, SourceError::Malformed { log_index: 5, reason, .. } if reason.starts_with("WETH9 Withdrawal")),
        "{err}"
    );
}

#[test]
fn tether_issue_and_redeem_move_the_named_owner() {
    let d = Decoders::new().with(
        USDT,
        Contract::Tether {
            asset: USDT,
            owner: OWNER,
        },
    );
    let amount = U256::from(1_000_000u64);
    assert_eq!(
        change(&d, &log(USDT, &tether::Issue { amount })),
        Some(BalanceChange::Deposit {
            user: OWNER,
            amount
        })
    );
    assert_eq!(
        change(&d, &log(USDT, &tether::Redeem { amount })),
        Some(BalanceChange::Withdraw {
            user: OWNER,
            amount
        })
    );
    // destroyBlackFunds sets the holder's balance to zero, whatever it held.
    let destroyed = tether::DestroyedBlackFunds {
        _blackListedUser: CAROL,
        _balance: U256::from(5),
    };
    assert_eq!(
        change(&d, &log(USDT, &destroyed)),
        Some(BalanceChange::Set {
            user: CAROL,
            balance: U256::ZERO
        })
    );

    // Issue 100 to the owner, who sends 60 to Alice; Alice sends 10 to Carol with a fee of
    // 1 (TetherToken emits the fee as its own Transfer to the owner); Carol is blacklisted
    // and her 9 destroyed; the owner redeems 20.
    let sequence = [
        log(
            USDT,
            &tether::Issue {
                amount: U256::from(100),
            },
        ),
        transfer(USDT, OWNER, ALICE, 60),
        transfer(USDT, ALICE, OWNER, 1),
        transfer(USDT, ALICE, CAROL, 9),
        log(
            USDT,
            &tether::DestroyedBlackFunds {
                _blackListedUser: CAROL,
                _balance: U256::from(9),
            },
        ),
        log(
            USDT,
            &tether::Redeem {
                amount: U256::from(20),
            },
        ),
    ];
    assert_eq!(fold(&d, &sequence), balances(&[(OWNER, 21), (ALICE, 50)]));
    // As a plain token the issue is never credited: the first transfer would underflow.
    let token = Decoders::new().with(USDT, Contract::Token { asset: USDT });
    assert_eq!(change(&token, &sequence[0]), None);
}

#[test]
fn tether_with_an_indexed_blacklist_event_is_refused_with_a_hint() {
    let d = Decoders::new().with(
        USDT,
        Contract::Tether {
            asset: USDT,
            owner: OWNER,
        },
    );
    let indexed = log(
        USDT,
        &later_tether::DestroyedBlackFunds {
            _blackListedUser: CAROL,
            _balance: U256::from(5),
        },
    );
    // Same signature (indexing does not change it), another layout.
    assert_eq!(
        indexed.topics()[0],
        tether::DestroyedBlackFunds::SIGNATURE_HASH
    );
    let err = d.decode(block(), &indexed, id(2)).unwrap_err();
    assert!(err.to_string().contains("plain Token"), "{err}");
}

/// What an OpenZeppelin ERC4626 emits: `deposit(assets, receiver)` is `_mint` (a share
/// `Transfer` from zero) then `Deposit`; `withdraw` is `_burn` (a share `Transfer` to zero)
/// then `Withdraw`.
fn vault_sequence() -> Vec<Log> {
    let deposit = |sender, owner, shares: u64| {
        [
            transfer(VAULT, Address::ZERO, owner, shares),
            log(
                VAULT,
                &erc4626::Deposit {
                    sender,
                    owner,
                    assets: U256::from(shares * 2),
                    shares: U256::from(shares),
                },
            ),
        ]
    };
    let withdraw = |sender, receiver, owner, shares: u64| {
        [
            transfer(VAULT, owner, Address::ZERO, shares),
            log(
                VAULT,
                &erc4626::Withdraw {
                    sender,
                    receiver,
                    owner,
                    assets: U256::from(shares * 2),
                    shares: U256::from(shares),
                },
            ),
        ]
    };
    let mut logs = Vec::new();
    // Alice deposits for Bob: Bob gets 10 shares (the sender is not the owner).
    logs.extend(deposit(ALICE, BOB, 10));
    // Bob sends 3 shares to Carol.
    logs.push(transfer(VAULT, BOB, CAROL, 3));
    // Carol, approved by Bob, withdraws 4 of Bob's shares to Alice: Bob's shares burn.
    logs.extend(withdraw(CAROL, ALICE, BOB, 4));
    logs
}

#[test]
fn erc4626_shares_count_once_whichever_events_they_are_read_from() {
    let expected = balances(&[(BOB, 3), (CAROL, 3)]);
    for mints in [ShareMints::Transfers, ShareMints::Events] {
        let d = Decoders::new().with(
            VAULT,
            Contract::Erc4626 {
                asset: VAULT,
                mints,
            },
        );
        assert_eq!(fold(&d, &vault_sequence()), expected, "{mints:?}");
    }
    // Decoding the share Transfers *and* Deposit/Withdraw would mint twice.
    assert_eq!(ShareMints::default(), ShareMints::Transfers);
}

#[test]
fn erc4626_events_mint_to_the_owner_in_shares() {
    let d = Decoders::new().with(
        VAULT,
        Contract::Erc4626 {
            asset: VAULT,
            mints: ShareMints::Events,
        },
    );
    let (assets, shares) = (U256::from(2_000), U256::from(1_999));
    let deposit = erc4626::Deposit {
        sender: ALICE,
        owner: BOB,
        assets,
        shares,
    };
    assert_eq!(
        change(&d, &log(VAULT, &deposit)),
        Some(BalanceChange::Deposit {
            user: BOB,
            amount: shares
        })
    );
    let withdraw = erc4626::Withdraw {
        sender: ALICE,
        receiver: CAROL,
        owner: BOB,
        assets,
        shares,
    };
    assert_eq!(
        change(&d, &log(VAULT, &withdraw)),
        Some(BalanceChange::Withdraw {
            user: BOB,
            amount: shares
        })
    );
    // Mints and burns by Transfer are ignored here, holder-to-holder transfers are not.
    assert_eq!(change(&d, &transfer(VAULT, Address::ZERO, BOB, 5)), None);
    assert_eq!(change(&d, &transfer(VAULT, BOB, Address::ZERO, 5)), None);
    assert!(change(&d, &transfer(VAULT, BOB, CAROL, 5)).is_some());
    // With the default, Deposit/Withdraw decode to nothing (the Transfers carry them).
    let t = Decoders::new().with(
        VAULT,
        Contract::Erc4626 {
            asset: VAULT,
            mints: ShareMints::Transfers,
        },
    );
    assert_eq!(change(&t, &log(VAULT, &deposit)), None);
    assert_eq!(change(&t, &log(VAULT, &withdraw)), None);
    assert_eq!(
        change(&t, &transfer(VAULT, Address::ZERO, BOB, 5)),
        Some(BalanceChange::Transfer {
            from: Address::ZERO,
            to: BOB,
            amount: U256::from(5)
        })
    );
    // The crate's own balance events do not decode ERC-4626's (another signature).
    let own = Decoders::new().with(VAULT, Contract::BalanceEvents { asset: VAULT });
    assert_eq!(change(&own, &log(VAULT, &deposit)), None);
}

#[test]
#[allow(deprecated)]
fn the_former_vault_name_still_decodes_the_crates_own_events() {
    let old = Decoders::new().with(VAULT, Contract::Vault { asset: WETH });
    let new = Decoders::new().with(VAULT, Contract::BalanceEvents { asset: WETH });
    let logs = [
        log(
            VAULT,
            &Deposit {
                user: ALICE,
                amount: U256::from(9),
            },
        ),
        log(
            VAULT,
            &Withdraw {
                user: ALICE,
                amount: U256::from(2),
            },
        ),
        log(
            VAULT,
            &BalanceSet {
                user: BOB,
                balance: U256::from(4),
            },
        ),
    ];
    for l in &logs {
        assert!(change(&new, l).is_some());
        assert_eq!(change(&old, l), change(&new, l));
    }
    assert_eq!(fold(&old, &logs), balances(&[(ALICE, 7), (BOB, 4)]));
}
