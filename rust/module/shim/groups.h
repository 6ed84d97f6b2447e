/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Declarations of groups.c, used by rust/module/sys/groups.rs: /sys/module/rblkback/groups,
 * one directory per scheduling group (the vbds on one device, or named by the operator).
 */
#ifndef RBLKBACK_GROUPS_H
#define RBLKBACK_GROUPS_H

#include <linux/types.h>

/*
 * Files of a group directory: the window (read-write), counters, the pool's limits
 * (read-write), the latency target (read-write), the window in force now and the device
 * latency the adaptive window last moved by.
 */
enum rblk_group_attr {
	RBLK_GRP_WINDOW = 0,
	RBLK_GRP_IN_FLIGHT = 1,
	RBLK_GRP_DISPATCHED = 2,
	RBLK_GRP_HELD = 3,
	RBLK_GRP_VBDS = 4,
	RBLK_GRP_IOPS_LIMIT = 5,
	RBLK_GRP_BPS_LIMIT = 6,
	RBLK_GRP_LATENCY_TARGET_US = 7,
	RBLK_GRP_WINDOW_NOW = 8,
	RBLK_GRP_LATENCY_US = 9,
	RBLK_GRP_UNPROTECTED_CAP = 10,
	RBLK_GRP_PROTECTION_CUTS = 11,
	RBLK_GRP_ATTR_COUNT = 12,
};
struct rblk_groups_ops {
	/* a group file's value */
	u64 (*attr_show)(void *group, unsigned int attr);
	/* a write to a group's writable file; 0 or -errno */
	int (*attr_store)(void *group, unsigned int attr, const char *buf, size_t len);
};
/* Creates the groups directory; its group directories call ops. */
int rblk_groups_dir_add(const struct rblk_groups_ops *ops);
void rblk_groups_dir_del(void);
struct rblk_ctl_dir;
/* groups/<name>/ (name NUL-terminated); ERR_PTR on failure */
struct rblk_ctl_dir *rblk_group_dir_add(const char *name, void *group);
/* Removes it; waits for running show/store calls. */
void rblk_group_dir_del(struct rblk_ctl_dir *dir);

#endif /* RBLKBACK_GROUPS_H */
