//! The event loop: guests put requests on their rings, the backend admits them through
//! the domain's budget (the real `throttle` crate, driven as the kernel drives it), the
//! disk serves them, and completions let the guests issue more.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap, VecDeque};

use sched::{Charge, FairQueue, FixedWindow, Flow, FlowConfig, Group, GroupWindow, Window, NONE};
use throttle::{Admission, Cost, Direction, DomainBudget, HeldRings, Limits};

use crate::disk::{Disk, DiskRequest};
use crate::report::{DeviceReport, DomainReport, Report, RingReport};
use crate::rng::SplitMix64;
use crate::scenario::{Job, Scenario, Scheduling};

/// Slots of a blkif ring with one page: requests produced and not yet answered.
pub const RING_SLOTS: usize = 32;

/// One guest request, from creation until its response.
#[derive(Clone, Copy, Debug)]
struct Request {
    ring: usize,
    /// Position in the ring's production order, from 0.
    id: u64,
    direction: Direction,
    bytes: u64,
    /// When the guest issued it (it may have waited for a free ring slot).
    issued_us: u64,
    /// When it went on the ring (the backend's latency counts from here).
    produced_us: u64,
    /// When the backend submitted it to the disk.
    submitted_us: u64,
    /// What the scheduler charged it, if it went through the scheduler.
    charge: Option<Charge>,
}

#[derive(Clone, Copy, Debug)]
enum Event {
    JobStart(usize),
    /// A paced job's next request is due.
    Arrival(usize),
    DiskDone(usize),
    /// The domain's timer, armed for `armed_us` (it may fire later).
    Timer {
        domain: usize,
        armed_us: u64,
    },
    SetLimits {
        domain: usize,
        limits: Limits,
    },
}

/// An event at a time; equal times keep their scheduling order.
#[derive(Debug)]
struct Scheduled {
    at_us: u64,
    seq: u64,
    event: Event,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at_us, self.seq) == (other.at_us, other.seq)
    }
}

impl Eq for Scheduled {}

impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Scheduled {
    /// Reversed, so that the max-heap pops the earliest event first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at_us, other.seq).cmp(&(self.at_us, self.seq))
    }
}

/// One vbd: the guest's side of the job and the shared ring.
#[derive(Debug)]
struct Ring {
    job: Job,
    domain: usize,
    rng: SplitMix64,
    /// Issued but waiting in the guest for a free ring slot.
    waiting_for_slot: VecDeque<Request>,
    /// Produced on the ring, not yet consumed by the backend.
    unconsumed: VecDeque<Request>,
    /// Slots taken: produced requests whose responses the guest has not yet taken.
    slots_used: usize,
    /// The backend stopped consuming this ring until its domain's budget kicks it.
    held: bool,
    report: RingReport,
}

#[derive(Debug)]
struct Domain {
    budget: DomainBudget,
    rings: Vec<usize>,
    /// The expiry the domain's timer is armed for, if any.
    timer_us: Option<u64>,
    report: DomainReport,
}

type Queue = FairQueue<Vec<Flow>, Vec<u32>>;

fn new_queue(slots: usize) -> Queue {
    FairQueue::new(vec![Flow::default(); slots], vec![NONE; 4 * slots]).expect("table sizes")
}

/// The scheduler over the disk: one group (the real `sched::Group`), domains at the top
/// level, each domain's rings below (slot = position in `Domain::rings`).
struct Scheduler {
    group: Group<Vec<Flow>, Vec<u32>, Vec<Queue>, GroupWindow>,
    /// Per ring, its slot in its domain's queue.
    vbd_slot: Vec<usize>,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("in_flight", &self.group.in_flight())
            .finish_non_exhaustive()
    }
}

/// A running simulation; build it with [`Simulation::new`] and call [`Simulation::run`].
#[derive(Debug)]
pub struct Simulation {
    now_us: u64,
    seq: u64,
    events: BinaryHeap<Scheduled>,
    rings: Vec<Ring>,
    domains: Vec<Domain>,
    disk: Disk,
    /// Requests at the disk, by tag; freed tags are reused.
    in_flight: Vec<Option<Request>>,
    free_tags: Vec<usize>,
    timer_lateness_us: u64,
    timer_rng: SplitMix64,
    scheduler: Option<Scheduler>,
    device: DeviceReport,
}

impl Simulation {
    /// Sets up `scenario` at time 0.
    pub fn new(scenario: &Scenario) -> Simulation {
        let mut domain_index = HashMap::new();
        let mut domains: Vec<Domain> = Vec::new();
        let domids = scenario
            .limits
            .iter()
            .map(|&(domid, _)| domid)
            .chain(scenario.jobs.iter().map(|job| job.domid));
        for domid in domids {
            domain_index.entry(domid).or_insert_with(|| {
                let limits = scenario
                    .limits
                    .iter()
                    .find(|&&(id, _)| id == domid)
                    .map_or(Limits::UNLIMITED, |&(_, limits)| limits);
                domains.push(Domain {
                    budget: DomainBudget::new(limits, scenario.slice, 0),
                    rings: Vec::new(),
                    timer_us: None,
                    report: DomainReport::new(domid),
                });
                domains.len() - 1
            });
        }
        let mut rings = Vec::new();
        for (index, job) in scenario.jobs.iter().enumerate() {
            let domain = domain_index[&job.domid];
            domains[domain].rings.push(index);
            rings.push(Ring {
                job: *job,
                domain,
                rng: SplitMix64::new(job.seed),
                waiting_for_slot: VecDeque::new(),
                unconsumed: VecDeque::new(),
                slots_used: 0,
                held: false,
                report: RingReport::new(job.domid, index),
            });
        }
        let scheduler = scenario
            .scheduling
            .as_ref()
            .map(|config| Scheduler::new(config, &domains, &rings));
        let mut simulation = Simulation {
            now_us: 0,
            seq: 0,
            events: BinaryHeap::new(),
            rings,
            domains,
            disk: Disk::new(scenario.disk),
            in_flight: Vec::new(),
            free_tags: Vec::new(),
            timer_lateness_us: scenario.timer_lateness_us,
            timer_rng: SplitMix64::new(0x7143),
            scheduler,
            device: DeviceReport::default(),
        };
        for (index, job) in scenario.jobs.iter().enumerate() {
            simulation.schedule(job.start_us, Event::JobStart(index));
        }
        for change in &scenario.changes {
            let domain = domain_index[&change.domid];
            let limits = change.limits;
            simulation.schedule(change.at_us, Event::SetLimits { domain, limits });
        }
        simulation
    }

    /// Runs until every job has ended and every request has completed.
    pub fn run(mut self) -> Report {
        while let Some(Scheduled { at_us, event, .. }) = self.events.pop() {
            self.now_us = at_us;
            match event {
                Event::JobStart(ring) => self.start_job(ring),
                Event::Arrival(ring) => self.arrival(ring),
                Event::DiskDone(tag) => self.disk_done(tag),
                Event::Timer { domain, armed_us } => self.timer(domain, armed_us),
                Event::SetLimits { domain, limits } => {
                    let answer = self.domains[domain].budget.set_limits(limits, self.now_us);
                    self.held_rings(domain, answer);
                }
            }
        }
        self.finish()
    }

    fn schedule(&mut self, at_us: u64, event: Event) {
        self.seq += 1;
        let seq = self.seq;
        self.events.push(Scheduled { at_us, seq, event });
    }

    fn start_job(&mut self, ring: usize) {
        if self.rings[ring].job.pace_us != 0 {
            self.arrival(ring);
            return;
        }
        for _ in 0..self.rings[ring].job.queue_depth {
            self.issue(ring);
        }
        self.notify_backend(ring);
    }

    /// A paced job's request is due: issued unless `queue_depth` are outstanding (then it is
    /// skipped, as fio does not issue beyond its iodepth); the next one is due `pace_us`
    /// later while the job runs.
    fn arrival(&mut self, ring_index: usize) {
        let ring = &self.rings[ring_index];
        let job = ring.job;
        if self.now_us >= job.start_us + job.duration_us {
            return;
        }
        let outstanding = ring.report.issued - ring.report.completed;
        if outstanding < u64::from(job.queue_depth) {
            self.issue(ring_index);
            self.notify_backend(ring_index);
        }
        self.schedule(self.now_us + job.pace_us, Event::Arrival(ring_index));
    }

    /// The guest creates a request and puts it on the ring, or queues it if the ring is full.
    fn issue(&mut self, ring_index: usize) {
        let now_us = self.now_us;
        let ring = &mut self.rings[ring_index];
        let direction = if ring.rng.chance(ring.job.read_percent) {
            Direction::Read
        } else {
            Direction::Write
        };
        let request = Request {
            ring: ring_index,
            id: ring.report.issued,
            direction,
            bytes: ring.job.request_bytes,
            issued_us: now_us,
            produced_us: 0,
            submitted_us: 0,
            charge: None,
        };
        ring.report.issued += 1;
        ring.waiting_for_slot.push_back(request);
        ring.produce(now_us);
    }

    /// The event channel fired: an unheld backend worker consumes what it may (with the
    /// scheduler: the ring becomes a candidate, and the window is filled by its choices).
    fn notify_backend(&mut self, ring: usize) {
        if self.scheduler.is_some() {
            self.update_backlog(ring);
            self.fill_window();
        } else if !self.rings[ring].held {
            self.consume(ring);
        }
    }

    /// Tells the scheduler whether `ring` (and so its domain) has work it may submit.
    fn update_backlog(&mut self, ring_index: usize) {
        let now_ns = self.now_us * 1_000;
        let ring = &self.rings[ring_index];
        let backlogged = !ring.held && !ring.unconsumed.is_empty();
        let domain = ring.domain;
        let Some(scheduler) = self.scheduler.as_mut() else {
            return;
        };
        let slot = scheduler.vbd_slot[ring_index];
        scheduler
            .group
            .set_backlogged(domain, slot, backlogged, now_ns);
    }

    /// While the window has room: the scheduler picks a domain and within it a vbd, whose
    /// head request is submitted if the domain's budget admits it (else the ring is held
    /// by its limit and the scheduler picks again).
    fn fill_window(&mut self) {
        loop {
            let now_us = self.now_us;
            let now_ns = now_us * 1_000;
            let Some(scheduler) = self.scheduler.as_mut() else {
                return;
            };
            scheduler.group.update_hold(now_ns);
            let Some(pick) = scheduler.group.pick(now_ns) else {
                return;
            };
            if !scheduler.group.may_dispatch(pick.domain, now_ns) {
                return;
            }
            let domain = pick.domain;
            let ring_index = self.domains[domain].rings[pick.vbd];
            let ring = &mut self.rings[ring_index];
            let Some(&request) = ring.unconsumed.front() else {
                self.update_backlog(ring_index);
                continue;
            };
            let cost = Cost {
                direction: request.direction,
                bytes: request.bytes,
            };
            match self.domains[domain].budget.try_admit(now_us, cost) {
                Admission::Admit => {
                    ring.unconsumed.pop_front();
                    ring.report.record_consumed(request.id);
                    let scheduler = self.scheduler.as_mut().expect("scheduler");
                    let charge =
                        scheduler
                            .group
                            .dispatch(domain, pick.vbd, 1, request.bytes, now_ns);
                    self.submit_to_disk(Request {
                        charge: Some(charge),
                        ..request
                    });
                }
                Admission::Hold { retry_at_us } => {
                    ring.held = true;
                    self.arm_timer(domain, retry_at_us);
                }
            }
            self.update_backlog(ring_index);
        }
    }

    /// The backend worker: consumes the ring while the domain's budget admits its head.
    fn consume(&mut self, ring: usize) {
        while self.consume_one(ring) {}
    }

    /// Several workers woken together: they take the domain's lock once per request, so
    /// their consumption interleaves; modelled as round robin, one request each.
    fn consume_interleaved(&mut self, mut rings: Vec<usize>) {
        while !rings.is_empty() {
            rings.retain(|&ring| self.consume_one(ring));
        }
    }

    /// Admission before consumption, in ring order. Returns whether the worker may go on.
    fn consume_one(&mut self, ring_index: usize) -> bool {
        let now_us = self.now_us;
        let ring = &mut self.rings[ring_index];
        let Some(&request) = ring.unconsumed.front() else {
            return false;
        };
        let domain = &mut self.domains[ring.domain];
        let cost = Cost {
            direction: request.direction,
            bytes: request.bytes,
        };
        match domain.budget.try_admit(now_us, cost) {
            Admission::Admit => {
                ring.unconsumed.pop_front();
                ring.report.record_consumed(request.id);
                self.submit_to_disk(request);
                true
            }
            Admission::Hold { retry_at_us } => {
                ring.held = true;
                let domain = ring.domain;
                self.arm_timer(domain, retry_at_us);
                false
            }
        }
    }

    fn submit_to_disk(&mut self, mut request: Request) {
        request.submitted_us = self.now_us;
        let tag = match self.free_tags.pop() {
            Some(tag) => {
                self.in_flight[tag] = Some(request);
                tag
            }
            None => {
                self.in_flight.push(Some(request));
                self.in_flight.len() - 1
            }
        };
        let bytes = request.bytes;
        if let Some((started, service_us)) = self.disk.submit(DiskRequest { tag, bytes }) {
            self.schedule(self.now_us + service_us, Event::DiskDone(started.tag));
        }
    }

    fn disk_done(&mut self, tag: usize) {
        if let Some((started, service_us)) = self.disk.complete() {
            self.schedule(self.now_us + service_us, Event::DiskDone(started.tag));
        }
        let request = self.in_flight[tag]
            .take()
            .expect("completion of a request in flight");
        self.free_tags.push(tag);
        if let Some(scheduler) = self.scheduler.as_mut() {
            let service_us = self.now_us.saturating_sub(request.submitted_us);
            let charge = request.charge.unwrap_or(Charge::unprotected(1));
            let latency_us = self.now_us.saturating_sub(request.produced_us);
            scheduler
                .group
                .complete(charge, service_us, latency_us, self.now_us);
            let window = scheduler.group.window().limit();
            let cap = scheduler.group.protection().cap();
            self.device.record(self.now_us, service_us, window, cap);
        }
        let now_us = self.now_us;
        let ring = &mut self.rings[request.ring];
        ring.slots_used -= 1;
        ring.report.completed += 1;
        let domain = &mut self.domains[ring.domain];
        domain
            .report
            .record_completion(now_us, request.bytes, now_us - request.issued_us);
        // Closed loop: the guest replaces the completed request while its job runs (a paced
        // job issues on its own clock).
        if ring.job.pace_us == 0 && now_us < ring.job.start_us + ring.job.duration_us {
            self.issue(request.ring);
        } else {
            ring.produce(now_us);
        }
        self.notify_backend(request.ring);
    }

    /// Makes the domain's timer fire no later than `at_us` (plus the modelled lateness).
    fn arm_timer(&mut self, domain: usize, at_us: u64) {
        assert!(
            at_us > self.now_us,
            "the budget asked for a timer in the past"
        );
        let timer = &mut self.domains[domain].timer_us;
        let earlier = match *timer {
            Some(armed) => at_us < armed,
            None => true,
        };
        if earlier {
            *timer = Some(at_us);
            let late_us = self.timer_rng.next_u64() % (self.timer_lateness_us + 1);
            let armed_us = at_us;
            self.schedule(at_us + late_us, Event::Timer { domain, armed_us });
        }
    }

    fn timer(&mut self, domain: usize, armed_us: u64) {
        if self.domains[domain].timer_us != Some(armed_us) {
            return; // re-armed for an earlier expiry since this one was scheduled
        }
        self.domains[domain].timer_us = None;
        let answer = self.domains[domain].budget.advance_to(self.now_us);
        self.held_rings(domain, answer);
    }

    fn held_rings(&mut self, domain: usize, answer: HeldRings) {
        match answer {
            HeldRings::NoneHeld => {}
            HeldRings::Kick => {
                let mut kicked = Vec::new();
                for &ring in &self.domains[domain].rings {
                    if std::mem::take(&mut self.rings[ring].held) {
                        kicked.push(ring);
                    }
                }
                if self.scheduler.is_some() {
                    for ring in kicked {
                        self.update_backlog(ring);
                    }
                    self.fill_window();
                } else {
                    self.consume_interleaved(kicked);
                }
            }
            HeldRings::Wait { retry_at_us } => self.arm_timer(domain, retry_at_us),
        }
    }

    fn finish(self) -> Report {
        let end_us = self.now_us;
        let rings = self
            .rings
            .into_iter()
            .map(|ring| {
                let mut report = ring.report;
                report.left_on_ring = ring.unconsumed.len() as u64;
                report.left_in_guest = ring.waiting_for_slot.len() as u64;
                report
            })
            .collect();
        let domains = self
            .domains
            .into_iter()
            .map(|domain| {
                let mut report = domain.report;
                report.stats = domain.budget.stats(end_us);
                report
            })
            .collect();
        Report {
            end_us,
            device: self.device,
            domains,
            rings,
        }
    }
}

impl Ring {
    /// Moves requests waiting in the guest onto the ring while slots are free.
    fn produce(&mut self, now_us: u64) {
        while self.slots_used < RING_SLOTS {
            let Some(mut request) = self.waiting_for_slot.pop_front() else {
                return;
            };
            request.produced_us = now_us;
            self.slots_used += 1;
            self.unconsumed.push_back(request);
        }
    }
}

impl Scheduler {
    fn new(config: &Scheduling, domains: &[Domain], rings: &[Ring]) -> Scheduler {
        let mut top = new_queue(domains.len());
        let mut vbds = Vec::new();
        let mut vbd_slot = vec![0; rings.len()];
        for (index, domain) in domains.iter().enumerate() {
            let flow = config
                .domains
                .iter()
                .find(|&&(domid, _)| domid == domain.report.domid)
                .map_or(FlowConfig::default(), |&(_, flow)| flow);
            assert!(top.configure(index, flow), "invalid domain flow {flow:?}");
            let mut queue = new_queue(domain.rings.len());
            for (slot, &ring) in domain.rings.iter().enumerate() {
                let weight = config
                    .vbd_weights
                    .iter()
                    .find(|&&(job, _)| job == ring)
                    .map_or(100, |&(_, weight)| weight);
                let flow = FlowConfig {
                    weight,
                    ..FlowConfig::default()
                };
                assert!(queue.configure(slot, flow), "invalid vbd weight {weight}");
                vbd_slot[ring] = slot;
            }
            vbds.push(queue);
        }
        let fixed = FixedWindow::new(config.window).expect("window in 1..=4096");
        // As the module's groups start.
        let window =
            GroupWindow::new(fixed, config.latency_target_us).expect("valid latency target");
        Scheduler {
            group: Group::new(top, vbds, window).expect("one vbd queue per domain"),
            vbd_slot,
        }
    }
}
