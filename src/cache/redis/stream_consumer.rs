//! [`RedisStreamConsumer`]: reads the stream a
//! [`RedisStreamPublisher`](super::RedisStreamPublisher) appends to, resuming from an id
//! (alone) or from its consumer group's position, and says when it must resync.

use std::time::Duration;

use redis::Value;
use redis::aio::ConnectionManager;

use super::BACKEND;
use super::config::backend;
use super::stream_id::{StreamId, entries, text};
use crate::error::CacheError;

mod claim;

/// One update read from the stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamEntry {
    /// The entry's id (give it back to [`RedisStreamConsumer::after`] to resume after it,
    /// or to [`RedisStreamConsumer::ack`] in a group).
    pub id: StreamId,
    /// The block of the update.
    pub block: u64,
    /// The chain of the update (`None`: an entry of a publisher older than this field).
    pub chain: Option<crate::chains::ChainId>,
    /// The update as [`RedisPublisher`](super::RedisPublisher) formats it.
    pub message: String,
}

/// Why a consumer must resync the users it follows from the cache or the store (as on a
/// [`Notification::Lagged`](crate::watcher::Notification::Lagged)); the updates that
/// follow are the ones after the gap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resync {
    /// Entries between `after` and `next` were trimmed (`MAXLEN`) before this consumer
    /// (or its group) read them.
    Trimmed {
        /// The last entry read before the gap ([`StreamId::ZERO`]: none).
        after: StreamId,
        /// The first entry after the gap (it follows this event).
        next: StreamId,
        /// How many entries were lost, when known (`None`: the entry before the gap was
        /// itself trimmed, so the count is unknown and the gap may even be empty).
        missed: Option<u64>,
    },
    /// The publisher could not append `missed` notifications (Redis was down, or its own
    /// subscription lagged); entry `id` says so.
    Publisher {
        /// The entry that reports the lag.
        id: StreamId,
        /// Notifications not appended.
        missed: u64,
        /// The chain of the publisher's watcher (`None`: an entry of a publisher older
        /// than this field).
        chain: Option<crate::chains::ChainId>,
    },
}

/// What a read returns, in stream order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamEvent {
    /// An update.
    Update(StreamEntry),
    /// A gap: resync, then go on with the events that follow.
    Resync(Resync),
    /// An asset's quarantine or resume (entry kind `quarantined` / `resumed`; the message
    /// is [`RedisPublisher`](super::RedisPublisher)'s line, `block` the block of the
    /// quarantine or resume). Entries of a kind this version does not know are skipped
    /// (and acknowledged in a group), so a newer publisher never breaks an older consumer.
    AssetState(StreamEntry),
}

/// A consumer of the collateral stream: alone, resuming after the last id it was given
/// ([`after`](Self::after)), or in a consumer group ([`in_group`](Self::in_group)), where
/// the server keeps the group's position and each consumer's delivered-but-unacknowledged
/// entries, so a restarted consumer first gets those again.
///
/// Delivery is at least once (a consumer killed before it recorded or acknowledged an
/// entry gets it again) and never silently lossy: a gap in the stream (trimmed entries
/// this consumer or group had not read, entries trimmed while pending, or a publisher that
/// could not append) is a [`StreamEvent::Resync`]. Gaps are found by the entries' `seq`
/// numbers (consecutive, see [`RedisStreamPublisher`](super::RedisStreamPublisher)): the
/// read and the number of the entry before it are one `MULTI`/`EXEC` (alone) or one script
/// (in a group, which also records the gap under `<key>:gaps` until the entry after it is
/// acknowledged, so a consumer killed in between is told again).
#[derive(Clone)]
pub struct RedisStreamConsumer {
    conn: ConnectionManager,
    key: String,
    group: Option<Group>,
    /// Alone: the last id delivered. In a group: the cursor through the own pending entries.
    last: StreamId,
    /// Alone: the sequence number of the entry `last` (if known).
    last_seq: Option<u64>,
    batch: usize,
    wait: Duration,
}

#[derive(Clone, Debug)]
struct Group {
    name: String,
    consumer: String,
    /// Still re-reading this consumer's pending entries (after a restart).
    pending: bool,
}

impl std::fmt::Debug for RedisStreamConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStreamConsumer")
            .field("key", &self.key)
            .field("group", &self.group)
            .field("last", &self.last)
            .finish_non_exhaustive()
    }
}

impl RedisStreamConsumer {
    /// A consumer alone on stream `key`, delivering the entries after `last`
    /// ([`StreamId::ZERO`]: every retained entry). Reads up to 100 entries at a time and
    /// waits up to 250 ms for new ones (keep the wait below the connection's response
    /// timeout; a timeout of the wait counts as no new entry).
    pub fn after(conn: ConnectionManager, key: impl Into<String>, last: StreamId) -> Self {
        Self {
            conn,
            key: key.into(),
            group: None,
            last,
            last_seq: None,
            batch: 100,
            wait: Duration::from_millis(250),
        }
    }

    /// Consumer `consumer` of group `group` on stream `key`, creating the group (at the
    /// stream's start) and the stream if missing. Entries are shared among the group's
    /// consumers; [`ack`](Self::ack) each once handled.
    pub async fn in_group(
        conn: ConnectionManager,
        key: impl Into<String>,
        group: &str,
        consumer: &str,
    ) -> Result<Self, CacheError> {
        let key = key.into();
        let mut me = Self::after(conn, key, StreamId::ZERO);
        let created = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&me.key)
            .arg(group)
            .arg("0")
            .arg("MKSTREAM")
            .query_async::<()>(&mut me.conn)
            .await;
        match created {
            Err(e) if e.code() != Some("BUSYGROUP") => {
                return Err(backend(format!("create group {group} on {}", me.key))(e));
            }
            _ => {}
        }
        me.group = Some(Group {
            name: group.to_owned(),
            consumer: consumer.to_owned(),
            pending: true,
        });
        Ok(me)
    }

    /// Reads up to `batch` entries at a time (default 100).
    pub fn with_batch(mut self, batch: usize) -> Self {
        self.batch = batch.max(1);
        self
    }

    /// Waits up to `wait` for new entries in [`next`](Self::next) (default 250 ms).
    pub fn with_wait(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self
    }

    /// Alone: the id of the last entry delivered (record it to resume after a restart).
    pub fn last_id(&self) -> StreamId {
        self.last
    }

    /// The next events, waiting up to the configured time for new entries; empty if none
    /// came.
    pub async fn next(&mut self) -> Result<Vec<StreamEvent>, CacheError> {
        let events = self.read().await?;
        if !events.is_empty() {
            return Ok(events);
        }
        self.wait_for_entries().await?;
        self.read().await
    }

    /// Acknowledges `ids` in the group (no-op alone).
    pub async fn ack(&mut self, ids: &[StreamId]) -> Result<(), CacheError> {
        let Some(group) = &self.group else {
            return Ok(());
        };
        if ids.is_empty() {
            return Ok(());
        }
        let ids: Vec<String> = ids.iter().map(StreamId::to_string).collect();
        redis::Script::new(ACK)
            .key(&self.key)
            .key(gaps_key(&self.key))
            .arg(&group.name)
            .arg(format!("{}|{}", group.name, group.consumer))
            .arg(&ids)
            .invoke_async::<()>(&mut self.conn)
            .await
            .map_err(backend(format!(
                "acknowledge {} entries of {}",
                ids.len(),
                self.key
            )))
    }

    /// Blocks (up to the wait) until the stream has an entry after the position.
    async fn wait_for_entries(&mut self) -> Result<(), CacheError> {
        let from = match &self.group {
            Some(_) => "$".to_owned(),
            None => self.last.to_string(),
        };
        let millis = u64::try_from(self.wait.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        match redis::cmd("XREAD")
            .arg("COUNT")
            .arg(1)
            .arg("BLOCK")
            .arg(millis)
            .arg("STREAMS")
            .arg(&self.key)
            .arg(from)
            .query_async::<Value>(&mut self.conn)
            .await
        {
            // The connection's response timeout came first: nothing came meanwhile either.
            Err(e) if e.is_timeout() => Ok(()),
            other => other
                .map(drop)
                .map_err(backend(format!("wait for entries of {}", self.key))),
        }
    }

    /// One read: the entries and what tells a gap (the sequence number of the entry read
    /// before them), in one transaction or script.
    async fn read(&mut self) -> Result<Vec<StreamEvent>, CacheError> {
        let operation = format!("read {}", self.key);
        let malformed = |what: &str| CacheError::Backend {
            backend: BACKEND,
            operation: operation.clone(),
            source: format!("unexpected reply: {what}").into(),
        };
        // (the id read before, its entry if still there, the entries read, a recorded gap)
        let (before, previous, read, marker) = match &self.group {
            None => {
                let mut pipe = redis::pipe();
                pipe.atomic();
                let last = self.last.to_string();
                pipe.cmd("XRANGE").arg(&self.key).arg(&last).arg(&last);
                pipe.cmd("XREAD")
                    .arg("COUNT")
                    .arg(self.batch)
                    .arg("STREAMS")
                    .arg(&self.key)
                    .arg(&last);
                let replies: Vec<Value> = pipe
                    .query_async(&mut self.conn)
                    .await
                    .map_err(backend(operation.clone()))?;
                let [previous, read] = <[Value; 2]>::try_from(replies)
                    .map_err(|r| malformed(&format!("{} replies", r.len())))?;
                (self.last, previous, read, Value::Nil)
            }
            Some(group) => {
                let replies: Vec<Value> = redis::Script::new(GROUP_READ)
                    .key(&self.key)
                    .key(gaps_key(&self.key))
                    .arg(&group.name)
                    .arg(&group.consumer)
                    .arg(self.batch)
                    .arg(if group.pending {
                        self.last.to_string()
                    } else {
                        ">".to_owned()
                    })
                    .invoke_async(&mut self.conn)
                    .await
                    .map_err(backend(operation.clone()))?;
                let [before, previous, read, marker] = <[Value; 4]>::try_from(replies)
                    .map_err(|r| malformed(&format!("{} replies", r.len())))?;
                let before = text(&before)
                    .and_then(|t| t.parse().ok())
                    .ok_or_else(|| malformed("the group's last-delivered-id"))?;
                (before, previous, read, marker)
            }
        };
        let read = entries(&read).ok_or_else(|| malformed("entries"))?;
        let pending = self.group.as_ref().is_some_and(|g| g.pending);
        let mut events = Vec::with_capacity(read.len() + 1);
        if let (true, Some(group)) = (pending && read.is_empty(), &mut self.group) {
            group.pending = false;
        }
        // The gap recorded for this consumer (a resync tied to the entry after it).
        let recorded = text(&marker).and_then(|m| Gap::decode(&m));
        // The sequence number before the first entry read: remembered, or of the entry
        // still in the stream, or 0 before the first entry; unknown if it was trimmed.
        let mut expected = match self.last_seq {
            Some(seq) if !pending && before == self.last => Some(seq),
            _ if before == StreamId::ZERO => Some(0),
            _ => entries(&Value::Array(vec![Value::Array(vec![
                Value::Nil,
                previous,
            ])]))
            .and_then(|e| e.first().and_then(|(_, f)| seq_of(f.as_deref()?))),
        };
        let mut after = before;
        let mut gone = Vec::new();
        for (id, fields) in read {
            if pending || self.group.is_none() {
                self.last = id;
            }
            let Some(fields) = fields else {
                // Pending, then trimmed: this consumer had it but never handled it.
                gone.push(id);
                events.push(StreamEvent::Resync(Resync::Trimmed {
                    after,
                    next: id,
                    missed: Some(1),
                }));
                after = id;
                expected = None;
                continue;
            };
            let seq = seq_of(&fields);
            if pending {
                if let Some(gap) = recorded.filter(|g| g.next == id) {
                    events.push(StreamEvent::Resync(gap.resync()));
                }
            } else {
                let missed = match (expected, seq) {
                    (Some(e), Some(s)) if s == e + 1 => Some(0),
                    (Some(e), Some(s)) => Some(s.saturating_sub(e + 1)),
                    _ => None,
                };
                if missed != Some(0) {
                    let gap = Gap {
                        after,
                        next: id,
                        missed,
                    };
                    if self.group.is_some() {
                        self.record_gap(&gap).await?;
                    }
                    events.push(StreamEvent::Resync(gap.resync()));
                }
            }
            expected = seq;
            after = id;
            match self.event(id, &fields)? {
                Some(event) => events.push(event),
                None => gone.push(id),
            }
        }
        if self.group.is_none() || pending {
            self.last_seq = expected;
        }
        self.ack(&gone).await?;
        Ok(events)
    }

    /// Records a gap seen by this group consumer, so a restart before it handled the entry
    /// after the gap tells it again; [`ack`](Self::ack) of that entry drops it.
    async fn record_gap(&mut self, gap: &Gap) -> Result<(), CacheError> {
        let Some(group) = &self.group else {
            return Ok(());
        };
        redis::cmd("HSET")
            .arg(gaps_key(&self.key))
            .arg(format!("{}|{}", group.name, group.consumer))
            .arg(gap.encode())
            .query_async::<()>(&mut self.conn)
            .await
            .map_err(backend(format!("record a gap of {}", self.key)))
    }

    /// The event of one entry; `None` for an entry of a kind this version does not know.
    fn event(
        &self,
        id: StreamId,
        fields: &[(String, String)],
    ) -> Result<Option<StreamEvent>, CacheError> {
        let get = |name: &str| {
            fields
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let bad = |what: &str| CacheError::Backend {
            backend: BACKEND,
            operation: format!("decode entry {id} of {}", self.key),
            source: what.to_owned().into(),
        };
        let message = get("message").ok_or_else(|| bad("no message field"))?;
        let chain = || match get("chain") {
            None | Some("-") => Ok(None),
            Some(c) => c
                .parse()
                .map(Some)
                .map_err(|_| bad("a chain that is not a number")),
        };
        let entry = || {
            let block = get("block")
                .and_then(|b| b.parse().ok())
                .ok_or_else(|| bad("no block number"))?;
            let chain = chain()?;
            Ok(StreamEntry {
                id,
                block,
                chain,
                message: message.to_owned(),
            })
        };
        match get("kind") {
            Some("update") => Ok(Some(StreamEvent::Update(entry()?))),
            Some("quarantined" | "resumed") => Ok(Some(StreamEvent::AssetState(entry()?))),
            Some("lagged") => {
                let missed = message
                    .split('|')
                    .nth(1)
                    .and_then(|m| m.parse().ok())
                    .ok_or_else(|| bad("a lag without a count"))?;
                Ok(Some(StreamEvent::Resync(Resync::Publisher {
                    id,
                    missed,
                    chain: chain()?,
                })))
            }
            Some(kind) => {
                tracing::debug!(stream = %self.key, %id, kind, "skipping an entry of a kind this version does not know");
                Ok(None)
            }
            None => Err(bad("no kind field")),
        }
    }
}

/// The group read: the group's last-delivered id, the entry with that id (if still there),
/// the entries read (new: `>`, or this consumer's pending after an id), and the gap
/// recorded for this consumer.
const GROUP_READ: &str = "local d = nil
for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local name, last
  for i = 1, #g, 2 do
    if g[i] == 'name' then name = g[i + 1] end
    if g[i] == 'last-delivered-id' then last = g[i + 1] end
  end
  if name == ARGV[1] then d = last end
end
if not d then return redis.error_reply('NOGROUP no group ' .. ARGV[1]) end
local previous = redis.call('XRANGE', KEYS[1], d, d)
local read = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', ARGV[3], 'STREAMS', KEYS[1], ARGV[4])
local marker = redis.call('HGET', KEYS[2], ARGV[1] .. '|' .. ARGV[2])
return {d, previous, read, marker}";

/// `XACK`, and the drop of this consumer's recorded gap if its entry is acknowledged.
const ACK: &str = "local ids = {}
for i = 3, #ARGV do ids[#ids + 1] = ARGV[i] end
redis.call('XACK', KEYS[1], ARGV[1], unpack(ids))
local marker = redis.call('HGET', KEYS[2], ARGV[2])
if marker then
  local next = string.match(marker, '^[^|]*|([^|]*)')
  for _, id in ipairs(ids) do
    if id == next then redis.call('HDEL', KEYS[2], ARGV[2]) end
  end
end
return 0";

/// The key of a stream's recorded group gaps: `<key>:gaps`.
fn gaps_key(key: &str) -> String {
    format!("{key}:gaps")
}

/// The `seq` field of an entry.
fn seq_of(fields: &[(String, String)]) -> Option<u64> {
    fields
        .iter()
        .find(|(k, _)| k == "seq")
        .and_then(|(_, v)| v.parse().ok())
}

/// A gap before entry `next`, as recorded for a group consumer: `after|next|missed or -`.
#[derive(Clone, Copy, Debug)]
struct Gap {
    after: StreamId,
    next: StreamId,
    missed: Option<u64>,
}

impl Gap {
    fn encode(&self) -> String {
        let missed = self
            .missed
            .map_or_else(|| "-".to_owned(), |m| m.to_string());
        format!("{}|{}|{missed}", self.after, self.next)
    }

    fn decode(text: &str) -> Option<Self> {
        let mut parts = text.split('|');
        let after = parts.next()?.parse().ok()?;
        let next = parts.next()?.parse().ok()?;
        let missed = match parts.next()? {
            "-" => None,
            m => Some(m.parse().ok()?),
        };
        Some(Self {
            after,
            next,
            missed,
        })
    }

    fn resync(self) -> Resync {
        Resync::Trimmed {
            after: self.after,
            next: self.next,
            missed: self.missed,
        }
    }
}

/// The ids of the entries among `events` (updates, asset states and publisher lags), to
/// acknowledge.
pub fn entry_ids(events: &[StreamEvent]) -> Vec<StreamId> {
    events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::Update(u) | StreamEvent::AssetState(u) => Some(u.id),
            StreamEvent::Resync(Resync::Publisher { id, .. }) => Some(*id),
            StreamEvent::Resync(Resync::Trimmed { .. }) => None,
        })
        .collect()
}
