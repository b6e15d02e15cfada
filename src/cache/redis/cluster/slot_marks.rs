//! The watermark per slot: each slot transaction of a write also sets its slot's *mark*
//! (the write's generation), and the write then records, with the watermark, which
//! generation last wrote each slot (the *expected* marks, hash `{<prefix>}:~slots`). A
//! write a master acknowledged but lost with its death (replication is asynchronous) takes
//! its slot's mark with it: the slot's mark is then below what the watermark's side
//! expects, and that slot, only that one, reads as behind.

use super::slot::{SLOTS, slot};

/// For each hash slot, a number `n` such that the key `{<prefix>:~s<n>}` is in that slot:
/// the key of the slot's mark.
#[derive(Clone, Debug)]
pub(super) struct SlotMarks {
    tags: Vec<u32>,
}

impl SlotMarks {
    /// The mark keys of `prefix`: tries `n = 0, 1, …` until every slot has one (about
    /// 170,000 checksums of a short key, once per connect).
    pub(super) fn new(prefix: &str) -> Self {
        let mut tags = vec![u32::MAX; usize::from(SLOTS)];
        let mut missing = usize::from(SLOTS);
        let mut key = String::with_capacity(prefix.len() + 16);
        let mut n: u32 = 0;
        while missing > 0 {
            key.clear();
            key.push_str(prefix);
            key.push_str(":~s");
            key.push_str(&n.to_string());
            let s = usize::from(slot(key.as_bytes()));
            if tags[s] == u32::MAX {
                tags[s] = n;
                missing -= 1;
            }
            n += 1;
        }
        Self { tags }
    }

    /// The key of `slot`'s mark: `{<prefix>:~s<n>}`.
    pub(super) fn key(&self, prefix: &str, slot: u16) -> String {
        format!("{{{prefix}:~s{}}}", self.tags[usize::from(slot % SLOTS)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_slot_has_a_mark_key_in_it() {
        let marks = SlotMarks::new("p:v2");
        for s in [0, 1, 42, 8191, 16383] {
            let key = marks.key("p:v2", s);
            assert!(key.starts_with("{p:v2:~s") && key.ends_with('}'), "{key}");
            assert_eq!(slot(key.as_bytes()), s, "{key}");
        }
    }
}
