// SPDX-License-Identifier: GPL-2.0

//! Per-domain I/O limits: the registry of domains, each with one budget shared by all of
//! its vbds and rings, and the sysfs interface under `/sys/module/rblkback/domains/`.
//!
//! A ring asks its domain before it takes each request off the ring ([`Domain::admit`]).
//! When the budget is spent the ring is marked held and arms its own timer for the time
//! the budget says to retry; the timer kicks the ring's worker, which asks again, and that
//! retry brings the budget's clock up to date and ends the held period. A limit
//! change kicks every held ring of the domain, so it takes effect at the next slice
//! boundary (or at once when the domain becomes unlimited). The accounting itself is the
//! shared `throttle` crate.

use super::sched::{flow_config, Groups};
use crate::sched::FlowConfig;
use crate::sys::ctldir::ControlFiles;
use crate::sys::domains::{DomainAttr, DomainDir, DomainsHandler};
use crate::sys::params;
use crate::sys::time::monotonic_us;
use crate::sys::worker::WorkerRef;
use crate::throttle::control::{
    meter_key, parse_limit_value, parse_limits_line, parse_share_value, LimitsCommand, Overrides,
    ShareKey, Shares,
};
use crate::throttle::log_limit::{LogLimiter, LogVerdict, DEFAULT_BURST, DEFAULT_INTERVAL_US};
use crate::throttle::params::Param;
use crate::throttle::{Admission, Cost, DomainBudget, HeldRings, Limits, Meter, SliceConfig};
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use kernel::new_mutex;
use kernel::prelude::*;
use kernel::sync::{Arc, Mutex};

/// Puts `entry` in the first free slot of `slots`, or a new one at the end: the registries
/// (domains, groups, a domain's rings) leave a `None` where an entry went, as `KVec` cannot
/// remove.
pub(crate) fn put_in_free_slot<T>(slots: &mut KVec<Option<T>>, entry: T) -> Result {
    match slots.iter_mut().find(|s| s.is_none()) {
        Some(free) => *free = Some(entry),
        None => slots.push(Some(entry), GFP_KERNEL)?,
    }
    Ok(())
}

/// The limits and slice configuration a domain gets from the module parameters.
fn defaults() -> (Limits, SliceConfig) {
    let mut limits = Limits::UNLIMITED;
    limits.iops = params::get(Param::DefaultIops);
    limits.bps = params::get(Param::DefaultBps);
    let config = SliceConfig {
        timeslice_us: params::get(Param::TimesliceUs),
        burst: params::get(Param::Burst),
        op_size: params::get(Param::OpSize),
    };
    (limits.clamped(), config.clamped())
}

/// A ring of this domain, as far as throttling is concerned.
struct RingEntry {
    id: u64,
    worker: WorkerRef,
    held: bool,
}

struct DomainState {
    budget: DomainBudget,
    /// The module's default limits as they were when the domain was first seen: what its
    /// limits are without overrides (the user guide's contract; later changes of
    /// `default_iops`/`default_bps` apply to domains seen after them).
    defaults: Limits,
    /// `default_weight` as it was when the domain was first seen (likewise).
    default_weight: u64,
    overrides: Overrides,
    /// Attached rings; a detached ring leaves a `None` for the next one to reuse.
    rings: KVec<Option<RingEntry>>,
    /// Log lines about this domain's frontends, shared by its rings and kept across
    /// reconnects, so a guest cannot flood dom0's log.
    log: LogLimiter,
}

/// One guest domain's budget, shared by all its vbds and rings, and its scheduler
/// settings.
#[pin_data]
pub struct Domain {
    domid: u16,
    /// Told when the scheduler settings change.
    groups: Arc<Groups>,
    /// Requests of the domain the scheduler let through (all its vbds).
    pub sched_dispatched: AtomicU64,
    /// Times a ring of the domain stopped because the scheduler chose another vbd.
    pub sched_holds: AtomicU64,
    #[pin]
    state: Mutex<DomainState>,
}

impl Domain {
    fn new(domid: u16, groups: Arc<Groups>) -> Result<Arc<Self>> {
        let (limits, config) = defaults();
        let now = monotonic_us();
        let state = DomainState {
            budget: DomainBudget::new(limits, config, now),
            defaults: limits,
            default_weight: params::get(Param::DefaultWeight),
            overrides: Overrides::default(),
            rings: KVec::new(),
            log: LogLimiter::new(DEFAULT_BURST, DEFAULT_INTERVAL_US, now),
        };
        Arc::pin_init(
            pin_init!(Domain {
                domid,
                groups,
                sched_dispatched: AtomicU64::new(0),
                sched_holds: AtomicU64::new(0),
                state <- new_mutex!(state, "rblkback::Domain::state"),
            }),
            GFP_KERNEL,
        )
    }

    /// The domain id.
    pub fn domid(&self) -> u16 {
        self.domid
    }

    /// Whether a line about this domain's frontend may be logged now: `Some(n)` if so, `n`
    /// lines having been suppressed since the last one printed.
    pub fn may_log(&self) -> Option<u32> {
        match self.state.lock().log.check(monotonic_us()) {
            LogVerdict::Print { suppressed } => Some(suppressed),
            LogVerdict::Suppress => None,
        }
    }

    /// Registers a ring; its worker is kicked when a limit change may release it.
    pub fn attach_ring(&self, id: u64, worker: WorkerRef) -> Result {
        let mut st = self.state.lock();
        let entry = RingEntry {
            id,
            worker,
            held: false,
        };
        put_in_free_slot(&mut st.rings, entry)?;
        Ok(())
    }

    /// Forgets a ring (it disconnects).
    pub fn detach_ring(&self, id: u64) {
        let mut st = self.state.lock();
        for slot in st.rings.iter_mut() {
            if slot.as_ref().is_some_and(|r| r.id == id) {
                *slot = None;
            }
        }
        if !st.rings.iter().flatten().any(|r| r.held) {
            st.budget.clear_held(monotonic_us());
        }
    }

    /// Asks whether ring `id` may take a request of `cost` off its ring at `now_us`
    /// (`monotonic_us`, read by the caller).
    ///
    /// Each held ring's own timer wakes its worker, which retries through here; the retry
    /// that finds the held requests may go on ends the domain's held period (so the
    /// held-time counters stop there instead of running on) and kicks the other held rings
    /// to retry too (`DomainBudget::try_admit_and_release`).
    pub fn admit(&self, id: u64, cost: Cost, now_us: u64) -> Admission {
        let mut st = self.state.lock();
        let (released, admission) = st.budget.try_admit_and_release(now_us, cost);
        if released == HeldRings::Kick {
            for ring in st.rings.iter_mut().flatten() {
                if ring.held && ring.id != id {
                    ring.worker.kick();
                }
                ring.held = false;
            }
        }
        let held = matches!(admission, Admission::Hold { .. });
        if let Some(ring) = st.rings.iter_mut().flatten().find(|r| r.id == id) {
            ring.held = held;
        }
        admission
    }

    /// [`Domain::admit`] for a request that must also fit `pools` (a vbd's own limit, its
    /// group's pool; `None` for none). Each limited pool is asked first, in order, and held
    /// the request if it would not admit it (its retry time is the answer); then the
    /// domain's budget decides; only a request all of them admit is charged to the pools.
    /// Locks: the pools in order, then the domain.
    pub fn admit_within(
        &self,
        id: u64,
        cost: Cost,
        now_us: u64,
        pools: [Option<&PoolLimit>; 2],
    ) -> Admission {
        let mut guards = [None, None];
        for (guard, pool) in guards.iter_mut().zip(pools) {
            let Some(pool) = pool.filter(|p| p.limited.load(Ordering::Relaxed)) else {
                continue;
            };
            let mut budget = pool.budget.lock();
            if !budget.would_admit(now_us, cost) {
                let (_, admission) = budget.try_admit_and_release(now_us, cost);
                return admission;
            }
            *guard = Some(budget);
        }
        let admission = self.admit(id, cost, now_us);
        if admission == Admission::Admit {
            for budget in guards.iter_mut().flatten() {
                budget.charge(now_us, cost);
            }
        }
        admission
    }

    /// Applies new overrides: the limits change at the next slice boundary (at once if the
    /// domain becomes unlimited), and every held ring is kicked to re-evaluate; the
    /// scheduler settings change at once in every group the domain is in.
    fn apply(&self, change: impl FnOnce(&mut Overrides)) {
        let now = monotonic_us();
        let config = {
            let mut st = self.state.lock();
            let before = st.overrides.shares_over(st.default_weight);
            change(&mut st.overrides);
            let limits = st.overrides.apply_to(st.defaults);
            let _ = st.budget.set_limits(limits, now);
            for ring in st.rings.iter().flatten().filter(|r| r.held) {
                ring.worker.kick();
            }
            let after = st.overrides.shares_over(st.default_weight);
            (after != before).then_some(flow_config(after))
        };
        // Not under the domain's lock: the groups' locks come first (see `sched`).
        if let Some(config) = config {
            self.groups.configure_domain(self.domid, config);
        }
    }

    /// The scheduler settings in force.
    pub fn shares(&self) -> Shares {
        let st = self.state.lock();
        st.overrides.shares_over(st.default_weight)
    }

    /// The scheduler settings in force, as the scheduler takes them.
    pub fn flow_config(&self) -> FlowConfig {
        flow_config(self.shares())
    }

    fn effective_limit(&self, meter: Meter) -> u64 {
        let st = self.state.lock();
        st.budget
            .pending_limits()
            .unwrap_or_else(|| st.budget.limits())
            .get(meter)
    }
}

/// A limit beside a domain's own that a request must also fit: a vbd's own limit inside its
/// domain's, or a pool's shared by the vbds of a named scheduling group (a tenant's
/// domains). Unlimited until a limit is set; then asked before the domain's budget and
/// charged with it ([`Domain::admit_within`]).
#[pin_data]
pub struct PoolLimit {
    /// Whether any meter is limited (else the budget is skipped without its lock).
    limited: AtomicBool,
    #[pin]
    budget: Mutex<DomainBudget>,
}

impl PoolLimit {
    /// No limit yet; slices as the module parameters say now.
    pub fn new() -> Result<Arc<Self>> {
        let (_, config) = defaults();
        Arc::pin_init(
            pin_init!(PoolLimit {
                limited: AtomicBool::new(false),
                budget <- new_mutex!(
                    DomainBudget::new(Limits::UNLIMITED, config, monotonic_us()),
                    "rblkback::PoolLimit::budget"
                ),
            }),
            GFP_KERNEL,
        )
    }

    /// The limit of `meter` in force (or from the next slice boundary), 0 for none.
    pub fn get(&self, meter: Meter) -> u64 {
        let budget = self.budget.lock();
        budget
            .pending_limits()
            .unwrap_or_else(|| budget.limits())
            .get(meter)
    }

    /// Sets the limit of `meter` (0 for none) from the next slice boundary.
    pub fn set(&self, meter: Meter, value: u64) {
        let mut budget = self.budget.lock();
        let mut limits = budget.pending_limits().unwrap_or_else(|| budget.limits());
        limits.set(meter, value);
        let _ = budget.set_limits(limits, monotonic_us());
        self.limited
            .store(!limits.is_unlimited(), Ordering::Relaxed);
    }

    /// Requests admitted through this limit.
    pub fn admitted_requests(&self) -> u64 {
        self.budget.lock().stats(monotonic_us()).admitted_requests
    }
}

/// Logs a warning about a domain's frontend (vbd `devid`), within the domain's log rate
/// limit, saying how many lines the limit dropped before it.
pub fn log_about_domain(domain: &Domain, devid: u32, what: core::fmt::Arguments<'_>) {
    if let Some(suppressed) = domain.may_log() {
        if suppressed > 0 {
            pr_warn!(
                "domain {} vbd {}: {} ({} earlier lines about this domain suppressed)\n",
                domain.domid(),
                devid,
                what,
                suppressed
            );
        } else {
            pr_warn!("domain {} vbd {}: {}\n", domain.domid(), devid, what);
        }
    }
}

/// The meter of a limit file; `None` for the counters.
fn limit_meter(attr: DomainAttr) -> Option<Meter> {
    Some(match attr {
        DomainAttr::IopsLimit => Meter::Ops,
        DomainAttr::BpsLimit => Meter::Bytes,
        DomainAttr::ReadIopsLimit => Meter::ReadOps,
        DomainAttr::WriteIopsLimit => Meter::WriteOps,
        DomainAttr::ReadBpsLimit => Meter::ReadBytes,
        DomainAttr::WriteBpsLimit => Meter::WriteBytes,
        _ => return None,
    })
}

/// The scheduler setting of a file; `None` for the others.
fn share_key(attr: DomainAttr) -> Option<ShareKey> {
    Some(match attr {
        DomainAttr::Weight => ShareKey::Weight,
        DomainAttr::ReservationIops => ShareKey::ReservationIops,
        DomainAttr::ReservationBps => ShareKey::ReservationBps,
        DomainAttr::LatencyTargetUs => ShareKey::LatencyTargetUs,
        _ => return None,
    })
}

impl ControlFiles for Domain {
    type File = DomainAttr;

    fn file(raw: u32) -> Option<DomainAttr> {
        DomainAttr::from_raw(raw)
    }

    fn show(&self, attr: DomainAttr) -> u64 {
        if let Some(meter) = limit_meter(attr) {
            return self.effective_limit(meter);
        }
        if let Some(key) = share_key(attr) {
            return self.shares().get(key);
        }
        match attr {
            DomainAttr::SchedDispatched => return self.sched_dispatched.load(Ordering::Relaxed),
            DomainAttr::SchedHolds => return self.sched_holds.load(Ordering::Relaxed),
            _ => {}
        }
        let st = self.state.lock();
        let stats = st.budget.stats(monotonic_us());
        let rings = st.rings.iter().flatten().count() as u64;
        drop(st);
        match attr {
            DomainAttr::AdmittedOps => stats.admitted_ops,
            DomainAttr::AdmittedBytes => stats.admitted_bytes,
            DomainAttr::ThrottledSlices => stats.throttled_slices,
            DomainAttr::ThrottledUs => stats.throttled_us,
            DomainAttr::AdmittedRequests => stats.admitted_requests,
            DomainAttr::Holds => stats.holds,
            DomainAttr::Rings => rings,
            // The limits, answered above.
            _ => 0,
        }
    }

    fn store(&self, attr: DomainAttr, input: &[u8]) -> Result {
        if let Some(key) = share_key(attr) {
            let value = parse_share_value(key, input).map_err(|_| EINVAL)?;
            self.apply(|o| o.set_share(key, Some(value)));
            pr_info!("domain {}: {}={}\n", self.domid, key.key(), value);
            return Ok(());
        }
        let meter = limit_meter(attr).ok_or(EINVAL)?;
        let value = parse_limit_value(meter, input).map_err(|_| EINVAL)?;
        self.apply(|o| o.set(meter, Some(value)));
        pr_info!(
            "domain {}: {}_limit={}\n",
            self.domid,
            meter_key(meter),
            value
        );
        Ok(())
    }
}

struct DomainEntry {
    domain: Arc<Domain>,
    /// Probed vbds of this domain; when the last one is removed the entry goes.
    vbds: u32,
    _dir: Option<DomainDir<Domain>>,
}

#[derive(Default)]
struct Registry {
    /// A removed domain leaves a `None` for the next one to reuse (`KVec` cannot remove).
    entries: KVec<Option<DomainEntry>>,
    /// Set at unload: no new sysfs directories.
    closed: bool,
}

/// Every domain rblkback knows: connected ones and those given limits in advance.
#[pin_data]
pub struct Domains {
    /// The scheduling groups, which domains tell of their settings.
    groups: Arc<Groups>,
    #[pin]
    registry: Mutex<Registry>,
}

impl Domains {
    /// An empty registry.
    pub fn new(groups: Arc<Groups>) -> Result<Arc<Self>> {
        Arc::pin_init(
            pin_init!(Domains {
                groups,
                registry <- new_mutex!(Registry::default(), "rblkback::Domains::registry")
            }),
            GFP_KERNEL,
        )
    }

    /// The scheduling groups.
    pub fn groups(&self) -> &Arc<Groups> {
        &self.groups
    }

    /// A vbd of `domid` is probed: its domain, created if new, now counts it.
    pub fn attach_vbd(&self, domid: u16) -> Result<Arc<Domain>> {
        self.get_or_create(domid, 1)
    }

    /// A vbd of `domid` is removed. With its last vbd gone the domain is gone too (the
    /// toolstack removes a dead domain's vbds), so its entry, limits, statistics and sysfs
    /// directory are dropped: a later domain reusing the domid must not inherit them.
    pub fn detach_vbd(&self, domid: u16) {
        {
            let mut registry = self.registry.lock();
            let Some(slot) = registry
                .entries
                .iter_mut()
                .find(|e| e.as_ref().is_some_and(|e| e.domain.domid == domid))
            else {
                return;
            };
            if let Some(entry) = slot.as_mut() {
                entry.vbds = entry.vbds.saturating_sub(1);
                if entry.vbds > 0 {
                    return;
                }
            }
            // Under the lock, so that a `limits` write for the same domid cannot create its
            // directory again before this one is gone. Removing it waits for running
            // show/store calls of its files, which never take the registry lock.
            drop(slot.take());
        }
        pr_info!(
            "domain {}: last vbd removed; its limits and statistics are dropped\n",
            domid
        );
    }

    /// The domain `domid`, created (with its sysfs directory) if new; `vbds` more vbds of it.
    fn get_or_create(&self, domid: u16, vbds: u32) -> Result<Arc<Domain>> {
        self.get_or_create_locked(&mut self.registry.lock(), domid, vbds)
    }

    /// `get_or_create` with the registry locked by the caller.
    fn get_or_create_locked(
        &self,
        registry: &mut Registry,
        domid: u16,
        vbds: u32,
    ) -> Result<Arc<Domain>> {
        if let Some(e) = registry
            .entries
            .iter_mut()
            .flatten()
            .find(|e| e.domain.domid == domid)
        {
            e.vbds += vbds;
            return Ok(e.domain.clone());
        }
        if registry.closed {
            return Err(ENODEV);
        }
        let domain = Domain::new(domid, self.groups.clone())?;
        let dir = match DomainDir::add(domid, domain.clone()) {
            Ok(d) => Some(d),
            Err(e) => {
                pr_warn!("domain {}: no sysfs directory: {:?}\n", domid, e);
                None
            }
        };
        let entry = DomainEntry {
            domain: domain.clone(),
            vbds,
            _dir: dir,
        };
        put_in_free_slot(&mut registry.entries, entry)?;
        Ok(domain)
    }

    /// Removes every domain directory and refuses new ones (module unload, before the
    /// `domains` directory goes). Domains stay alive while vbds use them.
    pub fn close(&self) {
        let entries = {
            let mut registry = self.registry.lock();
            registry.closed = true;
            core::mem::take(&mut registry.entries)
        };
        // Outside the lock: removing a directory waits for its running show/store calls.
        drop(entries);
    }
}

impl DomainsHandler for Domains {
    type Domain = Domain;

    fn limits_write(&self, input: &[u8]) -> Result {
        // The change is applied with the registry locked (then the domain's state: the one
        // order these locks are taken in), so that a detach of the domain's last vbd cannot
        // drop the entry between the lookup and the change, which would report success for
        // a change applied to a domain already forgotten.
        let command = parse_limits_line(input).map_err(|_| EINVAL)?;
        let mut registry = self.registry.lock();
        match command {
            LimitsCommand::Set { domid, overrides } => {
                let domain = self.get_or_create_locked(&mut registry, domid, 0)?;
                domain.apply(|o| o.merge(&overrides));
                pr_info!("domain {}: limits set\n", domid);
            }
            LimitsCommand::Clear { domid } => {
                let domain = self.get_or_create_locked(&mut registry, domid, 0)?;
                domain.apply(|o| *o = Overrides::default());
                pr_info!("domain {}: limits cleared\n", domid);
            }
        }
        Ok(())
    }
}
