//! Delivering blocks: plan them, walking back through the source to the fork point when
//! their parent is unknown.

use tracing::Instrument;

use super::{StepReport, Watcher};
use crate::engine::Plan;
use crate::error::{Error, SourceError};
use crate::model::{Block, BlockId};

impl Watcher {
    /// Ingests one delivered block (e.g. from a new-heads subscription).
    pub async fn ingest(&mut self, block: Block) -> Result<StepReport, Error> {
        self.ingest_segment(vec![block]).await
    }

    /// Ingests linked blocks as one step. If the first block's parent is unknown, walks
    /// back through the source by parent hash to the fork point, then applies the reorg.
    /// On error nothing was written.
    pub async fn ingest_segment(&mut self, mut segment: Vec<Block>) -> Result<StepReport, Error> {
        let span = match (segment.first(), segment.last()) {
            (Some(first), Some(last)) => {
                tracing::debug_span!("block", number = last.header.number, hash = %last.header.hash, from = first.header.number)
            }
            _ => return Ok(StepReport::default()),
        };
        async move {
            self.prepare().await?;
            loop {
                match self.engine.plan(segment)? {
                    Plan::NeedParent {
                        hash,
                        number,
                        segment: rest,
                    } => {
                        tracing::debug!(parent = number, %hash, "walking back to the fork point");
                        let parent = self
                            .source
                            .block_by_hash(hash)
                            .await?
                            .ok_or(SourceError::NotFound(BlockId::Hash(hash)))?;
                        segment = rest;
                        segment.insert(0, parent);
                    }
                    Plan::UpToDate => return Ok(StepReport::default()),
                    Plan::Apply(transition) => return self.apply(transition).await,
                }
            }
        }
        .instrument(span)
        .await
    }
}
