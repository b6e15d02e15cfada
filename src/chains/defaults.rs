//! [`ChainDefaults`]: finality and fetch sizes for well-known chain ids (feature `rpc`).

use crate::chains::ChainId;
use crate::source::rpc::{FinalityTag, RpcConfig};

/// How a chain's watcher confirms blocks and how much it fetches at once, for a chain id:
/// the values to start from, each overridable (the fields are public; `with_*` set one).
///
/// Finality here is what the crate has today: [`RpcConfig::finality`] (a node tag or depth
/// only) plus [`EngineConfig::confirmations`](crate::EngineConfig::confirmations), the
/// depth at which a block is final even when the tag has not reached it (the tag may
/// finalize earlier, never later), which also bounds the unconfirmed window and the reorg
/// depth the engine accepts. On a tagged chain the depth is set above the tag's usual lag,
/// so that the tag decides and the depth only caps the window when the tag stalls.
///
/// | chain id | chain | finality | confirmations | `max_log_range` | source |
/// |---|---|---|---|---|---|
/// | 1 | Ethereum | `finalized` | 96 | 2,000 | Casper FFG: the first block of each epoch (32 slots of 12 s) is a checkpoint; a justified checkpoint is finalized when the next one is justified, at an epoch boundary, so the tag trails the head by 64–95 slots (at most that many blocks) when every epoch justifies (ethereum.org, "Proof-of-stake", Finality) |
/// | 10 | OP Mainnet (OP Stack) | `finalized` (`safe` optional) | 3,600 | 2,000 | OP docs, "Transaction finality": `safe` once the batch is in an L1 block (5–10 min), `finalized` once that L1 block is final (about 2 epochs more); 3,600 blocks are 1 h at 1 s blocks, 2 h at 2 s (OP Mainnet's block time was not verified in OP's docs) |
/// | 8453 | Base (OP Stack) | `finalized` (`safe` optional) | 1,800 | 2,000 | Base docs, "Transaction finality": ~2 s blocks, batch on L1 after ~2 min, L1 batch final after ~20 min; 1,800 blocks = 1 h |
/// | 42161 | Arbitrum One | `finalized` (`safe` optional) | 14,400 | 10,000 | Arbitrum docs, "Finality and chain reorganizations", and Nitro v2.0.10: `safe`/`finalized` = the latest L2 block posted to L1 whose batch is safe/finalized there; ~0.25 s blocks, 14,400 = 1 h; sparse logs per block, so wider ranges |
/// | 137 | Polygon PoS | `finalized` | 256 (depth floor) | 2,000 | Polygon docs, "Finality": milestones finalize blocks deterministically and the `finalized` tag returns the latest; a 157-block reorg happened before milestones (February 2023), so the depth is kept at 256 even with the tag |
/// | 31337, 1337 | Hardhat/Anvil, Ganache/`geth --dev` | depth | 12 | 10,000 | dev chains: their tags are no consensus finality (Anvil answers fixed depths behind the head; [`DEV_CHAIN_IDS`](crate::source::rpc::DEV_CHAIN_IDS): a tag at the latest block is refused), local nodes answer wide ranges |
/// | other | unknown | depth | 64 | 2,000 | no tag is assumed; 2,000 blocks is [`RpcConfig::new`]'s range |
///
/// The pages each row was checked against (and what could not be) are listed in
/// `docs/chain-defaults.md`.
///
/// The 2,000-block `max_log_range` is [`RpcConfig::new`]'s default, which the source halves
/// by itself when an endpoint answers "too many results"; the wider ranges are this crate's
/// choice for chains whose blocks carry few logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainDefaults {
    /// The chain.
    pub chain: ChainId,
    /// How blocks become final ([`RpcConfig::finality`]).
    pub finality: FinalityTag,
    /// The depth at which a block is final without the tag
    /// ([`EngineConfig::confirmations`](crate::EngineConfig::confirmations)).
    pub confirmations: u64,
    /// Largest block range of one `eth_getLogs` ([`RpcConfig::max_log_range`]).
    pub max_log_range: u64,
    /// Headers per JSON-RPC batch ([`RpcConfig::header_batch`]).
    pub header_batch: usize,
}

impl ChainDefaults {
    /// The defaults of `chain` (see the table above; an unknown chain gets depth 64).
    pub fn for_chain(chain: impl Into<ChainId>) -> Self {
        let chain = chain.into();
        let (finality, confirmations, max_log_range) = match chain.0 {
            1 => (FinalityTag::Finalized, 96, 2_000),
            10 => (FinalityTag::Finalized, 3_600, 2_000),
            8453 => (FinalityTag::Finalized, 1_800, 2_000),
            42_161 => (FinalityTag::Finalized, 14_400, 10_000),
            137 => (FinalityTag::Finalized, 256, 2_000),
            31_337 | 1_337 => (FinalityTag::Depth, 12, 10_000),
            _ => (FinalityTag::Depth, 64, 2_000),
        };
        Self {
            chain,
            finality,
            confirmations,
            max_log_range,
            header_batch: 200,
        }
    }

    /// Whether the chain is one of the table's (not an unknown one on the fallback).
    pub fn is_known(&self) -> bool {
        matches!(self.chain.0, 1 | 10 | 8453 | 42_161 | 137 | 31_337 | 1_337)
    }

    /// With `finality` instead (e.g. [`FinalityTag::Safe`] on an OP Stack chain or
    /// Arbitrum, for earlier but weaker confirmation).
    pub fn with_finality(mut self, finality: FinalityTag) -> Self {
        self.finality = finality;
        self
    }

    /// With `confirmations` instead.
    pub fn with_confirmations(mut self, confirmations: u64) -> Self {
        self.confirmations = confirmations;
        self
    }

    /// With `max_log_range` instead.
    pub fn with_max_log_range(mut self, max_log_range: u64) -> Self {
        self.max_log_range = max_log_range;
        self
    }

    /// Sets `config`'s finality and fetch sizes to these.
    pub fn apply(&self, config: &mut RpcConfig) {
        config.finality = self.finality;
        config.max_log_range = self.max_log_range;
        config.header_batch = self.header_batch;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::Decoders;

    #[test]
    fn well_known_chains_and_the_fallback() {
        let eth = ChainDefaults::for_chain(1);
        assert_eq!(
            (eth.finality, eth.confirmations),
            (FinalityTag::Finalized, 96)
        );
        for l2 in [10, 8453, 42_161] {
            let d = ChainDefaults::for_chain(l2);
            assert_eq!(d.finality, FinalityTag::Finalized, "{l2}");
            assert!(d.is_known());
        }
        assert!(
            ChainDefaults::for_chain(137).confirmations >= 157,
            "deeper than 2023's reorg"
        );
        // OP Stack: the tag trails by 20–30 min; the depth covers an hour at 1 s blocks
        // (OP Mainnet) and at 2 s blocks (Base).
        assert!(ChainDefaults::for_chain(10).confirmations >= 3_600);
        assert!(ChainDefaults::for_chain(8453).confirmations >= 1_800);
        for dev in crate::source::rpc::DEV_CHAIN_IDS {
            assert_eq!(ChainDefaults::for_chain(dev).finality, FinalityTag::Depth);
        }
        let unknown = ChainDefaults::for_chain(424_242);
        assert_eq!(
            (unknown.finality, unknown.confirmations),
            (FinalityTag::Depth, 64)
        );
        assert!(!unknown.is_known());
    }

    #[test]
    fn overrides_and_apply() {
        let d = ChainDefaults::for_chain(ChainId(8453))
            .with_finality(FinalityTag::Safe)
            .with_confirmations(600)
            .with_max_log_range(500);
        let mut config = RpcConfig::new(Decoders::new());
        d.apply(&mut config);
        assert_eq!(config.finality, FinalityTag::Safe);
        assert_eq!((config.max_log_range, config.header_batch), (500, 200));
        assert_eq!(d.confirmations, 600);
    }
}
