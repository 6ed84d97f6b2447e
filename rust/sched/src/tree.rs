//! A tournament tree: the best of `n` slots in O(1), kept up to date in O(log n) per change.
//!
//! Bottom-up layout in a caller table of `2n` entries: leaf `i` is entry `n + i`, node `k`
//! holds the better of entries `2k` and `2k + 1`, entry 1 the best of all (every entry from
//! 2 up descends from 1 exactly once, whatever `n`). An entry holds a slot index or
//! [`NONE`] (no candidate below it).

/// No candidate.
pub const NONE: u32 = u32::MAX;

/// Sets leaf `slot` to `present` (a candidate or not) and refreshes its ancestors;
/// `better(a, b)` says whether candidate `a` beats candidate `b`.
pub(crate) fn update(
    tree: &mut [u32],
    slot: usize,
    present: bool,
    better: impl Fn(u32, u32) -> bool,
) {
    let n = tree.len() / 2;
    if slot >= n {
        return;
    }
    let mut k = n + slot;
    tree[k] = if present { slot as u32 } else { NONE };
    while k > 1 {
        k /= 2;
        let (a, b) = (tree[2 * k], tree[2 * k + 1]);
        tree[k] = match (a, b) {
            (NONE, x) | (x, NONE) => x,
            (a, b) if better(b, a) => b,
            (a, _) => a,
        };
    }
}

/// The best candidate, if any.
pub(crate) fn best(tree: &[u32]) -> Option<usize> {
    // With one slot, entry 1 is the leaf itself.
    match tree.get(1) {
        Some(&top) if top != NONE => Some(top as usize),
        _ => None,
    }
}

/// Marks every leaf absent.
pub(crate) fn clear(tree: &mut [u32]) {
    tree.iter_mut().for_each(|e| *e = NONE);
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use proptest::prelude::*;
    use std::vec;

    proptest! {
        /// After any sequence of updates the root is the minimum of the present keys.
        #[test]
        fn root_is_the_minimum(n in 1usize..70,
                               ops in proptest::collection::vec((0usize..70, any::<bool>(), 0u32..50), 1..200)) {
            let mut keys = vec![0u32; n];
            let mut present = vec![false; n];
            let mut tree = vec![NONE; 2 * n];
            for (slot, on, key) in ops {
                let slot = slot % n;
                keys[slot] = key;
                present[slot] = on;
                // A changed key needs its leaf refreshed, as the queue does.
                let k = keys.clone();
                update(&mut tree, slot, on, |a, b| (k[a as usize], a) < (k[b as usize], b));
                let expect = (0..n).filter(|&i| present[i]).min_by_key(|&i| (keys[i], i));
                prop_assert_eq!(best(&tree), expect);
            }
        }
    }
}
