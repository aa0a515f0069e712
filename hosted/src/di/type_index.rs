//! Registration positions by type, found in one or two probes: the container's lookup on every
//! resolution.

use std::any::TypeId;
use std::hash::{Hash, Hasher};

/// An open-addressed table at most half full, probed linearly from the bits a `TypeId` hashes
/// as (a `TypeId` is already a hash: hashing it again would be wasted work). A general hash
/// map spends more on its group probing than this table spends finding the type.
pub(super) struct TypeIndex {
    slots: Box<[Option<(TypeId, usize)>]>,
    /// `slots.len() - 1`; the length is a power of two.
    mask: usize,
    /// How many types are recorded: at most half the slots.
    len: usize,
}

impl TypeIndex {
    /// A table with room for `registrations` types (it grows if more are inserted).
    pub(super) fn with_capacity(registrations: usize) -> Self {
        let len = (registrations * 2).max(8).next_power_of_two();
        Self {
            slots: vec![None; len].into_boxed_slice(),
            mask: len - 1,
            len: 0,
        }
    }

    /// Records `position` for `type_id`, in place of an earlier one.
    pub(super) fn insert(&mut self, type_id: TypeId, position: usize) {
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let mut index = bits(type_id) & self.mask;
        loop {
            match &mut self.slots[index] {
                Some((existing, at)) if *existing == type_id => {
                    *at = position;
                    return;
                }
                Some(_) => index = (index + 1) & self.mask,
                empty @ None => {
                    *empty = Some((type_id, position));
                    self.len += 1;
                    return;
                }
            }
        }
    }

    /// Twice the slots, every type recorded again: the table stays at most half full, so a
    /// probe always ends.
    fn grow(&mut self) {
        let mut grown = Self::with_capacity(self.slots.len());
        for (type_id, position) in self.slots.iter().flatten() {
            grown.insert(*type_id, *position);
        }
        *self = grown;
    }

    /// The position recorded for `type_id`.
    #[inline]
    pub(super) fn get(&self, type_id: TypeId) -> Option<usize> {
        let mut index = bits(type_id) & self.mask;
        loop {
            match self.slots.get(index)? {
                Some((existing, position)) if *existing == type_id => return Some(*position),
                Some(_) => index = (index + 1) & self.mask,
                None => return None,
            }
        }
    }
}

/// The bits `type_id` hashes as, folded to a `usize`.
#[inline]
fn bits(type_id: TypeId) -> usize {
    let mut hasher = Bits(0);
    type_id.hash(&mut hasher);
    #[allow(
        clippy::cast_possible_truncation,
        reason = "any bits of a hash will do"
    )]
    let bits = hasher.0 as usize;
    bits
}

/// Keeps what a `TypeId` writes, folded.
struct Bits(u64);

impl Hasher for Bits {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not reached for `TypeId`, which writes integers; kept correct all the same.
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 ^= value;
    }

    fn write_u128(&mut self, value: u128) {
        #[allow(clippy::cast_possible_truncation, reason = "folding 128 bits into 64")]
        let folded = (value as u64) ^ ((value >> 64) as u64);
        self.0 ^= folded;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct A;
    struct B;
    struct C;

    #[test]
    fn finds_what_was_inserted_and_nothing_else() {
        let mut index = TypeIndex::with_capacity(2);
        index.insert(TypeId::of::<A>(), 0);
        index.insert(TypeId::of::<B>(), 1);
        assert_eq!(index.get(TypeId::of::<A>()), Some(0));
        assert_eq!(index.get(TypeId::of::<B>()), Some(1));
        assert_eq!(index.get(TypeId::of::<C>()), None);
        index.insert(TypeId::of::<A>(), 2);
        assert_eq!(index.get(TypeId::of::<A>()), Some(2));
    }

    #[test]
    fn types_past_the_tables_room_are_each_found() {
        // More types than the smallest table's slots, and than it was sized for: collisions,
        // wrap-around probes and growth.
        macro_rules! ids {
            ($($name:ident)*) => {{ $(struct $name;)* vec![$(TypeId::of::<$name>()),*] }};
        }
        let ids = ids!(T0 T1 T2 T3 T4 T5 T6 T7 T8 T9 T10 T11 T12 T13 T14 T15 T16 T17 T18 T19);
        let mut index = TypeIndex::with_capacity(3);
        for (position, id) in ids.iter().enumerate() {
            index.insert(*id, position);
        }
        for (position, id) in ids.iter().enumerate() {
            assert_eq!(index.get(*id), Some(position));
        }
        assert_eq!(index.get(TypeId::of::<A>()), None);
    }
}
