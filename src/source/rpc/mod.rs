//! [`RpcBlockSource`]: blocks from Ethereum nodes over JSON-RPC, through the user's alloy
//! providers. Running it against a local dev node: `docs/rpc.md` in the repository.
//!
//! - **Your provider**: [`RpcBlockSource::new`] takes any alloy [`Provider<N>`] (its
//!   transports, layers, auth and rate limits come along);
//!   [`RpcBlockSource::with_fallbacks`] takes several for one chain.
//!   [`RpcBlockSource::http`], [`RpcBlockSource::http_fallback`] and (feature `rpc-ws`)
//!   `RpcBlockSource::ws` are conveniences that build the providers with alloy's
//!   [`RetryBackoffLayer`](alloy_transport::layers::RetryBackoffLayer) under
//!   [`NodeErrorPolicy`] (see [`TransportConfig`]).
//! - **Types are alloy's**: headers are `N::HeaderResponse` (alloy's
//!   [`Header`](alloy_rpc_types_eth::Header) for [`Ethereum`]), logs
//!   [`Log`](alloy_rpc_types_eth::Log), filters [`Filter`](alloy_rpc_types_eth::Filter).
//!   Nodes whose headers omit fields the Ethereum header requires (`mixHash` / `nonce`:
//!   OpenEthereum on proof-of-authority chains, older Besu) need
//!   `RpcBlockSource<AnyNetwork>`, whose `AnyHeader` makes them optional.
//! - Each block is its header plus `eth_getLogs` **by block hash**
//!   ([`Filter::at_block_hash`](alloy_rpc_types_eth::Filter::at_block_hash)), so a log can
//!   never come from a sibling fork of its header; an answer with `removed` logs means the
//!   block was reorged away meanwhile, and the height is read again.
//! - **Catch-up** ([`BlockSource::blocks`]) fetches headers in JSON-RPC batches and logs by
//!   range (the range halves when the node answers "too many results"), then checks every
//!   log against the header it is filed under; a block whose logs do not match (other hash,
//!   `removed`, bloom) is re-fetched by hash. A bloom naming a tracked contract without a
//!   log in the block, where the ranged answer holds a later log of that contract, is a
//!   bloom false positive filtered locally (the node's index covered the block).
//! - **Logs versus bloom**: a log the block's `logsBloom` rules out is an inconsistent node
//!   ([`SourceError::Inconsistent`]); a tracked contract the bloom announces without logs is
//!   re-fetched ([`RpcConfig::bloom_refetches`]) and then asked of the next endpoint, or, at
//!   the last endpoint, accepted as a bloom false positive (logged at `warn`). An all-zero
//!   bloom (served with logs by e.g. zkSync Era and Aurora nodes) is not checked.
//! - **Several endpoints**: see [below](self#several-endpoints).
//! - **Finality** is [`RpcConfig::finality`] alone: the node's `finalized` or `safe` tag, or
//!   depth. A node that does not know the tag yields `None` (depth). On a development chain
//!   whose tag is its latest block the source refuses to start
//!   ([`SourceError::DevChainFinality`]).
//! - **Vault rates** ([`RpcConfig::vault_rates`], [`VaultRate`]): `convertToAssets` of each
//!   ERC-4626 vault by `eth_call` at the block's hash, when the vault logged or its
//!   underlying moved to or from it, and every [`RpcConfig::rate_interval`] blocks; carried
//!   in [`Block::rates`](crate::model::Block::rates).
//! - **Start-up checks** ([`RpcBlockSource::check`], run before the first fetch): every
//!   feed's configured decimals against its aggregator's `decimals()`.
//! - **Where to start**: [`RpcBlockSource::deployment_block`] finds the block a token was
//!   deployed in (balances are folded from its events: a later start has no opening
//!   balances, and the first transfer out of an address funded earlier underflows).
//!
//! # Several endpoints
//! Every operation runs against one endpoint from start to end; transport errors,
//! inconsistent answers and heights a node does not have move it to the next endpoint
//! and demote the failing one for [`RpcConfig::endpoint_cooldown`]. The head is the highest
//! of the endpoints' heads, ignoring an endpoint whose head went back while the others'
//! did not; the finalized height is the lowest of their tags. (Alloy's
//! [`FallbackLayer`](alloy_transport::layers::FallbackLayer) can also sit inside one
//! provider; it races requests and returns the first answer, without comparing a block's
//! logs with its header.)

mod balance_of;
mod config;
mod deployment;
mod endpoint;
mod fallback;
mod multicall;
mod policy;
mod preflight;
mod range;
mod rates;
mod redact;
#[cfg(feature = "rpc-ws")]
mod ws;

use std::sync::Arc;

use alloy_network::Network;
use alloy_primitives::{Address, B256};
use alloy_provider::{DynProvider, Provider, RootProvider};
use alloy_rpc_client::{ClientBuilder, RpcClient};
use alloy_rpc_types_eth::BlockNumberOrTag;
use alloy_transport_http::reqwest::Url;
use async_trait::async_trait;
use tokio::sync::OnceCell;

/// The networks the source is usually used with (re-exported from `alloy-network`).
pub use alloy_network::{AnyNetwork, Ethereum};
pub use balance_of::BALANCE_BATCH;
pub use config::{DEV_CHAIN_IDS, FinalityTag, RpcConfig};
pub use multicall::{MULTICALL_CHUNK, MULTICALL3};
pub use policy::{NodeErrorPolicy, TransportConfig, is_too_many_results, is_transient};
pub use rates::VaultRate;

use self::endpoint::Endpoint;
use crate::error::SourceError;
use crate::model::{Block, BlockNumber};
use crate::traits::BlockSource;

/// A [`BlockSource`] reading Ethereum nodes over JSON-RPC through alloy providers of network
/// `N`. See the [module docs](self).
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use alloy_provider::{Provider, ProviderBuilder};
/// use alloy_rpc_client::ClientBuilder;
/// use reorg_collateral::decode::{Contract, Decoders};
/// use reorg_collateral::source::rpc::{RpcBlockSource, RpcConfig, TransportConfig};
///
/// # let token = alloy_primitives::Address::ZERO;
/// // Your providers, built the alloy way (here: alloy's retry layer under our policy).
/// let provider = |url: &str| -> Result<_, Box<dyn std::error::Error>> {
///     let client = ClientBuilder::default()
///         .layer(TransportConfig::default().retry_layer())
///         .http(url.parse()?);
///     Ok(ProviderBuilder::new().connect_client(client).erased())
/// };
/// let config = RpcConfig::new(Decoders::new().with(token, Contract::Token { asset: token }));
/// let source = RpcBlockSource::with_fallbacks(
///     provider("https://rpc-a.example")?,
///     [provider("https://rpc-b.example")?],
///     config,
/// );
/// source.check().await?; // feed decimals, dev-chain finality
/// # Ok(()) }
/// ```
pub struct RpcBlockSource<N: Network = Ethereum> {
    endpoints: Vec<Endpoint<N>>,
    config: RpcConfig,
    addresses: Arc<Vec<Address>>,
    checked: OnceCell<()>,
}

impl<N: Network> std::fmt::Debug for RpcBlockSource<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcBlockSource")
            .field("endpoints", &self.endpoints)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The part of a URL safe to print: scheme, host and port (paths and queries often carry
/// API keys).
fn redacted(url: &Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(host), Some(port)) => format!("{}://{host}:{port}", url.scheme()),
        (Some(host), None) => format!("{}://{host}", url.scheme()),
        _ => url.scheme().to_string(),
    }
}

fn parse_url(url: &str) -> Result<Url, SourceError> {
    url.parse().map_err(|e| SourceError::Transport {
        operation: "parse RPC URL".into(),
        source: Box::new(e),
    })
}

/// An HTTP client for `url` with the retry layer and timeout of `transport`: what the URL
/// constructors use, for building your own provider of another network, e.g.
/// `RootProvider::<AnyNetwork>::new(http_client(url, &TransportConfig::default())?)`.
pub fn http_client(url: &str, transport: &TransportConfig) -> Result<RpcClient, SourceError> {
    let parsed = parse_url(url)?;
    let reqwest = alloy_transport_http::reqwest::Client::builder()
        .timeout(transport.timeout)
        .build()
        .map_err(|e| SourceError::Transport {
            operation: format!("build HTTP client for {}", redacted(&parsed)),
            source: Box::new(e),
        })?;
    Ok(ClientBuilder::default()
        .layer(transport.retry_layer())
        .http_with_client(reqwest, parsed))
}

impl<N: Network> RpcBlockSource<N> {
    /// A source over the user's provider (any transport, layers, auth, rate limit).
    pub fn new<P: Provider<N> + 'static>(provider: P, config: RpcConfig) -> Self {
        Self::with_fallbacks(provider.erased(), [], config)
    }

    /// A source over several providers of one chain: `primary` first, then `fallbacks`
    /// in order (see [Several endpoints](self#several-endpoints)).
    pub fn with_fallbacks(
        primary: DynProvider<N>,
        fallbacks: impl IntoIterator<Item = DynProvider<N>>,
        config: RpcConfig,
    ) -> Self {
        let providers = std::iter::once(primary).chain(fallbacks);
        let labelled = providers
            .enumerate()
            .map(|(i, p)| (p, format!("endpoint #{i}")))
            .collect();
        Self::labelled(labelled, config)
    }

    fn labelled(providers: Vec<(DynProvider<N>, String)>, config: RpcConfig) -> Self {
        // Vaults and their underlyings are fetched too: their logs trigger rate reads
        // (logs of a contract no decoder tracks decode to nothing).
        let rated = config
            .vault_rates
            .iter()
            .flat_map(|v| [v.vault, v.underlying]);
        let mut addresses: Vec<Address> =
            config.decoders.addresses().copied().chain(rated).collect();
        addresses.sort();
        addresses.dedup();
        Self {
            endpoints: providers
                .into_iter()
                .map(|(p, label)| Endpoint::new(p, label, &config))
                .collect(),
            config,
            addresses: Arc::new(addresses),
            checked: OnceCell::new(),
        }
    }

    /// The primary provider (for calls the source does not make, e.g. `eth_call`).
    pub fn provider(&self) -> &DynProvider<N> {
        &self.endpoints[0].provider
    }

    /// The settings.
    pub fn config(&self) -> &RpcConfig {
        &self.config
    }

    /// The primary endpoint's current adaptive `eth_getLogs` range.
    pub fn log_range(&self) -> u64 {
        self.endpoints[0]
            .log_range
            .load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl RpcBlockSource<Ethereum> {
    /// A source over HTTP at `url`, with alloy's retry layer configured by
    /// `config.transport` ([`http_client`]).
    pub fn http(url: &str, config: RpcConfig) -> Result<Self, SourceError> {
        Self::http_fallback(&[url], config)
    }

    /// A source over several HTTP endpoints of one chain, asked in this order (see
    /// [Several endpoints](self#several-endpoints)). Errors and logs name each endpoint by
    /// scheme, host and port only.
    pub fn http_fallback(urls: &[&str], config: RpcConfig) -> Result<Self, SourceError> {
        if urls.is_empty() {
            return Err(SourceError::Transport {
                operation: "build an RPC source".into(),
                source: "no endpoint URL given".into(),
            });
        }
        let mut providers = Vec::with_capacity(urls.len());
        for (i, url) in urls.iter().enumerate() {
            let client = http_client(url, &config.transport)?;
            let label = format!("endpoint #{i} ({})", redacted(&parse_url(url)?));
            providers.push((RootProvider::<Ethereum>::new(client).erased(), label));
        }
        Ok(Self::labelled(providers, config))
    }
}

#[async_trait]
impl<N: Network> BlockSource for RpcBlockSource<N> {
    /// `eth_chainId` of the first endpoint that answers (the store records it).
    async fn chain_id(&self) -> Result<Option<u64>, SourceError> {
        self.first_some(|f| {
            Box::pin(async move {
                let id =
                    f.ep.provider
                        .get_chain_id()
                        .await
                        .map_err(endpoint::transport(&f.ep.label, "eth_chainId"))?;
                Ok(Some(id))
            })
        })
        .await
    }

    async fn head(&self) -> Result<BlockNumber, SourceError> {
        self.check().await?;
        self.best_head().await
    }

    async fn block_by_number(&self, number: BlockNumber) -> Result<Option<Block>, SourceError> {
        self.check().await?;
        self.first_some(|f| Box::pin(async move { f.block_by_number(number).await }))
            .await
    }

    async fn block_by_hash(&self, hash: B256) -> Result<Option<Block>, SourceError> {
        self.check().await?;
        self.first_some(|f| Box::pin(async move { f.block_by_hash(hash).await }))
            .await
    }

    async fn finalized(&self) -> Result<Option<BlockNumber>, SourceError> {
        let tag = match self.config.finality {
            FinalityTag::Finalized => BlockNumberOrTag::Finalized,
            FinalityTag::Safe => BlockNumberOrTag::Safe,
            FinalityTag::Depth => return Ok(None),
        };
        self.check().await?;
        self.lowest_finalized(tag).await
    }

    /// Itself: `balanceOf` by block hash in JSON-RPC batches ([`BALANCE_BATCH`]).
    fn chain_balances(&self) -> Option<&dyn crate::traits::ChainBalances> {
        Some(self)
    }

    /// Headers in JSON-RPC batches, logs by range, from one endpoint; each block's logs
    /// checked against its header hash and bloom, and re-fetched by hash when they do not
    /// match.
    async fn blocks(&self, from: BlockNumber, to: BlockNumber) -> Result<Vec<Block>, SourceError> {
        if from > to {
            return Ok(Vec::new());
        }
        self.check().await?;
        self.first_ok(|f| Box::pin(async move { f.blocks(from, to).await }))
            .await
    }
}

#[cfg(test)]
mod tests;
