//! The write path: one transaction per changeset, one batched write per table (the blocks
//! and their log in `append`, finality in `finalize`), under the client deadline and, once
//! the store is claimed, fenced by the claim's epoch (see `writer`).

use alloy_primitives::B256;
use sqlx::{Postgres, Row, Transaction};

use super::PostgresStore;
use super::append::append;
use super::codec::{BACKEND, b256, bigint, db, number};
use super::finalize::finalize;
use crate::error::StoreError;
use crate::model::Changeset;

/// `blocks.status` of a block reorged out of the canonical chain.
const REVERTED: i16 = 2;

impl PostgresStore {
    /// See [`StoreWriter::apply`](crate::StoreWriter::apply). One transaction under the
    /// operation deadline; a deadline that passes once the commit was sent is
    /// [`StoreError::Deadline`] with [`Committed::Unknown`](crate::error::Committed::Unknown).
    /// When this handle claimed the store, the checkpoint update is fenced by the claim's
    /// epoch: after another writer's claim it matches no row and the changeset is refused
    /// ([`StoreError::WriterFenced`]).
    pub(super) async fn apply_changeset(&self, changes: &Changeset) -> Result<(), StoreError> {
        let what = describe(changes);
        let epoch = self.claim_epoch();
        self.bounded(&format!("apply {what}"), async |conn, progress| {
            let mut tx = sqlx::Connection::begin(conn)
                .await
                .map_err(db(format!("begin {what}")))?;
            super::take_writer_lock(&mut tx, &self.pool, &what).await?;
            if let Some(epoch) = epoch {
                fence(&mut tx, epoch).await?;
            }
            let returning = match stored_blocks(&mut tx, changes).await? {
                Stored::Applied => {
                    tracing::debug!(%what, "changeset already applied; no-op");
                    return Ok(());
                }
                Stored::Returning(hashes) => hashes,
            };
            validate(&mut tx, changes).await?;
            if let Some(first) = changes.revert.first() {
                revert(&mut tx, changes, bigint(first.number, "block_number")?).await?;
            }
            let direct = append(&mut tx, changes, &returning).await?;
            super::indexes::append(&mut tx, changes).await?;
            super::asset_state::append(&mut tx, changes).await?;
            super::rates::append(&mut tx, changes).await?;
            if let Some(tip) = changes.finalize {
                finalize(&mut tx, &tip, &direct).await?;
                super::indexes::finalize(&mut tx, &tip).await?;
                super::asset_state::finalize(&mut tx, bigint(tip.number, "block_number")?).await?;
                super::rates::finalize(&mut tx, &tip).await?;
            }
            checkpoint(&mut tx, changes, epoch, &what).await?;
            if let Some(hook) = &self.hook {
                hook.write(&mut tx, changes).await?;
            }
            progress.committing();
            tx.commit().await.map_err(db(format!("commit {what}")))
        })
        .await
    }
}

/// Moves the checkpoint to the changeset's head and finalized block; with a claim `epoch`,
/// only while the store's epoch is still ours (the row lock of this update orders it with
/// a competing claim's epoch bump), [`StoreError::WriterFenced`] otherwise.
async fn checkpoint(
    tx: &mut Transaction<'_, Postgres>,
    changes: &Changeset,
    epoch: Option<i64>,
    what: &str,
) -> Result<(), StoreError> {
    let head = changes.new_head().map(|h| h.number);
    let updated = sqlx::query(
        "UPDATE checkpoint SET head_number = COALESCE($1, head_number),
         finalized_hash = COALESCE($2, finalized_hash)
         WHERE $3::bigint IS NULL OR writer_epoch = $3",
    )
    .bind(head.map(|n| bigint(n, "head_number")).transpose()?)
    .bind(changes.finalize.map(|h| h.hash.to_vec()))
    .bind(epoch)
    .execute(&mut **tx)
    .await
    .map_err(db(format!("checkpoint for {what}")))?
    .rows_affected();
    match epoch {
        Some(epoch) if updated == 0 => fence(tx, epoch).await,
        _ => Ok(()),
    }
}

/// [`StoreError::WriterFenced`] unless the store's writer epoch is still `epoch`: checked
/// first thing (so a fenced writer is told so, not that the store moved on without it)
/// and again, race-free, by the checkpoint update.
async fn fence(tx: &mut Transaction<'_, Postgres>, epoch: i64) -> Result<(), StoreError> {
    let current: i64 = sqlx::query_scalar("SELECT writer_epoch FROM checkpoint")
        .fetch_one(&mut **tx)
        .await
        .map_err(db("read the writer epoch"))?;
    if current == epoch {
        return Ok(());
    }
    Err(StoreError::WriterFenced {
        backend: BACKEND,
        epoch,
        current,
    })
}

fn describe(changes: &Changeset) -> String {
    let blocks = match (changes.blocks.first(), changes.blocks.last()) {
        (Some(a), Some(b)) => format!(
            "blocks #{}..=#{}",
            a.block.header.number, b.block.header.number
        ),
        _ => "no blocks".to_owned(),
    };
    format!(
        "{blocks}, {} reverted, finalize {:?}",
        changes.revert.len(),
        changes.finalize_number()
    )
}

/// What the store already holds of a changeset's new blocks.
enum Stored {
    /// Every new block is stored as canonical, and the finalized block too when the
    /// changeset finalizes: the changeset was committed before (a commit whose
    /// acknowledgement was lost, or that landed after its client gave up), so applying it
    /// is a no-op.
    Applied,
    /// Hashes of new blocks that were applied once and reorged out (before or by this
    /// changeset): they come back with the log rows they already have (possibly none).
    /// Every other new block is absent from `blocks`, hence has no log row yet.
    Returning(Vec<B256>),
}

/// One lookup of the new blocks' hashes in `blocks`. A changeset whose blocks are only
/// partly stored as canonical (or stored without its finalization) is refused: the store
/// is ahead of the writer's window, e.g. a commit of unknown outcome landed after all and
/// the writer built on the window without it. The writer re-reads its window then.
async fn stored_blocks(
    tx: &mut Transaction<'_, Postgres>,
    changes: &Changeset,
) -> Result<Stored, StoreError> {
    let Some(first) = changes.blocks.first() else {
        return Ok(Stored::Returning(Vec::new()));
    };
    let hashes: Vec<Vec<u8>> = changes
        .blocks
        .iter()
        .map(|b| b.block.header.hash.to_vec())
        .collect();
    let rows = sqlx::query("SELECT hash, status FROM blocks WHERE hash = ANY($1)")
        .bind(&hashes)
        .fetch_all(&mut **tx)
        .await
        .map_err(db("look up the new blocks"))?;
    let mut returning = Vec::new();
    let (mut canonical, mut first_canonical) = (0, false);
    for row in &rows {
        let hash = b256(
            &row.try_get::<Vec<u8>, _>("hash")
                .map_err(db("read block hash"))?,
            "hash",
        )?;
        let status: i16 = row.try_get("status").map_err(db("read block status"))?;
        if status == REVERTED {
            returning.push(hash);
        } else if hash == first.block.header.hash {
            (canonical, first_canonical) = (canonical + 1, true);
        } else if changes.revert.iter().any(|r| r.hash == hash) {
            returning.push(hash);
        } else {
            canonical += 1;
        }
    }
    if canonical == 0 {
        return Ok(Stored::Returning(returning));
    }
    let ahead = |what: String| StoreError::Inconsistent {
        backend: BACKEND,
        detail: format!(
            "{what}: the store is ahead of this writer (re-read its window before writing)"
        ),
    };
    if !first_canonical || canonical != changes.blocks.len() {
        return Err(ahead(format!(
            "{canonical} of the {} new blocks from {} are already stored as canonical",
            changes.blocks.len(),
            first.block.header.id()
        )));
    }
    if let Some(tip) = changes.finalize {
        let finalized: Option<Vec<u8>> =
            sqlx::query_scalar("SELECT finalized_hash FROM checkpoint")
                .fetch_one(&mut **tx)
                .await
                .map_err(db("read the finalized hash"))?;
        if finalized.as_deref() != Some(tip.hash.as_slice()) {
            return Err(ahead(format!(
                "the new blocks from {} are stored, but not finalized at {}",
                first.block.header.id(),
                tip.id()
            )));
        }
    }
    Ok(Stored::Applied)
}

/// Refuses a changeset that does not fit the stored chain, before writing anything.
async fn validate(
    tx: &mut Transaction<'_, Postgres>,
    changes: &Changeset,
) -> Result<(), StoreError> {
    let inconsistent = |detail: String| StoreError::Inconsistent {
        backend: BACKEND,
        detail,
    };
    let above = match changes.revert.first() {
        Some(first) => bigint(first.number, "block_number")?,
        None => i64::MAX,
    };
    if let Some(first) = changes.revert.first() {
        let stored: Vec<Vec<u8>> = sqlx::query_scalar(
            "SELECT hash FROM blocks WHERE status = 0 AND number >= $1 ORDER BY number",
        )
        .bind(bigint(first.number, "block_number")?)
        .fetch_all(&mut **tx)
        .await
        .map_err(db("read blocks to revert"))?;
        let wanted: Vec<Vec<u8>> = changes.revert.iter().map(|h| h.hash.to_vec()).collect();
        if stored != wanted {
            return Err(inconsistent(format!(
                "revert from block {} does not match the {} pending blocks stored above it",
                first.id(),
                stored.len()
            )));
        }
    }
    let Some(first) = changes.blocks.first() else {
        return Ok(());
    };
    let head = sqlx::query("SELECT number, hash FROM blocks WHERE status < 2 AND number < $1 ORDER BY number DESC LIMIT 1")
        .bind(above)
        .fetch_optional(&mut **tx)
        .await
        .map_err(db("read stored head"))?;
    if let Some(row) = head {
        let n = number(
            row.try_get("number").map_err(db("read head number"))?,
            "number",
        )?;
        let hash = b256(
            &row.try_get::<Vec<u8>, _>("hash")
                .map_err(db("read head hash"))?,
            "hash",
        )?;
        let h = &first.block.header;
        if h.number != n + 1 || h.parent_hash != hash {
            return Err(inconsistent(format!(
                "block {} does not extend stored block #{n} ({hash})",
                h.id()
            )));
        }
    }
    Ok(())
}

async fn revert(
    tx: &mut Transaction<'_, Postgres>,
    changes: &Changeset,
    from: i64,
) -> Result<(), StoreError> {
    let hashes: Vec<Vec<u8>> = changes.revert.iter().map(|h| h.hash.to_vec()).collect();
    sqlx::query("UPDATE blocks SET status = 2 WHERE hash = ANY($1)")
        .bind(&hashes)
        .execute(&mut **tx)
        .await
        .map_err(db(format!("revert blocks from #{from}")))?;
    sqlx::query("DELETE FROM user_pending_balances WHERE block_number >= $1")
        .bind(from)
        .execute(&mut **tx)
        .await
        .map_err(db(format!("revert pending balances from #{from}")))?;
    sqlx::query("DELETE FROM oracle_prices WHERE block_status = 0 AND block_number >= $1")
        .bind(from)
        .execute(&mut **tx)
        .await
        .map_err(db(format!("revert pending prices from #{from}")))?;
    super::indexes::revert(tx, from).await?;
    super::rates::revert(tx, from).await?;
    super::asset_state::revert(tx, from).await
}
