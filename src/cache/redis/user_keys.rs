//! The users' hashes of one cache prefix, walked with `SCAN` in batches: what a clear
//! deletes (the whole hash, or one chain's field of it).

use redis::aio::ConnectionManager;

use super::config::backend;
use crate::error::CacheError;

/// A `SCAN` over the keys `{<prefix>:0x<40 hex>}` (exactly those: a bare `*` would also
/// match the keys of a cache whose prefix extends this one, `p` and `p:v2`). Every key
/// present from the first batch to the last is returned at least once (`SCAN`'s promise).
#[derive(Debug)]
pub(super) struct UserKeys {
    pattern: String,
    /// Where the next batch starts (`None`: the scan is done).
    cursor: Option<u64>,
}

impl UserKeys {
    /// A scan of `prefix`'s user keys, not started yet.
    pub(super) fn new(prefix: &str) -> Self {
        Self {
            pattern: format!("{{{prefix}:0x{}}}", "?".repeat(40)),
            cursor: Some(0),
        }
    }

    /// The next non-empty batch of keys (up to about 1000), or `None` once the scan is done.
    ///
    /// # Errors
    /// The Redis error of a `SCAN`, naming the pattern.
    pub(super) async fn next(
        &mut self,
        conn: &mut ConnectionManager,
    ) -> Result<Option<Vec<String>>, CacheError> {
        while let Some(cursor) = self.cursor {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&self.pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(conn)
                .await
                .map_err(backend(format!("scan {}", self.pattern)))?;
            self.cursor = (next != 0).then_some(next);
            if !keys.is_empty() {
                return Ok(Some(keys));
            }
        }
        Ok(None)
    }
}
