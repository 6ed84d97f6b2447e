// SPDX-License-Identifier: GPL-2.0
/*
 * Glue for rust/module/sys/groups.rs: the /sys/module/rblkback/groups directory and one
 * control directory (ctldir.c) per scheduling group.
 */
#include <linux/kobject.h>
#include <linux/module.h>
#include <linux/sysfs.h>

#include "ctldir.h"
#include "groups.h"

static const struct rblk_groups_ops *rblk_grp_ops;
static struct kobject *rblk_groups_kobj;

int rblk_groups_dir_add(const struct rblk_groups_ops *ops)
{
	rblk_grp_ops = ops;
	rblk_groups_kobj = kobject_create_and_add("groups", &THIS_MODULE->mkobj.kobj);
	return rblk_groups_kobj ? 0 : -ENOMEM;
}

void rblk_groups_dir_del(void)
{
	if (!rblk_groups_kobj)
		return;
	kobject_put(rblk_groups_kobj);
	rblk_groups_kobj = NULL;
}

static u64 rblk_grp_show(void *group, unsigned int file)
{
	return rblk_grp_ops->attr_show(group, file);
}

static int rblk_grp_store(void *group, unsigned int file, const char *buf, size_t len)
{
	return rblk_grp_ops->attr_store(group, file, buf, len);
}

static const struct rblk_ctl_ops rblk_grp_ctl_ops = {
	.show = rblk_grp_show,
	.store = rblk_grp_store,
};

RBLK_CTL_FILE(grp, window, 0644, RBLK_GRP_WINDOW);
RBLK_CTL_FILE(grp, in_flight, 0444, RBLK_GRP_IN_FLIGHT);
RBLK_CTL_FILE(grp, dispatched, 0444, RBLK_GRP_DISPATCHED);
RBLK_CTL_FILE(grp, held, 0444, RBLK_GRP_HELD);
RBLK_CTL_FILE(grp, vbds, 0444, RBLK_GRP_VBDS);
RBLK_CTL_FILE(grp, iops_limit, 0644, RBLK_GRP_IOPS_LIMIT);
RBLK_CTL_FILE(grp, bps_limit, 0644, RBLK_GRP_BPS_LIMIT);
RBLK_CTL_FILE(grp, latency_target_us, 0644, RBLK_GRP_LATENCY_TARGET_US);
RBLK_CTL_FILE(grp, window_now, 0444, RBLK_GRP_WINDOW_NOW);
RBLK_CTL_FILE(grp, latency_us, 0444, RBLK_GRP_LATENCY_US);
RBLK_CTL_FILE(grp, unprotected_cap, 0444, RBLK_GRP_UNPROTECTED_CAP);
RBLK_CTL_FILE(grp, protection_cuts, 0444, RBLK_GRP_PROTECTION_CUTS);

static struct attribute *rblk_grp_attrs[] = {
	&grp_file_window.attr,	   &grp_file_in_flight.attr,	     &grp_file_dispatched.attr,
	&grp_file_held.attr,	   &grp_file_vbds.attr,		     &grp_file_iops_limit.attr,
	&grp_file_bps_limit.attr, &grp_file_latency_target_us.attr, &grp_file_window_now.attr,
	&grp_file_latency_us.attr, &grp_file_unprotected_cap.attr,
	&grp_file_protection_cuts.attr, NULL,
};
ATTRIBUTE_GROUPS(rblk_grp);

static const struct kobj_type rblk_grp_ktype = {
	.release = rblk_ctl_release,
	.sysfs_ops = &rblk_ctl_sysfs_ops,
	.default_groups = rblk_grp_groups,
};

struct rblk_ctl_dir *rblk_group_dir_add(const char *name, void *group)
{
	return rblk_ctl_dir_add(&rblk_grp_ktype, rblk_groups_kobj, name, &rblk_grp_ctl_ops,
				group);
}

void rblk_group_dir_del(struct rblk_ctl_dir *d)
{
	rblk_ctl_dir_del(d);
}
