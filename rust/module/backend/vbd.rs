// SPDX-License-Identifier: GPL-2.0

//! One virtual block device (`backend/vbd/<domid>/<devid>`): the xenstore handshake.
//!
//! probe: watch `physical-device`, go to InitWait. The hotplug script writes
//! `physical-device` (and the toolstack `mode`): open the backing device, add sysfs files.
//! The frontend reaches Initialised: read its ring details. With both, map the ring, start
//! the worker, publish the device's size and features in one transaction, go Connected.
//! Closing/Closed from the frontend: disconnect (the rings stop at once and are freed when
//! their I/O completes), follow its state.

use super::domains::{log_about_domain, Domain, Domains, PoolLimit};
use super::ring::{LiveRings, RingConnection, RingOwner, RingParams};
use super::sched::{new_vbd_key, valid_group_name, VbdMembership, MAX_GROUP_NAME};
use super::stats::{self, VbdStats};
use crate::blkif::abi::Abi;
use crate::blkif::validate::{DeviceConfig, DeviceInfo};
use crate::blkif::xenstore::{
    self as keys, devid_from_frontend_path, mode_is_writable, parse_physical_device, parse_u32,
};
use crate::sys::block::{BlockDevice, DiscardSupport};
use crate::sys::params;
use crate::sys::xenbus::{
    self, BoundDevice, ModuleRef, Transaction, VbdStat, Watch, WatchHandler, XenbusDevice,
    XenbusState,
};
use crate::throttle::control::{
    meter_key, parse_limit_value, parse_share_value, ShareKey, DEFAULT_WEIGHT,
};
use crate::throttle::number::strip_newline;
use crate::throttle::params::Param;
use crate::throttle::Meter;
use core::sync::atomic::{AtomicU32, Ordering};
use kernel::prelude::*;
use kernel::str::{CStr, CString};
use kernel::sync::{Arc, Mutex};
use kernel::types::ARef;
use kernel::{c_str, fmt, new_mutex};

/// Longest xenstore value we read (paths, numbers, protocol names).
const VALUE_MAX: usize = 128;

/// How long a reconnect waits for the previous connection's I/O to complete.
const RECONNECT_DRAIN_MS: u32 = 500;

/// The ring page order this module accepts (`max_ring_page_order`, fixed at load).
fn max_ring_page_order() -> u32 {
    params::get(Param::MaxRingPageOrder) as u32
}

/// Segments per indirect request this module advertises (`max_indirect_segments`).
fn max_indirect_segments() -> u16 {
    params::get(Param::MaxIndirectSegments) as u16
}

/// Queues a frontend may open (`max_queues`; 0 = one per online CPU, as stock).
fn max_queues() -> u32 {
    match params::get(Param::MaxQueues) as u32 {
        0 => crate::sys::xenbus::online_cpus().max(1),
        n => n,
    }
}

/// The opened backing device and what the guest is told about it.
struct Backing {
    bdev: Arc<BlockDevice>,
    major: u32,
    minor: u32,
    writable: bool,
    info: DeviceInfo,
    /// Discard geometry, when discard is offered (the device can, the disk is writable and
    /// the toolstack did not write `discard-enable = 0`).
    discard: Option<DiscardSupport>,
}

/// What the frontend wrote for its rings, and what the backend accepted of it.
struct Connection {
    queues: KVec<RingParams>,
    persistent: bool,
}

#[derive(Default)]
struct VbdState {
    watch: Option<Watch<Vbd>>,
    backing: Option<Backing>,
    /// One connection per queue the frontend opened.
    rings: KVec<RingConnection>,
    /// The frontend published its ring and waits for us.
    frontend_ready: bool,
    sysfs: bool,
    /// `remove` has begun: a late watch callback must not open anything again.
    removed: bool,
    /// The scheduling group the operator named (`sched/group`), if any; else the backing
    /// device's disk.
    group_name: Option<GroupName>,
    /// The vbd's place in its scheduling group while it is connected.
    membership: Option<VbdMembership>,
}

/// A group name an operator chose (checked by `valid_group_name`).
#[derive(Clone, Copy)]
struct GroupName {
    bytes: [u8; MAX_GROUP_NAME],
    len: usize,
}

impl GroupName {
    fn new(name: &[u8]) -> Option<Self> {
        if !valid_group_name(name) {
            return None;
        }
        let mut bytes = [0; MAX_GROUP_NAME];
        bytes.get_mut(..name.len())?.copy_from_slice(name);
        Some(Self {
            bytes,
            len: name.len(),
        })
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// Room for a disk's kernel name (`DISK_NAME_LEN` is 32).
const DISK_NAME_MAX: usize = 32;

/// A virtual block device served to one frontend.
#[pin_data]
pub struct Vbd {
    /// Counted: a watch callback or a sysfs reader may still use the vbd while `remove`
    /// runs, and the vbd may outlive it by a moment.
    dev: ARef<XenbusDevice>,
    /// The frontend's xenstore directory, copied at probe (xenbus frees its own at remove).
    frontend_dir: CString,
    domid: u16,
    devid: u32,
    stats: Arc<VbdStats>,
    /// The vbd in the scheduler.
    sched_key: u64,
    /// Splits the domain's share among its vbds on one device (`sched/weight`).
    sched_weight: AtomicU32,
    /// The vbd's own limits, inside its domain's (`sched/iops_limit`, `sched/bps_limit`).
    limit: Arc<PoolLimit>,
    domain: Arc<Domain>,
    /// The registry, told when this vbd is removed.
    domains: Arc<Domains>,
    /// This vbd's rings not yet freed: a disconnected ring stays until its I/O completes.
    live_rings: Arc<LiveRings>,
    _module: ModuleRef,
    #[pin]
    state: Mutex<VbdState>,
}

fn cstring(args: core::fmt::Arguments<'_>) -> Result<CString> {
    CString::try_from_fmt(args)
}

/// Reads `dir/key`; `Ok(None)` if the key does not exist.
fn read_key<'b>(dir: &CStr, key: &str, buf: &'b mut [u8]) -> Result<Option<&'b [u8]>> {
    let key = cstring(fmt!("{}", key))?;
    match xenbus::read(dir, &key, buf) {
        Ok(v) => Ok(Some(v)),
        Err(e) if e == ENOENT => Ok(None),
        Err(e) => Err(e),
    }
}

impl Vbd {
    /// A new device: watch for the hotplug script and wait for the frontend.
    pub fn probe(domains: &Arc<Domains>, dev: BoundDevice<'_>) -> Result<Arc<Self>> {
        let devid = devid_from_frontend_path(dev.otherend().as_bytes()).ok_or(EINVAL)?;
        let domain = domains.attach_vbd(dev.otherend_id())?;
        Self::probe_attached(domains, &dev, devid, domain).inspect_err(|_| {
            // No `remove` follows a failed probe.
            domains.detach_vbd(dev.otherend_id())
        })
    }

    fn probe_attached(
        domains: &Arc<Domains>,
        dev: &BoundDevice<'_>,
        devid: u32,
        domain: Arc<Domain>,
    ) -> Result<Arc<Self>> {
        let frontend_dir = CString::try_from(dev.otherend())?;
        let stats = Arc::new(VbdStats::default(), GFP_KERNEL)?;
        let live_rings = LiveRings::new()?;
        let limit = PoolLimit::new()?;
        let vbd = Arc::pin_init(
            pin_init!(Vbd {
                dev: ARef::from(&**dev),
                frontend_dir,
                domid: dev.otherend_id(),
                devid,
                stats,
                sched_key: new_vbd_key(),
                sched_weight: AtomicU32::new(DEFAULT_WEIGHT as u32),
                limit,
                domain,
                domains: domains.clone(),
                live_rings,
                _module: ModuleRef::get(),
                state <- new_mutex!(VbdState::default(), "rblkback::Vbd::state"),
            }),
            GFP_KERNEL,
        )?;
        let watch = Watch::new(dev, c_str!("physical-device"), vbd.clone())?;
        vbd.state.lock().watch = Some(watch);
        // What the frontend may choose before it sets up its rings.
        vbd.write_keys(|w| {
            w(keys::MAX_RING_PAGE_ORDER, fmt!("{}", max_ring_page_order()))?;
            w(keys::MULTI_QUEUE_MAX_QUEUES, fmt!("{}", max_queues()))
        })?;
        dev.switch_state(XenbusState::InitWait)?;
        pr_info!("domain {} vbd {}: probed\n", vbd.domid, vbd.devid);
        Ok(vbd)
    }

    /// A statistic for sysfs.
    pub fn stat(&self, stat: VbdStat) -> u64 {
        let s = &self.stats;
        let counter = match stat {
            VbdStat::OutOfRequests => &s.oo_req,
            VbdStat::ReadRequests => &s.rd_req,
            VbdStat::WriteRequests => &s.wr_req,
            VbdStat::FlushRequests => &s.f_req,
            VbdStat::DiscardRequests => &s.ds_req,
            VbdStat::ReadSectors => &s.rd_sect,
            VbdStat::WriteSectors => &s.wr_sect,
            VbdStat::BufferPages => &s.buffer_pages,
            VbdStat::SchedDispatched => &s.sched_dispatched,
            VbdStat::SchedHeldByScheduler => &s.held_by_scheduler,
            VbdStat::SchedHeldByLimit => &s.held_by_limit,
            VbdStat::SchedWeight => return u64::from(self.sched_weight.load(Ordering::Relaxed)),
            VbdStat::SchedGroup | VbdStat::Latency => return 0,
            VbdStat::SchedIopsLimit => return self.limit.get(Meter::Ops),
            VbdStat::SchedBpsLimit => return self.limit.get(Meter::Bytes),
            VbdStat::Major | VbdStat::Minor | VbdStat::Writable => {
                let st = self.state.lock();
                return match (&st.backing, stat) {
                    (Some(b), VbdStat::Major) => u64::from(b.major),
                    (Some(b), VbdStat::Minor) => u64::from(b.minor),
                    (Some(b), _) => u64::from(b.writable),
                    (None, _) => 0,
                };
            }
        };
        stats::get(counter)
    }

    /// A text file for sysfs: `statistics/latency` (see `stats::write_latency`), or
    /// `sched/group` (the group the vbd is in, or would join if it connected now; empty
    /// before its backing device is known).
    pub fn text(&self, stat: VbdStat, buf: &mut [u8]) -> usize {
        if stat == VbdStat::Latency {
            return stats::write_latency(&self.stats, buf);
        }
        if stat != VbdStat::SchedGroup {
            return 0;
        }
        let st = self.state.lock();
        let mut disk = [0u8; DISK_NAME_MAX];
        let name: &[u8] = match (&st.membership, &st.group_name, &st.backing) {
            (Some(m), _, _) => m.group().name().as_bytes(),
            (None, Some(n), _) => n.as_bytes(),
            (None, None, Some(b)) => b.bdev.disk_name(&mut disk),
            (None, None, None) => &[],
        };
        let n = name.len().min(buf.len());
        buf[..n].copy_from_slice(&name[..n]);
        n
    }

    /// A write to `sched/weight` (1..=10000) or `sched/group` (a name, or an empty line for
    /// the backing device's disk; applies from the next connection).
    pub fn store(&self, stat: VbdStat, input: &[u8]) -> Result {
        match stat {
            VbdStat::SchedWeight => {
                let weight = parse_share_value(ShareKey::Weight, input).map_err(|_| EINVAL)? as u32;
                let st = self.state.lock();
                self.sched_weight.store(weight, Ordering::Relaxed);
                if let Some(m) = &st.membership {
                    m.set_weight(weight);
                }
                pr_info!(
                    "domain {} vbd {}: weight={}\n",
                    self.domid,
                    self.devid,
                    weight
                );
                Ok(())
            }
            VbdStat::SchedIopsLimit | VbdStat::SchedBpsLimit => {
                let meter = if stat == VbdStat::SchedIopsLimit {
                    Meter::Ops
                } else {
                    Meter::Bytes
                };
                let value = parse_limit_value(meter, input).map_err(|_| EINVAL)?;
                self.limit.set(meter, value);
                pr_info!(
                    "domain {} vbd {}: {}_limit={}\n",
                    self.domid,
                    self.devid,
                    meter_key(meter),
                    value
                );
                Ok(())
            }
            VbdStat::SchedGroup => {
                let name = strip_newline(input);
                let group = if name.is_empty() {
                    None
                } else {
                    Some(GroupName::new(name).ok_or(EINVAL)?)
                };
                let mut st = self.state.lock();
                st.group_name = group;
                pr_info!(
                    "domain {} vbd {}: group set{}\n",
                    self.domid,
                    self.devid,
                    if st.membership.is_some() {
                        "; applies when the frontend next connects"
                    } else {
                        ""
                    }
                );
                Ok(())
            }
            _ => Err(EINVAL),
        }
    }

    fn fatal(&self, err: Error, what: core::fmt::Arguments<'_>) {
        log_about_domain(&self.domain, self.devid, fmt!("{}: {:?}", what, err));
        if let Ok(msg) = cstring(what) {
            self.dev.fatal(err, &msg);
        }
    }

    /// The hotplug script wrote (or we just registered the watch on) `physical-device`.
    fn physical_device_changed(&self) {
        let mut buf = [0u8; VALUE_MAX];
        let value = match read_key(self.dev.nodename(), keys::PHYSICAL_DEVICE, &mut buf) {
            Ok(Some(v)) => v,
            // Fires once at registration, before the hotplug script ran.
            Ok(None) => return,
            Err(e) => return self.fatal(e, fmt!("reading physical-device")),
        };
        let Some((major, minor)) = parse_physical_device(value) else {
            return self.fatal(EINVAL, fmt!("physical-device is not hex major:minor"));
        };
        let mut st = self.state.lock();
        if st.removed {
            return;
        }
        if let Some(b) = &st.backing {
            if (b.major, b.minor) != (major, minor) {
                pr_warn!("domain {} vbd {}: changing physical device {:x}:{:x} -> {:x}:{:x} is not supported\n",
                    self.domid, self.devid, b.major, b.minor, major, minor);
            }
            return;
        }
        let mut mode_buf = [0u8; VALUE_MAX];
        let writable = match read_key(self.dev.nodename(), keys::MODE, &mut mode_buf) {
            Ok(Some(m)) => mode_is_writable(m),
            Ok(None) => false,
            Err(e) => return self.fatal(e, fmt!("reading mode")),
        };
        let bdev = match BlockDevice::open(major, minor, writable) {
            Ok(b) => b,
            Err(e) => return self.fatal(e, fmt!("opening device {:x}:{:x}", major, minor)),
        };
        let read_only = !writable || bdev.read_only();
        let discard_enabled =
            match read_key(self.dev.nodename(), keys::DISCARD_ENABLE, &mut mode_buf) {
                Ok(Some(v)) => parse_u32(v) != Some(0),
                _ => true,
            };
        let discard = bdev
            .discard_support()
            .filter(|_| discard_enabled && !read_only);
        let config = DeviceConfig {
            sectors: bdev.sectors(),
            logical_block_size: bdev.logical_block_size(),
            read_only,
            discard: discard.is_some(),
            secure_discard: discard.is_some_and(|d| d.secure),
            flush_cache: writable,
            // Barriers are flushes that first wait for the ring's requests in flight; old
            // frontends use them, current Linux blkfront prefers flush-cache.
            barrier: writable,
            max_indirect_segments: max_indirect_segments(),
        };
        let info = match DeviceInfo::new(config) {
            Ok(i) => i,
            Err(_) => return self.fatal(EINVAL, fmt!("unsupported device geometry")),
        };
        let bdev = match Arc::new(bdev, GFP_KERNEL) {
            Ok(b) => b,
            Err(_) => return self.fatal(ENOMEM, fmt!("allocating device")),
        };
        st.backing = Some(Backing {
            bdev,
            major,
            minor,
            writable,
            info,
            discard,
        });
        if !st.sysfs {
            match self.dev.sysfs_add() {
                Ok(()) => st.sysfs = true,
                Err(e) => pr_warn!(
                    "domain {} vbd {}: sysfs files: {:?}\n",
                    self.domid,
                    self.devid,
                    e
                ),
            }
        }
        pr_info!(
            "domain {} vbd {}: backing device {:x}:{:x} ({}), {} sectors\n",
            self.domid,
            self.devid,
            major,
            minor,
            if writable { "w" } else { "r" },
            config.sectors
        );
        self.try_connect(&mut st);
    }

    /// The frontend changed state.
    pub fn frontend_changed(&self, dev: BoundDevice<'_>, state: XenbusState) {
        match state {
            XenbusState::Initialising => {
                if dev.state() == XenbusState::Closed {
                    let _ = dev.switch_state(XenbusState::InitWait);
                }
            }
            XenbusState::Initialised | XenbusState::Connected => {
                if dev.state() == XenbusState::Connected {
                    return;
                }
                let mut st = self.state.lock();
                Self::disconnect(&mut st);
                st.frontend_ready = true;
                self.try_connect(&mut st);
            }
            XenbusState::Closing => {
                let _ = dev.switch_state(XenbusState::Closing);
            }
            XenbusState::Closed => {
                {
                    let mut st = self.state.lock();
                    st.frontend_ready = false;
                    Self::disconnect(&mut st);
                }
                let _ = dev.switch_state(XenbusState::Closed);
                if !dev.is_online() {
                    dev.unregister();
                }
            }
            XenbusState::Unknown => dev.unregister(),
            // As stock does: a state no frontend may write is the frontend's error (the
            // device goes to Closing with the error in xenstore), not the device's end.
            XenbusState::Other(v) => {
                self.fatal(EINVAL, fmt!("saw state {} at frontend", v));
            }
            XenbusState::InitWait => {
                self.fatal(EINVAL, fmt!("saw state InitWait at frontend"));
            }
        }
    }

    fn disconnect(st: &mut VbdState) {
        // Each ring stops its worker and event channel on drop; what its in-flight bios
        // still use is freed by the last of them (never waited for here, on xenwatch).
        // The rings leave the scheduling group as they go, then the vbd.
        drop(core::mem::take(&mut st.rings));
        drop(st.membership.take());
    }

    /// Joins the vbd's scheduling group for a connection. Without one (out of memory) the
    /// vbd is served unscheduled, as if alone on its device, and a line says so.
    fn join_group(
        &self,
        group_name: Option<GroupName>,
        bdev: &BlockDevice,
    ) -> Option<VbdMembership> {
        let mut disk = [0u8; DISK_NAME_MAX];
        let name = match &group_name {
            Some(n) => n.as_bytes(),
            None => bdev.disk_name(&mut disk),
        };
        let joined = self.domains.groups().join(
            name,
            bdev,
            self.domid,
            self.domain.flow_config(),
            self.sched_key,
            self.sched_weight.load(Ordering::Relaxed),
        );
        match joined {
            Ok(m) => Some(m),
            Err(e) => {
                pr_warn!(
                    "domain {} vbd {}: not scheduled (joining its group: {:?})\n",
                    self.domid,
                    self.devid,
                    e
                );
                None
            }
        }
    }

    /// Reads the frontend's ring details: the layout, the ring page order, whether it
    /// uses persistent grants, and per queue the ring's grants and event channel (in the
    /// frontend's directory for one queue, in `queue-<n>/` for several).
    fn ring_params(&self) -> Result<Connection> {
        let dir = &*self.frontend_dir;
        let mut buf = [0u8; VALUE_MAX];
        let abi = Abi::from_protocol(read_key(dir, keys::PROTOCOL, &mut buf)?).ok_or(EINVAL)?;
        let order = match read_key(dir, keys::RING_PAGE_ORDER, &mut buf)? {
            None => None,
            Some(v) => Some(parse_u32(v).ok_or(EINVAL)?),
        };
        if let Some(o) = order.filter(|o| *o > max_ring_page_order()) {
            log_about_domain(
                &self.domain,
                self.devid,
                fmt!(
                    "frontend asks for ring-page-order {}, at most {} offered",
                    o,
                    max_ring_page_order()
                ),
            );
            return Err(EINVAL);
        }
        let nr_queues = match read_key(dir, keys::MULTI_QUEUE_NUM_QUEUES, &mut buf)? {
            None => 1,
            Some(v) => parse_u32(v).ok_or(EINVAL)?,
        };
        if nr_queues == 0 || nr_queues > max_queues() {
            log_about_domain(
                &self.domain,
                self.devid,
                fmt!(
                    "frontend asks for {} queues, at most {} offered",
                    nr_queues,
                    max_queues()
                ),
            );
            return Err(EINVAL);
        }
        let persistent = params::get(Param::FeaturePersistent) != 0
            && matches!(read_key(dir, keys::FEATURE_PERSISTENT, &mut buf)?, Some(v) if parse_u32(v) == Some(1));
        let (persistent_grants, persistent_unused_us) = if persistent {
            (
                params::get(Param::MaxPersistentGrants) as u16,
                params::get(Param::PersistentGrantUnusedSeconds) * 1_000_000,
            )
        } else {
            (0, 0)
        };
        let mut queues = KVec::new();
        for queue in 0..nr_queues {
            let qdir = if nr_queues == 1 {
                cstring(fmt!("{}", dir))?
            } else {
                cstring(fmt!("{}/{}", dir, keys::queue_dir(queue).as_str()))?
            };
            // One page: `ring-ref`; 2^order pages: `ring-ref0` .. `ring-ref<2^order - 1>`
            // (a frontend that writes ring-page-order uses the numbered keys even for
            // order 0).
            let mut ring_refs = KVec::new();
            match order {
                None => {
                    let v = read_key(&qdir, keys::RING_REF, &mut buf)?.ok_or(EINVAL)?;
                    ring_refs.push(parse_u32(v).ok_or(EINVAL)?, GFP_KERNEL)?;
                }
                Some(order) => {
                    for i in 0..(1u32 << order) {
                        let key = cstring(fmt!("{}", keys::ring_ref_key(i).as_str()))?;
                        let v = xenbus::read(&qdir, &key, &mut buf)?;
                        ring_refs.push(parse_u32(v).ok_or(EINVAL)?, GFP_KERNEL)?;
                    }
                }
            }
            let port = parse_u32(read_key(&qdir, keys::EVENT_CHANNEL, &mut buf)?.ok_or(EINVAL)?)
                .ok_or(EINVAL)?;
            queues.push(
                RingParams {
                    abi,
                    ring_refs,
                    order: order.unwrap_or(0),
                    port,
                    queue,
                    persistent_grants,
                    persistent_unused_us,
                    buffer_pages: params::get(Param::MaxRingBufferPages) as usize,
                },
                GFP_KERNEL,
            )?;
        }
        Ok(Connection { queues, persistent })
    }

    /// Connects once both the backing device and the frontend's rings are known.
    fn try_connect(&self, st: &mut VbdState) {
        if !st.frontend_ready || !st.rings.is_empty() || self.dev.state() == XenbusState::Connected
        {
            return;
        }
        let Some(backing) = &st.backing else { return };
        // As stock: no new connection while bios of the previous one are in flight. The
        // frontend has reissued (or given up) those requests, and a stale write that lands
        // after a newer one would undo it. A short wait covers an ordinary drain; a hung
        // device fails the connection instead of holding xenwatch.
        if self.live_rings.count() > 0 && !self.live_rings.wait_all_freed(RECONNECT_DRAIN_MS) {
            return self.fatal(
                EBUSY,
                fmt!(
                    "reconnecting while {} rings of the previous connection wait for I/O",
                    self.live_rings.count()
                ),
            );
        }
        let conn = match self.ring_params() {
            Ok(c) => c,
            Err(e) => return self.fatal(e, fmt!("reading the frontend's ring details")),
        };
        let membership = self.join_group(st.group_name, &backing.bdev);
        let owner = RingOwner {
            stats: self.stats.clone(),
            domain: self.domain.clone(),
            limit: self.limit.clone(),
            devid: self.devid,
            live: self.live_rings.clone(),
        };
        for params in conn.queues.iter() {
            let ring = RingConnection::connect(
                &self.dev,
                params,
                backing.info,
                backing.bdev.clone(),
                &owner,
                membership.as_ref(),
            );
            let pushed = ring.and_then(|r| st.rings.push(r, GFP_KERNEL).map_err(Error::from));
            if let Err(e) = pushed {
                Self::disconnect(st);
                drop(membership);
                return self.fatal(
                    e,
                    fmt!(
                        "mapping queue {} ring-ref {} port {}",
                        params.queue,
                        params.ring_refs.first().copied().unwrap_or(0),
                        params.port
                    ),
                );
            }
        }
        st.membership = membership;
        let Some(backing) = &st.backing else { return };
        if let Err(e) = self.publish_device(backing) {
            Self::disconnect(st);
            return self.fatal(e, fmt!("publishing the device"));
        }
        match self.dev.switch_state(XenbusState::Connected) {
            // An info line, but a frontend decides how often it reconnects: rate limited.
            Ok(()) => {
                if self.domain.may_log().is_some() {
                    pr_info!(
                        "domain {} vbd {}: connected ({}, {} queue{}, ring order {}{})\n",
                        self.domid,
                        self.devid,
                        conn.queues.first().map_or("?", |q| q.abi.protocol_name()),
                        conn.queues.len(),
                        if conn.queues.len() == 1 { "" } else { "s" },
                        conn.queues.first().map_or(0, |q| q.order),
                        if conn.persistent {
                            ", persistent grants"
                        } else {
                            ""
                        }
                    )
                }
            }
            Err(e) => self.fatal(e, fmt!("switching to Connected")),
        }
    }

    /// Writes size and features for the frontend, in one transaction.
    fn publish_device(&self, backing: &Backing) -> Result {
        let config = backing.info.config();
        let info = if config.read_only {
            keys::VDISK_READONLY
        } else {
            0
        };
        self.write_keys(|w| {
            w(
                keys::FEATURE_FLUSH_CACHE,
                fmt!("{}", u32::from(config.flush_cache)),
            )?;
            w(keys::FEATURE_BARRIER, fmt!("{}", u32::from(config.barrier)))?;
            w(
                keys::FEATURE_MAX_INDIRECT_SEGMENTS,
                fmt!("{}", config.max_indirect_segments),
            )?;
            w(
                keys::FEATURE_PERSISTENT,
                fmt!("{}", u32::from(params::get(Param::FeaturePersistent) != 0)),
            )?;
            if let Some(d) = &backing.discard {
                w(keys::DISCARD_GRANULARITY, fmt!("{}", d.granularity))?;
                w(keys::DISCARD_ALIGNMENT, fmt!("{}", d.alignment))?;
                w(keys::DISCARD_SECURE, fmt!("{}", u32::from(d.secure)))?;
            }
            w(
                keys::FEATURE_DISCARD,
                fmt!("{}", u32::from(backing.discard.is_some())),
            )?;
            w(keys::SECTORS, fmt!("{}", config.sectors))?;
            w(keys::INFO, fmt!("{}", info))?;
            w(keys::SECTOR_SIZE, fmt!("{}", config.logical_block_size))?;
            w(
                keys::PHYSICAL_SECTOR_SIZE,
                fmt!("{}", backing.bdev.physical_block_size()),
            )?;
            Ok(())
        })
    }

    /// Writes keys of our backend directory in one transaction, retried on conflict.
    /// `f` gets a writer taking a key and its formatted value.
    fn write_keys(
        &self,
        f: impl Fn(&dyn Fn(&str, core::fmt::Arguments<'_>) -> Result) -> Result,
    ) -> Result {
        let dir = self.dev.nodename();
        loop {
            let xbt = Transaction::start()?;
            let w = |key: &str, value: core::fmt::Arguments<'_>| -> Result {
                xbt.write(dir, &cstring(fmt!("{}", key))?, &cstring(value)?)
            };
            if let Err(e) = f(&w) {
                let _ = xbt.end(true);
                return Err(e);
            }
            match xbt.end(false) {
                Err(e) if e == EAGAIN => continue,
                other => return other,
            }
        }
    }

    /// The device goes away: stop everything and release it.
    pub fn remove(&self) {
        let (watch, rings, membership, backing, sysfs) = {
            let mut st = self.state.lock();
            st.frontend_ready = false;
            st.removed = true;
            (
                st.watch.take(),
                core::mem::take(&mut st.rings),
                st.membership.take(),
                st.backing.take(),
                core::mem::take(&mut st.sysfs),
            )
        };
        // Outside the lock: dropping the watch waits for a running callback, which may be
        // waiting for the lock.
        drop(watch);
        drop(rings);
        drop(membership);
        if sysfs {
            self.dev.sysfs_remove();
        }
        drop(backing);
        pr_info!("domain {} vbd {}: removed\n", self.domid, self.devid);
        self.domains.detach_vbd(self.domid);
    }
}

impl WatchHandler for Vbd {
    fn changed(&self) {
        self.physical_device_changed()
    }
}
