//! Several endpoints per chain: the order in which they are asked, failing over on
//! transient errors and inconsistent answers, and a head that one lagging or regressing
//! node cannot drag back.
//!
//! - Every operation (one block, one range) runs against **one** endpoint from start to
//!   end, so a block's header and its logs always come from the same node. Endpoints are
//!   asked in order: not demoted first, then by the head they last reported (highest first),
//!   then as configured. A transport error (after the endpoint's own retry layer gave up),
//!   an [`Inconsistent`](SourceError::Inconsistent) answer (logs versus bloom, logs of
//!   another block) or a missing height moves the operation to the next endpoint and
//!   demotes the failing one for [`RpcConfig::endpoint_cooldown`](super::RpcConfig).
//! - A block a node does not know (`None`) is asked of the next endpoint too: a lagging
//!   node has not seen it yet.
//! - [`head`](crate::BlockSource::head) asks every endpoint that is not demoted and takes
//!   the highest answer. An endpoint whose head is below the one it reported before,
//!   while another endpoint is not, is demoted and its head ignored; when every endpoint
//!   went back together, that is a reorg to a shorter chain and is reported as such.
//! - [`finalized`](crate::BlockSource::finalized) is the lowest tag of the endpoints that
//!   are not demoted: one node's too-high tag cannot finalize what the others may reorg.

use std::cmp::Reverse;
use std::sync::atomic::Ordering;
use std::time::Instant;

use alloy_network::Network;
use alloy_rpc_types_eth::BlockNumberOrTag;
use futures::future::BoxFuture;

use super::RpcBlockSource;
use super::endpoint::Fetch;
use crate::error::SourceError;
use crate::model::BlockNumber;

fn no_endpoint() -> SourceError {
    SourceError::Transport {
        operation: "choose an endpoint".into(),
        source: "the source has no endpoint".into(),
    }
}

/// Errors another endpoint may not have.
fn fails_over(e: &SourceError) -> bool {
    matches!(
        e,
        SourceError::Transport { .. } | SourceError::Inconsistent { .. } | SourceError::NotFound(_)
    )
}

impl<N: Network> RpcBlockSource<N> {
    /// Endpoint indexes in the order to ask them.
    pub(crate) fn order(&self) -> Vec<usize> {
        let now = Instant::now();
        let mut order: Vec<usize> = (0..self.endpoints.len()).collect();
        order.sort_by_key(|&i| {
            let ep = &self.endpoints[i];
            (ep.demoted(now), Reverse(ep.reported_head().unwrap_or(0)), i)
        });
        order
    }

    fn fetch(&self, i: usize, last: bool) -> Fetch<'_, N> {
        Fetch {
            ep: &self.endpoints[i],
            config: &self.config,
            addresses: &self.addresses,
            last,
        }
    }

    fn demote(&self, i: usize, error: &SourceError) {
        let ep = &self.endpoints[i];
        crate::metrics::source_error(&ep.label);
        tracing::warn!(endpoint = %ep.label, %error, cooldown_s = self.config.endpoint_cooldown.as_secs(), "endpoint failed; asking the next one");
        ep.demote(Instant::now() + self.config.endpoint_cooldown);
    }

    /// Runs `op` on the endpoints in order until one succeeds; `Ok(None)` moves on too,
    /// and is the answer only if no endpoint has the item and none failed.
    pub(crate) async fn first_some<T>(
        &self,
        op: impl for<'a> Fn(Fetch<'a, N>) -> BoxFuture<'a, Result<Option<T>, SourceError>>,
    ) -> Result<Option<T>, SourceError> {
        let order = self.order();
        let mut error = None;
        for (k, &i) in order.iter().enumerate() {
            let last = k + 1 == order.len();
            match op(self.fetch(i, last)).await {
                Ok(Some(v)) => return Ok(Some(v)),
                Ok(None) => {}
                Err(e) if fails_over(&e) && !last => {
                    self.demote(i, &e);
                    error = Some(e);
                }
                Err(e) => {
                    crate::metrics::source_error(&self.endpoints[i].label);
                    return Err(e);
                }
            }
        }
        match error {
            Some(e) => Err(e),
            None => Ok(None),
        }
    }

    /// Runs `op` on the endpoints in order until one succeeds.
    pub(crate) async fn first_ok<T>(
        &self,
        op: impl for<'a> Fn(Fetch<'a, N>) -> BoxFuture<'a, Result<T, SourceError>>,
    ) -> Result<T, SourceError> {
        let order = self.order();
        let mut error = None;
        for (k, &i) in order.iter().enumerate() {
            let last = k + 1 == order.len();
            match op(self.fetch(i, last)).await {
                Ok(v) => return Ok(v),
                Err(e) if fails_over(&e) && !last => {
                    self.demote(i, &e);
                    error = Some(e);
                }
                Err(e) => {
                    crate::metrics::source_error(&self.endpoints[i].label);
                    return Err(e);
                }
            }
        }
        Err(error.unwrap_or_else(no_endpoint))
    }

    /// The highest head of the endpoints that are not demoted and did not go back.
    pub(crate) async fn best_head(&self) -> Result<BlockNumber, SourceError> {
        if self.endpoints.len() == 1 {
            let ep = &self.endpoints[0];
            let head = ep
                .head()
                .await
                .inspect_err(|_| crate::metrics::source_error(&ep.label))?;
            ep.reported_head.store(head, Ordering::Relaxed);
            return Ok(head);
        }
        let asked = self.undemoted();
        let answers =
            futures::future::join_all(asked.iter().map(|&i| self.endpoints[i].head())).await;
        let mut error = None;
        // (endpoint, head, went back)
        let mut heads = Vec::new();
        for (&i, answer) in asked.iter().zip(answers) {
            let ep = &self.endpoints[i];
            match answer {
                Ok(head) => {
                    let back = ep.reported_head().is_some_and(|before| head < before);
                    heads.push((i, head, back));
                }
                Err(e) => {
                    self.demote(i, &e);
                    error.get_or_insert(e);
                }
            }
        }
        let steady = heads.iter().any(|&(_, _, back)| !back);
        let mut best = None;
        for &(i, head, back) in &heads {
            let ep = &self.endpoints[i];
            if back && steady {
                let before = ep.reported_head().unwrap_or_default();
                self.demote(
                    i,
                    &SourceError::Inconsistent {
                        endpoint: ep.label.clone(),
                        detail: format!(
                            "head #{head} is below #{before}, which it reported before, while other endpoints did not go back"
                        ),
                    },
                );
                // Keep the higher mark: it is trusted again once it reaches it.
                continue;
            }
            ep.reported_head.store(head, Ordering::Relaxed);
            best = best.max(Some(head));
        }
        match (best, error) {
            (Some(head), _) => Ok(head),
            (None, Some(e)) => Err(e),
            (None, None) => Err(no_endpoint()),
        }
    }

    /// The endpoints not demoted now (all of them when every one is).
    fn undemoted(&self) -> Vec<usize> {
        let now = Instant::now();
        let asked: Vec<usize> = (0..self.endpoints.len())
            .filter(|&i| !self.endpoints[i].demoted(now))
            .collect();
        if asked.is_empty() {
            (0..self.endpoints.len()).collect()
        } else {
            asked
        }
    }

    /// The lowest finalized height of the endpoints that are not demoted and know the
    /// tag: one node's too-high tag cannot finalize blocks the others may still reorg.
    pub(crate) async fn lowest_finalized(
        &self,
        tag: BlockNumberOrTag,
    ) -> Result<Option<BlockNumber>, SourceError> {
        let asked = self.undemoted();
        let answers = futures::future::join_all(
            asked
                .iter()
                .map(|&i| async move { self.fetch(i, true).tag(tag).await }),
        )
        .await;
        let mut error = None;
        let mut lowest: Option<BlockNumber> = None;
        let mut answered = false;
        for (&i, answer) in asked.iter().zip(answers) {
            match answer {
                Ok(n) => {
                    answered = true;
                    if let Some(n) = n {
                        lowest = Some(lowest.map_or(n, |l| l.min(n)));
                    }
                }
                Err(e) if fails_over(&e) && asked.len() > 1 => {
                    self.demote(i, &e);
                    error.get_or_insert(e);
                }
                Err(e) => {
                    crate::metrics::source_error(&self.endpoints[i].label);
                    return Err(e);
                }
            }
        }
        match (answered, error) {
            (false, Some(e)) => Err(e),
            _ => Ok(lowest),
        }
    }
}
