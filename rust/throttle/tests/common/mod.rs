//! A model of the kernel side for the property tests: rings that hold and get kicked, a
//! domain timer, and a log of what was admitted; plus an independent model of the limits
//! in force in each slice.

use std::collections::VecDeque;

use throttle::{
    Admission, Cost, DomainBudget, HeldRings, Limits, Meter, SliceConfig, CREDITS_PER_UNIT,
};

/// One admitted request.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Admitted {
    pub(crate) time_us: u64,
    pub(crate) ring: usize,
    pub(crate) id: u64,
    pub(crate) cost: Cost,
}

#[derive(Debug, Default)]
struct Ring {
    /// Requests on the ring, oldest first, with their arrival number.
    queue: VecDeque<(u64, Cost)>,
    next_id: u64,
    held: bool,
    holds: u64,
    /// An endless supply of requests (a backlogged guest), cycled through in order.
    backlog: Vec<Cost>,
}

impl Ring {
    fn head(&mut self) -> Option<(u64, Cost)> {
        if self.queue.is_empty() && !self.backlog.is_empty() {
            let index = (self.next_id % self.backlog.len() as u64) as usize;
            self.push(self.backlog[index]);
        }
        self.queue.front().copied()
    }

    fn push(&mut self, cost: Cost) {
        self.queue.push_back((self.next_id, cost));
        self.next_id += 1;
    }
}

/// A domain driven the way the kernel drives it.
pub(crate) struct Domain {
    pub(crate) budget: DomainBudget,
    rings: Vec<Ring>,
    timer_us: Option<u64>,
    pub(crate) log: Vec<Admitted>,
    pub(crate) kicks: u64,
    /// Timer expiries that found the rings still unable to go on.
    pub(crate) idle_timer_fires: u64,
}

impl Domain {
    pub(crate) fn new(limits: Limits, config: SliceConfig, rings: usize) -> Domain {
        Domain {
            budget: DomainBudget::new(limits, config, 0),
            rings: (0..rings).map(|_| Ring::default()).collect(),
            timer_us: None,
            log: Vec::new(),
            kicks: 0,
            idle_timer_fires: 0,
        }
    }

    /// Gives `ring` an endless backlog cycling through `costs`.
    pub(crate) fn backlog(&mut self, ring: usize, costs: Vec<Cost>) {
        self.rings[ring].backlog = costs;
    }

    /// A guest puts a request on `ring` and notifies the backend.
    pub(crate) fn arrive(&mut self, ring: usize, cost: Cost, now_us: u64) {
        self.run_timer_until(now_us);
        self.rings[ring].push(cost);
        self.pump(ring, now_us);
    }

    /// The administrator changes the limits.
    pub(crate) fn set_limits(&mut self, limits: Limits, now_us: u64) -> HeldRings {
        self.run_timer_until(now_us);
        let answer = self.budget.set_limits(limits, now_us);
        self.handle(answer, now_us);
        answer
    }

    /// Lets the domain timer fire for every expiry up to `now_us`.
    pub(crate) fn run_timer_until(&mut self, now_us: u64) {
        while let Some(expiry_us) = self.timer_us.filter(|&t| t <= now_us) {
            self.timer_us = None;
            let answer = self.budget.advance_to(expiry_us);
            if matches!(answer, HeldRings::Wait { .. }) {
                self.idle_timer_fires += 1;
            }
            self.handle(answer, expiry_us);
        }
        self.check_no_lost_wakeup();
    }

    /// Runs until every ring is empty (backlogged rings never are: do not use with them).
    pub(crate) fn drain(&mut self) {
        for _ in 0..1_000_000 {
            if self.rings.iter().all(|ring| ring.queue.is_empty()) {
                return;
            }
            let expiry_us = self.timer_us.expect("requests wait but no timer is armed");
            self.run_timer_until(expiry_us);
        }
        panic!("rings did not drain");
    }

    pub(crate) fn any_held(&self) -> bool {
        self.rings.iter().any(|ring| ring.held)
    }

    pub(crate) fn queued(&self) -> usize {
        self.rings.iter().map(|ring| ring.queue.len()).sum()
    }

    /// Every ring holds at most once between two kicks (held rings never retry).
    pub(crate) fn holds_per_ring(&self) -> impl Iterator<Item = u64> + '_ {
        self.rings.iter().map(|ring| ring.holds)
    }

    pub(crate) fn arrivals(&self, ring: usize) -> u64 {
        self.rings[ring].next_id
    }

    fn handle(&mut self, answer: HeldRings, now_us: u64) {
        match answer {
            HeldRings::NoneHeld => assert!(!self.any_held(), "budget forgot a held ring"),
            HeldRings::Kick => {
                assert!(self.any_held(), "kick without a held ring");
                self.kicks += 1;
                for ring in self.rings.iter_mut() {
                    ring.held = false;
                }
                for ring in 0..self.rings.len() {
                    self.pump(ring, now_us);
                }
            }
            HeldRings::Wait { retry_at_us } => {
                assert!(self.any_held(), "wait without a held ring");
                self.arm(retry_at_us, now_us);
            }
        }
    }

    fn arm(&mut self, expiry_us: u64, now_us: u64) {
        assert!(expiry_us > now_us, "timer asked for the past: busy waiting");
        self.timer_us = Some(self.timer_us.map_or(expiry_us, |t| t.min(expiry_us)));
    }

    fn pump(&mut self, ring_index: usize, now_us: u64) {
        loop {
            let ring = &mut self.rings[ring_index];
            if ring.held {
                return;
            }
            let Some((id, cost)) = ring.head() else {
                return;
            };
            match self.budget.try_admit(now_us, cost) {
                Admission::Admit => {
                    assert!(self.log.len() < 10_000_000, "a held meter never holds");
                    ring.queue.pop_front();
                    self.log.push(Admitted {
                        time_us: now_us,
                        ring: ring_index,
                        id,
                        cost,
                    });
                }
                Admission::Hold { retry_at_us } => {
                    ring.held = true;
                    ring.holds += 1;
                    self.arm(retry_at_us, now_us);
                    return;
                }
            }
        }
    }

    fn check_no_lost_wakeup(&self) {
        assert!(
            !self.any_held() || self.timer_us.is_some(),
            "a ring is held and no timer will wake it"
        );
        assert_eq!(self.any_held(), self.budget.is_held());
    }
}

/// Operations a request counts as, computed independently of the crate.
pub(crate) fn model_ops(cost: Cost, op_size: u64) -> u64 {
    if op_size == 0 {
        1
    } else {
        cost.bytes.div_ceil(op_size).max(1)
    }
}

/// Credits `cost` takes from `meter`, or 0 if the meter does not see it.
pub(crate) fn model_credits(meter: Meter, cost: Cost, op_size: u64) -> u64 {
    if !meter.applies_to(cost.direction) {
        return 0;
    }
    let units = if meter.counts_bytes() {
        cost.bytes
    } else {
        model_ops(cost, op_size)
    };
    units * CREDITS_PER_UNIT
}

/// What the contract says about one meter in one slice.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SliceLimit {
    /// Credits granted at the start of the slice (0 if unlimited).
    pub(crate) grant: u64,
    /// The bank: most credits the slice may start with.
    pub(crate) cap: u64,
    /// The meter was unlimited during some part of the slice.
    pub(crate) unlimited: bool,
}

/// The limit on `meter` in each of the first `slices` slices, from the limits at creation
/// and every `set_limits(limits, time)` call: a change applies from the next slice, except
/// that a limit set to 0 is lifted at once.
pub(crate) fn slice_limits(
    meter: Meter,
    initial: Limits,
    changes: &[(u64, Limits)],
    config: SliceConfig,
    slices: usize,
) -> Vec<SliceLimit> {
    let mut changes = changes.iter().peekable();
    let mut in_force = initial.get(meter);
    let mut out = Vec::with_capacity(slices);
    for slice in 0..slices as u64 {
        let mut unlimited = in_force == 0;
        let mut next = in_force;
        while let Some(&&(time_us, limits)) = changes.peek() {
            if time_us / config.timeslice_us != slice {
                break;
            }
            changes.next();
            next = limits.get(meter);
            unlimited |= next == 0;
        }
        let grant = in_force * config.timeslice_us;
        out.push(SliceLimit {
            grant,
            cap: grant * (1 + config.burst),
            unlimited,
        });
        in_force = next;
    }
    out
}
