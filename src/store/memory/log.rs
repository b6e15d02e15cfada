//! The in-memory event log: one entry per block hash, rows expanded on read.

use std::collections::HashMap;

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
                .map(move |(i, (key, effect))| LogRecord {
                    block: self.block,
                    log: event.log,
                    ordinal: event.ordinal(i),
                    key,
                    effect,
                    status: self.status,
                })
        })
    }
}

/// The log's entries by id (ids are never reused; pruned entries are gone).
#[derive(Debug, Default)]
pub(super) struct Log {
    entries: HashMap<usize, LogBlock>,
    next: usize,
}

impl Log {
    pub(super) fn push(&mut self, entry: LogBlock) -> usize {
        let id = self.next;
        self.next += 1;
        self.entries.insert(id, entry);
        id
    }

    pub(super) fn get(&self, id: usize) -> Option<&LogBlock> {
        self.entries.get(&id)
    }

    pub(super) fn get_mut(&mut self, id: usize) -> Option<&mut LogBlock> {
        self.entries.get_mut(&id)
    }

    pub(super) fn remove(&mut self, id: usize) {
        self.entries.remove(&id);
    }

    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &LogBlock> {
        self.entries.values()
    }
}
