//! The conversation index by id: an open-addressing table whose slots hold the whole key and the
//! slot index side by side, so a lookup usually costs one cache line (a general hash map reads
//! its control bytes and then the bucket: two dependent misses on a table of this size, and that
//! lookup is the first thing every agent command does).
//!
//! Serialised as a JSON object `{id: index}`, exactly like the `HashMap` it replaced, so old
//! snapshots load and new ones read the same.

use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::model::ConversationId;

/// Index of a conversation slot in `State::convs`.
pub type ConvIx = u32;

/// Marks a free slot (no conversation slot index reaches it: indices are positions in a `Vec`).
const EMPTY: u32 = u32::MAX;

/// One slot: the id's two halves and the conversation's index (`EMPTY` when free).
#[derive(Debug, Clone, Copy)]
struct Slot {
    key: [u64; 2],
    ix: ConvIx,
}

const FREE: Slot = Slot { key: [0, 0], ix: EMPTY };

/// Conversation index by id. Linear probing with backward-shift deletion (no tombstones, so a
/// table that sees many inserts and removes does not slow down); at most 3/4 full.
#[derive(Clone, Default)]
pub struct ConvIndex {
    slots: Vec<Slot>,
    len: usize,
}

fn split(id: &ConversationId) -> [u64; 2] {
    let v = id.as_u128();
    [v as u64, (v >> 64) as u64]
}

impl ConvIndex {
    /// Number of ids indexed.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no id is indexed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    /// The slot a key hashes to. Ids are the router's own (not customer input), so a fast
    /// unkeyed mix is safe; the multiply spreads sequential and time-ordered ids alike.
    fn home(&self, key: [u64; 2]) -> usize {
        let h = (key[0].wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ key[1]).wrapping_mul(0xD6E8_FEB8_6659_FD93);
        let bits = self.slots.len().trailing_zeros();
        (h >> (64 - bits)) as usize
    }

    /// The slot holding `key`, if any.
    fn find(&self, key: [u64; 2]) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.mask();
        let mut i = self.home(key);
        loop {
            let s = &self.slots[i];
            if s.ix == EMPTY {
                return None;
            }
            if s.key == key {
                return Some(i);
            }
            i = (i + 1) & mask;
        }
    }

    /// The conversation slot of an id.
    pub fn get(&self, id: &ConversationId) -> Option<&ConvIx> {
        self.find(split(id)).map(|i| &self.slots[i].ix)
    }

    /// Indexes `id` at `ix`, returning the index it had.
    pub fn insert(&mut self, id: ConversationId, ix: ConvIx) -> Option<ConvIx> {
        assert!(ix != EMPTY, "conversation slot index out of range");
        let key = split(&id);
        if let Some(i) = self.find(key) {
            return Some(std::mem::replace(&mut self.slots[i].ix, ix));
        }
        if (self.len + 1) * 4 > self.slots.len() * 3 {
            self.grow();
        }
        self.put(Slot { key, ix });
        self.len += 1;
        None
    }

    /// Places a slot known to be absent (there is room).
    fn put(&mut self, slot: Slot) {
        let mask = self.mask();
        let mut i = self.home(slot.key);
        while self.slots[i].ix != EMPTY {
            i = (i + 1) & mask;
        }
        self.slots[i] = slot;
    }

    fn grow(&mut self) {
        let cap = (self.slots.len() * 2).max(64);
        let old = std::mem::replace(&mut self.slots, vec![FREE; cap]);
        for s in old.into_iter().filter(|s| s.ix != EMPTY) {
            self.put(s);
        }
    }

    /// Removes `id`, returning the index it had.
    pub fn remove(&mut self, id: &ConversationId) -> Option<ConvIx> {
        let mut hole = self.find(split(id))?;
        let ix = self.slots[hole].ix;
        let mask = self.mask();
        // Backward shift: move later members of the probe run into the hole when their home is
        // not between the hole and where they sit, so every lookup still finds them.
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            let s = self.slots[j];
            if s.ix == EMPTY {
                break;
            }
            let home = self.home(s.key);
            if (j.wrapping_sub(home) & mask) >= (j.wrapping_sub(hole) & mask) {
                self.slots[hole] = s;
                hole = j;
            }
        }
        self.slots[hole] = FREE;
        self.len -= 1;
        Some(ix)
    }

    /// Every (id, index), in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (ConversationId, ConvIx)> + '_ {
        self.slots
            .iter()
            .filter(|s| s.ix != EMPTY)
            .map(|s| (ConversationId::from_u128(u128::from(s.key[0]) | (u128::from(s.key[1]) << 64)), s.ix))
    }
}

impl PartialEq for ConvIndex {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().all(|(id, ix)| other.get(&id) == Some(&ix))
    }
}

impl fmt::Debug for ConvIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Serialize for ConvIndex {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.len))?;
        for (id, ix) in self.iter() {
            map.serialize_entry(&id, &ix)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for ConvIndex {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Entries;
        impl<'de> Visitor<'de> for Entries {
            type Value = ConvIndex;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map from conversation id to slot index")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ConvIndex, A::Error> {
                let mut index = ConvIndex::default();
                while let Some((id, ix)) = map.next_entry::<ConversationId, ConvIx>()? {
                    if ix == EMPTY {
                        return Err(serde::de::Error::custom("conversation slot index out of range"));
                    }
                    index.insert(id, ix);
                }
                Ok(index)
            }
        }
        d.deserialize_map(Entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Random inserts, overwrites and removes agree with a `HashMap` at every step, including
    /// across growth and long probe runs (ids that share their home slot).
    #[test]
    fn agrees_with_a_hash_map() {
        let mut ours = ConvIndex::default();
        let mut theirs = HashMap::new();
        let mut x = 0x1234_5678_9abc_def1u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for step in 0..200_000u32 {
            let r = next();
            // A small id space, so removes and overwrites hit present ids often.
            let id = ConversationId::from_u128(u128::from(r % 5000) << (if r & 1 == 0 { 0 } else { 64 }));
            match r % 3 {
                0 | 1 => assert_eq!(ours.insert(id, step), theirs.insert(id, step)),
                _ => assert_eq!(ours.remove(&id), theirs.remove(&id)),
            }
            assert_eq!(ours.len(), theirs.len());
        }
        for (id, ix) in &theirs {
            assert_eq!(ours.get(id), Some(ix));
        }
        assert_eq!(ours.iter().count(), theirs.len());
    }

    /// The JSON form is a `HashMap`'s: each loads as the other.
    #[test]
    fn json_is_a_map() {
        let mut ours = ConvIndex::default();
        let mut theirs = rustc_hash::FxHashMap::default();
        for n in 0..100u32 {
            let id = ConversationId::from_u128(u128::from(n) * 0x1_0000_0001);
            ours.insert(id, n);
            theirs.insert(id, n);
        }
        let back: rustc_hash::FxHashMap<ConversationId, ConvIx> =
            serde_json::from_str(&serde_json::to_string(&ours).unwrap()).unwrap();
        assert_eq!(back, theirs);
        let loaded: ConvIndex = serde_json::from_str(&serde_json::to_string(&theirs).unwrap()).unwrap();
        assert_eq!(loaded, ours);
        assert!(serde_json::from_str::<ConvIndex>(r#"{"00000000-0000-0000-0000-000000000001": 4294967295}"#).is_err());
    }
}
