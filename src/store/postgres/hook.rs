//! Extra writes inside a changeset's transaction: the extension point the migration
//! toolkit's dual-write ([`LegacyLog`](crate::migration::LegacyLog), feature `migration`)
//! plugs into, so the store does not depend on it.

use std::fmt::Debug;

use async_trait::async_trait;
use sqlx::PgConnection;

use crate::error::StoreError;
use crate::model::Changeset;

/// "Also write this inside the changeset's transaction": called by
/// [`PostgresStore::apply`](crate::StoreWriter::apply) after the store's own writes and
/// before the commit, on the same connection and transaction.
///
/// # Contract
/// - Runs once per changeset that writes something (not for a changeset already applied).
/// - An error rolls the whole changeset back: nothing of it is committed, the store's own
///   rows included.
/// - Do not commit or roll back on `conn`; the store does.
#[async_trait]
pub trait ChangesetHook: Send + Sync + Debug {
    /// Writes what `changes` implies for this hook, in the store's open transaction.
    async fn write(&self, conn: &mut PgConnection, changes: &Changeset) -> Result<(), StoreError>;
}
