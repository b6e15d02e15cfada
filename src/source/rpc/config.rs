//! [`RpcConfig`]: what the RPC source tracks, how it confirms blocks, how it fetches.

use std::time::Duration;

use super::policy::TransportConfig;
use super::rates::VaultRate;
use crate::decode::Decoders;

/// How blocks become final. This is the one place finality is configured: the watcher
/// follows whatever [`BlockSource::finalized`](crate::BlockSource::finalized) reports and
/// confirms by depth when it reports `None`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FinalityTag {
    /// The node's `finalized` tag (proof-of-stake finality), plus depth.
    #[default]
    Finalized,
    /// The node's `safe` tag (justified; earlier, weaker), plus depth.
    Safe,
    /// Depth only ([`EngineConfig`](crate::EngineConfig)'s confirmations): the source
    /// reports no finalized height. Use it on development chains and chains without tags.
    Depth,
}

impl FinalityTag {
    /// The JSON-RPC tag, if the mode reads one.
    pub fn tag(self) -> Option<&'static str> {
        match self {
            Self::Finalized => Some("finalized"),
            Self::Safe => Some("safe"),
            Self::Depth => None,
        }
    }
}

/// Chain ids of local development chains: 31337 (Hardhat, Anvil), 1337 (Ganache,
/// `geth --dev`). On these a finality tag equal to the latest block is refused
/// ([`SourceError::DevChainFinality`](crate::SourceError::DevChainFinality)).
pub const DEV_CHAIN_IDS: [u64; 2] = [31_337, 1_337];

/// Settings of an [`RpcBlockSource`](super::RpcBlockSource).
#[derive(Clone, Debug)]
pub struct RpcConfig {
    /// Tracked contracts and how to decode their logs. The decimals of every
    /// [`Contract::Feed`](crate::decode::Contract::Feed) are checked against the
    /// aggregator's `decimals()` before the first block is fetched.
    pub decoders: Decoders,
    /// How blocks become final. With a tag, on a development chain
    /// ([`DEV_CHAIN_IDS`]) whose tag names its latest block, the source refuses to start
    /// with [`SourceError::DevChainFinality`](crate::SourceError::DevChainFinality)
    /// instead of finalizing blocks that can still be reverted.
    pub finality: FinalityTag,
    /// Largest block range of one `eth_getLogs` call during catch-up; halved (down to 1)
    /// whenever an endpoint answers "too many results", and kept at the smaller size for that
    /// endpoint from then on.
    pub max_log_range: u64,
    /// Headers requested per JSON-RPC batch during catch-up.
    pub header_batch: usize,
    /// Extra `eth_getLogs` by hash when the bloom says logs are missing, before the bloom
    /// hit is accepted as a false positive (or, with several endpoints, the next endpoint
    /// is asked).
    pub bloom_refetches: u32,
    /// Pause before each of those re-fetches (the node may still be indexing the block).
    pub bloom_refetch_delay: Duration,
    /// With several endpoints: how long an endpoint that failed, answered inconsistently or
    /// reported a head below its previous one is asked only after the others.
    pub endpoint_cooldown: Duration,
    /// Retries and timeouts of the transports the URL constructors build.
    pub transport: TransportConfig,
    /// ERC-4626 vaults whose rate ([`RateUpdate`](crate::model::RateUpdate)) each block
    /// carries when the vault logged or its underlying moved to or from it, and at every
    /// height divisible by [`rate_interval`](Self::rate_interval) (see [`VaultRate`]).
    pub vault_rates: Vec<VaultRate>,
    /// Blocks at most between two rate reads of a vault with no activity (default 32;
    /// the rate of a yield-bearing vault moves every block without any log).
    pub rate_interval: u64,
    /// Read balances ([`ChainBalances`](crate::traits::ChainBalances)) with one `eth_call` to
    /// Multicall3's `aggregate3` per [`MULTICALL_CHUNK`](super::MULTICALL_CHUNK) keys where
    /// Multicall3 is deployed at its canonical address (checked once per endpoint); else,
    /// or when `false`, with JSON-RPC batches of `eth_call`s. Default `true`.
    pub multicall3: bool,
}

impl RpcConfig {
    /// Defaults: the `finalized` tag, ranges of up to 2,000 blocks, batches of 200 headers,
    /// 2 bloom re-fetches 100 ms apart, a 30 s endpoint cooldown,
    /// [`TransportConfig::default`], no vault rates (read every 32 blocks once added), balances
    /// through Multicall3 where deployed.
    pub fn new(decoders: Decoders) -> Self {
        Self {
            decoders,
            finality: FinalityTag::Finalized,
            max_log_range: 2_000,
            header_batch: 200,
            bloom_refetches: 2,
            bloom_refetch_delay: Duration::from_millis(100),
            endpoint_cooldown: Duration::from_secs(30),
            transport: TransportConfig::default(),
            vault_rates: Vec::new(),
            rate_interval: 32,
            multicall3: true,
        }
    }

    /// Also reads the rate of `vault` (see [`vault_rates`](Self::vault_rates)).
    pub fn with_vault_rate(mut self, vault: VaultRate) -> Self {
        self.vault_rates.push(vault);
        self
    }
}
