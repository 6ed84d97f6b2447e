//! A scheduling group: the vbds on one device, in two levels (domains, then each domain's
//! vbds), behind one dispatch window.

use super::queue::{FairQueue, Flow, Phase};
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
        let any = queue.any_backlogged();
        self.domains.set_backlogged(domain, any, now_ns);
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
    /// `now_ns` (picked, or at once because the window had room).
    pub fn dispatch(&mut self, domain: usize, vbd: usize, cost: u32, bytes: u64, now_ns: u64) {
        let Some(queue) = self.vbds.slots_mut().get_mut(domain) else {
            return;
        };
        queue.dispatch(vbd, cost, bytes, now_ns);
        self.domains.dispatch(domain, cost, bytes, now_ns);
        self.in_flight.add(u64::from(cost.max(1)));
    }

    /// A request of `cost` units completed after `service_us` on the device.
    pub fn complete(&mut self, cost: u32, service_us: u64, now_us: u64) {
        let cost = u64::from(cost.max(1));
        self.in_flight.complete(cost);
        self.window.on_complete(cost, service_us, now_us);
    }

    /// A request of `cost` units that [`Group::dispatch`] counted did not go to the device
    /// after all (a limit held it, or it failed to start): its window space is free again,
    /// and the window policy learns nothing from it. Its tags stay charged: at most one
    /// request per such event, which the caller bounds (one per held slice).
    pub fn withdraw(&mut self, cost: u32) {
        self.in_flight.complete(u64::from(cost.max(1)));
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
}
