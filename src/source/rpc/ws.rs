//! WebSocket connection and `newHeads` subscription (feature `rpc-ws`): wakes the watcher
//! as soon as the node has a new head instead of waiting for the next poll.

use alloy_primitives::U256;
use alloy_rpc_client::{ClientBuilder, WsConnect};
use futures::{Stream, StreamExt};

use super::wire::RpcHeader;
use super::{RetryLayer, RpcBlockSource, RpcConfig, transport};
use crate::error::SourceError;
use crate::model::BlockNumber;

impl RpcBlockSource {
    /// A source over WebSocket at `url` (`ws://` or `wss://`), with the [`RetryLayer`].
    pub async fn ws(url: &str, config: RpcConfig) -> Result<Self, SourceError> {
        let client = ClientBuilder::default()
            .layer(RetryLayer::new(config.retry))
            .ws(WsConnect::new(url))
            .await
            .map_err(transport(format!("connect to {url}")))?;
        Ok(Self::new(client, config))
    }

    /// Subscribes to `newHeads` and yields each new head's number (which may go backwards
    /// after a reorg). Only for sources built with [`ws`](Self::ws). The stream ends when
    /// the connection does; call [`Watcher::sync`](crate::Watcher::sync) on each item.
    pub async fn new_heads(
        &self,
    ) -> Result<impl Stream<Item = BlockNumber> + Send + 'static, SourceError> {
        let frontend = self
            .client
            .pubsub_frontend()
            .ok_or_else(|| SourceError::Transport {
                operation: "eth_subscribe newHeads".into(),
                source: "the source is not connected over WebSocket".into(),
            })?
            .clone();
        let id: U256 = self
            .client
            .request("eth_subscribe", ("newHeads",))
            .await
            .map_err(transport("eth_subscribe newHeads"))?;
        let subscription = frontend
            .get_subscription(id.into())
            .await
            .map_err(transport("eth_subscribe newHeads"))?;
        Ok(subscription.into_stream().filter_map(|raw| async move {
            // A lagged receiver skipped notifications: the next one (or the next sync)
            // catches up, since `sync` always fetches up to the node's head.
            let raw = raw
                .map_err(|error| tracing::debug!(%error, "newHeads notifications skipped"))
                .ok()?;
            match serde_json::from_str::<RpcHeader>(raw.get()) {
                Ok(header) => Some(header.number.to()),
                Err(error) => {
                    tracing::warn!(%error, "undecodable newHeads notification");
                    None
                }
            }
        }))
    }
}
