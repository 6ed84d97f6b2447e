/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Input to rblkback's own bindgen step (see Kbuild): the kernel and Xen declarations the
 * module uses that the kernel crate's `kernel::bindings` does not carry, plus our shim.
 */
#include <linux/types.h>
#include <xen/interface/io/blkif.h>

#include "shim.h"
#include "xen.h"
