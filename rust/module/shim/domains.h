/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Declarations of domains.c, used by rust/module/sys/domains.rs: /sys/module/rblkback/domains.
 */
#ifndef RBLKBACK_DOMAINS_H
#define RBLKBACK_DOMAINS_H

#include <linux/types.h>

/*
 * --- /sys/module/rblkback/domains: per-domain limits and statistics ---
 * Files of a domain directory: the six limits (read-write), counters, then the scheduler's
 * settings (read-write) and counters.
 */
enum rblk_domain_attr {
	RBLK_DOM_IOPS_LIMIT = 0,
	RBLK_DOM_BPS_LIMIT = 1,
	RBLK_DOM_READ_IOPS_LIMIT = 2,
	RBLK_DOM_WRITE_IOPS_LIMIT = 3,
	RBLK_DOM_READ_BPS_LIMIT = 4,
	RBLK_DOM_WRITE_BPS_LIMIT = 5,
	RBLK_DOM_ADMITTED_OPS = 6,
	RBLK_DOM_ADMITTED_BYTES = 7,
	RBLK_DOM_THROTTLED_SLICES = 8,
	RBLK_DOM_THROTTLED_US = 9,
	RBLK_DOM_ADMITTED_REQUESTS = 10,
	RBLK_DOM_HOLDS = 11,
	RBLK_DOM_RINGS = 12,
	RBLK_DOM_WEIGHT = 13,
	RBLK_DOM_RESERVATION_IOPS = 14,
	RBLK_DOM_RESERVATION_BPS = 15,
	RBLK_DOM_SCHED_DISPATCHED = 16,
	RBLK_DOM_SCHED_HOLDS = 17,
	RBLK_DOM_LATENCY_TARGET_US = 18,
	RBLK_DOM_ATTR_COUNT = 19,
};
struct rblk_domains_ops {
	/* a line written to domains/limits; 0 or -errno */
	int (*limits_write)(void *ctx, const char *buf, size_t len);
	/* a domain file's value */
	u64 (*attr_show)(void *domain, unsigned int attr);
	/* a write to a domain's writable file; 0 or -errno */
	int (*attr_store)(void *domain, unsigned int attr, const char *buf, size_t len);
};
int rblk_domains_dir_add(const struct rblk_domains_ops *ops, void *ctx);
void rblk_domains_dir_del(void);
struct rblk_ctl_dir;
/* domains/<domid>/; ERR_PTR on failure */
struct rblk_ctl_dir *rblk_domain_dir_add(u16 domid, void *domain);
/* Removes it; waits for running show/store calls. */
void rblk_domain_dir_del(struct rblk_ctl_dir *dir);

#endif /* RBLKBACK_DOMAINS_H */
