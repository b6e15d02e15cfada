//! The JSON-RPC shapes the source reads and sends: minimal serde types, so nodes that omit
//! or add fields (dev chains, L2s) still deserialize, without alloy's full block and
//! transaction types.

use alloy_primitives::{Address, B256, Bloom, Bytes, U64};
use serde::{Deserialize, Serialize};

use crate::model::{BlockHeader, BlockRef};

/// A block header as `eth_getBlockBy*` returns it (transactions as hashes, ignored).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RpcHeader {
    pub hash: B256,
    pub number: U64,
    pub parent_hash: B256,
    pub timestamp: U64,
    pub logs_bloom: Bloom,
}

impl RpcHeader {
    pub fn id(&self) -> BlockRef {
        BlockRef {
            number: self.number.to(),
            hash: self.hash,
        }
    }

    pub fn to_model(&self) -> BlockHeader {
        BlockHeader {
            number: self.number.to(),
            hash: self.hash,
            parent_hash: self.parent_hash,
            timestamp: self.timestamp.to(),
        }
    }
}

/// A log as `eth_getLogs` returns it.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RpcLog {
    pub address: Address,
    pub topics: Vec<B256>,
    pub data: Bytes,
    pub block_hash: Option<B256>,
    pub block_number: Option<U64>,
    pub transaction_hash: Option<B256>,
    pub log_index: Option<U64>,
    #[serde(default)]
    pub removed: bool,
}

impl RpcLog {
    /// The log as alloy's primitive `Log`, for `SolEvent::decode_log`.
    pub fn to_primitive(&self) -> alloy_primitives::Log {
        alloy_primitives::Log::new_unchecked(self.address, self.topics.clone(), self.data.clone())
    }

    pub fn index(&self) -> Option<u64> {
        self.log_index.map(|i| i.to())
    }

    pub fn number(&self) -> Option<u64> {
        self.block_number.map(|n| n.to())
    }
}

/// An `eth_getLogs` filter: by block hash, or by range.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LogFilter<'a> {
    pub address: &'a [Address],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub block_hash: Option<B256>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_block: Option<U64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_block: Option<U64>,
}

impl<'a> LogFilter<'a> {
    pub fn at_hash(address: &'a [Address], hash: B256) -> Self {
        Self {
            address,
            block_hash: Some(hash),
            from_block: None,
            to_block: None,
        }
    }

    pub fn range(address: &'a [Address], from: u64, to: u64) -> Self {
        Self {
            address,
            block_hash: None,
            from_block: Some(U64::from(from)),
            to_block: Some(U64::from(to)),
        }
    }
}
