// SPDX-License-Identifier: GPL-2.0

//! Persistent grants (`feature-persistent`): the grants of a ring that stay mapped between
//! requests, chosen by the shared cache logic (`blkif::persistent`), and the worker's upkeep
//! of them (unmapping the ones unused for too long, without a periodic wake-up).

use super::{RingShared, RingState};
use crate::blkif::persistent::{index_len, CacheSlot, GrantCache, IndexEntry, Lookup};
use crate::blkif::protocol::MAX_INDIRECT_PAGES_PER_REQUEST;
use crate::sys::block::{IoSlot, PersistentPages};
use kernel::prelude::*;
use kernel::sync::Arc;

/// Least time between two purges of a ring's persistent grants, as in stock xen-blkback.
const PURGE_INTERVAL_US: u64 = 100_000;

/// A ring's persistent grants (`feature-persistent`): which grants stay mapped (the
/// shared cache logic) and the pages mapping them.
pub(super) struct PersistentGrants {
    cache: GrantCache<KVec<CacheSlot>, KVec<IndexEntry>>,
    pub(super) pages: PersistentPages,
    unused_us: u64,
    /// No purge before this time.
    next_purge_us: u64,
    /// When the purge timer is armed for, if it is.
    pub(super) timer_at: Option<u64>,
    /// No look at the cache for grants to unmap before this time.
    pub(super) next_tend_us: u64,
    /// Scratch: grants the current request made persistent, to map in one call; the first
    /// `nr_new` are valid.
    new_grants: KVec<(u16, u32)>,
    nr_new: usize,
    /// Scratch: slots a purge chose.
    purged: KVec<u16>,
}

impl PersistentGrants {
    pub(super) fn new(
        capacity: u16,
        unused_us: u64,
        max_segments: usize,
        ios: KVec<Arc<IoSlot>>,
    ) -> Result<Self> {
        let n = usize::from(capacity);
        let cache = GrantCache::new(
            KVec::from_elem(CacheSlot::default(), n, GFP_KERNEL)?,
            KVec::from_elem(IndexEntry::default(), index_len(n), GFP_KERNEL)?,
        )
        .map_err(|_| EINVAL)?;
        Ok(Self {
            cache,
            pages: PersistentPages::new(n, ios)?,
            unused_us,
            next_purge_us: 0,
            timer_at: None,
            next_tend_us: 0,
            new_grants: KVec::from_elem(
                (0, 0),
                max_segments.max(MAX_INDIRECT_PAGES_PER_REQUEST),
                GFP_KERNEL,
            )?,
            nr_new: 0,
            purged: KVec::from_elem(0, n, GFP_KERNEL)?,
        })
    }

    /// The page for grant `gref` of a request: a persistent grant already mapped (`Some`,
    /// now in use), a newly cached one queued in `new_grants` for mapping (`Some`), or
    /// `None` when the grant must be mapped for this request only (cache full, or the
    /// frontend uses the grant in two requests at once).
    pub(super) fn assign(&mut self, gref: u32) -> Option<u16> {
        match self.cache.acquire(gref) {
            Lookup::Hit(slot) => Some(slot),
            Lookup::Busy => None,
            Lookup::Miss => {
                // Room for every segment of the largest request (or its indirect pages).
                let entry = self.new_grants.get_mut(self.nr_new)?;
                let slot = self.cache.insert(gref)?;
                *entry = (slot, gref);
                self.nr_new += 1;
                Some(slot)
            }
        }
    }

    /// Maps the grants `assign` queued; on failure forgets them again.
    pub(super) fn map_new(&mut self, domid: u16) -> Result {
        let result = match self.new_grants.get(..self.nr_new) {
            Some([]) => Ok(()),
            Some(new) => self.pages.map(domid, new),
            None => Err(EINVAL),
        };
        if result.is_err() {
            self.abandon_new();
        }
        self.nr_new = 0;
        result
    }

    /// Forgets the grants `assign` queued without mapping them.
    pub(super) fn abandon_new(&mut self) {
        for &(slot, _) in self.new_grants.iter().take(self.nr_new) {
            self.cache.remove(slot);
        }
        self.nr_new = 0;
    }

    /// Ends a request's use of `slots` (its I/O is done, or it never started).
    pub(super) fn release(&mut self, slots: &[u16], now_us: u64) {
        for &slot in slots {
            self.pages.finish_use(slot);
            self.cache.release(slot, now_us);
        }
    }

    /// Unmaps the grants unused for too long, and after an overflow the least recently
    /// used ones; at most once per `PURGE_INTERVAL_US`.
    fn purge(&mut self, now_us: u64) {
        if now_us < self.next_purge_us {
            return;
        }
        let expiring = self
            .cache
            .next_expiry(self.unused_us)
            .is_some_and(|t| t <= now_us);
        if !expiring && !self.cache.overflowed() {
            return;
        }
        self.next_purge_us = now_us + PURGE_INTERVAL_US;
        let n = self.cache.purge(now_us, self.unused_us, &mut self.purged);
        for i in 0..n {
            let slot = self.purged[i];
            // An idle grant has no bio in flight, so this cannot be refused; if it were,
            // the slot would stay evicted (mapped, unused) until the ring goes.
            if self.pages.unmap(slot).is_ok() {
                self.cache.free(slot);
            }
        }
    }

    /// When the worker should next look at idle grants, if any may expire.
    fn next_deadline(&self) -> Option<u64> {
        self.cache
            .next_expiry(self.unused_us)
            .map(|t| t.max(self.next_purge_us))
    }
}

impl RingState {
    /// Unmaps persistent grants that are due, and arms the purge timer for the next ones,
    /// so that an idle ring gives its grants back without a periodic wake-up.
    pub(super) fn tend_persistent_grants(&mut self, shared: &RingShared, now: u64) {
        let Some(p) = self.persistent.as_mut() else {
            return;
        };
        if p.timer_at.is_some_and(|at| at <= now) {
            p.timer_at = None;
        }
        // Looking for grants to unmap is a pass over every slot of the cache (1056 by
        // default): at most once per interval, not on every run of a busy ring. A run
        // after the interval is guaranteed by the timer, should the ring go idle now.
        if now < p.next_tend_us {
            if p.timer_at.is_none() {
                shared.purge_timer.arm_at(p.next_tend_us);
                p.timer_at = Some(p.next_tend_us);
            }
            return;
        }
        p.next_tend_us = now + PURGE_INTERVAL_US;
        p.purge(now);
        if let Some(deadline) = p.next_deadline() {
            if p.timer_at.map_or(true, |at| deadline < at) {
                shared.purge_timer.arm_at(deadline);
                p.timer_at = Some(deadline);
            }
        }
    }
}
