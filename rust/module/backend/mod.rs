// SPDX-License-Identifier: GPL-2.0

//! The block backend, in safe Rust on top of [`crate::sys`].
//!
//! - [`vbd`]: one virtual block device: the xenstore handshake and its state machine.
//! - [`ring`]: one connected shared ring and its worker: the request loop.
//! - [`stats`]: the statistics the stock backend exposes in sysfs.
//! - [`domains`]: per-domain budgets (limits) and their sysfs interface.
//! - [`sched`]: the work-conserving scheduler's groups, windows and gate.

pub mod domains;
pub mod responses;
pub mod ring;
pub mod sched;
pub mod stats;
pub mod vbd;

use crate::sys::xenbus::{BoundDevice, VbdStat, XenbusBackend, XenbusDevice, XenbusState};
use domains::Domains;
use kernel::prelude::*;
use kernel::sync::Arc;
use vbd::Vbd;

/// The `vbd` backend driver.
pub struct VbdBackend;

impl XenbusBackend for VbdBackend {
    type Context = Domains;
    type Data = Vbd;

    fn probe(domains: &Arc<Domains>, dev: BoundDevice<'_>) -> Result<Arc<Vbd>> {
        Vbd::probe(domains, dev)
    }

    fn frontend_changed(data: &Arc<Vbd>, dev: BoundDevice<'_>, state: XenbusState) {
        data.frontend_changed(dev, state)
    }

    fn remove(data: Arc<Vbd>, _dev: &XenbusDevice) {
        data.remove()
    }

    fn stat(data: &Vbd, stat: VbdStat) -> u64 {
        data.stat(stat)
    }

    fn text(data: &Vbd, stat: VbdStat, buf: &mut [u8]) -> usize {
        data.text(stat, buf)
    }

    fn store(data: &Vbd, stat: VbdStat, input: &[u8]) -> Result {
        data.store(stat, input)
    }
}
