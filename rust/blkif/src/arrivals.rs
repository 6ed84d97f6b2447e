//! When each request on a ring was first seen by the backend, for the time it then waited
//! before being consumed (held by a limit or by the scheduler, or behind such a request).
//!
//! The frontend publishes requests by moving `req_prod`; the backend only learns of them
//! when it reads that index. Each time it does, the requests it has not seen before are
//! stamped with the time; when one is consumed, its wait is the time since its stamp. The
//! stamps live in one `u64` per ring entry: an entry is stamped at most once per lap of the
//! ring, after its previous request was consumed. The caller passes only counts it has
//! validated (`BackRing::unconsumed_requests`), so a hostile `req_prod` stamps nothing.

use core::ops::DerefMut;

/// The stamps of one ring's entries.
pub struct ArrivalTimes<S> {
    /// Per entry (index modulo the ring's size), when its current request was first seen.
    seen_us: S,
    /// Requests before this index are stamped.
    stamped_to: u32,
}

impl<S: DerefMut<Target = [u64]>> ArrivalTimes<S> {
    /// The stamps of a ring whose next request is `req_cons`; `seen_us` has one element per
    /// entry of the ring (a power of two, as ring sizes are).
    pub fn new(seen_us: S, req_cons: u32) -> Self {
        Self {
            seen_us,
            stamped_to: req_cons,
        }
    }

    /// The ring's next request is `req_cons` and `waiting` requests (validated against the
    /// ring's size) wait from there at `now_us`: stamps those not seen before.
    pub fn note(&mut self, req_cons: u32, waiting: u32, now_us: u64) {
        let size = self.seen_us.len();
        if size == 0 {
            return;
        }
        let waiting = waiting.min(u32::try_from(size).unwrap_or(u32::MAX));
        let end = req_cons.wrapping_add(waiting);
        // Resume where the last call stopped if that is among the waiting requests; after
        // a reset of the ring (or a first call) start at the consumer index.
        let mut index = if self.stamped_to.wrapping_sub(req_cons) <= waiting {
            self.stamped_to
        } else {
            req_cons
        };
        while index != end {
            if let Some(stamp) = self.seen_us.get_mut(index as usize % size) {
                *stamp = now_us;
            }
            index = index.wrapping_add(1);
        }
        self.stamped_to = end;
    }

    /// The request at ring index `index` is consumed at `now_us`: how long since it was
    /// first seen (0 if its stamp is from later, as after a clock step).
    pub fn waited(&self, index: u32, now_us: u64) -> u64 {
        let size = self.seen_us.len();
        if size == 0 {
            return 0;
        }
        self.seen_us
            .get(index as usize % size)
            .map_or(0, |&seen| now_us.saturating_sub(seen))
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::ArrivalTimes;
    use proptest::prelude::*;
    use std::collections::VecDeque;
    use std::vec;
    use std::vec::Vec;

    #[test]
    fn a_request_waits_from_when_it_was_first_seen() {
        let mut a = ArrivalTimes::new(vec![0u64; 4], 0);
        a.note(0, 2, 100); // requests 0 and 1 seen at 100
        a.note(0, 3, 150); // request 2 at 150; 0 and 1 keep their stamps
        assert_eq!(a.waited(0, 400), 300);
        a.note(1, 3, 500); // 3 at 500
        assert_eq!(a.waited(1, 600), 500);
        assert_eq!(a.waited(2, 600), 450);
        assert_eq!(a.waited(3, 600), 100);
    }

    #[test]
    fn indexes_wrap() {
        let start = u32::MAX - 1;
        let mut a = ArrivalTimes::new(vec![0u64; 4], start);
        a.note(start, 4, 10);
        assert_eq!(a.waited(start.wrapping_add(3), 15), 5);
        a.note(start.wrapping_add(4), 1, 20);
        assert_eq!(a.waited(start.wrapping_add(4), 25), 5);
    }

    #[test]
    fn counts_beyond_the_ring_stamp_at_most_the_ring() {
        let mut a = ArrivalTimes::new(vec![0u64; 4], 7);
        a.note(7, u32::MAX, 10);
        assert!((7..11).all(|i| a.waited(i, 10) == 0));
        assert_eq!(a.waited(7, 11), 1);
        let mut empty = ArrivalTimes::new(Vec::new(), 0);
        empty.note(0, 5, 1);
        assert_eq!(empty.waited(0, 5), 0);
    }

    proptest! {
        /// A frontend publishes requests at random times; the backend looks now and then
        /// and consumes some: every request's wait is exactly the time from the first look
        /// that saw it to its consumption.
        #[test]
        fn every_wait_is_from_the_first_look_that_saw_the_request(
            start in any::<u32>(),
            steps in prop::collection::vec((0u32..4, any::<bool>(), 0u32..4), 1..200),
        ) {
            const SIZE: u32 = 8;
            let mut a = ArrivalTimes::new(vec![0u64; SIZE as usize], start);
            let (mut cons, mut prod, mut now) = (start, start, 0u64);
            // Requests published and not consumed, with when the backend first saw each.
            let mut pending: VecDeque<Option<u64>> = VecDeque::new();
            for (publish, look, take) in steps {
                now += 7;
                let room = SIZE - prod.wrapping_sub(cons);
                for _ in 0..publish.min(room) {
                    prod = prod.wrapping_add(1);
                    pending.push_back(None);
                }
                if !look {
                    continue;
                }
                a.note(cons, prod.wrapping_sub(cons), now);
                for p in pending.iter_mut() {
                    p.get_or_insert(now);
                }
                for _ in 0..take.min(prod.wrapping_sub(cons)) {
                    let seen = pending.pop_front().unwrap().unwrap();
                    prop_assert_eq!(a.waited(cons, now + 3), now + 3 - seen);
                    cons = cons.wrapping_add(1);
                }
            }
        }
    }
}
