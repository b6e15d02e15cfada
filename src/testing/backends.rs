//! The backends a [`Harness`](super::Harness) or the [conformance](super::conformance)
//! suite runs against: shared by both, so neither imports the other.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::cache::MemoryCache;
use crate::chains::ChainId;
use crate::traits::{BalanceStore, CollateralCache};

/// The future a [`ChainOpener`] returns.
type ChainBackends = Pin<Box<dyn Future<Output = Backends> + Send>>;

/// Opens the backends of one chain next to a store (see [`Backends::with_chains`]).
#[derive(Clone)]
struct ChainOpener(Arc<dyn Fn(ChainId) -> ChainBackends + Send + Sync>);

impl fmt::Debug for ChainOpener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ChainOpener")
    }
}

/// The backends under test.
#[derive(Clone, Debug)]
pub struct Backends {
    /// The store (every role, its price feed included).
    pub store: Arc<dyn BalanceStore>,
    /// The cache, if one is under test.
    pub cache: Option<Arc<dyn CollateralCache>>,
    /// How the store opens the stores of other chains, if it does.
    chains: Option<ChainOpener>,
}

impl Backends {
    /// A store, no cache.
    pub fn new(store: Arc<dyn BalanceStore>) -> Self {
        Self {
            store,
            cache: None,
            chains: None,
        }
    }

    /// Adds a cache under test.
    pub fn with_cache(mut self, cache: Arc<dyn CollateralCache>) -> Self {
        self.cache = Some(cache);
        self
    }

    /// Says how this store opens the store of each chain of a multi-chain scenario
    /// (`PostgresStore::chain`: one schema per chain, found in or added to the chains
    /// catalog), with the cache that chain's writer fills. Every call opens a **new
    /// handle** of the chain's store, as another process would (the same store for the
    /// same chain): the multi-chain conformance scenarios use a second call to check that a
    /// second writer of a chain is refused. Without it, each chain of a multi-chain
    /// scenario gets fresh backends of its own from the suite's factory (memory: one store
    /// per chain).
    pub fn with_chains<F, Fut>(mut self, open: F) -> Self
    where
        F: Fn(ChainId) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Backends> + Send + 'static,
    {
        self.chains = Some(ChainOpener(Arc::new(move |id| Box::pin(open(id)))));
        self
    }

    /// Whether this store opens other chains' stores itself (see
    /// [`with_chains`](Self::with_chains)).
    pub fn opens_chains(&self) -> bool {
        self.chains.is_some()
    }

    /// A new handle of chain `chain`'s backends (see [`with_chains`](Self::with_chains)),
    /// which opens chains the same way; `None` when this store does not open chains.
    pub async fn open_chain(&self, chain: ChainId) -> Option<Backends> {
        let opener = self.chains.clone()?;
        let mut opened = (opener.0)(chain).await;
        opened.chains = Some(opener);
        Some(opened)
    }

    /// These backends with their cache, or with an in-memory cache when none is under
    /// test (a scenario about the cache then still checks the store's side of it), and
    /// that cache.
    pub fn with_some_cache(mut self) -> (Self, Arc<dyn CollateralCache>) {
        let cache = self
            .cache
            .get_or_insert_with(|| Arc::new(MemoryCache::new()))
            .clone();
        (self, cache)
    }
}
