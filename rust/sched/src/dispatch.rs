//! The gate in front of a group: the decision each ring's worker asks for before it takes a
//! request off its ring, and who to wake when window space frees up.
//!
//! The module's rings are consumed by their own workers, not by a central loop: a worker
//! asks [`Dispatcher::admit`] for its head request, and either submits it or stops with the
//! ring marked waiting. Whoever frees window space or stops waiting asks
//! [`Dispatcher::next_to_wake`] which vbd's waiting ring to kick. Everything here is the
//! bookkeeping that makes that equivalent to a central loop filling the window by the
//! scheduler's picks: per vbd, how many of its rings wait and how many of its requests are in
//! flight; how many vbds have work.

use super::group::Group;
use super::protect::Charge;
use super::queue::{FairQueue, Flow, FlowConfig};
use super::storage::Storage;
use super::window::Window;

/// A vbd's work as the gate sees it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VbdWork {
    /// Rings of the vbd stopped waiting for the scheduler (the vbd is backlogged while
    /// any is).
    pub waiting: u32,
    /// Requests of the vbd dispatched and not finished.
    pub in_flight: u32,
}

impl VbdWork {
    /// Whether the vbd has work: requests waiting or in flight.
    pub fn active(&self) -> bool {
        self.waiting > 0 || self.in_flight > 0
    }
}

/// What the gate says to a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Submit it now; it is counted in the window and charged to the vbd's tags. Its
    /// finish ([`Dispatcher::finish`]) gives back this charge.
    Go(Charge),
    /// Submit it; the vbd is not in the group, so nothing is counted or to give back.
    Unscheduled,
    /// Leave it on the ring, which now waits: [`Dispatcher::next_to_wake`] names the vbd
    /// when its turn comes.
    Wait,
}

/// A group with its vbds' work: the gate.
///
/// `V` holds one [`VbdWork`] per vbd slot, domain after domain: domain `d`'s vbd `v` is
/// entry `first[d] + v`, with `first` (`F`) one entry per domain slot.
pub struct Dispatcher<S, T, Q, W, V, F>
where
    S: Storage<Flow>,
    T: Storage<u32>,
    Q: Storage<FairQueue<S, T>>,
    W: Window,
    V: Storage<VbdWork>,
    F: Storage<usize>,
{
    group: Group<S, T, Q, W>,
    work: V,
    first: F,
    /// Vbds whose work is active.
    busy: u32,
}

impl<S, T, Q, W, V, F> Dispatcher<S, T, Q, W, V, F>
where
    S: Storage<Flow>,
    T: Storage<u32>,
    Q: Storage<FairQueue<S, T>>,
    W: Window,
    V: Storage<VbdWork>,
    F: Storage<usize>,
{
    /// The gate of `group`; `None` unless `first` has one entry per domain slot and every
    /// domain's vbd slots fit in `work` at its offset without overlapping the next.
    pub fn new(group: Group<S, T, Q, W>, mut work: V, first: F) -> Option<Self> {
        let domains = group.domains().capacity();
        if first.slots().len() != domains {
            return None;
        }
        let mut end = 0;
        for d in 0..domains {
            let start = *first.slots().get(d)?;
            let len = group.vbds(d)?.capacity();
            if start < end || start.checked_add(len)? > work.slots().len() {
                return None;
            }
            end = start + len;
        }
        work.slots_mut()
            .iter_mut()
            .for_each(|w| *w = VbdWork::default());
        Some(Self {
            group,
            work,
            first,
            busy: 0,
        })
    }

    /// The scheduler behind the gate.
    pub fn group(&self) -> &Group<S, T, Q, W> {
        &self.group
    }

    /// The scheduler behind the gate, to configure flows and the window.
    pub fn group_mut(&mut self) -> &mut Group<S, T, Q, W> {
        &mut self.group
    }

    /// Vbds with work (waiting or in flight).
    pub fn busy_vbds(&self) -> u32 {
        self.busy
    }

    /// Vbd `(domain, vbd)`'s work, if the slot exists.
    pub fn work(&self, domain: usize, vbd: usize) -> Option<VbdWork> {
        let i = self.index(domain, vbd)?;
        self.work.slots().get(i).copied()
    }

    fn index(&self, domain: usize, vbd: usize) -> Option<usize> {
        let len = self.group.vbds(domain)?.capacity();
        (vbd < len).then(|| self.first.slots().get(domain).map(|f| f + vbd))?
    }

    /// Applies `change` to the vbd's work, keeping the busy count in step; the work before
    /// and after.
    fn change(
        &mut self,
        domain: usize,
        vbd: usize,
        change: impl FnOnce(&mut VbdWork),
    ) -> Option<(VbdWork, VbdWork)> {
        let i = self.index(domain, vbd)?;
        let work = self.work.slots_mut().get_mut(i)?;
        let before = *work;
        change(work);
        let after = *work;
        match (before.active(), after.active()) {
            (false, true) => self.busy += 1,
            (true, false) => self.busy = self.busy.saturating_sub(1),
            _ => {}
        }
        Some((before, after))
    }

    /// A ring of vbd `(domain, vbd)` asks to submit a request of `cost` units and `bytes`
    /// bytes at `now_ns`; `ring_waits` says whether that ring is marked waiting, `more`
    /// whether the ring has requests behind this one. The request goes when the vbd is the
    /// only one with work (nothing to divide), or when the window has room and the
    /// scheduler would pick this vbd (or nobody waits). On `Wait` the caller marks the ring
    /// waiting (if it was not); on `Go` it marks it waiting exactly when `more`: a ring
    /// that goes on to its next request stays backlogged, so that a completion between two
    /// of its requests does not pass it over (and move the virtual time past its tag, which
    /// would cost it its place in the order as if it had gone idle). It stops waiting when
    /// it stops for another reason ([`Dispatcher::stop_waiting`]).
    #[allow(clippy::too_many_arguments)]
    pub fn admit(
        &mut self,
        domain: usize,
        vbd: usize,
        ring_waits: bool,
        more: bool,
        cost: u32,
        bytes: u64,
        now_ns: u64,
    ) -> Verdict {
        let Some(work) = self.work(domain, vbd) else {
            // Not a member: not scheduled.
            return Verdict::Unscheduled;
        };
        // Time alone may end the protection's hold (see `Protection::holds_unprotected`).
        self.group.update_hold(now_ns);
        // Alone, nothing to divide; but protection may hold an unprotected domain even so
        // (see `Group::held_by_protection`).
        let alone = (self.busy == 0 || (self.busy == 1 && work.active()))
            && !self.group.held_by_protection(domain, now_ns);
        let chosen = alone
            || (self.group.may_dispatch(domain, now_ns)
                && self
                    .group
                    .pick(now_ns)
                    .map_or(true, |p| p.domain == domain && p.vbd == vbd));
        if !chosen {
            self.change(domain, vbd, |w| {
                if !ring_waits {
                    w.waiting += 1;
                }
            });
            self.group.set_backlogged(domain, vbd, true, now_ns);
            return Verdict::Wait;
        }
        let after = self.change(domain, vbd, |w| {
            match (ring_waits, more) {
                (true, false) => w.waiting = w.waiting.saturating_sub(1),
                (false, true) => w.waiting += 1,
                _ => {}
            }
            w.in_flight += 1;
        });
        let charge = self.group.dispatch(domain, vbd, cost, bytes, now_ns);
        if after.is_some_and(|(_, w)| w.waiting == 0) {
            // Dispatching marks the vbd backlogged; it is only while a ring of it waits.
            self.group.set_backlogged(domain, vbd, false, now_ns);
        }
        Verdict::Go(charge)
    }

    /// A waiting ring of vbd `(domain, vbd)` stops waiting without submitting (its ring is
    /// empty, a limit holds it, it disconnected).
    pub fn stop_waiting(&mut self, domain: usize, vbd: usize, now_ns: u64) {
        let after = self.change(domain, vbd, |w| w.waiting = w.waiting.saturating_sub(1));
        if after.is_some_and(|(_, w)| w.waiting == 0) {
            self.group.set_backlogged(domain, vbd, false, now_ns);
        }
    }

    /// A request that `admit` let go with `charge` finished: it completed on the device
    /// after `service_us` (`Some`), `latency_us` after the backend saw it on its ring, or
    /// never went to it (`None`: a limit held it after all, or it was answered without I/O;
    /// its window space is given back without teaching the window anything). `vbd` is
    /// `None` if the vbd left the group since (its request still held window space).
    pub fn finish(
        &mut self,
        vbd: Option<(usize, usize)>,
        charge: Charge,
        service_us: Option<u64>,
        latency_us: u64,
        now_ns: u64,
    ) {
        match service_us {
            Some(us) => self
                .group
                .complete(charge, us, latency_us.max(us), now_ns / 1_000),
            None => self.group.withdraw(charge, now_ns),
        }
        if let Some((d, v)) = vbd {
            self.change(d, v, |w| w.in_flight = w.in_flight.saturating_sub(1));
        }
    }

    /// The vbd whose waiting ring should be woken now, if any: the scheduler's pick, when the
    /// window has room for it or it is the only vbd with work. Waking it does not change the
    /// state; its ring's `admit` will, so asking twice names the same vbd.
    pub fn next_to_wake(&self, now_ns: u64) -> Option<(usize, usize)> {
        let pick = self.group.pick(now_ns)?;
        let alone = self.busy <= 1 && !self.group.held_by_protection(pick.domain, now_ns);
        (alone || self.group.may_dispatch(pick.domain, now_ns)).then_some((pick.domain, pick.vbd))
    }

    /// Configures domain `domain` (weight, reservations, latency target) at `now_ns`;
    /// `false` (nothing changes) for an invalid configuration.
    pub fn configure_domain(&mut self, domain: usize, config: FlowConfig, now_ns: u64) -> bool {
        self.group.configure_domain(domain, config, now_ns)
    }

    /// Takes over vbd `(domain, vbd)`'s work from the gate this one replaces (the group's
    /// members changed), with `carry_in_flight` for the window's units.
    pub fn restore(&mut self, domain: usize, vbd: usize, work: VbdWork, now_ns: u64) {
        self.change(domain, vbd, |w| *w = work);
        if work.waiting > 0 {
            self.group.set_backlogged(domain, vbd, true, now_ns);
        }
    }
}
