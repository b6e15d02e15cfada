//! Resume requests (`resume_request`, migration 0015): an operator's process asks, the
//! running watcher (the single writer) takes them at its next sync and writes the resumes.

use sqlx::Row;

use super::PostgresStore;
use super::codec::{address, bigint, db, number};
use super::deadline::FetchBounded;
use crate::error::StoreError;
use crate::model::ResumeRequest;

impl PostgresStore {
    /// Stores a request that the running watcher resume `request.asset` (replacing an
    /// earlier request for it). Nothing else is written: the resume lands when the
    /// watcher takes the request ([`take_resume_requests`](crate::traits::StoreWriter::take_resume_requests))
    /// and applies its next block at or above `request.at_block`.
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

    /// Takes (deletes and returns) every stored resume request, oldest first.
    pub(super) async fn take_resumes(&self) -> Result<Vec<ResumeRequest>, StoreError> {
        let rows = sqlx::query(
            "WITH taken AS (DELETE FROM resume_request RETURNING asset, at_block, requested_at)
             SELECT asset, at_block FROM taken ORDER BY requested_at, asset",
        )
        .fetch_bounded(self, "take the resume requests")
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
}
