//! The physical disk: a FIFO queue in front of a number of identical lanes.

use std::collections::VecDeque;

use crate::rng::SplitMix64;
use crate::scenario::DiskModel;

/// A request as the disk sees it: an opaque tag and a size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DiskRequest {
    pub(crate) tag: usize,
    pub(crate) bytes: u64,
}

/// The disk's queue and busy lanes; completions are scheduled by the caller.
#[derive(Debug)]
pub(crate) struct Disk {
    model: DiskModel,
    busy_lanes: u32,
    queue: VecDeque<DiskRequest>,
    rng: SplitMix64,
}

impl Disk {
    pub(crate) fn new(model: DiskModel) -> Disk {
        Disk {
            model,
            busy_lanes: 0,
            queue: VecDeque::new(),
            rng: SplitMix64::new(0x5eed),
        }
    }

    /// Queues `request`; if a lane is free it starts at once and its service time is
    /// returned.
    pub(crate) fn submit(&mut self, request: DiskRequest) -> Option<(DiskRequest, u64)> {
        self.queue.push_back(request);
        self.start_next()
    }

    /// A lane finished its request; starts the next queued one, if any.
    pub(crate) fn complete(&mut self) -> Option<(DiskRequest, u64)> {
        self.busy_lanes -= 1;
        self.start_next()
    }

    fn start_next(&mut self) -> Option<(DiskRequest, u64)> {
        if self.busy_lanes >= self.model.lanes.max(1) {
            return None;
        }
        let request = self.queue.pop_front()?;
        self.busy_lanes += 1;
        let service_us = self.model.service_us(request.bytes, self.rng.next_u64());
        Some((request, service_us))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_in_order_on_its_lanes() {
        let model = DiskModel {
            lanes: 2,
            base_us: 100,
            per_kib_ns: 1_000,
            jitter_percent: 0,
        };
        let mut disk = Disk::new(model);
        let request = |tag| DiskRequest { tag, bytes: 4096 };
        assert_eq!(disk.submit(request(0)), Some((request(0), 104)));
        assert_eq!(disk.submit(request(1)), Some((request(1), 104)));
        assert_eq!(disk.submit(request(2)), None);
        assert_eq!(disk.submit(request(3)), None);
        assert_eq!(disk.complete(), Some((request(2), 104)));
        assert_eq!(disk.complete(), Some((request(3), 104)));
        assert_eq!(disk.complete(), None);
        assert_eq!(disk.complete(), None);
    }

    #[test]
    fn jitter_stays_within_its_band_and_averages_out() {
        let model = DiskModel {
            lanes: 1,
            base_us: 1_000,
            per_kib_ns: 0,
            jitter_percent: 25,
        };
        let mut rng = SplitMix64::new(1);
        let draws: Vec<u64> = (0..10_000)
            .map(|_| model.service_us(0, rng.next_u64()))
            .collect();
        assert!(draws.iter().all(|&us| (750..=1_250).contains(&us)));
        let mean = draws.iter().sum::<u64>() / draws.len() as u64;
        assert!((990..=1_010).contains(&mean), "{mean}");
    }
}
