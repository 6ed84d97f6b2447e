//! A scheduling group: the vbds on one device, in two levels (domains, then each domain's
//! vbds), behind one dispatch window.

use super::protect::{Charge, Protection};
use super::queue::{FairQueue, Flow, FlowConfig, Phase};
use super::storage::Storage;
use super::window::{InFlight, Window};

/// What a group chose: a domain slot and, within it, a vbd slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupPick {
    /// The domain's slot at the top level.
    pub domain: usize,
    /// The vbd's slot in that domain's queue.
    pub vbd: usize,
    /// The phase the domain level chose it in.
    pub phase: Phase,
}

/// The domains of one device (top level) and per domain its vbds on that device, with
/// the group's window. A domain is backlogged while any of its vbds is, so a domain's
/// share is split among its vbds by their weights and an idle vbd's part goes to its
/// siblings first. Requests are charged at both levels.
///
/// Domains with a latency target are protected ([`Protection`]): while the unprotected
/// domains' work in flight is at its cap, they are out of the top level's choice (not
/// backlogged there, as if idle, so they earn no credit meanwhile; their order among
/// themselves is kept) and the next free unit goes to a protected domain.
///
/// `Q` holds one vbd-level queue per domain slot, in the top level's slot order.
pub struct Group<S, T, Q, W>
where
    S: Storage<Flow>,
    T: Storage<u32>,
    Q: Storage<FairQueue<S, T>>,
    W: Window,
{
    domains: FairQueue<S, T>,
    vbds: Q,
    window: W,
    in_flight: InFlight,
    protection: Protection,
    /// Whether the unprotected domains are out of the top level's choice now (what
    /// `protection.holds_unprotected` said at the last event).
    holding: bool,
}

impl<S, T, Q, W> Group<S, T, Q, W>
where
    S: Storage<Flow>,
    T: Storage<u32>,
    Q: Storage<FairQueue<S, T>>,
    W: Window,
{
    /// A group; `None` unless there is one vbd queue per domain slot.
    pub fn new(domains: FairQueue<S, T>, vbds: Q, window: W) -> Option<Self> {
        (vbds.slots().len() == domains.capacity()).then_some(Self {
            domains,
            vbds,
            window,
            in_flight: InFlight::default(),
            protection: Protection::default(),
            holding: false,
        })
    }

    /// The domain level (to configure domains' weights and reservations).
    pub fn domains_mut(&mut self) -> &mut FairQueue<S, T> {
        &mut self.domains
    }

    /// Domain `domain`'s vbd level (to configure its vbds' weights).
    pub fn vbds_mut(&mut self, domain: usize) -> Option<&mut FairQueue<S, T>> {
        self.vbds.slots_mut().get_mut(domain)
    }

    /// The window policy.
    pub fn window_mut(&mut self) -> &mut W {
        &mut self.window
    }

    /// Work in flight, in cost units.
    pub fn in_flight(&self) -> u64 {
        self.in_flight.units()
    }

    /// Whether the window has room for another request now.
    pub fn has_room(&self) -> bool {
        self.in_flight.has_room(&self.window)
    }

    /// Vbd `vbd` of domain `domain` has work it may submit (or none, or a limit holds it).
    pub fn set_backlogged(&mut self, domain: usize, vbd: usize, backlogged: bool, now_ns: u64) {
        let Some(queue) = self.vbds.slots_mut().get_mut(domain) else {
            return;
        };
        queue.set_backlogged(vbd, backlogged, now_ns);
        self.refresh_domain(domain, now_ns);
    }

    /// Puts domain `domain` in the top level's choice exactly when one of its vbds is
    /// backlogged and protection does not hold it.
    fn refresh_domain(&mut self, domain: usize, now_ns: u64) {
        let any = self
            .vbds
            .slots()
            .get(domain)
            .is_some_and(|q| q.any_backlogged());
        let held = self.holding && !self.is_protected(domain);
        self.domains.set_backlogged(domain, any && !held, now_ns);
    }

    /// Takes the unprotected domains out of the choice or puts them back, as the
    /// protection says at `now_ns`, if that changed since the last event (every event here
    /// asks; at a cap of 0 one goes after a period without any, so callers that act on time
    /// rather than on an event ask too).
    pub fn update_hold(&mut self, now_ns: u64) {
        let holding = self.protection.holds_unprotected(now_ns / 1000);
        if holding == self.holding {
            return;
        }
        self.holding = holding;
        for domain in 0..self.domains.capacity() {
            if !self.is_protected(domain) {
                self.refresh_domain(domain, now_ns);
            }
        }
    }

    /// Whether domain `domain` has a latency target.
    pub fn is_protected(&self, domain: usize) -> bool {
        self.domains
            .config(domain)
            .is_some_and(|c| c.latency_target_us != 0)
    }

    /// Configures domain `domain` at `now_ns` (see [`FairQueue::configure`]): a change of
    /// its latency target takes effect for its next request.
    pub fn configure_domain(&mut self, domain: usize, config: FlowConfig, now_ns: u64) -> bool {
        let done = self.domains.configure(domain, config);
        self.refresh_domain(domain, now_ns);
        done
    }

    /// Whether a request of domain `domain` may go to the device at `now_ns`: the window
    /// has room and protection does not hold the domain.
    pub fn may_dispatch(&self, domain: usize, now_ns: u64) -> bool {
        self.has_room() && !self.held_by_protection(domain, now_ns)
    }

    /// Whether protection holds domain `domain` back at `now_ns` (it has no latency target
    /// and the unprotected domains' cap is reached). This holds even while the domain is
    /// the only one with work: a paced protected domain is idle between its requests, and
    /// the work an unprotected domain put on the device meanwhile would be in front of its
    /// next one.
    pub fn held_by_protection(&self, domain: usize, now_ns: u64) -> bool {
        !self.is_protected(domain) && self.protection.holds_unprotected(now_ns / 1000)
    }

    /// The latency protection's state.
    pub fn protection(&self) -> &Protection {
        &self.protection
    }

    /// The vbd that should get the next free unit of the window, if any is backlogged.
    pub fn pick(&self, now_ns: u64) -> Option<GroupPick> {
        let top = self.domains.pick(now_ns)?;
        // A backlogged domain has a backlogged vbd (`set_backlogged` keeps them in step).
        let vbd = self.vbds.slots().get(top.slot)?.pick(now_ns)?;
        Some(GroupPick {
            domain: top.slot,
            vbd: vbd.slot,
            phase: top.phase,
        })
    }

    /// A request of `cost` units and `bytes` bytes of the vbd went to the device at
    /// `now_ns` (picked, or at once because the window had room). Returns what it took,
    /// for its completion ([`Group::complete`]) or withdrawal to give back.
    pub fn dispatch(
        &mut self,
        domain: usize,
        vbd: usize,
        cost: u32,
        bytes: u64,
        now_ns: u64,
    ) -> Charge {
        let charge = Charge {
            units: cost.max(1),
            latency_target_us: self
                .domains
                .config(domain)
                .map_or(0, |c| c.latency_target_us),
        };
        let Some(queue) = self.vbds.slots_mut().get_mut(domain) else {
            return Charge::unprotected(cost.max(1));
        };
        queue.dispatch(vbd, cost, bytes, now_ns);
        self.domains.dispatch(domain, cost, bytes, now_ns);
        self.in_flight.add(u64::from(charge.units));
        self.protection.dispatched(charge, now_ns / 1000);
        // Dispatching marks the domain backlogged at the top level; a held one is not.
        self.refresh_domain(domain, now_ns);
        self.update_hold(now_ns);
        charge
    }

    /// A request charged `charge` completed after `service_us` on the device, `latency_us`
    /// after the backend first saw it (its wait for admission plus its service).
    pub fn complete(&mut self, charge: Charge, service_us: u64, latency_us: u64, now_us: u64) {
        let units = u64::from(charge.units.max(1));
        self.in_flight.complete(units);
        self.window.on_complete(units, service_us, now_us);
        let window = self.window.limit();
        self.protection.finished(charge, latency_us, now_us, window);
        self.update_hold(now_us.saturating_mul(1000));
    }

    /// A request charged `charge` that [`Group::dispatch`] counted did not go to the
    /// device after all (a limit held it, or it failed to start): its window space is free
    /// again, and the window policy learns nothing from it. Its tags stay charged: at most
    /// one request per such event, which the caller bounds (one per held slice).
    pub fn withdraw(&mut self, charge: Charge, now_ns: u64) {
        self.in_flight.complete(u64::from(charge.units.max(1)));
        self.protection.withdrawn(charge);
        self.update_hold(now_ns);
    }

    /// The domain level, to read its flows' configuration and service.
    pub fn domains(&self) -> &FairQueue<S, T> {
        &self.domains
    }

    /// Domain `domain`'s vbd level, to read.
    pub fn vbds(&self, domain: usize) -> Option<&FairQueue<S, T>> {
        self.vbds.slots().get(domain)
    }

    /// The window policy, to read.
    pub fn window(&self) -> &W {
        &self.window
    }

    /// Takes over `units` in flight from the group this one replaces (its members changed
    /// and its tables were rebuilt): their completions will come here.
    pub fn carry_in_flight(&mut self, units: u64) {
        self.in_flight.add(units);
    }

    /// Takes over the protection's state from the group this one replaces (what is in
    /// flight of each kind, the cap and the period's counts).
    pub fn carry_protection(&mut self, protection: &Protection, now_ns: u64) {
        self.protection = *protection;
        self.update_hold(now_ns);
    }
}
