//! Stream entry ids and the parts of Redis stream replies the consumer reads.

use std::fmt;
use std::str::FromStr;

use redis::Value;

/// A Redis stream entry id, `<milliseconds>-<sequence>`; ordered as Redis orders them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId {
    /// Milliseconds part.
    pub ms: u64,
    /// Sequence part.
    pub seq: u64,
}

impl StreamId {
    /// `0-0`: before every entry.
    pub const ZERO: Self = Self { ms: 0, seq: 0 };
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// A text that is not a stream id.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not a stream id (<milliseconds>-<sequence>)")]
pub struct BadStreamId(pub String);

impl FromStr for StreamId {
    type Err = BadStreamId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadStreamId(s.to_owned());
        let (ms, seq) = s.split_once('-').unwrap_or((s, "0"));
        Ok(Self {
            ms: ms.parse().map_err(|_| bad())?,
            seq: seq.parse().map_err(|_| bad())?,
        })
    }
}

/// A string reply as text.
pub(super) fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        Value::VerbatimString { text, .. } => Some(text.clone()),
        _ => None,
    }
}

/// A map reply (a flat array in RESP2, a map in RESP3) as pairs.
pub(super) fn pairs(value: &Value) -> Vec<(&Value, &Value)> {
    match value {
        Value::Array(items) => items.chunks_exact(2).map(|p| (&p[0], &p[1])).collect(),
        Value::Map(pairs) => pairs.iter().map(|(k, v)| (k, v)).collect(),
        _ => Vec::new(),
    }
}

/// One entry of an `XREAD`/`XREADGROUP` reply: its id and its fields, `None` for an entry
/// that was deleted while pending in a group.
pub(super) type RawEntry = (StreamId, Option<Vec<(String, String)>>);

/// The entries of an `XREAD`/`XREADGROUP` reply for one stream (`Nil`: none).
pub(super) fn entries(reply: &Value) -> Option<Vec<RawEntry>> {
    let streams: Vec<&Value> = match reply {
        Value::Nil => return Some(Vec::new()),
        // RESP2: [[key, entries]]; RESP3: {key: entries}.
        Value::Array(items) => items
            .iter()
            .filter_map(|s| match s {
                Value::Array(kv) if kv.len() == 2 => Some(&kv[1]),
                _ => None,
            })
            .collect(),
        Value::Map(pairs) => pairs.iter().map(|(_, v)| v).collect(),
        _ => return None,
    };
    let mut out = Vec::new();
    for list in streams {
        let Value::Array(list) = list else {
            return None;
        };
        for entry in list {
            let Value::Array(parts) = entry else {
                return None;
            };
            let id: StreamId = text(parts.first()?)?.parse().ok()?;
            let fields = match parts.get(1) {
                None | Some(Value::Nil) => None,
                Some(fields) => Some(
                    pairs(fields)
                        .into_iter()
                        .map(|(k, v)| Some((text(k)?, text(v)?)))
                        .collect::<Option<Vec<_>>>()?,
                ),
            };
            out.push((id, fields));
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_print_and_order() {
        let a: StreamId = "1700000000000-3".parse().unwrap();
        assert_eq!(a.to_string(), "1700000000000-3");
        assert!(a < "1700000000000-10".parse().unwrap());
        assert!(a > "999-99".parse().unwrap());
        assert_eq!("5".parse::<StreamId>().unwrap(), StreamId { ms: 5, seq: 0 });
        assert!("x-1".parse::<StreamId>().is_err());
    }
}
