use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

use async_trait::async_trait;

use crate::error::CacheError;
use crate::model::{CachedCollateral, StateRef, UserId};
use crate::traits::CollateralCache;

#[derive(Debug, Default)]
struct State {
    entries: HashMap<UserId, CachedCollateral>,
    watermark: Option<StateRef>,
    session: Option<u64>,
}

/// In-memory collateral cache: a map behind one lock, so a write is atomic for readers.
/// [`clear`](CollateralCache::clear) drops the session mark too, as a flush of a server
/// would: a writer in a session then learns that it lost its entries.
#[derive(Debug, Default)]
pub struct MemoryCache {
    state: RwLock<State>,
}

impl MemoryCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of cached users.
    pub fn len(&self) -> usize {
        self.state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .entries
            .len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl State {
    fn write(&mut self, entries: &[CachedCollateral], watermark: Option<StateRef>) {
        for e in entries {
            self.entries.insert(e.user, e.clone());
        }
        if watermark.is_some() {
            self.watermark = watermark;
        }
    }
}

#[async_trait]
impl CollateralCache for MemoryCache {
    async fn write(
        &self,
        entries: &[CachedCollateral],
        watermark: Option<StateRef>,
    ) -> Result<(), CacheError> {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        state.write(entries, watermark);
        Ok(())
    }

    async fn get(&self, user: UserId) -> Result<Option<CachedCollateral>, CacheError> {
        Ok(self
            .state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .entries
            .get(&user)
            .cloned())
    }

    async fn get_many(
        &self,
        users: &[UserId],
    ) -> Result<Vec<Option<CachedCollateral>>, CacheError> {
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        Ok(users
            .iter()
            .map(|u| state.entries.get(u).cloned())
            .collect())
    }

    async fn watermark(&self) -> Result<Option<StateRef>, CacheError> {
        Ok(self
            .state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .watermark)
    }

    async fn clear(&self) -> Result<(), CacheError> {
        *self.state.write().unwrap_or_else(PoisonError::into_inner) = State::default();
        Ok(())
    }

    async fn get_with_watermark(
        &self,
        user: UserId,
    ) -> Result<(Option<CachedCollateral>, Option<StateRef>), CacheError> {
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        Ok((state.entries.get(&user).cloned(), state.watermark))
    }

    async fn begin_session(&self, session: u64) -> Result<(), CacheError> {
        self.state
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .session = Some(session);
        Ok(())
    }

    async fn write_in_session(
        &self,
        entries: &[CachedCollateral],
        watermark: Option<StateRef>,
        session: u64,
    ) -> Result<bool, CacheError> {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        let intact = state.session == Some(session);
        state.write(entries, watermark.filter(|_| intact));
        state.session = Some(session);
        Ok(intact)
    }
}

#[cfg(test)]
mod tests {
    use alloy_primitives::{Address, B256};

    use super::*;
    use crate::model::BlockRef;

    fn state(n: u64) -> StateRef {
        StateRef {
            head: BlockRef {
                number: n,
                hash: B256::repeat_byte(n as u8),
            },
            finalized: n.checked_sub(2),
        }
    }

    fn entry(user: u8, n: u64) -> CachedCollateral {
        CachedCollateral {
            user: Address::repeat_byte(user),
            block: n,
            hash: state(n).head.hash,
            finalized: state(n).finalized,
            confirmed: Default::default(),
            pending: Default::default(),
            assets: Default::default(),
            complete: true,
        }
    }

    /// A session's watermark is refused once the cache lost its mark (a clear, another
    /// session), and accepted again after the mark is set anew.
    #[tokio::test]
    async fn a_lost_session_mark_refuses_the_watermark_once() {
        let cache = MemoryCache::new();
        cache.begin_session(7).await.unwrap();
        assert!(
            cache
                .write_in_session(&[entry(1, 5)], Some(state(5)), 7)
                .await
                .unwrap()
        );
        assert_eq!(
            cache
                .get_with_watermark(Address::repeat_byte(1))
                .await
                .unwrap(),
            (Some(entry(1, 5)), Some(state(5)))
        );
        cache.clear().await.unwrap();
        assert!(
            !cache
                .write_in_session(&[entry(2, 6)], Some(state(6)), 7)
                .await
                .unwrap()
        );
        assert_eq!(cache.watermark().await.unwrap(), None, "refused");
        assert_eq!(
            cache.get(Address::repeat_byte(2)).await.unwrap(),
            Some(entry(2, 6))
        );
        assert!(
            cache
                .write_in_session(&[], Some(state(6)), 7)
                .await
                .unwrap()
        );
        assert_eq!(cache.watermark().await.unwrap(), Some(state(6)));
        cache.begin_session(8).await.unwrap();
        assert!(
            !cache
                .write_in_session(&[], Some(state(7)), 7)
                .await
                .unwrap(),
            "another session"
        );
        assert_eq!(cache.watermark().await.unwrap(), Some(state(6)));
        // The refused writer marked the cache for itself again: its next write goes through.
        assert!(
            cache
                .write_in_session(&[], Some(state(7)), 7)
                .await
                .unwrap()
        );
    }
}
