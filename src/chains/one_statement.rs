//! The one-statement read of [`MultiChainReader`] on Postgres (feature `postgres`): when
//! every store the reader depends on (each chain's, and those prices come from) is a
//! [`PostgresStore`](crate::store::PostgresStore) of one database, the users' collateral
//! on every chain is read in ONE statement over the chains' schemas, so a three-chain read
//! costs about one round trip, like a one-chain read. One statement is one snapshot of every
//! schema: the chains' states it reports are those the values were read from, without the
//! before / after check (and [`ChainsError::Moving`] cannot happen).

use std::sync::Arc;

use super::{ChainsError, MultiChainReader, MultiCollateral};
use crate::model::{StateRef, UserId};
use crate::reader::one_statement::{RemoteRead, one_database};
use crate::store::snapshot::{SnapshotQuery, read_snapshot};
use crate::traits::BalanceStore;

impl MultiChainReader {
    /// [`collateral_many`](Self::collateral_many) in one statement, or `None` when the
    /// stores are not Postgres stores of one database. A failed statement is
    /// [`ChainsError::Store`] naming the first chain read (its pool ran the statement).
    pub(super) async fn many_in_one_statement(
        &self,
        users: &[UserId],
    ) -> Option<Result<Vec<Result<MultiCollateral, ChainsError>>, ChainsError>> {
        let handles: Vec<&Arc<dyn BalanceStore>> = self.watched.iter().map(|(_, s)| s).collect();
        let stores = one_database(&handles)?;
        let index = |s: &Arc<dyn BalanceStore>| {
            handles
                .iter()
                .position(|h| Arc::ptr_eq(h, s))
                .unwrap_or_default()
        };
        let parts: Vec<_> = self
            .chains
            .values()
            .map(|reader| reader.snapshot_part(index))
            .collect();
        // Each chain's fixed-key price reads, as a range of the query's.
        let mut ranges = Vec::with_capacity(parts.len());
        let mut reads: Vec<RemoteRead> = Vec::new();
        for (_, remote) in &parts {
            ranges.push(reads.len()..reads.len() + remote.len());
            reads.extend(remote.iter().cloned());
        }
        let query = SnapshotQuery {
            stores,
            heads: true,
            users,
            chains: parts.into_iter().map(|(chain, _)| chain).collect(),
            prices: reads.iter().map(|(r, _)| r.clone()).collect(),
        };
        let what = format!(
            "read the collateral of {} users on {} chains in one statement",
            users.len(),
            self.chains.len()
        );
        let first = self.watched.first().map(|(c, _)| *c).unwrap_or_default();
        let snapshot = match read_snapshot(&query, &what).await {
            Ok(snapshot) => snapshot,
            Err(e) => return Some(Err(ChainsError::store(first)(e))),
        };
        let states: Vec<Option<(u64, StateRef)>> = snapshot
            .heads
            .iter()
            .map(|h| h.map(|(head, state)| (head.timestamp, state)))
            .collect();
        let points = self.points(&states);
        // In chain order, as `points` is.
        let mut values = Vec::with_capacity(points.len());
        for (k, (chain, reader)) in self.chains.iter().enumerate() {
            let Some((_, at)) = points.iter().find(|(c, _)| c == chain) else {
                continue;
            };
            let range = ranges[k].clone();
            values.push(reader.value_inputs(
                users,
                &snapshot.chains[k],
                &reads[range.clone()],
                &snapshot.prices[range],
                *at,
            ));
        }
        Some(Ok(self.assemble(users, &states, &points, values)))
    }
}
