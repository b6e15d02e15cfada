//! Resume requests (`resume_request`, migration 0015): an operator's process asks, the
//! running watcher (the single writer) reads them at its next sync, writes the resumes and
//! only then removes them, so a crash in between loses none.

use sqlx::Row;

use super::PostgresStore;
use super::codec::{address, bigint, db, number};
use super::deadline::FetchBounded;
use crate::error::StoreError;
use crate::model::ResumeRequest;

impl PostgresStore {
    /// Stores a request that the running watcher resume `request.asset` (replacing an
    /// earlier request for it). Nothing else is written: the resume lands when the
    /// watcher reads the request ([`resume_requests`](crate::traits::StoreWriter::resume_requests))
    /// and applies its next block at or above `request.at_block`; the request is removed
    /// after that block commits.
    ///
    /// # Errors
    /// A database error, or a height past `i64::MAX`; nothing was stored then.
    pub async fn request_resume(&self, request: ResumeRequest) -> Result<(), StoreError> {
        let at = request
            .at_block
            .map(|n| bigint(n, "at_block"))
            .transpose()?;
        sqlx::query(
            "INSERT INTO resume_request (asset, at_block) VALUES ($1, $2)
             ON CONFLICT (asset) DO UPDATE SET at_block = EXCLUDED.at_block, requested_at = now()",
        )
        .bind(request.asset.as_slice())
        .bind(at)
        .fetch_bounded(self, "request a resume")
        .await?;
        Ok(())
    }

    /// Every stored resume request, oldest first; they stay stored until
    /// [`remove_resume`](Self::remove_resume).
    pub(super) async fn read_resumes(&self) -> Result<Vec<ResumeRequest>, StoreError> {
        let rows =
            sqlx::query("SELECT asset, at_block FROM resume_request ORDER BY requested_at, asset")
                .fetch_bounded(self, "read the resume requests")
                .await?;
        rows.iter()
            .map(|row| {
                let asset: Vec<u8> = row.try_get("asset").map_err(db("read a resume request"))?;
                let at: Option<i64> = row
                    .try_get("at_block")
                    .map_err(db("read a resume request"))?;
                Ok(ResumeRequest {
                    asset: address(&asset, "asset")?,
                    at_block: at.map(|n| number(n, "at_block")).transpose()?,
                })
            })
            .collect()
    }

    /// Deletes `request` if it is still the asset's request (same `at_block`; a request
    /// that replaced it stays). Deleting one that is gone does nothing.
    pub(super) async fn remove_resume(&self, request: &ResumeRequest) -> Result<(), StoreError> {
        let at = request
            .at_block
            .map(|n| bigint(n, "at_block"))
            .transpose()?;
        sqlx::query(
            "DELETE FROM resume_request WHERE asset = $1 AND at_block IS NOT DISTINCT FROM $2",
        )
        .bind(request.asset.as_slice())
        .bind(at)
        .fetch_bounded(self, "remove a resume request")
        .await?;
        Ok(())
    }
}
