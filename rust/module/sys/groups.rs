// SPDX-License-Identifier: GPL-2.0

//! `/sys/module/rblkback/groups/`: one directory per scheduling group.

use super::bindings;
use super::ctldir::{show_callback, store_callback, ControlDir, ControlFiles};
use kernel::error::to_result;
use kernel::prelude::*;
use kernel::str::CStr;
use kernel::sync::Arc;

/// A file of a group directory: the C shim's `enum rblk_group_attr`, named.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum GroupAttr {
    /// `window`.
    Window,
    /// `in_flight`.
    InFlight,
    /// `dispatched`.
    Dispatched,
    /// `held`.
    Held,
    /// `vbds`.
    Vbds,
    /// `iops_limit`.
    IopsLimit,
    /// `bps_limit`.
    BpsLimit,
    /// `latency_target_us`.
    LatencyTargetUs,
    /// `window_now`.
    WindowNow,
    /// `latency_us`.
    LatencyUs,
    /// `unprotected_cap`.
    UnprotectedCap,
    /// `protection_cuts`.
    ProtectionCuts,
}

impl GroupAttr {
    /// The file C asks for, if it is one of ours.
    pub fn from_raw(raw: u32) -> Option<Self> {
        Some(match raw {
            bindings::rblk_group_attr_RBLK_GRP_WINDOW => Self::Window,
            bindings::rblk_group_attr_RBLK_GRP_IN_FLIGHT => Self::InFlight,
            bindings::rblk_group_attr_RBLK_GRP_DISPATCHED => Self::Dispatched,
            bindings::rblk_group_attr_RBLK_GRP_HELD => Self::Held,
            bindings::rblk_group_attr_RBLK_GRP_VBDS => Self::Vbds,
            bindings::rblk_group_attr_RBLK_GRP_IOPS_LIMIT => Self::IopsLimit,
            bindings::rblk_group_attr_RBLK_GRP_BPS_LIMIT => Self::BpsLimit,
            bindings::rblk_group_attr_RBLK_GRP_LATENCY_TARGET_US => Self::LatencyTargetUs,
            bindings::rblk_group_attr_RBLK_GRP_WINDOW_NOW => Self::WindowNow,
            bindings::rblk_group_attr_RBLK_GRP_LATENCY_US => Self::LatencyUs,
            bindings::rblk_group_attr_RBLK_GRP_UNPROTECTED_CAP => Self::UnprotectedCap,
            bindings::rblk_group_attr_RBLK_GRP_PROTECTION_CUTS => Self::ProtectionCuts,
            _ => return None,
        })
    }
}

/// The registered `groups` directory, whose group directories show `G`; removed on drop.
///
/// # Invariants
///
/// The directory is registered with `_ops` from `add` until drop removes it.
pub struct GroupsDir<G: ControlFiles<File = GroupAttr>> {
    _ops: KBox<bindings::rblk_groups_ops>,
    _g: core::marker::PhantomData<G>,
}

// SAFETY: only used to unregister, which may happen on any thread.
unsafe impl<G: ControlFiles<File = GroupAttr>> Send for GroupsDir<G> {}
// SAFETY: `&GroupsDir` exposes nothing.
unsafe impl<G: ControlFiles<File = GroupAttr>> Sync for GroupsDir<G> {}

impl<G: ControlFiles<File = GroupAttr>> GroupsDir<G> {
    /// Creates the `groups` directory.
    pub fn add() -> Result<Self> {
        let ops = KBox::new(
            bindings::rblk_groups_ops {
                attr_show: Some(show_callback::<G>),
                attr_store: Some(store_callback::<G>),
            },
            GFP_KERNEL,
        )?;
        // SAFETY: `ops` stays valid until `drop` removes the directory.
        to_result(unsafe { bindings::rblk_groups_dir_add(&*ops) })?;
        // INVARIANT: registered with `ops`, which passes to the value.
        Ok(Self {
            _ops: ops,
            _g: core::marker::PhantomData,
        })
    }
}

impl<G: ControlFiles<File = GroupAttr>> Drop for GroupsDir<G> {
    fn drop(&mut self) {
        // SAFETY: added in `add` (type invariant). Group directories are removed before this
        // (each `GroupDir` is dropped first), so no callback uses the ops afterwards.
        unsafe { bindings::rblk_groups_dir_del() };
    }
}

/// A group's directory `groups/<name>/`; removed on drop.
pub struct GroupDir<G: ControlFiles<File = GroupAttr>> {
    /// Removed on drop.
    _dir: ControlDir<G>,
}

impl<G: ControlFiles<File = GroupAttr>> GroupDir<G> {
    /// Creates `groups/<name>/` showing `group`. The `groups` directory must exist.
    pub fn add(name: &CStr, group: Arc<G>) -> Result<Self> {
        // SAFETY: `rblk_group_dir_add` creates a directory whose callbacks get the pointer it
        // is given (through the `groups` directory's ops, `show_callback` and
        // `store_callback` for this `G`, set by `GroupsDir::add`; or fails without one),
        // and `rblk_group_dir_del` removes it, waiting for running callbacks. `name` is
        // NUL-terminated and only read during the call.
        let dir = unsafe {
            ControlDir::add(
                group,
                |ctx| bindings::rblk_group_dir_add(name.as_char_ptr(), ctx),
                bindings::rblk_group_dir_del,
            )
        }?;
        Ok(Self { _dir: dir })
    }
}
