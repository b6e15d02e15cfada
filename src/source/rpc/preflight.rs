//! Checks run once, before the source's first answer: every configured feed's decimals
//! against its aggregator's `decimals()`, every Tether token's owner against its `owner()`,
//! and a finality tag on a development chain.
//! [`RpcBlockSource::check`] runs them on demand; every [`BlockSource`](crate::BlockSource)
//! method runs them first until they pass once.

use alloy_network::Network;
use alloy_primitives::Bytes;
use alloy_provider::Provider;
use alloy_rpc_types_eth::{BlockNumberOrTag, TransactionRequest};
use alloy_sol_types::SolCall;

use super::endpoint::{Fetch, transport};
use super::{DEV_CHAIN_IDS, RpcBlockSource};
use crate::decode::{AggregatorV3Interface, Contract, tether};
use crate::error::SourceError;

impl<N: Network> RpcBlockSource<N> {
    /// Runs the start-up checks now (they otherwise run before the first fetch):
    ///
    /// - each [`Contract::Feed`]'s decimals equal its aggregator's `decimals()`, else
    ///   [`SourceError::FeedDecimals`] naming the feed, the configured and the on-chain
    ///   decimals;
    /// - each [`Contract::Tether`]'s owner equals the token's `owner()` at the latest block,
    ///   else [`SourceError::TetherOwner`] (the check cannot see an ownership change inside
    ///   the blocks still to fetch: the 2017 contract emits no event for it);
    /// - with a finality tag on a development chain ([`DEV_CHAIN_IDS`]) whose tag names the
    ///   latest block: [`SourceError::DevChainFinality`].
    ///
    /// A transport failure leaves the checks to run again on the next call.
    pub async fn check(&self) -> Result<(), SourceError> {
        self.checked
            .get_or_try_init(|| async {
                self.first_ok(|f| Box::pin(async move { preflight(&f).await }))
                    .await
            })
            .await
            .map(|_| ())
    }
}

async fn preflight<N: Network>(f: &Fetch<'_, N>) -> Result<(), SourceError> {
    let ep = f.ep;
    let mut feeds: Vec<_> = f
        .config
        .decoders
        .contracts()
        .filter_map(|(address, contract)| match contract {
            Contract::Feed { decimals, .. } => Some((*address, *decimals)),
            _ => None,
        })
        .collect();
    feeds.sort();
    for (feed, configured) in feeds {
        let call = TransactionRequest::default()
            .to(feed)
            .input(Bytes::from(AggregatorV3Interface::decimalsCall {}.abi_encode()).into());
        let out: Bytes = ep
            .provider
            .raw_request("eth_call".into(), (call, BlockNumberOrTag::Latest))
            .await
            .map_err(transport(
                &ep.label,
                format_args!("decimals() of feed {feed}"),
            ))?;
        let on_chain =
            AggregatorV3Interface::decimalsCall::abi_decode_returns(&out).map_err(|e| {
                SourceError::Transport {
                    operation: format!(
                        "decimals() of feed {feed} at {} (answer {out}: is it an aggregator?)",
                        ep.label
                    ),
                    source: Box::new(e),
                }
            })?;
        if on_chain != configured {
            return Err(SourceError::FeedDecimals {
                feed,
                configured,
                on_chain,
            });
        }
    }
    tether_owners(f).await?;
    let Some(tag_name) = f.config.finality.tag() else {
        return Ok(());
    };
    let chain_id = ep
        .provider
        .get_chain_id()
        .await
        .map_err(transport(&ep.label, "eth_chainId"))?;
    if !DEV_CHAIN_IDS.contains(&chain_id) {
        return Ok(());
    }
    let tag = match tag_name {
        "safe" => BlockNumberOrTag::Safe,
        _ => BlockNumberOrTag::Finalized,
    };
    // `latest` first: on a chain whose tag is its latest block, the tag read after it is
    // at least as high even if a block is mined in between.
    let latest = ep.head().await?;
    match f.tag(tag).await? {
        Some(block) if block >= latest => Err(SourceError::DevChainFinality {
            chain_id,
            tag: tag_name,
            block,
        }),
        _ => Ok(()),
    }
}

/// Each `Contract::Tether`'s configured owner against the token's `owner()` at `latest`.
async fn tether_owners<N: Network>(f: &Fetch<'_, N>) -> Result<(), SourceError> {
    let ep = f.ep;
    let mut tokens: Vec<_> = f
        .config
        .decoders
        .contracts()
        .filter_map(|(address, contract)| match contract {
            Contract::Tether { owner, .. } => Some((*address, *owner)),
            _ => None,
        })
        .collect();
    tokens.sort();
    for (token, configured) in tokens {
        let call = TransactionRequest::default()
            .to(token)
            .input(Bytes::from(tether::Ownable::ownerCall {}.abi_encode()).into());
        let out: Bytes = ep
            .provider
            .raw_request("eth_call".into(), (call, BlockNumberOrTag::Latest))
            .await
            .map_err(transport(
                &ep.label,
                format_args!("owner() of Tether token {token}"),
            ))?;
        let on_chain = tether::Ownable::ownerCall::abi_decode_returns(&out).map_err(|e| {
            SourceError::Transport {
                operation: format!(
                    "owner() of Tether token {token} at {} (answer {out}: is it a TetherToken?)",
                    ep.label
                ),
                source: Box::new(e),
            }
        })?;
        if on_chain != configured {
            return Err(SourceError::TetherOwner {
                token,
                configured,
                on_chain,
            });
        }
    }
    Ok(())
}
