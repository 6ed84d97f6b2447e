/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Input to rblkback's own bindgen step (see Kbuild): the kernel and Xen declarations the
 * module uses that the kernel crate's `kernel::bindings` does not carry, plus our shim.
 *
 * The shim is the C side of rblkback's Rust/C boundary: one C file and header per
 * rust/module/sys/ facility, as the kernel's rust/helpers/. Every function declared there is
 * either implemented in C (macros, static inlines, container_of and statically initialised
 * kernel structures that Rust cannot use directly; no policy) and called from Rust, or
 * implemented in Rust and called from C. Functions named rblk_* are C called by Rust;
 * callbacks go through function pointers that Rust passes in (or fixed rblkback_* symbols
 * implemented in Rust). bindgen turns these headers into rust/module/generated/bindings.rs
 * at build time, so both sides compile against one declaration; rust/module/sys/ holds the
 * safe wrappers and checks the Rust definitions against it.
 */
#include <linux/types.h>
#include <xen/interface/io/blkif.h>

#include "params.h"
#include "xenbus.h"
#include "ring.h"
#include "evtchn.h"
#include "worker.h"
#include "sync.h"
#include "block.h"
#include "time.h"
#include "domains.h"
#include "groups.h"
