//! The in-memory event log: one entry per block hash, rows expanded on read.

use crate::model::{BalanceEvent, BlockRef};
use crate::traits::{LogRecord, LogStatus};

/// The log entry of one block hash: its events, kept as delivered, and its status (a
/// block that comes back reuses its entry).
#[derive(Debug)]
pub(super) struct LogBlock {
    pub(super) block: BlockRef,
    pub(super) events: Vec<BalanceEvent>,
    pub(super) status: LogStatus,
}

impl LogBlock {
    pub(super) fn rows(&self) -> impl Iterator<Item = LogRecord> + '_ {
        self.events.iter().flat_map(move |event| {
            event
                .effects()
                .enumerate()
                .map(move |(ordinal, (key, effect))| LogRecord {
                    block: self.block,
                    log: event.log,
                    ordinal: ordinal as u8,
                    key,
                    effect,
                    status: self.status,
                })
        })
    }
}
