//! UFragments' events: `LogRebase` as an index, the constructor's mint as two events of
//! one log, transfers in fragments.

use alloy_primitives::{Address, B256, Log, LogData, U256};
use alloy_sol_types::SolEvent;

use super::ufragments::{LogRebase, total_gons};
use super::{Contract, Decoded, DecodedLog, Decoders, Transfer};
use crate::error::SourceError;
use crate::model::{AssetIndex, BalanceChange, BlockRef, IndexFormula, LogId};

const AMPL: Address = Address::repeat_byte(0xA1);

fn initial() -> U256 {
    U256::from(50_000_000u64) * U256::from(1_000_000_000u64)
}

fn decoders() -> Decoders {
    Decoders::new().with(
        AMPL,
        Contract::Rebasing {
            asset: AMPL,
            formula: IndexFormula::DivByIndex {
                total_gons: total_gons(initial()),
            },
        },
    )
}

fn log(data: LogData) -> Log {
    Log {
        address: AMPL,
        data,
    }
}

fn decode_all(log: &Log) -> Result<DecodedLog, SourceError> {
    let mut out = DecodedLog::new();
    let block = BlockRef {
        number: 1,
        hash: B256::ZERO,
    };
    let id = LogId {
        tx_hash: B256::repeat_byte(1),
        log_index: 3,
    };
    decoders().decode_all(block, log, id, &mut out)?;
    Ok(out)
}

fn changes(out: &DecodedLog) -> Vec<(u16, BalanceChange)> {
    out.iter()
        .map(|d| match d {
            Decoded::Balance(e) => (e.part, e.change),
            Decoded::Price(_) => panic!("a price from a token"),
        })
        .collect()
}

#[test]
fn constructor_mint_is_the_first_index_and_the_mint() {
    let owner = Address::repeat_byte(0x11);
    let mint = Transfer {
        from: Address::ZERO,
        to: owner,
        value: initial(),
    };
    let out = decode_all(&log(mint.encode_log_data())).unwrap();
    let gpf = total_gons(initial()) / initial();
    assert_eq!(
        changes(&out),
        vec![
            (
                0,
                BalanceChange::Rebase {
                    index: AssetIndex::div_by(gpf)
                }
            ),
            (
                1,
                BalanceChange::Transfer {
                    from: Address::ZERO,
                    to: owner,
                    amount: initial(),
                }
            ),
        ]
    );
    // `decode` refuses a log of several events instead of dropping one.
    let block = BlockRef {
        number: 1,
        hash: B256::ZERO,
    };
    let id = LogId {
        tx_hash: B256::ZERO,
        log_index: 0,
    };
    assert!(matches!(
        decoders().decode(block, &log(mint.encode_log_data()), id),
        Err(SourceError::Malformed { .. })
    ));
}

#[test]
fn rebase_sets_gons_per_fragment_floored() {
    let supply = initial() * U256::from(3) + U256::from(1);
    let rebase = LogRebase {
        epoch: U256::from(7),
        totalSupply: supply,
    };
    let out = decode_all(&log(rebase.encode_log_data())).unwrap();
    assert_eq!(
        changes(&out),
        vec![(
            0,
            BalanceChange::Rebase {
                index: AssetIndex::div_by(total_gons(initial()) / supply)
            }
        )]
    );
    let zero = LogRebase {
        epoch: U256::from(8),
        totalSupply: U256::ZERO,
    };
    assert!(matches!(
        decode_all(&log(zero.encode_log_data())),
        Err(SourceError::Malformed { .. })
    ));
}

#[test]
fn transfers_are_one_event() {
    let t = Transfer {
        from: Address::repeat_byte(1),
        to: Address::repeat_byte(2),
        value: U256::from(5),
    };
    let out = decode_all(&log(t.encode_log_data())).unwrap();
    assert_eq!(
        changes(&out),
        vec![(
            0,
            BalanceChange::Transfer {
                from: Address::repeat_byte(1),
                to: Address::repeat_byte(2),
                amount: U256::from(5),
            }
        )]
    );
}
