//! A changeset's new blocks: the `blocks` rows, the event log (`INSERT … UNNEST`, or one
//! binary `COPY` when large), pending balances and prices, one statement per table.

use std::collections::{BTreeMap, HashSet};

use alloy_primitives::{B256, U256};
use sqlx::{Postgres, Transaction};

use super::codec::{BACKEND, CopyBinary, Numeric, bigint, db, timestamp_bits};
use crate::error::StoreError;
use crate::model::{BalanceKey, Changeset, Effect};

/// Balances of new blocks at or below the changeset's own finalized height (catch-up):
/// written straight as confirmed rows, the latest per key, instead of pending rows that
/// the same transaction would promote and delete.
#[derive(Default)]
pub(super) struct Direct {
    pub(super) user: Vec<[u8; 20]>,
    pub(super) asset: Vec<[u8; 20]>,
    pub(super) value: Vec<Numeric>,
    pub(super) block: Vec<i64>,
}

/// Inserts the new blocks and their log, pending balances and prices; returns the
/// balances of blocks finalized by the same changeset, for [`finalize`](super::finalize).
pub(super) async fn append(
    tx: &mut Transaction<'_, Postgres>,
    changes: &Changeset,
    returning: &[B256],
) -> Result<Direct, StoreError> {
    let n = changes.blocks.len();
    if n == 0 {
        return Ok(Direct::default());
    }
    let finalized = changes.finalize_number();
    let mut latest_final: BTreeMap<BalanceKey, (U256, i64)> = BTreeMap::new();
    let (mut hash, mut num, mut parent, mut ts) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let mut log = LogRows::default();
    let (mut b_user, mut b_asset, mut b_value, mut b_block) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    // The log has no unique index (it cost more than half of the log's write): a log
    // repeated within a block is refused here, and a block's log rows are written only by
    // the changeset that inserts the block (`stored_blocks`, and the insert below).
    let mut seen = HashSet::new();
    let mut p_hash: Vec<Vec<u8>> = Vec::new();
    let (mut p_asset, mut p_answer, mut p_dec, mut p_round, mut p_time, mut p_block) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    for b in &changes.blocks {
        let h = b.block.header;
        let bn = bigint(h.number, "block_number")?;
        hash.push(h.hash.to_vec());
        num.push(bn);
        parent.push(h.parent_hash.to_vec());
        ts.push(timestamp_bits(h.timestamp));
        // A block that comes back after being reorged out already has its log rows.
        let events = if returning.contains(&h.hash) {
            &[][..]
        } else {
            &b.block.events[..]
        };
        seen.clear();
        for event in events {
            if !seen.insert((event.log, event.part)) {
                return Err(StoreError::Inconsistent {
                    backend: BACKEND,
                    detail: format!(
                        "duplicate log {}:{} (part {}) in block {}",
                        event.log.tx_hash,
                        event.log.log_index,
                        event.part,
                        h.id()
                    ),
                });
            }
            for (i, (key, effect)) in event.effects().enumerate() {
                let (kind, amount) = match effect {
                    Effect::Credit(a) => (0i16, a),
                    Effect::Debit(a) => (1, a),
                    Effect::Set(a) => (2, a),
                    Effect::Reconcile(a) => (3, a),
                };
                log.block_hash.push(b.block.header.hash.as_slice());
                log.block_number.push(bn);
                log.tx_hash.push(event.log.tx_hash.as_slice());
                log.log_index
                    .push(bigint(event.log.log_index, "log_index")?);
                log.ordinal
                    .push(
                        i16::try_from(event.ordinal(i)).map_err(|_| StoreError::OutOfRange {
                            backend: BACKEND,
                            column: "ordinal",
                            value: format!("part {} of log {}", event.part, event.log),
                        })?,
                    );
                log.user.push(key.user.0.0);
                log.asset.push(key.asset.0.0);
                log.kind.push(kind);
                log.amount.push(Numeric(amount));
            }
        }
        if finalized.is_some_and(|f| h.number <= f) {
            // Blocks ascend: a later block's value replaces an earlier one.
            for (key, value) in &b.balances {
                latest_final.insert(*key, (*value, bn));
            }
        } else {
            for (key, value) in &b.balances {
                b_user.push(key.user.0.0);
                b_asset.push(key.asset.0.0);
                b_value.push(Numeric(*value));
                b_block.push(bn);
            }
        }
        for p in &b.prices {
            p_asset.push(p.asset.to_vec());
            p_answer.push(p.answer.to_string());
            p_dec.push(i16::from(p.decimals));
            p_round.push(p.round_id.to_string());
            p_time.push(timestamp_bits(p.updated_at));
            p_block.push(bn);
            p_hash.push(h.hash.to_vec());
        }
    }
    let range = format!("#{}..=#{}", num[0], num[n - 1]);
    // A block that comes back after being reorged out keeps its hash and its log rows; any
    // other stored hash (a concurrent writer got there first) fails the changeset.
    let inserted = sqlx::query(
        "INSERT INTO blocks (hash, number, parent_hash, timestamp, status)
         SELECT *, 0 FROM UNNEST($1::bytea[], $2::bigint[], $3::bytea[], $4::bigint[])
         ON CONFLICT (hash) DO UPDATE SET status = 0 WHERE blocks.status = 2",
    )
    .bind(&hash)
    .bind(&num)
    .bind(&parent)
    .bind(&ts)
    .execute(&mut **tx)
    .await
    .map_err(db(format!("insert blocks {range}")))?
    .rows_affected();
    if inserted != n as u64 {
        return Err(StoreError::Inconsistent {
            backend: BACKEND,
            detail: format!(
                "blocks {range}: {} of {n} already stored",
                n as u64 - inserted
            ),
        });
    }
    let log_rows = log.len();
    if log_rows > 0 {
        write_log(tx, &log, &range).await?;
    }
    let pending_rows = b_user.len();
    if pending_rows > 0 {
        sqlx::query(
            "INSERT INTO user_pending_balances (user_address, asset, balance, block_number, block_status)
             SELECT u, a, v, n, 0 FROM UNNEST($1::bytea[], $2::bytea[], $3::numeric[], $4::bigint[]) AS r(u, a, v, n)",
        )
        .bind(&b_user)
        .bind(&b_asset)
        .bind(&b_value)
        .bind(&b_block)
        .execute(&mut **tx)
        .await
        .map_err(db(format!("insert pending balances of {range}")))?;
    }
    if !p_asset.is_empty() {
        sqlx::query(
            "INSERT INTO oracle_prices (asset, answer, decimals, round_id, updated_at, block_number, block_status)
             SELECT a, v::numeric, d, r::numeric, t, n, 0
             FROM UNNEST($1::bytea[], $2::text[], $3::smallint[], $4::text[], $5::bigint[], $6::bigint[]) AS x(a, v, d, r, t, n)",
        )
        .bind(&p_asset)
        .bind(&p_answer)
        .bind(&p_dec)
        .bind(&p_round)
        .bind(&p_time)
        .bind(&p_block)
        .execute(&mut **tx)
        .await
        .map_err(db(format!("insert pending prices of {range}")))?;
        // The price history (migration 0012): a block that comes back keeps its rows.
        sqlx::query(
            "INSERT INTO price_log (block_hash, block_number, asset, answer, decimals, round_id, updated_at)
             SELECT h, n, a, v::numeric, d, r::numeric, t
             FROM UNNEST($1::bytea[], $2::bytea[], $3::text[], $4::smallint[], $5::text[], $6::bigint[], $7::bigint[])
                  AS x(h, a, v, d, r, t, n)
             ON CONFLICT DO NOTHING",
        )
        .bind(&p_hash)
        .bind(&p_asset)
        .bind(&p_answer)
        .bind(&p_dec)
        .bind(&p_round)
        .bind(&p_time)
        .bind(&p_block)
        .execute(&mut **tx)
        .await
        .map_err(db(format!("insert the price history of {range}")))?;
    }
    let mut direct = Direct::default();
    for (key, (value, block)) in latest_final {
        direct.user.push(key.user.0.0);
        direct.asset.push(key.asset.0.0);
        direct.value.push(Numeric(value));
        direct.block.push(block);
    }
    Ok(direct)
}

/// The `balance_updates` rows of a changeset, column by column (the column order of the
/// table and of [`COPY_LOG`]).
#[derive(Default)]
struct LogRows<'a> {
    block_hash: Vec<&'a [u8]>,
    block_number: Vec<i64>,
    tx_hash: Vec<&'a [u8]>,
    log_index: Vec<i64>,
    ordinal: Vec<i16>,
    user: Vec<[u8; 20]>,
    asset: Vec<[u8; 20]>,
    kind: Vec<i16>,
    amount: Vec<Numeric>,
}

impl LogRows<'_> {
    fn len(&self) -> usize {
        self.block_number.len()
    }

    /// The rows as one binary `COPY` payload.
    fn copy_payload(&self) -> Vec<u8> {
        let mut copy = CopyBinary::new();
        for i in 0..self.len() {
            copy.row(9);
            copy.bytea(self.block_hash[i]);
            copy.int8(self.block_number[i]);
            copy.bytea(self.tx_hash[i]);
            copy.int8(self.log_index[i]);
            copy.int2(self.ordinal[i]);
            copy.bytea(&self.user[i]);
            copy.bytea(&self.asset[i]);
            copy.int2(self.kind[i]);
            copy.numeric(&self.amount[i].0);
        }
        copy.finish()
    }
}

const COPY_LOG: &str = "COPY balance_updates (block_hash, block_number, tx_hash, log_index, ordinal, user_address, asset, kind, amount) FROM STDIN (FORMAT binary)";

/// From this many log rows on, the log is written with one binary `COPY` (less server
/// time per row than `INSERT … SELECT FROM UNNEST`); below it, with one `INSERT`.
/// A `COPY` ends with two small writes (the last data message, then `CopyDone`), and with
/// Nagle's algorithm on (sqlx does not set `TCP_NODELAY`) the second waits for the
/// server's delayed ACK, a stall nearly every small changeset would pay.
const COPY_MIN_ROWS: usize = 2_000;

/// Appends the log rows (one statement). Log duplicates were refused before (see `append`).
async fn write_log(
    tx: &mut Transaction<'_, Postgres>,
    log: &LogRows<'_>,
    range: &str,
) -> Result<(), StoreError> {
    let what = format!("insert the log of {range}");
    if log.len() < COPY_MIN_ROWS {
        sqlx::query(
            "INSERT INTO balance_updates (block_hash, block_number, tx_hash, log_index, ordinal, user_address, asset, kind, amount)
             SELECT * FROM UNNEST($1::bytea[], $2::bigint[], $3::bytea[], $4::bigint[], $5::smallint[],
                                  $6::bytea[], $7::bytea[], $8::smallint[], $9::numeric[])",
        )
        .bind(&log.block_hash)
        .bind(&log.block_number)
        .bind(&log.tx_hash)
        .bind(&log.log_index)
        .bind(&log.ordinal)
        .bind(&log.user)
        .bind(&log.asset)
        .bind(&log.kind)
        .bind(&log.amount)
        .execute(&mut **tx)
        .await
        .map_err(db(what))?;
        return Ok(());
    }
    let mut copy = tx.copy_in_raw(COPY_LOG).await.map_err(db(what.clone()))?;
    if let Err(e) = copy.send(log.copy_payload()).await {
        let _ = copy.abort("send failed").await;
        return Err(db(what)(e));
    }
    copy.finish().await.map_err(db(what))?;
    Ok(())
}
