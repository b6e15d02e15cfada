//! Following the source: the head probe, the catch-up pipeline and finality.

use futures::{StreamExt, TryStreamExt};

use super::{StepReport, Watcher};
use crate::error::{Error, SourceError};
use crate::model::{Block, BlockId, BlockNumber};

/// Most blocks one [`BlockSource::blocks`](crate::traits::BlockSource::blocks) call
/// fetches during catch-up.
pub const CATCH_UP_CHUNK: u64 = 500;

impl Watcher {
    /// Follows the source: makes the applied chain the source's canonical chain, fetches
    /// the missing heights in parallel, applies them in order, then advances finality to
    /// what the source reports (its head minus the confirmations, or its `finalized` tag),
    /// even when nothing new was written.
    ///
    /// The source is the truth about its canonical chain. If its head is below ours, its
    /// chain is shorter: when its block at its head is ours, the blocks above are rolled
    /// back ([`Transition::Revert`](crate::engine::Transition::Revert)); when it differs,
    /// that is a reorg. (A load-balanced endpoint that lags must not be given as a source
    /// on its own: [`source::rpc`](crate::source) can spread over several endpoints and
    /// report the highest head.) A rollback below the finalized height is refused.
    ///
    /// Blocks the source already reports final are written as confirmed in the changeset
    /// that applies them. A catch-up applies up to [`WatcherConfig::apply_batch`](super::WatcherConfig::apply_batch)
    /// fetched blocks per changeset; at the head, one.
    ///
    /// # Errors
    /// If nothing was committed, the error of the failing fetch, plan or write. If some
    /// changesets were committed before the failure,
    /// [`Error::PartiallyCommitted`] with what was. The cache refresh is never part of the
    /// error: it runs behind the store (see [`refresh_status`](Self::refresh_status)).
    pub async fn sync(&mut self) -> Result<StepReport, Error> {
        let mut report = StepReport::default();
        let result = self.sync_into(&mut report).await;
        match &result {
            Ok(()) => self.last_sync = (Some(std::time::Instant::now()), None),
            Err(e) => {
                if report.is_empty() {
                    // Nothing committed: the head cannot advance (a strict asset's fault,
                    // a failing source or store). Say so instead of "0 behind".
                    self.progress.send_modify(|p| p.stalled = true);
                }
                self.metrics.sync_error(error_kind(e));
                self.last_sync.1 = Some(e.to_string());
            }
        }
        self.finish(report, result)
    }

    async fn sync_into(&mut self, report: &mut StepReport) -> Result<(), Error> {
        self.prepare().await?;
        self.read_resume_requests().await?;
        let source_head = self.source.head().await?;
        self.last_source_head = Some(source_head);
        self.progress.send_modify(|p| p.target = Some(source_head));
        let tag = self.source.finalized().await?;
        let by_depth = source_head.checked_sub(self.config.engine.confirmations);
        // Fresh each time: a source that went back no longer vouches for the old heights.
        self.known_final = by_depth.max(tag).map(|k| k.min(source_head));
        let next = match self.engine.window().head().copied() {
            None => self.config.start_block,
            Some(head) => {
                let probe = source_head.min(head.number);
                let theirs = self.fetch(probe).await?;
                let ours = self.engine.window().at(probe).copied();
                if ours.is_some_and(|o| o.hash == theirs.header.hash) {
                    if let Some(t) = self.engine.revert_to(probe)? {
                        tracing::info!(
                            to = probe,
                            from = head.number,
                            "source chain is shorter: rolling back"
                        );
                        report.add(&self.apply(t).await?);
                    }
                } else {
                    report.add(&self.ingest(theirs).await?);
                }
                self.head_number()
                    .map_or(self.config.start_block, |h| h + 1)
            }
        };
        if next <= source_head {
            self.catch_up(next, source_head, report).await?;
        }
        if let Some(fin) = self.known_final {
            report.add(&self.finalize_to(fin).await?);
        }
        let head = self.head_number();
        self.metrics.source_head(source_head, head);
        self.metrics
            .heights(head, self.engine.window().finalized_number());
        Ok(())
    }

    /// Fetches `from..=to` in chunks ([`BlockSource::blocks`](crate::traits::BlockSource::blocks))
    /// with `fetch_concurrency` chunks in flight and applies the blocks strictly in order,
    /// linked blocks batched per changeset (see [`WatcherConfig::apply_batch`](super::WatcherConfig::apply_batch)).
    /// Chunks hold `ceil(len / fetch_concurrency)` blocks, between 1 and
    /// [`CATCH_UP_CHUNK`], so short catch-ups still spread over all fetchers.
    async fn catch_up(
        &mut self,
        from: BlockNumber,
        to: BlockNumber,
        report: &mut StepReport,
    ) -> Result<(), Error> {
        let source = self.source.clone();
        let concurrency = self.config.fetch_concurrency.max(1);
        let chunk = (to - from + 1)
            .div_ceil(concurrency as u64)
            .clamp(1, CATCH_UP_CHUNK);
        let starts = (from..=to).step_by(usize::try_from(chunk).unwrap_or(usize::MAX));
        let mut chunks = futures::stream::iter(starts)
            .map(move |start| {
                let source = source.clone();
                let end = to.min(start + chunk - 1);
                async move {
                    let blocks = source.blocks(start, end).await?;
                    if blocks.len() as u64 != end - start + 1 {
                        return Err(SourceError::NotFound(BlockId::Range {
                            from: start,
                            to: end,
                        }));
                    }
                    Ok::<_, SourceError>(blocks)
                }
            })
            .buffered(concurrency);
        self.set_catching_up(to > from);
        let (max_blocks, max_events) = (
            self.config.apply_batch.max(1),
            self.config.max_batch_events.max(1),
        );
        let result = async {
            let mut batch: Vec<Block> = Vec::new();
            let mut events = 0;
            'chunks: while let Some(blocks) = chunks.try_next().await? {
                for block in blocks {
                    if self.stopping() {
                        // Stop between changesets; the rest is fetched after a restart.
                        batch.clear();
                        break 'chunks;
                    }
                    let links = batch.last().is_none_or(|p| {
                        p.header.number + 1 == block.header.number
                            && p.header.hash == block.header.parent_hash
                    });
                    let full =
                        batch.len() >= max_blocks || events + block.events.len() > max_events;
                    if !batch.is_empty() && (!links || full) {
                        report.add(&self.ingest_segment(std::mem::take(&mut batch)).await?);
                        events = 0;
                    }
                    events += block.events.len();
                    batch.push(block);
                }
            }
            if !batch.is_empty() {
                report.add(&self.ingest_segment(batch).await?);
            }
            Ok::<_, Error>(())
        }
        .await;
        self.set_catching_up(false);
        result
    }

    /// Tells the refresher whether a catch-up runs (it then refreshes less often).
    fn set_catching_up(&self, on: bool) {
        self.shared.queue().catching_up = on;
        if !on {
            self.shared.wake();
        }
    }

    pub(super) async fn fetch(&self, number: BlockNumber) -> Result<Block, Error> {
        Ok(self
            .source
            .block_by_number(number)
            .await?
            .ok_or(SourceError::NotFound(BlockId::Number(number)))?)
    }

    pub(super) fn head_number(&self) -> Option<BlockNumber> {
        self.engine.window().head().map(|h| h.number)
    }

    /// Finalizes up to `number` (capped at the head), e.g. from the node's `finalized` tag.
    pub async fn finalize_to(&mut self, number: BlockNumber) -> Result<StepReport, Error> {
        self.prepare().await?;
        match self.engine.finalize(number) {
            Some(changes) => self.write(changes).await,
            None => Ok(StepReport::default()),
        }
    }

    /// The result of a multi-changeset call: its error says what was committed before it.
    pub(super) fn finish(
        &self,
        report: StepReport,
        result: Result<(), Error>,
    ) -> Result<StepReport, Error> {
        match result {
            Ok(()) => Ok(report),
            Err(e) if report.is_empty() => Err(e),
            Err(e) => Err(Error::PartiallyCommitted {
                changesets: report.changesets,
                head: self.engine.window().head().map(|h| h.id()),
                source: Box::new(e),
            }),
        }
    }
}

/// The `kind` label of a failed sync.
fn error_kind(e: &Error) -> &'static str {
    match e {
        Error::Source(_) => "source",
        Error::Store(_) => "store",
        Error::Engine(_) => "engine",
        Error::PartiallyCommitted { source, .. } => error_kind(source),
        _ => "other",
    }
}
