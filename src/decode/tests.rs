//! Unit tests of the log decoders and of polled round data.

use alloy_primitives::{B256, Bytes, I256, LogData, U256, aliases::U80};
use alloy_sol_types::SolEvent;

use super::*;

const TOKEN: Address = Address::repeat_byte(0xA1);
const VAULT: Address = Address::repeat_byte(0xB1);
const FEED: Address = Address::repeat_byte(0xF1);

fn decoders() -> Decoders {
    Decoders::new()
        .with(TOKEN, Contract::Token { asset: TOKEN })
        .with(VAULT, Contract::BalanceEvents { asset: TOKEN })
        .with(
            FEED,
            Contract::Feed {
                asset: TOKEN,
                decimals: 8,
            },
        )
}

fn block() -> BlockRef {
    BlockRef {
        number: 7,
        hash: B256::repeat_byte(7),
    }
}

fn id(i: u64) -> LogId {
    LogId {
        tx_hash: B256::repeat_byte(0xCC),
        log_index: i,
    }
}

fn log<E: SolEvent>(address: Address, event: &E) -> Log {
    Log {
        address,
        data: event.encode_log_data(),
    }
}

#[test]
fn decodes_transfer_vault_events_and_answers() {
    let d = decoders();
    let (a, b) = (Address::repeat_byte(1), Address::repeat_byte(2));
    let t = log(
        TOKEN,
        &Transfer {
            from: a,
            to: b,
            value: U256::from(5),
        },
    );
    assert_eq!(
        d.decode(block(), &t, id(0)).unwrap(),
        Some(Decoded::Balance(BalanceEvent {
            part: 0,
            log: id(0),
            asset: TOKEN,
            change: BalanceChange::Transfer {
                from: a,
                to: b,
                amount: U256::from(5)
            }
        }))
    );
    let w = log(
        VAULT,
        &Withdraw {
            user: a,
            amount: U256::from(3),
        },
    );
    assert!(matches!(
        d.decode(block(), &w, id(1)).unwrap(),
        Some(Decoded::Balance(BalanceEvent {
            change: BalanceChange::Withdraw { .. },
            ..
        }))
    ));
    let s = log(
        VAULT,
        &BalanceSet {
            user: a,
            balance: U256::from(9),
        },
    );
    assert!(matches!(
        d.decode(block(), &s, id(2)).unwrap(),
        Some(Decoded::Balance(BalanceEvent {
            change: BalanceChange::Set { .. },
            ..
        }))
    ));
    let p = log(
        FEED,
        &AnswerUpdated {
            current: I256::try_from(123_456_789i64).unwrap(),
            roundId: U256::from(42),
            updatedAt: U256::from(1_700_000_000u64),
        },
    );
    assert_eq!(
        d.decode(block(), &p, id(3)).unwrap(),
        Some(Decoded::Price(PriceUpdate {
            log: id(3),
            asset: TOKEN,
            answer: I256::try_from(123_456_789i64).unwrap(),
            decimals: 8,
            round_id: U256::from(42),
            updated_at: 1_700_000_000,
        }))
    );
}

#[test]
fn ignores_untracked_contracts_and_events() {
    let d = decoders();
    let other = log(
        Address::repeat_byte(0xEE),
        &Transfer {
            from: Address::ZERO,
            to: Address::ZERO,
            value: U256::ZERO,
        },
    );
    assert_eq!(d.decode(block(), &other, id(0)).unwrap(), None);
    let round = log(
        FEED,
        &NewRound {
            roundId: U256::from(1),
            startedBy: Address::ZERO,
            startedAt: U256::ZERO,
        },
    );
    assert_eq!(d.decode(block(), &round, id(1)).unwrap(), None);
}

#[test]
fn malformed_logs_name_block_tx_and_index() {
    let d = decoders();
    // A Transfer with a missing indexed topic and short data.
    let bad = Log {
        address: TOKEN,
        data: LogData::new_unchecked(
            vec![Transfer::SIGNATURE_HASH, B256::ZERO],
            Bytes::from(vec![1u8; 3]),
        ),
    };
    let err = d.decode(block(), &bad, id(9)).unwrap_err();
    assert!(
        matches!(err, SourceError::Malformed { log_index: 9, block: b, .. } if b == block()),
        "{err}"
    );
    assert!(err.to_string().contains("log 9"), "{err}");
}

#[test]
fn round_data_outcomes() {
    let data = |answer: i64, round: u64, answered: u64, updated: u64| {
        AggregatorV3Interface::latestRoundDataReturn {
            roundId: U80::from(round),
            answer: I256::try_from(answer).unwrap(),
            startedAt: U256::ZERO,
            updatedAt: U256::from(updated),
            answeredInRound: U80::from(answered),
        }
    };
    let ok = round_data_update(id(0), TOKEN, 8, &data(5, 3, 3, 100), 150, 60).unwrap();
    assert_eq!((ok.round_id, ok.updated_at), (U256::from(3), 100));
    assert!(matches!(
        round_data_update(id(0), TOKEN, 8, &data(0, 3, 3, 100), 150, 60),
        Err(RoundRejection::NonPositive(_))
    ));
    assert!(matches!(
        round_data_update(id(0), TOKEN, 8, &data(5, 3, 2, 100), 150, 60),
        Err(RoundRejection::Carried { .. })
    ));
    assert_eq!(
        round_data_update(id(0), TOKEN, 8, &data(5, 3, 3, 100), 200, 60),
        Err(RoundRejection::Stale {
            age: 100,
            heartbeat: 60
        })
    );
}

/// A custom decoder that rejects every log, naming (or not) its asset.
#[derive(Debug)]
struct Rejecting(Option<AssetId>);

impl LogDecoder for Rejecting {
    fn decode(&self, _: &Log, _: LogId) -> Result<Option<Decoded>, String> {
        Err("not my format".into())
    }

    fn asset(&self) -> Option<AssetId> {
        self.0
    }
}

#[test]
fn a_rejected_log_of_a_tracked_asset_becomes_an_undecodable_event() {
    let d = decoders();
    let bad = Log {
        address: TOKEN,
        data: LogData::new_unchecked(
            vec![Transfer::SIGNATURE_HASH, B256::ZERO],
            Bytes::from(vec![1u8; 3]),
        ),
    };
    let mut out = DecodedLog::new();
    d.decode_or_undecodable(block(), &bad, id(9), &mut out)
        .expect("not an error");
    let [Decoded::Balance(event)] = out.as_slice() else {
        panic!("{out:?}")
    };
    assert_eq!((event.asset, event.log, event.part), (TOKEN, id(9), 0));
    let BalanceChange::Undecodable { detail } = event.change else {
        panic!("{event:?}")
    };
    assert!(detail.as_str().starts_with("Transfer:"), "{detail}");
    // A good log still decodes as usual.
    out.clear();
    let good = log(
        TOKEN,
        &Transfer {
            from: Address::repeat_byte(1),
            to: Address::repeat_byte(2),
            value: U256::from(5),
        },
    );
    d.decode_or_undecodable(block(), &good, id(1), &mut out)
        .unwrap();
    assert!(matches!(
        out.as_slice(),
        [Decoded::Balance(BalanceEvent {
            change: BalanceChange::Transfer { .. },
            ..
        })]
    ));
}

#[test]
fn a_custom_decoder_names_its_asset_to_quarantine_it_or_fails_the_block() {
    let (named, anonymous) = (Address::repeat_byte(0xC1), Address::repeat_byte(0xC2));
    let d = Decoders::new()
        .with(named, Contract::Custom(Arc::new(Rejecting(Some(TOKEN)))))
        .with(anonymous, Contract::Custom(Arc::new(Rejecting(None))));
    let at = |address| Log {
        address,
        data: LogData::new_unchecked(vec![B256::ZERO], Bytes::new()),
    };
    let mut out = DecodedLog::new();
    d.decode_or_undecodable(block(), &at(named), id(2), &mut out)
        .unwrap();
    assert!(matches!(
        out.as_slice(),
        [Decoded::Balance(BalanceEvent { asset: TOKEN, change: BalanceChange::Undecodable { detail }, .. })]
            if detail.as_str() == "not my format"
    ));
    let err = d
        .decode_or_undecodable(block(), &at(anonymous), id(3), &mut DecodedLog::new())
        .unwrap_err();
    assert!(
        matches!(err, SourceError::Malformed { log_index: 3, .. }),
        "{err}"
    );
}
