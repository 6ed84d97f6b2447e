// SPDX-License-Identifier: GPL-2.0

//! Module parameters: the Rust half of the glue in `shim/params.c`.
//!
//! C owns the storage and the sysfs files (6.12's `module!` has no parameters); Rust owns
//! the rules, from [`crate::throttle::params`].

use super::bindings;
use crate::throttle::number::parse_number;
use crate::throttle::params::{validate, Param, ParamError, ALL};
use kernel::prelude::*;
use kernel::str::CStr;

// The C defaults must be the ones the shared crate documents and tests.
const _: () = {
    assert!(bindings::RBLK_DEFAULT_TIMESLICE_US as u64 == Param::TimesliceUs.default_value());
    assert!(bindings::RBLK_DEFAULT_DEFAULT_IOPS as u64 == Param::DefaultIops.default_value());
    assert!(bindings::RBLK_DEFAULT_DEFAULT_BPS as u64 == Param::DefaultBps.default_value());
    assert!(bindings::RBLK_DEFAULT_BURST as u64 == Param::Burst.default_value());
    assert!(bindings::RBLK_DEFAULT_OP_SIZE as u64 == Param::OpSize.default_value());
    assert!(
        bindings::RBLK_DEFAULT_MAX_INDIRECT_SEGMENTS as u64
            == Param::MaxIndirectSegments.default_value()
    );
    assert!(
        bindings::RBLK_DEFAULT_MAX_RING_PAGE_ORDER as u64
            == Param::MaxRingPageOrder.default_value()
    );
    assert!(bindings::RBLK_DEFAULT_MAX_QUEUES as u64 == Param::MaxQueues.default_value());
    assert!(
        bindings::RBLK_DEFAULT_FEATURE_PERSISTENT as u64
            == Param::FeaturePersistent.default_value()
    );
    assert!(
        bindings::RBLK_DEFAULT_MAX_PERSISTENT_GRANTS as u64
            == Param::MaxPersistentGrants.default_value()
    );
    assert!(
        bindings::RBLK_DEFAULT_PERSISTENT_GRANT_UNUSED_SECONDS as u64
            == Param::PersistentGrantUnusedSeconds.default_value()
    );
    assert!(
        bindings::RBLK_DEFAULT_MAX_RING_BUFFER_PAGES as u64
            == Param::MaxRingBufferPages.default_value()
    );
    assert!(bindings::RBLK_DEFAULT_DEFAULT_WEIGHT as u64 == Param::DefaultWeight.default_value());
    assert!(bindings::rblk_param_id_RBLK_PARAM_COUNT as usize == ALL.len());
};

/// The C enum value for `param`; `ALL` is in the C enum's order.
const fn c_id(param: Param) -> u32 {
    match param {
        Param::TimesliceUs => bindings::rblk_param_id_RBLK_PARAM_TIMESLICE_US,
        Param::DefaultIops => bindings::rblk_param_id_RBLK_PARAM_DEFAULT_IOPS,
        Param::DefaultBps => bindings::rblk_param_id_RBLK_PARAM_DEFAULT_BPS,
        Param::Burst => bindings::rblk_param_id_RBLK_PARAM_BURST,
        Param::OpSize => bindings::rblk_param_id_RBLK_PARAM_OP_SIZE,
        Param::MaxIndirectSegments => bindings::rblk_param_id_RBLK_PARAM_MAX_INDIRECT_SEGMENTS,
        Param::MaxRingPageOrder => bindings::rblk_param_id_RBLK_PARAM_MAX_RING_PAGE_ORDER,
        Param::MaxQueues => bindings::rblk_param_id_RBLK_PARAM_MAX_QUEUES,
        Param::FeaturePersistent => bindings::rblk_param_id_RBLK_PARAM_FEATURE_PERSISTENT,
        Param::MaxPersistentGrants => bindings::rblk_param_id_RBLK_PARAM_MAX_PERSISTENT_GRANTS,
        Param::PersistentGrantUnusedSeconds => {
            bindings::rblk_param_id_RBLK_PARAM_PERSISTENT_GRANT_UNUSED_SECONDS
        }
        Param::MaxRingBufferPages => bindings::rblk_param_id_RBLK_PARAM_MAX_RING_BUFFER_PAGES,
        Param::DefaultWeight => bindings::rblk_param_id_RBLK_PARAM_DEFAULT_WEIGHT,
    }
}

/// Current value of `param`.
pub fn get(param: Param) -> u64 {
    // SAFETY: `rblk_param_get` takes any id (it returns 0 for an unknown one) and only reads
    // a `u64` with READ_ONCE; it has no other precondition.
    unsafe { bindings::rblk_param_get(c_id(param)) }
}

/// Logs why `value` is not acceptable for `param`, naming the parameter.
pub fn report_invalid(param: Param, value: u64) {
    match validate(param, value) {
        Ok(()) => {}
        Err(ParamError::OutOfRange { min, max }) => pr_err!(
            "invalid module parameter {}={}: must be in {}..={}\n",
            param.name(),
            value,
            min,
            max
        ),
        Err(ParamError::NotSectorMultiple) => pr_err!(
            "invalid module parameter {}={}: must be 0 or a multiple of 512\n",
            param.name(),
            value
        ),
    }
}

/// Called by `shim/params.c` for the text given to `insmod` or written to sysfs, before it
/// stores the value: the number format of every file of the module
/// ([`crate::throttle::number`]), then the parameter's range.
///
/// Returns 0 with `*value` set to accept, or `-EINVAL` (after logging) to refuse.
///
/// # Safety
///
/// `text` is NUL-terminated and readable, and `value` writable, for the call (or null).
#[no_mangle]
pub unsafe extern "C" fn rblkback_param_parse(
    id: u32,
    text: *const kernel::ffi::c_char,
    value: *mut u64,
) -> kernel::ffi::c_int {
    let Some(param) = ALL.iter().copied().find(|p| c_id(*p) == id) else {
        pr_err!("parameter id {} is unknown\n", id);
        return EINVAL.to_errno();
    };
    if text.is_null() || value.is_null() {
        return EINVAL.to_errno();
    }
    // SAFETY: not null; NUL-terminated and alive for the call (the caller's contract).
    let text = unsafe { CStr::from_char_ptr(text) };
    let parsed = match parse_number(text.as_bytes()) {
        Ok(v) => v,
        Err(_) => {
            pr_err!(
                "parameter {}: '{}' is not an unsigned decimal number\n",
                param.name(),
                text.as_bytes().escape_ascii()
            );
            return EINVAL.to_errno();
        }
    };
    if validate(param, parsed).is_err() {
        report_invalid(param, parsed);
        return EINVAL.to_errno();
    }
    // SAFETY: not null; writable for the call (the caller's contract).
    unsafe { *value = parsed };
    0
}

// The exported function must have exactly the type C was told about in params.h.
const _: unsafe extern "C" fn(u32, *const kernel::ffi::c_char, *mut u64) -> kernel::ffi::c_int =
    bindings::rblkback_param_parse;
const _: unsafe extern "C" fn(u32, *const kernel::ffi::c_char, *mut u64) -> kernel::ffi::c_int =
    rblkback_param_parse;
