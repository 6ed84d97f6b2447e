/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Input to rblkback's own bindgen step (see Kbuild): the kernel and Xen declarations the
 * module uses that the kernel crate's `kernel::bindings` does not carry, plus our shim.
 *
 * The shim is one C file and header per rust/module/sys/ facility (as the kernel's
 * rust/helpers/): thin glue over macros, static inlines, container_of and statically
 * initialised structures that Rust cannot use directly. No policy lives there; see
 * rust/module/sys/ for the safe wrappers. Functions named rblk_* are C called by Rust;
 * callbacks go through function pointers that Rust passes in (or fixed rblkback_* symbols
 * implemented in Rust).
 */
#include <linux/types.h>
#include <xen/interface/io/blkif.h>

#include "shim.h"
#include "xenbus.h"
#include "ring.h"
#include "evtchn.h"
#include "worker.h"
#include "sync.h"
#include "block.h"
#include "time.h"
#include "domains.h"
