// SPDX-License-Identifier: GPL-2.0
/*
 * Glue for rust/module/sys/domains.rs: the /sys/module/rblkback/domains directory, its
 * limits file and one control directory (ctldir.c) per domain.
 */
#include <linux/kobject.h>
#include <linux/module.h>
#include <linux/sysfs.h>

#include "ctldir.h"
#include "domains.h"

/* ---------------------------------------------------------------- domains sysfs */

static const struct rblk_domains_ops *rblk_dom_ops;
static void *rblk_dom_ctx;
static struct kobject *rblk_domains_kobj;

static ssize_t limits_store(struct kobject *k, struct kobj_attribute *a, const char *buf,
			    size_t len)
{
	int err = rblk_dom_ops->limits_write(rblk_dom_ctx, buf, len);

	return err ? err : len;
}
static struct kobj_attribute rblk_limits_attr = __ATTR_WO(limits);

int rblk_domains_dir_add(const struct rblk_domains_ops *ops, void *ctx)
{
	int err;

	rblk_dom_ops = ops;
	rblk_dom_ctx = ctx;
	rblk_domains_kobj = kobject_create_and_add("domains", &THIS_MODULE->mkobj.kobj);
	if (!rblk_domains_kobj)
		return -ENOMEM;
	err = sysfs_create_file(rblk_domains_kobj, &rblk_limits_attr.attr);
	if (err) {
		kobject_put(rblk_domains_kobj);
		rblk_domains_kobj = NULL;
	}
	return err;
}

void rblk_domains_dir_del(void)
{
	if (!rblk_domains_kobj)
		return;
	sysfs_remove_file(rblk_domains_kobj, &rblk_limits_attr.attr);
	kobject_put(rblk_domains_kobj);
	rblk_domains_kobj = NULL;
}

static u64 rblk_dom_show(void *domain, unsigned int file)
{
	return rblk_dom_ops->attr_show(domain, file);
}

static int rblk_dom_store(void *domain, unsigned int file, const char *buf, size_t len)
{
	return rblk_dom_ops->attr_store(domain, file, buf, len);
}

static const struct rblk_ctl_ops rblk_dom_ctl_ops = {
	.show = rblk_dom_show,
	.store = rblk_dom_store,
};

RBLK_CTL_FILE(dom, iops_limit, 0644, RBLK_DOM_IOPS_LIMIT);
RBLK_CTL_FILE(dom, bps_limit, 0644, RBLK_DOM_BPS_LIMIT);
RBLK_CTL_FILE(dom, read_iops_limit, 0644, RBLK_DOM_READ_IOPS_LIMIT);
RBLK_CTL_FILE(dom, write_iops_limit, 0644, RBLK_DOM_WRITE_IOPS_LIMIT);
RBLK_CTL_FILE(dom, read_bps_limit, 0644, RBLK_DOM_READ_BPS_LIMIT);
RBLK_CTL_FILE(dom, write_bps_limit, 0644, RBLK_DOM_WRITE_BPS_LIMIT);
RBLK_CTL_FILE(dom, admitted_ops, 0444, RBLK_DOM_ADMITTED_OPS);
RBLK_CTL_FILE(dom, admitted_bytes, 0444, RBLK_DOM_ADMITTED_BYTES);
RBLK_CTL_FILE(dom, throttled_slices, 0444, RBLK_DOM_THROTTLED_SLICES);
RBLK_CTL_FILE(dom, throttled_us, 0444, RBLK_DOM_THROTTLED_US);
RBLK_CTL_FILE(dom, admitted_requests, 0444, RBLK_DOM_ADMITTED_REQUESTS);
RBLK_CTL_FILE(dom, holds, 0444, RBLK_DOM_HOLDS);
RBLK_CTL_FILE(dom, rings, 0444, RBLK_DOM_RINGS);
RBLK_CTL_FILE(dom, weight, 0644, RBLK_DOM_WEIGHT);
RBLK_CTL_FILE(dom, reservation_iops, 0644, RBLK_DOM_RESERVATION_IOPS);
RBLK_CTL_FILE(dom, reservation_bps, 0644, RBLK_DOM_RESERVATION_BPS);
RBLK_CTL_FILE(dom, sched_dispatched, 0444, RBLK_DOM_SCHED_DISPATCHED);
RBLK_CTL_FILE(dom, sched_holds, 0444, RBLK_DOM_SCHED_HOLDS);
RBLK_CTL_FILE(dom, latency_target_us, 0644, RBLK_DOM_LATENCY_TARGET_US);

static struct attribute *rblk_dom_attrs[] = {
	&dom_file_iops_limit.attr,	  &dom_file_bps_limit.attr,
	&dom_file_read_iops_limit.attr,	  &dom_file_write_iops_limit.attr,
	&dom_file_read_bps_limit.attr,	  &dom_file_write_bps_limit.attr,
	&dom_file_admitted_ops.attr,	  &dom_file_admitted_bytes.attr,
	&dom_file_throttled_slices.attr,  &dom_file_throttled_us.attr,
	&dom_file_admitted_requests.attr, &dom_file_holds.attr,
	&dom_file_rings.attr,		  &dom_file_weight.attr,
	&dom_file_reservation_iops.attr,  &dom_file_reservation_bps.attr,
	&dom_file_sched_dispatched.attr,  &dom_file_sched_holds.attr,
	&dom_file_latency_target_us.attr, NULL,
};
ATTRIBUTE_GROUPS(rblk_dom);

static const struct kobj_type rblk_dom_ktype = {
	.release = rblk_ctl_release,
	.sysfs_ops = &rblk_ctl_sysfs_ops,
	.default_groups = rblk_dom_groups,
};

struct rblk_ctl_dir *rblk_domain_dir_add(u16 domid, void *domain)
{
	char name[8];

	snprintf(name, sizeof(name), "%u", domid);
	return rblk_ctl_dir_add(&rblk_dom_ktype, rblk_domains_kobj, name, &rblk_dom_ctl_ops,
				domain);
}

void rblk_domain_dir_del(struct rblk_ctl_dir *d)
{
	rblk_ctl_dir_del(d);
}
