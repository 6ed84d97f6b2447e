//! One level of the scheduler: start-time fair queueing by weight, reservations first.

use super::storage::Storage;
use super::tag::{before, later, ExactStep, SHARE_SCALE};
use super::target::MAX_TARGET_US;
use super::tree;

/// The smallest weight.
pub const MIN_WEIGHT: u32 = 1;
/// The largest weight: 10^4, so `cost * SHARE_SCALE` over any weight keeps a step of at
/// least 2^20 / 10^4 = 104 units per cost unit (ties between weights stay distinguishable).
pub const MAX_WEIGHT: u32 = 10_000;

const NS_PER_S: u64 = 1_000_000_000;

/// What an operator sets for a flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowConfig {
    /// Share of the contended device, relative to the other flows of the level.
    pub weight: u32,
    /// Guaranteed requests per second (0: none).
    pub reservation_iops: u64,
    /// Guaranteed bytes per second (0: none).
    pub reservation_bps: u64,
    /// The latency the flow is protected to (µs, 0: not protected; see
    /// [`super::Protection`]). Meaningful at the domain level of a group.
    pub latency_target_us: u64,
}

impl Default for FlowConfig {
    fn default() -> Self {
        Self {
            weight: 100,
            reservation_iops: 0,
            reservation_bps: 0,
            latency_target_us: 0,
        }
    }
}

impl FlowConfig {
    /// Whether the values are in range (weight 1..=10000; reservations below 2^32
    /// requests and at most 2^40 bytes per second, far above any device, so the
    /// reservation steps cannot overflow), a latency target at most [`MAX_TARGET_US`].
    pub fn is_valid(&self) -> bool {
        (MIN_WEIGHT..=MAX_WEIGHT).contains(&self.weight)
            && self.reservation_iops < 1 << 32
            && self.reservation_bps <= 1 << 40
            && self.latency_target_us <= MAX_TARGET_US
    }

    fn reserves(&self) -> bool {
        self.reservation_iops != 0 || self.reservation_bps != 0
    }
}

/// Why a flow got its request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// It was behind its reservation: served first, not charged against its weight.
    Reservation,
    /// By weight.
    Share,
}

/// The scheduler's choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pick {
    /// The flow's slot.
    pub slot: usize,
    /// Why.
    pub phase: Phase,
}

/// One flow's scheduling state (a slot of a [`FairQueue`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct Flow {
    config: FlowConfig,
    in_use: bool,
    backlogged: bool,
    /// Share tag of the flow's next request (its previous request's finish tag), in
    /// wrapping virtual time; meaningful while backlogged.
    start: u64,
    /// While idle: how far the finish tag of its last request was ahead of the queue's
    /// virtual time when it went idle. Kept instead of the tag itself so that an idle
    /// flow's tag cannot fall so far behind that wrapping comparison breaks.
    lead: u64,
    share_step: ExactStep,
    /// Reservation tag: the time (ns) by which the flow is owed its next request.
    reserve_ns: u64,
    iops_step: ExactStep,
    bps_step: ExactStep,
    /// Cost units dispatched in each phase (counters for sysfs).
    served_reserved: u64,
    served_shared: u64,
}

/// Start-time fair queueing over the flows of one level, with reservation tags.
///
/// Share tags: a backlogged flow's next request has start tag `S`; dispatching it in the
/// share phase advances `S` by `cost * SHARE_SCALE / weight` (exactly, remainders
/// carried) and the queue's virtual time `v` to at least the old `S`. The flow with the
/// smallest `S` is chosen. A flow that becomes backlogged starts at `v` plus at most what
/// it still owed when it went idle, never below: idleness earns no credit.
///
/// Reservation tags (mClock): a flow with a reservation has tag `R`, the time its next
/// request is due; every dispatch, in either phase, advances `R` by `max(1 s / iops,
/// bytes / bps)`, and a flow that becomes backlogged sets `R = max(R, now)`. A backlogged
/// flow with `R <= now` is chosen before any share-phase choice (the smallest `R` first),
/// and that request does not advance its share tag. So a reservation is a floor: a flow
/// gets its weighted share or its reservation, whichever is more, and reserved service
/// is not taken out of its weight a second time.
///
/// `S` holds the flows (one per slot), `T` the two tournament trees (`4 * slots`
/// entries). Every operation is O(log n) and allocation-free.
pub struct FairQueue<S: Storage<Flow>, T: Storage<u32>> {
    flows: S,
    trees: T,
    vtime: u64,
    /// Flows backlogged now.
    backlogged: usize,
}

impl<S: Storage<Flow>, T: Storage<u32>> core::fmt::Debug for FairQueue<S, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FairQueue")
            .field("capacity", &self.capacity())
            .field("virtual_time", &self.vtime)
            .finish_non_exhaustive()
    }
}

impl<S: Storage<Flow>, T: Storage<u32>> FairQueue<S, T> {
    /// A queue over `flows.len()` slots, all unused. `None` unless `trees` has exactly
    /// four entries per slot and there are fewer than `u32::MAX` slots.
    pub fn new(mut flows: S, mut trees: T) -> Option<Self> {
        let n = flows.slots().len();
        if trees.slots().len() != 4 * n || n >= tree::NONE as usize {
            return None;
        }
        flows
            .slots_mut()
            .iter_mut()
            .for_each(|f| *f = Flow::default());
        tree::clear(trees.slots_mut());
        Some(Self {
            flows,
            trees,
            vtime: 0,
            backlogged: 0,
        })
    }

    /// Number of slots.
    pub fn capacity(&self) -> usize {
        self.flows.slots().len()
    }

    /// The queue's virtual time.
    pub fn virtual_time(&self) -> u64 {
        self.vtime
    }

    /// Puts a flow in `slot` (or changes its configuration). `false` (and nothing
    /// changes) for an invalid configuration or slot. A changed rate restarts the exact
    /// division; the tags stay, so a change neither rewards nor punishes the flow.
    pub fn configure(&mut self, slot: usize, config: FlowConfig) -> bool {
        if !config.is_valid() {
            return false;
        }
        let Some(flow) = self.flows.slots_mut().get_mut(slot) else {
            return false;
        };
        if !flow.in_use {
            *flow = Flow {
                in_use: true,
                ..Flow::default()
            };
        }
        if flow.config.weight != config.weight {
            flow.share_step.reset();
        }
        if flow.config.reservation_iops != config.reservation_iops
            || flow.config.reservation_bps != config.reservation_bps
        {
            flow.iops_step.reset();
            flow.bps_step.reset();
        }
        flow.config = config;
        self.refresh(slot);
        true
    }

    /// Empties `slot`.
    pub fn remove(&mut self, slot: usize) {
        if let Some(flow) = self.flows.slots_mut().get_mut(slot) {
            if flow.backlogged {
                self.backlogged -= 1;
            }
            *flow = Flow::default();
            self.refresh(slot);
        }
    }

    /// The flow's configuration, if the slot is in use.
    pub fn config(&self, slot: usize) -> Option<FlowConfig> {
        self.flows
            .slots()
            .get(slot)
            .filter(|f| f.in_use)
            .map(|f| f.config)
    }

    /// Whether the flow has work it may submit (its ring has requests and no limit holds
    /// it).
    pub fn is_backlogged(&self, slot: usize) -> bool {
        self.flows.slots().get(slot).is_some_and(|f| f.backlogged)
    }

    /// Cost units dispatched to the flow, in the reservation and the share phase.
    pub fn served(&self, slot: usize) -> (u64, u64) {
        self.flows
            .slots()
            .get(slot)
            .map_or((0, 0), |f| (f.served_reserved, f.served_shared))
    }

    /// The flow has work (`true`) or none (`false`) at time `now_ns`.
    pub fn set_backlogged(&mut self, slot: usize, backlogged: bool, now_ns: u64) {
        let vtime = self.vtime;
        let Some(flow) = self.flows.slots_mut().get_mut(slot) else {
            return;
        };
        if !flow.in_use || flow.backlogged == backlogged {
            return;
        }
        if backlogged {
            flow.start = vtime.wrapping_add(flow.lead);
            flow.lead = 0;
            flow.reserve_ns = flow.reserve_ns.max(now_ns);
        } else {
            flow.lead = if before(vtime, flow.start) {
                flow.start.wrapping_sub(vtime)
            } else {
                0
            };
        }
        flow.backlogged = backlogged;
        if backlogged {
            self.backlogged += 1;
        } else {
            self.backlogged -= 1;
        }
        self.refresh(slot);
    }

    /// Whether any flow is backlogged.
    pub fn any_backlogged(&self) -> bool {
        self.backlogged != 0
    }

    /// The flow that should get the next request at `now_ns`, if any is backlogged: the
    /// most overdue reservation, else the smallest share tag.
    pub fn pick(&self, now_ns: u64) -> Option<Pick> {
        let trees = self.trees.slots();
        let (share_tree, reserve_tree) = trees.split_at(trees.len() / 2);
        let flows = self.flows.slots();
        if let Some(slot) = tree::best(reserve_tree) {
            if flows[slot].reserve_ns <= now_ns {
                return Some(Pick {
                    slot,
                    phase: Phase::Reservation,
                });
            }
        }
        tree::best(share_tree).map(|slot| Pick {
            slot,
            phase: Phase::Share,
        })
    }

    /// The phase a request of `slot` dispatched now would be charged in.
    pub fn phase_at(&self, slot: usize, now_ns: u64) -> Phase {
        match self.flows.slots().get(slot) {
            Some(f) if f.config.reserves() && f.reserve_ns <= now_ns => Phase::Reservation,
            _ => Phase::Share,
        }
    }

    /// A request of `cost` units and `bytes` bytes of `slot` was dispatched at `now_ns`
    /// (chosen by [`FairQueue::pick`], or at once because the window had room). A flow not
    /// marked backlogged becomes so first. Returns the phase it was charged in.
    pub fn dispatch(&mut self, slot: usize, cost: u32, bytes: u64, now_ns: u64) -> Phase {
        if !self.flows.slots().get(slot).is_some_and(|f| f.in_use) {
            return Phase::Share;
        }
        self.set_backlogged(slot, true, now_ns);
        let phase = self.phase_at(slot, now_ns);
        let mut vtime = self.vtime;
        let flow = &mut self.flows.slots_mut()[slot];
        let cost = u64::from(cost.max(1));
        match phase {
            Phase::Share => {
                vtime = later(vtime, flow.start);
                let step = flow
                    .share_step
                    .advance(cost * SHARE_SCALE, u64::from(flow.config.weight));
                flow.start = flow.start.wrapping_add(step);
                flow.served_shared = flow.served_shared.saturating_add(cost);
            }
            Phase::Reservation => {
                flow.served_reserved = flow.served_reserved.saturating_add(cost);
            }
        }
        if flow.config.reserves() {
            let by_ops = if flow.config.reservation_iops != 0 {
                flow.iops_step
                    .advance(NS_PER_S, flow.config.reservation_iops)
            } else {
                0
            };
            let by_bytes = if flow.config.reservation_bps != 0 {
                // Requests are at most a few MiB: `bytes * 10^9` fits in 64 bits.
                let bytes = bytes.min(1 << 32);
                flow.bps_step
                    .advance(bytes * NS_PER_S, flow.config.reservation_bps)
            } else {
                0
            };
            flow.reserve_ns = flow.reserve_ns.saturating_add(by_ops.max(by_bytes));
        }
        self.vtime = vtime;
        self.refresh(slot);
        phase
    }

    /// Moves the virtual time (tests: wrapping).
    #[cfg(test)]
    pub(crate) fn force_virtual_time(&mut self, vtime: u64) {
        self.vtime = vtime;
    }

    /// Recomputes `slot`'s leaves in both trees.
    fn refresh(&mut self, slot: usize) {
        let flows = self.flows.slots();
        let trees = self.trees.slots_mut();
        let half = trees.len() / 2;
        let (share_tree, reserve_tree) = trees.split_at_mut(half);
        let Some(flow) = flows.get(slot) else {
            return;
        };
        let eligible = flow.in_use && flow.backlogged;
        tree::update(share_tree, slot, eligible, |a, b| {
            let (fa, fb) = (&flows[a as usize], &flows[b as usize]);
            before(fa.start, fb.start) || (fa.start == fb.start && a < b)
        });
        tree::update(
            reserve_tree,
            slot,
            eligible && flow.config.reserves(),
            |a, b| {
                let (fa, fb) = (&flows[a as usize], &flows[b as usize]);
                (fa.reserve_ns, a) < (fb.reserve_ns, b)
            },
        );
    }
}
