//! Property test of the persistent grant cache against a model: random sequences of
//! lookups, inserts, failed maps, releases and purges, with every invariant checked after
//! each step.

use blkif::persistent::{index_len, CacheSlot, GrantCache, IndexEntry, Lookup, Slot, SlotState};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Debug)]
enum Op {
    /// A request uses this grant: acquire, or insert on a miss.
    Use(u32),
    /// The insert's map failed.
    FailLastInsert,
    /// Release the n-th slot in use (modulo how many are in use).
    Release(usize),
    /// Time passes.
    Advance(u64),
    /// Purge with this age limit, then free the chosen slots.
    Purge(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u32..40).prop_map(Op::Use),
        1 => Just(Op::FailLastInsert),
        5 => any::<usize>().prop_map(Op::Release),
        2 => (0u64..200).prop_map(Op::Advance),
        2 => prop_oneof![Just(0u64), 1u64..300].prop_map(Op::Purge),
    ]
}

/// What the model knows of a cached grant.
#[derive(Clone, Copy, Debug)]
struct Cached {
    slot: Slot,
    active: bool,
    last_used: u64,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]
    #[test]
    fn cache_matches_model(capacity in 1usize..24, ops in prop::collection::vec(op(), 1..200)) {
        let mut cache = GrantCache::new(
            vec![CacheSlot::default(); capacity],
            vec![IndexEntry::default(); index_len(capacity)],
        ).unwrap();
        let mut model: BTreeMap<u32, Cached> = BTreeMap::new();
        let mut in_use: Vec<Slot> = Vec::new();
        let mut last_insert: Option<(u32, Slot)> = None;
        let mut now = 0u64;
        let mut overflowed = false;
        for op in ops {
            match op {
                Op::Use(gref) => {
                    last_insert = None;
                    let got = cache.acquire(gref);
                    match model.get_mut(&gref) {
                        Some(c) if c.active => prop_assert_eq!(got, Lookup::Busy),
                        Some(c) => {
                            prop_assert_eq!(got, Lookup::Hit(c.slot));
                            c.active = true;
                            in_use.push(c.slot);
                        }
                        None => {
                            prop_assert_eq!(got, Lookup::Miss);
                            let inserted = cache.insert(gref);
                            if model.len() < capacity {
                                let slot = inserted.expect("room left");
                                prop_assert!(model.values().all(|c| c.slot != slot), "slot reused while held");
                                model.insert(gref, Cached { slot, active: true, last_used: 0 });
                                in_use.push(slot);
                                last_insert = Some((gref, slot));
                            } else {
                                prop_assert_eq!(inserted, None);
                                overflowed = true;
                            }
                        }
                    }
                }
                Op::FailLastInsert => {
                    if let Some((gref, slot)) = last_insert.take() {
                        cache.remove(slot);
                        model.remove(&gref);
                        in_use.retain(|s| *s != slot);
                    }
                }
                Op::Release(n) => {
                    last_insert = None;
                    if !in_use.is_empty() {
                        let slot = in_use.remove(n % in_use.len());
                        cache.release(slot, now);
                        let c = model.values_mut().find(|c| c.slot == slot).unwrap();
                        c.active = false;
                        c.last_used = now;
                    }
                }
                Op::Advance(dt) => now += dt,
                Op::Purge(unused) => {
                    last_insert = None;
                    let before: BTreeMap<u32, Cached> = model.clone();
                    let mut out = vec![0; capacity];
                    let n = cache.purge(now, unused, &mut out);
                    let chosen: BTreeSet<Slot> = out[..n].iter().copied().collect();
                    prop_assert_eq!(chosen.len(), n, "a slot chosen twice");
                    for (gref, c) in &before {
                        let expired = !c.active && unused > 0 && now - c.last_used >= unused;
                        if c.active {
                            prop_assert!(!chosen.contains(&c.slot), "grant {} in use was purged", gref);
                        }
                        if expired {
                            prop_assert!(chosen.contains(&c.slot), "expired grant {} kept", gref);
                        }
                        if chosen.contains(&c.slot) {
                            prop_assert_eq!(cache.state(c.slot), Some(SlotState::Evicted));
                            prop_assert_eq!(cache.acquire(*gref), Lookup::Miss);
                            model.remove(gref);
                        }
                    }
                    if overflowed {
                        let target = capacity - (capacity * 5 / 100).max(1);
                        let idle_left = model.values().filter(|c| !c.active).count();
                        prop_assert!(model.len() <= target || idle_left == 0,
                            "after an overflow {} remain (target {}) with {} idle", model.len(), target, idle_left);
                        // The LRU part chose the oldest: no kept idle grant is older than
                        // a chosen one that was not merely expired.
                        let oldest_kept = model.values().filter(|c| !c.active).map(|c| c.last_used).min();
                        for c in before.values().filter(|c| chosen.contains(&c.slot)) {
                            if let Some(kept) = oldest_kept {
                                prop_assert!(c.last_used <= kept || (unused > 0 && now - c.last_used >= unused));
                            }
                        }
                        if n > 0 { overflowed = false; }
                    }
                    prop_assert_eq!(cache.overflowed(), overflowed);
                    for slot in chosen {
                        cache.free(slot);
                        prop_assert_eq!(cache.state(slot), Some(SlotState::Free));
                    }
                }
            }
            // Invariants after every step.
            prop_assert_eq!(cache.len(), model.len());
            prop_assert!(cache.len() <= capacity);
            for (gref, c) in &model {
                prop_assert_eq!(cache.gref(c.slot), Some(*gref));
                let want = if c.active { SlotState::Active } else { SlotState::Idle { last_used_us: c.last_used } };
                prop_assert_eq!(cache.state(c.slot), Some(want));
            }
            let mapped: BTreeSet<Slot> = cache.mapped_slots().collect();
            let held: BTreeSet<Slot> = model.values().map(|c| c.slot).collect();
            prop_assert_eq!(mapped, held);
        }
    }
}
