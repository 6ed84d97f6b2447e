//! Persistent grants (`feature-persistent`): which of a frontend's grant references stay
//! mapped in the backend between requests, and which are given up again.
//!
//! With persistent grants the frontend reuses a fixed set of granted pages for its data
//! and copies into and out of them, so the backend can map each grant once instead of
//! mapping and unmapping it around every request (two hypercalls and a TLB flush per
//! page). This module is the bookkeeping for one ring; the mapping itself is the caller's:
//!
//! - [`GrantCache::acquire`] looks a grant up for a request: [`Lookup::Hit`] gives the slot
//!   whose page already maps it; [`Lookup::Busy`] means another request of the ring uses
//!   it right now (a frontend must not do that; the caller maps it once more, temporarily);
//!   [`Lookup::Miss`] means it is not cached.
//! - [`GrantCache::insert`] makes room for a new grant if the cache is not full; the caller
//!   maps the grant into that slot's page, or calls [`GrantCache::remove`] if mapping fails.
//!   When the cache is full the grant is used non-persistently and the cache remembers that
//!   it overflowed.
//! - [`GrantCache::release`] ends a request's use of a slot (after its I/O completed).
//! - [`GrantCache::purge`] picks slots to unmap: every grant unused for the configured time
//!   and, after an overflow, the least recently used idle grants until the cache is
//!   [`PURGE_PERCENT`] below capacity, so that a frontend whose working set moved can
//!   persist its new grants. Chosen slots leave the lookup index at once; the caller
//!   unmaps their pages and returns each with [`GrantCache::free`].
//!
//! A slot in use by a request is never chosen, and a slot is only reused after `free`.
//! Storage is the caller's (the slots, and a lookup index of [`index_len`] entries, e.g.
//! `Vec`s on the host and `KVec`s in the module); nothing here allocates or panics.
//!
//! The lookup runs for every segment of every request, so the index is a hash table (open
//! addressing, linear probing, at most half full) rather than a sorted array. Grant
//! references come from the frontend: a frontend that picks colliding ones only makes its
//! own grants non-persistent, because no grant is placed more than [`MAX_PROBES`] entries
//! from its hash position, and so no lookup looks at more entries than that.

use core::ops::DerefMut;

/// Index of a cache slot (and of the page the caller keeps for it).
pub type Slot = u16;

/// Most slots a cache may have: slot numbers must fit [`Slot`] ([`Slot::MAX`] marks an
/// empty index entry).
pub const MAX_CAPACITY: usize = u16::MAX as usize;

/// Most index entries a lookup looks at: a grant that would land farther from its hash
/// position is not cached (used non-persistently) instead.
pub const MAX_PROBES: usize = 32;

/// Length of the lookup index for a cache of `capacity` slots: the smallest power of two
/// that is at least twice the capacity (and at least 2), so the table is at most half full.
pub const fn index_len(capacity: usize) -> usize {
    let want = if capacity < 1 { 2 } else { capacity * 2 };
    want.next_power_of_two()
}

/// Slot number of an empty index entry.
const EMPTY: Slot = Slot::MAX;

/// Share of the capacity, in percent, that a purge after an overflow frees below the
/// capacity, so that the next few new grants can be persisted.
pub const PURGE_PERCENT: usize = 5;

/// What a slot holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SlotState {
    /// No grant; the slot may be handed out by `insert`.
    #[default]
    Free,
    /// Mapped and findable; no request uses it.
    Idle {
        /// When its last user released it (caller's clock, microseconds).
        last_used_us: u64,
    },
    /// Mapped and in use by one request.
    Active,
    /// Chosen by `purge`: no longer findable, still mapped until the caller frees it.
    Evicted,
}

/// One slot of the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct CacheSlot {
    /// The grant it holds (meaningless when `Free`).
    gref: u32,
    /// Its state.
    state: SlotState,
}

/// One entry of the lookup index: a cached grant and its slot, or empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    /// The grant reference.
    gref: u32,
    /// The slot holding it, or `EMPTY`.
    slot: Slot,
}

impl Default for IndexEntry {
    fn default() -> Self {
        Self {
            gref: 0,
            slot: EMPTY,
        }
    }
}

/// The outcome of [`GrantCache::acquire`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// Cached and now marked in use; the slot's page maps the grant.
    Hit(Slot),
    /// Cached but in use by another request.
    Busy,
    /// Not cached.
    Miss,
}

/// Why [`GrantCache::new`] refused its storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheError {
    /// More slots than [`MAX_CAPACITY`], or an index whose length is not [`index_len`] of
    /// the slots' length.
    BadStorage,
}

/// The persistent grants of one ring.
#[derive(Debug)]
pub struct GrantCache<S, I> {
    /// Slot states, indexed by slot.
    slots: S,
    /// The lookup index: a hash table of [`index_len`]`(capacity)` entries.
    index: I,
    /// Cached grants (slots neither `Free` nor `Evicted`).
    len: usize,
    /// A grant was refused for lack of room since the last purge that freed something.
    overflowed: bool,
}

impl<S, I> GrantCache<S, I>
where
    S: DerefMut<Target = [CacheSlot]>,
    I: DerefMut<Target = [IndexEntry]>,
{
    /// A cache over `slots` (their number is the capacity) and `index` ([`index_len`] of
    /// the capacity entries). Every slot starts `Free`, whatever the slices held.
    pub fn new(mut slots: S, mut index: I) -> Result<Self, CacheError> {
        if slots.len() > MAX_CAPACITY || index.len() != index_len(slots.len()) {
            return Err(CacheError::BadStorage);
        }
        for slot in slots.iter_mut() {
            *slot = CacheSlot::default();
        }
        for entry in index.iter_mut() {
            *entry = IndexEntry::default();
        }
        Ok(Self {
            slots,
            index,
            len: 0,
            overflowed: false,
        })
    }

    /// Most grants the cache holds.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Grants cached now (idle or in use).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no grant is cached.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether a grant was refused for lack of room since the last purge.
    pub fn overflowed(&self) -> bool {
        self.overflowed
    }

    /// The grant slot `slot` holds, if it holds one (also while evicted).
    pub fn gref(&self, slot: Slot) -> Option<u32> {
        let entry = self.slots.get(usize::from(slot))?;
        match entry.state {
            SlotState::Free => None,
            _ => Some(entry.gref),
        }
    }

    /// The state of `slot`.
    pub fn state(&self, slot: Slot) -> Option<SlotState> {
        self.slots.get(usize::from(slot)).map(|s| s.state)
    }

    /// Where the probe for `gref` starts. The multiplication spreads grant references that
    /// differ in any bit over the table; the mask keeps the position in it (a power of two).
    fn home(&self, gref: u32) -> usize {
        let h = gref.wrapping_mul(0x9e37_79b1);
        ((h ^ (h >> 16)) as usize) & (self.index.len() - 1)
    }

    /// Position of `gref` in the index (`Ok`), or the empty entry where it would go (`Err`
    /// of `Some`), or `Err(None)` if it is not cached and could not go within
    /// [`MAX_PROBES`] entries of its hash position.
    fn find(&self, gref: u32) -> Result<usize, Option<usize>> {
        let mask = self.index.len() - 1;
        let home = self.home(gref);
        for probe in 0..MAX_PROBES.min(self.index.len()) {
            let pos = (home + probe) & mask;
            match self.index.get(pos) {
                Some(entry) if entry.slot == EMPTY => return Err(Some(pos)),
                Some(entry) if entry.gref == gref => return Ok(pos),
                Some(_) => {}
                None => break,
            }
        }
        Err(None)
    }

    /// Looks `gref` up for a request; a hit marks the slot in use.
    pub fn acquire(&mut self, gref: u32) -> Lookup {
        let Ok(pos) = self.find(gref) else {
            return Lookup::Miss;
        };
        let Some(slot) = self.index.get(pos).map(|e| e.slot) else {
            return Lookup::Miss;
        };
        match self.slots.get_mut(usize::from(slot)) {
            Some(entry) if matches!(entry.state, SlotState::Idle { .. }) => {
                entry.state = SlotState::Active;
                Lookup::Hit(slot)
            }
            Some(entry) if entry.state == SlotState::Active => Lookup::Busy,
            // The index only names idle or active slots.
            _ => Lookup::Miss,
        }
    }

    /// Reserves a slot for `gref`, marked in use, if there is room and `gref` is not
    /// cached yet. The caller maps the grant into the slot's page next, or calls
    /// [`GrantCache::remove`] if that fails.
    pub fn insert(&mut self, gref: u32) -> Option<Slot> {
        // Already cached, or no place near its hash position (colliding references).
        let pos = self.find(gref).err()??;
        if self.len >= self.capacity() {
            self.overflowed = true;
            return None;
        }
        let slot = self.slots.iter().position(|s| s.state == SlotState::Free)?;
        let slot_id = Slot::try_from(slot).ok()?;
        *self.index.get_mut(pos)? = IndexEntry {
            gref,
            slot: slot_id,
        };
        *self.slots.get_mut(slot)? = CacheSlot {
            gref,
            state: SlotState::Active,
        };
        self.len += 1;
        Some(slot_id)
    }

    /// Ends a request's use of `slot` at time `now_us`. Ignored unless the slot is in use.
    pub fn release(&mut self, slot: Slot, now_us: u64) {
        if let Some(entry) = self.slots.get_mut(usize::from(slot)) {
            if entry.state == SlotState::Active {
                entry.state = SlotState::Idle {
                    last_used_us: now_us,
                };
            }
        }
    }

    /// Forgets the grant of `slot` at once (its mapping failed, or the caller unmapped it);
    /// the slot becomes free. Evicted slots go through [`GrantCache::free`] instead.
    pub fn remove(&mut self, slot: Slot) {
        let Some(entry) = self.slots.get(usize::from(slot)).copied() else {
            return;
        };
        if !matches!(entry.state, SlotState::Idle { .. } | SlotState::Active) {
            return;
        }
        self.unindex(entry.gref);
        if let Some(entry) = self.slots.get_mut(usize::from(slot)) {
            *entry = CacheSlot::default();
        }
    }

    /// Returns an evicted slot (its page unmapped by the caller) to the free slots.
    pub fn free(&mut self, slot: Slot) {
        if let Some(entry) = self.slots.get_mut(usize::from(slot)) {
            if entry.state == SlotState::Evicted {
                *entry = CacheSlot::default();
            }
        }
    }

    /// Removes `gref` from the index and counts it gone. The entries after it in its run
    /// move back into the hole where their probe passes it (backward-shift deletion), so
    /// that every entry stays findable, none moves farther from its hash position (the
    /// [`MAX_PROBES`] bound holds), and no marker of a deleted entry is needed.
    fn unindex(&mut self, gref: u32) {
        let Ok(pos) = self.find(gref) else {
            return;
        };
        let mask = self.index.len() - 1;
        let mut hole = pos;
        let mut next = (pos + 1) & mask;
        // The table is at most half full: an empty entry ends the run within its length.
        for _ in 0..self.index.len() {
            let Some(entry) = self.index.get(next).copied() else {
                break;
            };
            if entry.slot == EMPTY {
                break;
            }
            // The entry may fill the hole if the hole lies between its hash position and
            // where it is now (cyclically).
            let home = self.home(entry.gref);
            if (next.wrapping_sub(home) & mask) >= (next.wrapping_sub(hole) & mask) {
                if let Some(dst) = self.index.get_mut(hole) {
                    *dst = entry;
                }
                hole = next;
            }
            next = (next + 1) & mask;
        }
        if let Some(dst) = self.index.get_mut(hole) {
            *dst = IndexEntry::default();
        }
        self.len -= 1;
    }

    /// Evicts `slot` (idle) so `purge` can hand it to the caller.
    fn evict(&mut self, slot: usize) {
        let Some(entry) = self.slots.get(slot).copied() else {
            return;
        };
        self.unindex(entry.gref);
        if let Some(entry) = self.slots.get_mut(slot) {
            entry.state = SlotState::Evicted;
        }
    }

    /// Chooses idle grants to unmap at time `now_us` and writes their slots to `out`
    /// (at most `out.len()`); returns how many. Chosen: every grant idle for at least
    /// `unused_us` (0 = no age limit), and after an overflow also the least recently used
    /// idle grants until at most `capacity - capacity * PURGE_PERCENT / 100` (and at least
    /// one fewer than the capacity) remain cached. The chosen slots are no longer found by
    /// `acquire`; the caller unmaps each and calls [`GrantCache::free`].
    pub fn purge(&mut self, now_us: u64, unused_us: u64, out: &mut [Slot]) -> usize {
        let mut chosen = 0;
        if unused_us > 0 {
            for slot in 0..self.slots.len() {
                if chosen >= out.len() {
                    break;
                }
                let expired = match self.slots.get(slot).map(|s| s.state) {
                    Some(SlotState::Idle { last_used_us }) => {
                        now_us.saturating_sub(last_used_us) >= unused_us
                    }
                    _ => false,
                };
                if expired {
                    self.evict(slot);
                    if let (Some(dst), Ok(id)) = (out.get_mut(chosen), Slot::try_from(slot)) {
                        *dst = id;
                    }
                    chosen += 1;
                }
            }
        }
        if self.overflowed {
            let capacity = self.capacity();
            let spare = (capacity * PURGE_PERCENT / 100).max(1);
            let target = capacity.saturating_sub(spare);
            while self.len > target && chosen < out.len() {
                let Some(oldest) = self.least_recently_used() else {
                    break;
                };
                self.evict(oldest);
                if let (Some(dst), Ok(id)) = (out.get_mut(chosen), Slot::try_from(oldest)) {
                    *dst = id;
                }
                chosen += 1;
            }
            if chosen > 0 {
                self.overflowed = false;
            }
        }
        chosen
    }

    /// The idle slot used longest ago.
    fn least_recently_used(&self) -> Option<usize> {
        let mut best: Option<(usize, u64)> = None;
        for (slot, entry) in self.slots.iter().enumerate() {
            if let SlotState::Idle { last_used_us } = entry.state {
                if best.map_or(true, |(_, t)| last_used_us < t) {
                    best = Some((slot, last_used_us));
                }
            }
        }
        best.map(|(slot, _)| slot)
    }

    /// When the next idle grant becomes older than `unused_us`: the time at which a purge
    /// would find something to unmap, if nothing is used meanwhile. `None` if no grant is
    /// idle or there is no age limit.
    pub fn next_expiry(&self, unused_us: u64) -> Option<u64> {
        if unused_us == 0 {
            return None;
        }
        self.slots
            .iter()
            .filter_map(|s| match s.state {
                SlotState::Idle { last_used_us } => Some(last_used_us.saturating_add(unused_us)),
                _ => None,
            })
            .min()
    }

    /// Every slot whose page is mapped (idle, in use or evicted), for teardown.
    pub fn mapped_slots(&self) -> impl Iterator<Item = Slot> + '_ {
        self.slots.iter().enumerate().filter_map(|(slot, s)| {
            if s.state == SlotState::Free {
                None
            } else {
                Slot::try_from(slot).ok()
            }
        })
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec;
    use std::vec::Vec;

    type Cache = GrantCache<Vec<CacheSlot>, Vec<IndexEntry>>;

    fn cache(capacity: usize) -> Cache {
        GrantCache::new(
            vec![CacheSlot::default(); capacity],
            vec![IndexEntry::default(); index_len(capacity)],
        )
        .unwrap()
    }

    #[test]
    fn storage_must_match() {
        let r = GrantCache::new(
            vec![CacheSlot::default(); 2],
            vec![IndexEntry::default(); 3],
        );
        assert_eq!(r.err(), Some(CacheError::BadStorage));
        assert_eq!(index_len(0), 2);
        assert_eq!(index_len(3), 8);
        assert_eq!(index_len(1056), 4096);
    }

    /// Grant references that all hash to one position: the first MAX_PROBES are cached,
    /// the rest refused without counting as an overflow; removing entries from the middle
    /// of the run keeps the others findable, and frees room for one more.
    #[test]
    fn colliding_grants_are_bounded_and_survive_removals() {
        let mut c = cache(100);
        let home = c.home(5);
        let colliding: Vec<u32> = (0..200_000u32)
            .filter(|&g| c.home(g) == home)
            .take(MAX_PROBES + 3)
            .collect();
        assert_eq!(colliding.len(), MAX_PROBES + 3);
        let mut slots = Vec::new();
        for &g in &colliding[..MAX_PROBES] {
            slots.push(c.insert(g).expect("room within the probe limit"));
        }
        assert_eq!(c.insert(colliding[MAX_PROBES]), None);
        assert!(!c.overflowed(), "a collision is not a full cache");
        // Remove every third one; the rest must still be found, in use.
        for i in (0..MAX_PROBES).step_by(3) {
            c.remove(slots[i]);
        }
        for (i, &g) in colliding[..MAX_PROBES].iter().enumerate() {
            let expect = if i % 3 == 0 {
                Lookup::Miss
            } else {
                Lookup::Busy
            };
            assert_eq!(c.acquire(g), expect, "grant {g} (#{i})");
        }
        assert!(c.insert(colliding[MAX_PROBES]).is_some());
    }

    #[test]
    fn insert_then_hit_busy_and_release() {
        let mut c = cache(4);
        assert_eq!(c.acquire(7), Lookup::Miss);
        let s = c.insert(7).unwrap();
        assert_eq!(
            c.acquire(7),
            Lookup::Busy,
            "in use by the inserting request"
        );
        assert_eq!(c.insert(7), None, "already cached");
        c.release(s, 10);
        assert_eq!(c.acquire(7), Lookup::Hit(s));
        assert_eq!(c.len(), 1);
        assert_eq!(c.gref(s), Some(7));
    }

    #[test]
    fn full_cache_overflows_and_purge_frees_the_oldest() {
        let mut c = cache(20);
        for g in 0..20u32 {
            let s = c.insert(g * 3).unwrap();
            c.release(s, u64::from(g));
        }
        assert_eq!(c.insert(1000), None);
        assert!(c.overflowed());
        let mut out = [0; 32];
        // 5 % of 20 is 1: one idle grant goes, the least recently used (gref 0).
        let n = c.purge(100, 0, &mut out);
        assert_eq!(n, 1);
        assert_eq!(c.gref(out[0]), Some(0));
        assert_eq!(c.state(out[0]), Some(SlotState::Evicted));
        assert_eq!(c.acquire(0), Lookup::Miss);
        assert!(!c.overflowed());
        assert_eq!(c.insert(1000), None, "the evicted slot is not free yet");
        c.free(out[0]);
        assert!(c.insert(1000).is_some());
    }

    #[test]
    fn purge_by_age_skips_grants_in_use() {
        let mut c = cache(8);
        let a = c.insert(1).unwrap();
        let b = c.insert(2).unwrap();
        let _busy = c.insert(3).unwrap();
        c.release(a, 0);
        c.release(b, 50);
        assert_eq!(c.next_expiry(100), Some(100));
        let mut out = [0; 8];
        assert_eq!(c.purge(120, 100, &mut out), 1);
        assert_eq!(out[0], a);
        assert_eq!(c.next_expiry(100), Some(150));
        assert_eq!(c.purge(1_000, 100, &mut out), 1);
        assert_eq!(out[0], b);
        assert_eq!(c.len(), 1, "the grant in use stays");
        assert_eq!(c.next_expiry(100), None);
    }

    #[test]
    fn remove_after_failed_map_frees_the_slot() {
        let mut c = cache(1);
        let s = c.insert(5).unwrap();
        c.remove(s);
        assert!(c.is_empty());
        assert_eq!(c.acquire(5), Lookup::Miss);
        assert_eq!(c.insert(6), Some(s));
    }
}
