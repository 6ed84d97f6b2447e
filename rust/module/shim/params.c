// SPDX-License-Identifier: GPL-2.0
/*
 * Module parameters for rblkback.
 *
 * Linux 6.12's Rust `module!` macro cannot declare parameters, so they are declared here with
 * module_param_cb(). Parsing and checking are Rust's (rblkback_param_parse: the number format
 * of throttle::number::parse_number, the ranges of throttle::params::validate), so insmod,
 * runtime sysfs writes, the per-domain files and the host tests share one format and one
 * table of ranges. A refused value fails insmod with -EINVAL, or fails the sysfs write and
 * leaves the old value.
 */
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/moduleparam.h>

#include "params.h"

static u64 rblk_param_values[RBLK_PARAM_COUNT] = {
	[RBLK_PARAM_TIMESLICE_US] = RBLK_DEFAULT_TIMESLICE_US,
	[RBLK_PARAM_DEFAULT_IOPS] = RBLK_DEFAULT_DEFAULT_IOPS,
	[RBLK_PARAM_DEFAULT_BPS] = RBLK_DEFAULT_DEFAULT_BPS,
	[RBLK_PARAM_BURST] = RBLK_DEFAULT_BURST,
	[RBLK_PARAM_OP_SIZE] = RBLK_DEFAULT_OP_SIZE,
	[RBLK_PARAM_MAX_INDIRECT_SEGMENTS] = RBLK_DEFAULT_MAX_INDIRECT_SEGMENTS,
	[RBLK_PARAM_MAX_RING_PAGE_ORDER] = RBLK_DEFAULT_MAX_RING_PAGE_ORDER,
	[RBLK_PARAM_MAX_QUEUES] = RBLK_DEFAULT_MAX_QUEUES,
	[RBLK_PARAM_FEATURE_PERSISTENT] = RBLK_DEFAULT_FEATURE_PERSISTENT,
	[RBLK_PARAM_MAX_PERSISTENT_GRANTS] = RBLK_DEFAULT_MAX_PERSISTENT_GRANTS,
	[RBLK_PARAM_PERSISTENT_GRANT_UNUSED_SECONDS] = RBLK_DEFAULT_PERSISTENT_GRANT_UNUSED_SECONDS,
	[RBLK_PARAM_MAX_RING_BUFFER_PAGES] = RBLK_DEFAULT_MAX_RING_BUFFER_PAGES,
	[RBLK_PARAM_DEFAULT_WEIGHT] = RBLK_DEFAULT_DEFAULT_WEIGHT,
};

static int rblk_param_set(const char *val, const struct kernel_param *kp)
{
	u64 *slot = kp->arg;
	unsigned int id = slot - rblk_param_values;
	u64 value;
	int err;

	err = rblkback_param_parse(id, val, &value);
	if (err)
		return err;
	WRITE_ONCE(*slot, value);
	return 0;
}

static int rblk_param_show(char *buf, const struct kernel_param *kp)
{
	return sysfs_emit(buf, "%llu\n", READ_ONCE(*(u64 *)kp->arg));
}

static const struct kernel_param_ops rblk_param_ops = {
	.set = rblk_param_set,
	.get = rblk_param_show,
};

u64 rblk_param_get(unsigned int id)
{
	if (id >= RBLK_PARAM_COUNT)
		return 0;
	return READ_ONCE(rblk_param_values[id]);
}

/*
 * timeslice_us is read-only after load: running slice timers are armed with it. The
 * defaults for new domains may change at runtime; they apply to domains that connect later.
 */
module_param_cb(timeslice_us, &rblk_param_ops,
		&rblk_param_values[RBLK_PARAM_TIMESLICE_US], 0444);
MODULE_PARM_DESC(timeslice_us, "Accounting timeslice in microseconds (100..1000000, default 10000)");
module_param_cb(default_iops, &rblk_param_ops,
		&rblk_param_values[RBLK_PARAM_DEFAULT_IOPS], 0644);
MODULE_PARM_DESC(default_iops, "Default per-domain operations per second (0 = unlimited)");
module_param_cb(default_bps, &rblk_param_ops,
		&rblk_param_values[RBLK_PARAM_DEFAULT_BPS], 0644);
MODULE_PARM_DESC(default_bps, "Default per-domain bytes per second (0 = unlimited)");
module_param_cb(burst, &rblk_param_ops, &rblk_param_values[RBLK_PARAM_BURST], 0644);
MODULE_PARM_DESC(burst, "Timeslices of unused budget an idle domain may bank (0..10000)");
module_param_cb(op_size, &rblk_param_ops, &rblk_param_values[RBLK_PARAM_OP_SIZE], 0644);
MODULE_PARM_DESC(op_size, "Bytes that count as one operation (0 = one per request, else a multiple of 512)");
/*
 * Protocol maxima, read-only after load like stock xen-blkback's: they are advertised in
 * xenstore when a device is probed and checked again when its frontend connects.
 */
module_param_cb(max_indirect_segments, &rblk_param_ops,
		&rblk_param_values[RBLK_PARAM_MAX_INDIRECT_SEGMENTS], 0444);
MODULE_PARM_DESC(max_indirect_segments, "Segments per indirect request advertised (0 = no indirect requests, max 256, default 256)");
module_param_cb(max_ring_page_order, &rblk_param_ops,
		&rblk_param_values[RBLK_PARAM_MAX_RING_PAGE_ORDER], 0444);
MODULE_PARM_DESC(max_ring_page_order, "Largest shared ring page order accepted (0..4, default 4)");
/*
 * Like stock xen-blkback's, these may change at runtime; a ring reads them when its
 * frontend connects (max_queues is advertised when a device is probed).
 */
module_param_cb(max_queues, &rblk_param_ops, &rblk_param_values[RBLK_PARAM_MAX_QUEUES], 0644);
MODULE_PARM_DESC(max_queues, "Most queues (rings) per device a frontend may open (0 = one per online CPU, max 32)");
module_param_cb(feature_persistent, &rblk_param_ops,
		&rblk_param_values[RBLK_PARAM_FEATURE_PERSISTENT], 0644);
MODULE_PARM_DESC(feature_persistent, "Offer persistent grants to frontends (0 or 1, default 1)");
module_param_cb(max_persistent_grants, &rblk_param_ops,
		&rblk_param_values[RBLK_PARAM_MAX_PERSISTENT_GRANTS], 0644);
MODULE_PARM_DESC(max_persistent_grants, "Most grants a ring keeps mapped persistently (default 1056)");
module_param_cb(persistent_grant_unused_seconds, &rblk_param_ops,
		&rblk_param_values[RBLK_PARAM_PERSISTENT_GRANT_UNUSED_SECONDS], 0644);
MODULE_PARM_DESC(persistent_grant_unused_seconds, "Seconds an unused persistent grant stays mapped (0 = no limit, default 60)");
module_param_cb(max_ring_buffer_pages, &rblk_param_ops,
		&rblk_param_values[RBLK_PARAM_MAX_RING_BUFFER_PAGES], 0644);
MODULE_PARM_DESC(max_ring_buffer_pages, "Most pages a ring holds to map requests' grants that are not persistent (256..65536, default 4096 = 16 MiB)");
/* The scheduler's weight for domains that have none set; read when a domain is first seen. */
module_param_cb(default_weight, &rblk_param_ops,
		&rblk_param_values[RBLK_PARAM_DEFAULT_WEIGHT], 0644);
MODULE_PARM_DESC(default_weight, "Scheduler weight of a domain with none set (1..10000, default 100)");
