//! [`MultiChainReader`]: one collateral per user over several chains, each chain read
//! through its own [`CollateralReader`], all from one state of every chain.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use futures::future::try_join_all;

use super::{ChainHeads, ChainId, ChainsError, MultiCollateral};
use crate::error::ValuationError;
use crate::model::{Collateral, StateRef, UserId};
use crate::reader::{CollateralReader, SNAPSHOT_ATTEMPTS, ValuationPoint};
use crate::traits::BalanceStore;

#[cfg(feature = "postgres")]
#[path = "one_statement.rs"]
mod one_statement;

/// Reads users' collateral over several chains: one [`CollateralReader`] per chain (its
/// own store, registry, price age and, with
/// [`with_price_from`](CollateralReader::with_price_from), prices from another chain's
/// store). Cheap to clone.
///
/// ```no_run
/// # async fn demo(eth: reorg_collateral::CollateralReader, base: reorg_collateral::CollateralReader,
/// #               user: reorg_collateral::model::UserId) -> Result<(), reorg_collateral::chains::ChainsError> {
/// use reorg_collateral::chains::{ChainId, MultiChainReader};
///
/// let reader = MultiChainReader::new([(ChainId::ETHEREUM, eth), (ChainId(8453), base)])?;
/// let c = reader.collateral(user).await?;
/// println!("{} confirmed, {} pending over {} chains", c.confirmed, c.pending, c.at.len());
/// for (symbol, line) in c.by_symbol() {
///     println!("{symbol}: {} confirmed", line.confirmed);
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct MultiChainReader {
    chains: BTreeMap<ChainId, CollateralReader>,
    /// Every store a read depends on, distinct by handle, with its chain: each chain's
    /// store, then the other stores prices come from. Each one's state is read before and
    /// after a read.
    watched: Vec<(ChainId, Arc<dyn BalanceStore>)>,
}

impl MultiChainReader {
    /// A reader of `chains`, one [`CollateralReader`] per chain. Refused with
    /// [`ChainsError::DuplicateChain`] when a chain is given twice.
    pub fn new(
        chains: impl IntoIterator<Item = (ChainId, CollateralReader)>,
    ) -> Result<Self, ChainsError> {
        let mut map = BTreeMap::new();
        for (chain, reader) in chains {
            if map.insert(chain, reader).is_some() {
                return Err(ChainsError::DuplicateChain { chain });
            }
        }
        let mut watched: Vec<(ChainId, Arc<dyn BalanceStore>)> = Vec::new();
        let mut watch = |chain: ChainId, store: &Arc<dyn BalanceStore>| {
            if !watched.iter().any(|(_, s)| Arc::ptr_eq(s, store)) {
                watched.push((chain, store.clone()));
            }
        };
        for (chain, reader) in &map {
            watch(*chain, reader.store());
        }
        for reader in map.values() {
            for (_, remote) in reader.remote_prices() {
                watch(remote.chain, &remote.store);
            }
        }
        Ok(Self {
            chains: map,
            watched,
        })
    }

    /// The chains read, ascending.
    pub fn chains(&self) -> impl Iterator<Item = ChainId> + '_ {
        self.chains.keys().copied()
    }

    /// Whether [`collateral_many`](Self::collateral_many) is one statement: every store
    /// read (each chain's, and those prices come from) is a
    /// `PostgresStore` (feature `postgres`; not a decorator of one), all of one
    /// database, as the schemas of one chains catalog are. Otherwise each chain is read
    /// through its reader, every state checked before and after.
    pub fn reads_in_one_statement(&self) -> bool {
        #[cfg(feature = "postgres")]
        {
            let handles: Vec<&Arc<dyn BalanceStore>> =
                self.watched.iter().map(|(_, s)| s).collect();
            crate::reader::one_statement::one_database(&handles).is_some()
        }
        #[cfg(not(feature = "postgres"))]
        false
    }

    /// The reader of `chain`, if it is read.
    pub fn reader(&self, chain: ChainId) -> Option<&CollateralReader> {
        self.chains.get(&chain)
    }

    /// The state of every chain read (and of every chain prices come from) that has a
    /// block applied, read now (one read per store).
    pub async fn heads(&self) -> Result<ChainHeads, ChainsError> {
        let states = self.states().await?;
        Ok(self.heads_of(&states))
    }

    /// A user's collateral over every chain, from one state of every chain (see
    /// [`collateral_many`](Self::collateral_many)).
    pub async fn collateral(&self, user: UserId) -> Result<MultiCollateral, ChainsError> {
        self.collateral_many(&[user])
            .await?
            .pop()
            .unwrap_or_else(|| {
                Ok(MultiCollateral::new(
                    user,
                    ChainHeads::new(),
                    BTreeMap::new(),
                    |_, _| String::new(),
                ))
            })
    }

    /// The collateral of `users` (in the order asked) over every chain, each chain valued
    /// at its head, all read from one state of every chain.
    ///
    /// Every store's state (head and finalized height) is read before and after the
    /// chains' reads (which run concurrently, one
    /// [`collateral_many`](CollateralReader::collateral_many) per chain); the reads are kept
    /// only if every store names the same state both times, otherwise read again, up to
    /// [`SNAPSHOT_ATTEMPTS`] times, then [`ChainsError::Moving`] naming the chain seen
    /// moving. A chain's prices are aged against the latest head timestamp of that chain
    /// and the chains its prices come from. A user whose valuation fails on a chain gets
    /// [`ChainsError::Valuation`] naming it; the others are valued.
    ///
    /// When every store is a Postgres store of one database (the chains' schemas of one
    /// catalog: [`reads_in_one_statement`](Self::reads_in_one_statement)), every chain is
    /// read in ONE statement instead, one snapshot of every schema: the same values, one
    /// round trip whatever the number of chains, no check and no retry (a failed statement
    /// is [`ChainsError::Store`] naming the first chain, whose pool ran it).
    pub async fn collateral_many(
        &self,
        users: &[UserId],
    ) -> Result<Vec<Result<MultiCollateral, ChainsError>>, ChainsError> {
        #[cfg(feature = "postgres")]
        if let Some(read) = self.many_in_one_statement(users).await {
            return read;
        }
        let mut moving = None;
        for _ in 0..SNAPSHOT_ATTEMPTS {
            let before = self.states().await?;
            let points = self.points(&before);
            let values = try_join_all(points.iter().map(|(chain, at)| async move {
                self.chains[chain]
                    .collateral_many(users, *at)
                    .await
                    .map_err(ChainsError::store(*chain))
            }))
            .await?;
            let after = self.states().await?;
            let moved = self
                .watched
                .iter()
                .zip(before.iter().zip(&after))
                .find(|(_, (b, a))| b != a);
            if let Some(((chain, _), (_, a))) = moved {
                moving = Some((*chain, a.map(|(_, s)| s)));
                tokio::task::yield_now().await;
                continue;
            }
            return Ok(self.assemble(users, &before, &points, values));
        }
        let (chain, last) = moving.unwrap_or_default();
        Err(ChainsError::Moving {
            chain,
            attempts: SNAPSHOT_ATTEMPTS,
            last,
        })
    }

    /// Every user that holds (or held) a tracked asset on any chain, ascending.
    pub async fn holders(&self) -> Result<Vec<UserId>, ChainsError> {
        let all = try_join_all(self.chains.iter().map(|(chain, reader)| async move {
            reader.holders().await.map_err(ChainsError::store(*chain))
        }))
        .await?;
        let users: BTreeSet<UserId> = all.into_iter().flatten().collect();
        Ok(users.into_iter().collect())
    }

    /// Each watched store's head timestamp and state (`None`: no block applied), in
    /// `watched` order, read concurrently.
    async fn states(&self) -> Result<Vec<Option<(u64, StateRef)>>, ChainsError> {
        try_join_all(self.watched.iter().map(|(chain, store)| async move {
            store
                .head_state()
                .await
                .map(|s| s.map(|(head, state)| (head.timestamp, state)))
                .map_err(ChainsError::store(*chain))
        }))
        .await
    }

    /// The state of each chain with a block applied: its first watched store's.
    fn heads_of(&self, states: &[Option<(u64, StateRef)>]) -> ChainHeads {
        let mut heads = ChainHeads::new();
        for ((chain, _), state) in self.watched.iter().zip(states) {
            if let Some((_, s)) = state {
                heads.entry(*chain).or_insert(*s);
            }
        }
        heads
    }

    /// The valuation point of each chain with a block applied: its head, aged against the
    /// latest head timestamp of it and the chains its prices come from.
    fn points(&self, states: &[Option<(u64, StateRef)>]) -> Vec<(ChainId, ValuationPoint)> {
        let time_of = |store: &Arc<dyn BalanceStore>| {
            self.watched
                .iter()
                .zip(states)
                .find(|((_, s), _)| Arc::ptr_eq(s, store))
                .and_then(|(_, state)| *state)
        };
        self.chains
            .iter()
            .filter_map(|(chain, reader)| {
                let (time, own) = time_of(reader.store())?;
                let now = reader
                    .remote_prices()
                    .filter_map(|(_, r)| time_of(&r.store).map(|(t, _)| t))
                    .fold(time, u64::max);
                let at = ValuationPoint {
                    block: own.head.number,
                    now,
                };
                Some((*chain, at))
            })
            .collect()
    }

    /// Each user's [`MultiCollateral`] from each chain's values (`values[i]` those of
    /// `points[i]`'s chain, in `users` order).
    fn assemble(
        &self,
        users: &[UserId],
        states: &[Option<(u64, StateRef)>],
        points: &[(ChainId, ValuationPoint)],
        values: Vec<Vec<Result<Collateral, ValuationError>>>,
    ) -> Vec<Result<MultiCollateral, ChainsError>> {
        let heads = self.heads_of(states);
        let mut per_chain: Vec<(
            ChainId,
            std::vec::IntoIter<Result<Collateral, ValuationError>>,
        )> = points
            .iter()
            .map(|(c, _)| *c)
            .zip(values.into_iter().map(Vec::into_iter))
            .collect();
        let symbol = |chain: ChainId, asset: &crate::model::AssetId| {
            self.chains
                .get(&chain)
                .and_then(|r| r.valuator().assets().get(asset))
                .map_or_else(|| asset.to_string(), |a| a.symbol.clone())
        };
        users
            .iter()
            .map(|user| {
                let mut chains = BTreeMap::new();
                let mut failed = None;
                for (chain, values) in &mut per_chain {
                    match values.next() {
                        Some(Ok(c)) => {
                            chains.insert(*chain, c);
                        }
                        Some(Err(source)) => {
                            failed.get_or_insert(ChainsError::Valuation {
                                chain: *chain,
                                source,
                            });
                        }
                        None => {}
                    }
                }
                match failed {
                    Some(e) => Err(e),
                    None => Ok(MultiCollateral::new(*user, heads.clone(), chains, symbol)),
                }
            })
            .collect()
    }
}
