//! Taking over the entries of a group consumer that died for good: `XAUTOCLAIM`.

use std::time::Duration;

use redis::Value;

use super::{Gap, RedisStreamConsumer, Resync, StreamEvent, gaps_key};
use crate::cache::redis::config::backend;
use crate::cache::redis::stream_id::{StreamId, entries, text};
use crate::error::CacheError;

impl RedisStreamConsumer {
    /// In a group: claims for this consumer the entries another consumer of the group was
    /// delivered but has not acknowledged for at least `min_idle` (it died, or hangs), and
    /// returns them as events to handle and [`ack`](Self::ack) like those of
    /// [`next`](Self::next). An entry trimmed while pending on the other consumer is a
    /// [`Resync::Trimmed`] with `missed: Some(1)` (told whatever its idle time: Redis drops it
    /// from the pending list on sight); a gap the other consumer was told about
    /// but had not handled is told again before the entry after it. Reads up to the
    /// configured batch; call it again while it returns events. Alone: no-op.
    ///
    /// Without it, a consumer that never comes back keeps its delivered entries pending
    /// forever: call it periodically (`reorg-collateral follow --claim-idle`).
    pub async fn claim_idle(&mut self, min_idle: Duration) -> Result<Vec<StreamEvent>, CacheError> {
        let Some(group) = self.group.clone() else {
            return Ok(Vec::new());
        };
        let operation = format!("claim idle entries of {}", self.key);
        let malformed = |what: &str| CacheError::Backend {
            backend: super::BACKEND,
            operation: operation.clone(),
            source: format!("unexpected reply: {what}").into(),
        };
        let millis = u64::try_from(min_idle.as_millis()).unwrap_or(u64::MAX);
        let reply: Vec<Value> = redis::cmd("XAUTOCLAIM")
            .arg(&self.key)
            .arg(&group.name)
            .arg(&group.consumer)
            .arg(millis)
            .arg("0-0")
            .arg("COUNT")
            .arg(self.batch)
            .query_async(&mut self.conn)
            .await
            .map_err(backend(operation.clone()))?;
        let (claimed, deleted) = match reply.as_slice() {
            [_cursor, claimed, deleted, ..] => (claimed.clone(), deleted.clone()),
            other => return Err(malformed(&format!("{} parts", other.len()))),
        };
        let claimed = entries(&Value::Array(vec![Value::Array(vec![Value::Nil, claimed])]))
            .ok_or_else(|| malformed("claimed entries"))?;
        let deleted: Vec<StreamId> = match &deleted {
            Value::Array(ids) => ids
                .iter()
                .map(|id| text(id).and_then(|t| t.parse().ok()))
                .collect::<Option<_>>()
                .ok_or_else(|| malformed("deleted ids"))?,
            _ => Vec::new(),
        };
        let others = self.gaps_of_others(&group.name, &group.consumer).await?;
        let mut events = Vec::with_capacity(claimed.len() + deleted.len());
        for id in deleted {
            events.push(StreamEvent::Resync(Resync::Trimmed {
                after: StreamId::ZERO,
                next: id,
                missed: Some(1),
            }));
        }
        let mut gone = Vec::new();
        for (id, fields) in claimed {
            let Some(fields) = fields else {
                gone.push(id);
                events.push(StreamEvent::Resync(Resync::Trimmed {
                    after: StreamId::ZERO,
                    next: id,
                    missed: Some(1),
                }));
                continue;
            };
            if let Some((field, gap)) = others.iter().find(|(_, g)| g.next == id) {
                // Told again, and kept for this consumer until it acknowledges the entry.
                self.record_gap(gap).await?;
                redis::cmd("HDEL")
                    .arg(gaps_key(&self.key))
                    .arg(field)
                    .query_async::<()>(&mut self.conn)
                    .await
                    .map_err(backend(format!("move a gap of {}", self.key)))?;
                events.push(StreamEvent::Resync(gap.resync()));
            }
            match self.event(id, &fields)? {
                Some(event) => events.push(event),
                None => gone.push(id),
            }
        }
        self.ack(&gone).await?;
        Ok(events)
    }

    /// The gaps recorded for the other consumers of `group`: (hash field, gap).
    async fn gaps_of_others(
        &mut self,
        group: &str,
        consumer: &str,
    ) -> Result<Vec<(String, Gap)>, CacheError> {
        let all: Vec<(String, String)> = redis::cmd("HGETALL")
            .arg(gaps_key(&self.key))
            .query_async(&mut self.conn)
            .await
            .map_err(backend(format!("read the gaps of {}", self.key)))?;
        let own = format!("{group}|{consumer}");
        let prefix = format!("{group}|");
        Ok(all
            .into_iter()
            .filter(|(field, _)| field.starts_with(&prefix) && *field != own)
            .filter_map(|(field, marker)| Gap::decode(&marker).map(|g| (field, g)))
            .collect())
    }
}
