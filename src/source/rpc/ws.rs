//! WebSocket connection and `newHeads` subscription (feature `rpc-ws`): wakes the watcher
//! as soon as the node has a new head instead of waiting for the next poll.

use alloy_consensus::BlockHeader;
use alloy_network::{Ethereum, Network};
use alloy_provider::{Provider, RootProvider};
use alloy_rpc_client::{ClientBuilder, WsConnect};
use futures::{Stream, StreamExt};

use super::endpoint::transport;
use super::{RpcBlockSource, RpcConfig, parse_url, redacted};
use crate::error::SourceError;
use crate::model::BlockNumber;

impl RpcBlockSource<Ethereum> {
    /// A source over WebSocket at `url` (`ws://` or `wss://`), with alloy's retry layer
    /// configured by `config.transport`.
    pub async fn ws(url: &str, config: RpcConfig) -> Result<Self, SourceError> {
        let label = format!("endpoint #0 ({})", redacted(&parse_url(url)?));
        let client = ClientBuilder::default()
            .layer(config.transport.retry_layer())
            .ws(WsConnect::new(url))
            .await
            .map_err(transport(&label, "connect"))?;
        let provider = RootProvider::<Ethereum>::new(client).erased();
        Ok(Self::labelled(vec![(provider, label)], config))
    }
}

impl<N: Network> RpcBlockSource<N> {
    /// Subscribes to `newHeads` on the primary provider and yields each new head's number
    /// (which may go backwards after a reorg). Needs a provider over a pubsub transport
    /// (WebSocket, IPC). The stream ends when the connection does; call
    /// [`Watcher::sync`](crate::Watcher::sync) on each item.
    pub async fn new_heads(
        &self,
    ) -> Result<impl Stream<Item = BlockNumber> + Send + 'static, SourceError> {
        let ep = &self.endpoints[0];
        let subscription = ep
            .provider
            .subscribe_blocks()
            .await
            .map_err(transport(&ep.label, "eth_subscribe newHeads"))?;
        Ok(subscription.into_stream().map(|header| header.number()))
    }
}
