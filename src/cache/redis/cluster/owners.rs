//! Which master serves each hash slot, as `CLUSTER SLOTS` last said: how a write groups its
//! slot transactions per node (one pipeline per node). Only a grouping hint: a slot whose
//! owner moved since is refused with `MOVED` inside its transaction and retried alone.

use redis::Value;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};

use super::slot::SLOTS;

/// The owner of every slot, by the index of its master in the node list (`None`: no master
/// listed for the slot).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct SlotOwners {
    owners: Vec<Option<u16>>,
    nodes: Vec<String>,
}

impl SlotOwners {
    /// Asks one node of `conn` for `CLUSTER SLOTS`.
    pub(super) async fn load(conn: &mut ClusterConnection) -> redis::RedisResult<Self> {
        let reply = conn
            .route_command(
                redis::cmd("CLUSTER").arg("SLOTS").clone(),
                RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random),
            )
            .await?;
        Self::parse(&reply).ok_or_else(|| {
            redis::RedisError::from((
                redis::ErrorKind::Parse,
                "CLUSTER SLOTS",
                format!("{reply:?} is not a list of [start, end, [ip, port, …], …]"),
            ))
        })
    }

    /// `CLUSTER SLOTS`' reply: `[[start, end, [ip, port, id…], replicas…], …]`.
    fn parse(reply: &Value) -> Option<Self> {
        let int = |v: &Value| match v {
            Value::Int(n) => u16::try_from(*n).ok(),
            _ => None,
        };
        let text = |v: &Value| match v {
            Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
            Value::SimpleString(s) => Some(s.clone()),
            _ => None,
        };
        let Value::Array(ranges) = reply else {
            return None;
        };
        let mut owners = vec![None; usize::from(SLOTS)];
        let mut nodes: Vec<String> = Vec::new();
        for range in ranges {
            let Value::Array(parts) = range else {
                return None;
            };
            let (start, end) = (int(parts.first()?)?, int(parts.get(1)?)?);
            let Value::Array(master) = parts.get(2)? else {
                return None;
            };
            let node = format!("{}:{}", text(master.first()?)?, int(master.get(1)?)?);
            let index = match nodes.iter().position(|n| *n == node) {
                Some(i) => i,
                None => {
                    nodes.push(node);
                    nodes.len() - 1
                }
            };
            let index = u16::try_from(index).ok()?;
            for slot in start..=end.min(SLOTS - 1) {
                owners[usize::from(slot)] = Some(index);
            }
        }
        Some(Self { owners, nodes })
    }

    /// The index of the master serving `slot` (`None`: unknown).
    pub(super) fn owner(&self, slot: u16) -> Option<u16> {
        self.owners.get(usize::from(slot)).copied().flatten()
    }

    /// How many masters serve slots.
    #[cfg(test)]
    fn masters(&self) -> usize {
        self.nodes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_slots_reply_maps_every_slot_to_its_master() {
        let bulk = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        let node = |port: i64| Value::Array(vec![bulk("127.0.0.1"), Value::Int(port), bulk("id")]);
        let reply = Value::Array(vec![
            Value::Array(vec![
                Value::Int(0),
                Value::Int(5460),
                node(7000),
                node(7003),
            ]),
            Value::Array(vec![Value::Int(5461), Value::Int(10922), node(7001)]),
            Value::Array(vec![Value::Int(10923), Value::Int(16383), node(7000)]),
        ]);
        let owners = SlotOwners::parse(&reply).unwrap();
        assert_eq!(owners.masters(), 2);
        assert_eq!(owners.owner(0), Some(0));
        assert_eq!(owners.owner(5461), Some(1));
        assert_eq!(owners.owner(16383), Some(0));
        let partial = Value::Array(vec![Value::Array(vec![
            Value::Int(0),
            Value::Int(9),
            node(7000),
        ])]);
        assert_eq!(SlotOwners::parse(&partial).unwrap().owner(10), None);
        assert_eq!(SlotOwners::parse(&bulk("no")), None);
    }
}
