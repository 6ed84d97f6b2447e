// SPDX-License-Identifier: GPL-2.0
/*
 * Glue for rust/module/sys/domains.rs: the /sys/module/rblkback/domains directory, its
 * limits file and one kobject per domain whose files call back into Rust.
 */
#include <linux/container_of.h>
#include <linux/err.h>
#include <linux/kobject.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/sysfs.h>

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

struct rblk_domain_dir {
	struct kobject kobj;
	void *domain;
};

struct rblk_dom_attr {
	struct attribute attr;
	unsigned int id;
};

static ssize_t rblk_dom_show(struct kobject *k, struct attribute *a, char *buf)
{
	struct rblk_domain_dir *d = container_of(k, struct rblk_domain_dir, kobj);
	struct rblk_dom_attr *da = container_of(a, struct rblk_dom_attr, attr);

	return sysfs_emit(buf, "%llu\n", rblk_dom_ops->attr_show(d->domain, da->id));
}

static ssize_t rblk_dom_store(struct kobject *k, struct attribute *a, const char *buf,
			      size_t len)
{
	struct rblk_domain_dir *d = container_of(k, struct rblk_domain_dir, kobj);
	struct rblk_dom_attr *da = container_of(a, struct rblk_dom_attr, attr);
	int err = rblk_dom_ops->attr_store(d->domain, da->id, buf, len);

	return err ? err : len;
}

static const struct sysfs_ops rblk_dom_sysfs_ops = {
	.show = rblk_dom_show,
	.store = rblk_dom_store,
};

#define RBLK_DOM_ATTR(fname, perm, aid) \
	static struct rblk_dom_attr rblk_dom_attr_##fname = { \
		.attr = { .name = #fname, .mode = perm }, .id = aid }

RBLK_DOM_ATTR(iops_limit, 0644, RBLK_DOM_IOPS_LIMIT);
RBLK_DOM_ATTR(bps_limit, 0644, RBLK_DOM_BPS_LIMIT);
RBLK_DOM_ATTR(read_iops_limit, 0644, RBLK_DOM_READ_IOPS_LIMIT);
RBLK_DOM_ATTR(write_iops_limit, 0644, RBLK_DOM_WRITE_IOPS_LIMIT);
RBLK_DOM_ATTR(read_bps_limit, 0644, RBLK_DOM_READ_BPS_LIMIT);
RBLK_DOM_ATTR(write_bps_limit, 0644, RBLK_DOM_WRITE_BPS_LIMIT);
RBLK_DOM_ATTR(admitted_ops, 0444, RBLK_DOM_ADMITTED_OPS);
RBLK_DOM_ATTR(admitted_bytes, 0444, RBLK_DOM_ADMITTED_BYTES);
RBLK_DOM_ATTR(throttled_slices, 0444, RBLK_DOM_THROTTLED_SLICES);
RBLK_DOM_ATTR(throttled_us, 0444, RBLK_DOM_THROTTLED_US);
RBLK_DOM_ATTR(admitted_requests, 0444, RBLK_DOM_ADMITTED_REQUESTS);
RBLK_DOM_ATTR(holds, 0444, RBLK_DOM_HOLDS);
RBLK_DOM_ATTR(rings, 0444, RBLK_DOM_RINGS);

static struct attribute *rblk_dom_attrs[] = {
	&rblk_dom_attr_iops_limit.attr,	      &rblk_dom_attr_bps_limit.attr,
	&rblk_dom_attr_read_iops_limit.attr,  &rblk_dom_attr_write_iops_limit.attr,
	&rblk_dom_attr_read_bps_limit.attr,   &rblk_dom_attr_write_bps_limit.attr,
	&rblk_dom_attr_admitted_ops.attr,     &rblk_dom_attr_admitted_bytes.attr,
	&rblk_dom_attr_throttled_slices.attr, &rblk_dom_attr_throttled_us.attr,
	&rblk_dom_attr_admitted_requests.attr, &rblk_dom_attr_holds.attr,
	&rblk_dom_attr_rings.attr,
	NULL,
};
ATTRIBUTE_GROUPS(rblk_dom);

static void rblk_dom_release(struct kobject *k)
{
	kfree(container_of(k, struct rblk_domain_dir, kobj));
}

static const struct kobj_type rblk_dom_ktype = {
	.release = rblk_dom_release,
	.sysfs_ops = &rblk_dom_sysfs_ops,
	.default_groups = rblk_dom_groups,
};

struct rblk_domain_dir *rblk_domain_dir_add(u16 domid, void *domain)
{
	struct rblk_domain_dir *d;
	int err;

	if (!rblk_domains_kobj)
		return ERR_PTR(-ENODEV);
	d = kzalloc(sizeof(*d), GFP_KERNEL);
	if (!d)
		return ERR_PTR(-ENOMEM);
	d->domain = domain;
	err = kobject_init_and_add(&d->kobj, &rblk_dom_ktype, rblk_domains_kobj, "%u", domid);
	if (err) {
		kobject_put(&d->kobj);
		return ERR_PTR(err);
	}
	return d;
}

void rblk_domain_dir_del(struct rblk_domain_dir *d)
{
	/* kobject_del drains running show/store calls before it returns. */
	kobject_del(&d->kobj);
	kobject_put(&d->kobj);
}
