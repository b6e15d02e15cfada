//! Redis Cluster hash slots and the generation stamp of a cluster entry: which slot a key
//! lives in (to group a write per slot), and the `~gen` field each entry carries.

use redis::Value;

/// Number of hash slots of a Redis Cluster.
pub(crate) const SLOTS: u16 = 16384;

/// Hash field of an entry's generation: the number of the write that stored it.
pub(crate) const GENERATION: &str = "~gen";

/// CRC16-XMODEM, the checksum Redis Cluster hashes keys with.
fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &byte in data {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// The hash slot of `key`: of its hash tag (the text between the first `{` and the next
/// `}`, when not empty), else of the whole key, as `CLUSTER KEYSLOT` computes it.
pub(crate) fn slot(key: &[u8]) -> u16 {
    let tagged = key.iter().position(|&b| b == b'{').and_then(|open| {
        let rest = &key[open + 1..];
        let close = rest.iter().position(|&b| b == b'}')?;
        (close > 0).then(|| &rest[..close])
    });
    crc16(tagged.unwrap_or(key)) % SLOTS
}

/// Splits a `HGETALL` reply into the reply without the [`GENERATION`] field and the
/// generation, if the field is there and a number (`None` also for an entry written by the
/// standalone cache, which has no generation).
pub(crate) fn take_generation(reply: &Value) -> (Value, Option<u64>) {
    let is_generation = |name: &Value| match name {
        Value::BulkString(b) => b == GENERATION.as_bytes(),
        Value::SimpleString(s) => s == GENERATION,
        _ => false,
    };
    let number = |value: &Value| match value {
        Value::BulkString(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        Value::SimpleString(s) => s.parse().ok(),
        Value::Int(n) => u64::try_from(*n).ok(),
        _ => None,
    };
    let mut generation = None;
    let rest = match reply {
        Value::Array(items) if items.len() % 2 == 0 => {
            let mut rest = Vec::with_capacity(items.len());
            for pair in items.chunks_exact(2) {
                if is_generation(&pair[0]) {
                    generation = number(&pair[1]);
                } else {
                    rest.extend_from_slice(pair);
                }
            }
            Value::Array(rest)
        }
        Value::Map(pairs) => {
            let mut rest = Vec::with_capacity(pairs.len());
            for (name, value) in pairs {
                if is_generation(name) {
                    generation = number(value);
                } else {
                    rest.push((name.clone(), value.clone()));
                }
            }
            Value::Map(rest)
        }
        // Left to the layout's decoder to report.
        other => other.clone(),
    };
    (rest, generation)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_redis() {
        // The examples of the Redis Cluster specification.
        assert_eq!(slot(b"123456789"), 12739);
        assert_eq!(slot(b"{user1000}.following"), slot(b"{user1000}.followers"));
        assert_eq!(slot(b"foo{}{bar}"), slot(b"foo{}{bar}"));
        assert_ne!(slot(b"foo{}{bar}"), slot(b"bar"));
        assert_eq!(slot(b"foo{{bar}}zap"), slot(b"{bar"));
        assert_eq!(slot(b"foo{bar}{zap}"), slot(b"bar"));
    }

    #[test]
    fn the_generation_is_taken_out_of_both_protocols() {
        let bulk = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        let resp2 = Value::Array(vec![
            bulk("~total"),
            bulk("1|0|0|1"),
            bulk("~gen"),
            bulk("7"),
        ]);
        let (rest, generation) = take_generation(&resp2);
        assert_eq!(generation, Some(7));
        assert_eq!(rest, Value::Array(vec![bulk("~total"), bulk("1|0|0|1")]));
        let resp3 = Value::Map(vec![(bulk("~gen"), bulk("9")), (bulk("a"), bulk("b"))]);
        let (rest, generation) = take_generation(&resp3);
        assert_eq!(generation, Some(9));
        assert_eq!(rest, Value::Map(vec![(bulk("a"), bulk("b"))]));
        let (_, none) = take_generation(&Value::Array(vec![bulk("~total"), bulk("x")]));
        assert_eq!(none, None);
    }
}
