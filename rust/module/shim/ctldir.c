// SPDX-License-Identifier: GPL-2.0
/*
 * Control directories (see ctldir.h): a kobject carrying the Rust object it shows and the
 * callbacks to reach it, so that every kind of directory (domains/<domid>, groups/<name>)
 * shares one show/store path.
 */
#include <linux/container_of.h>
#include <linux/err.h>
#include <linux/slab.h>

#include "ctldir.h"

struct rblk_ctl_dir {
	struct kobject kobj;
	const struct rblk_ctl_ops *ops;
	void *ctx;
};

static ssize_t rblk_ctl_show(struct kobject *k, struct attribute *a, char *buf)
{
	struct rblk_ctl_dir *d = container_of(k, struct rblk_ctl_dir, kobj);
	struct rblk_ctl_file *f = container_of(a, struct rblk_ctl_file, attr);

	return sysfs_emit(buf, "%llu\n", d->ops->show(d->ctx, f->id));
}

static ssize_t rblk_ctl_store(struct kobject *k, struct attribute *a, const char *buf,
			      size_t len)
{
	struct rblk_ctl_dir *d = container_of(k, struct rblk_ctl_dir, kobj);
	struct rblk_ctl_file *f = container_of(a, struct rblk_ctl_file, attr);
	int err = d->ops->store(d->ctx, f->id, buf, len);

	return err ? err : len;
}

const struct sysfs_ops rblk_ctl_sysfs_ops = {
	.show = rblk_ctl_show,
	.store = rblk_ctl_store,
};

void rblk_ctl_release(struct kobject *k)
{
	kfree(container_of(k, struct rblk_ctl_dir, kobj));
}

struct rblk_ctl_dir *rblk_ctl_dir_add(const struct kobj_type *kind, struct kobject *parent,
				      const char *name, const struct rblk_ctl_ops *ops,
				      void *ctx)
{
	struct rblk_ctl_dir *d;
	int err;

	if (!parent)
		return ERR_PTR(-ENODEV);
	d = kzalloc(sizeof(*d), GFP_KERNEL);
	if (!d)
		return ERR_PTR(-ENOMEM);
	d->ops = ops;
	d->ctx = ctx;
	err = kobject_init_and_add(&d->kobj, kind, parent, "%s", name);
	if (err) {
		kobject_put(&d->kobj);
		return ERR_PTR(err);
	}
	return d;
}

void rblk_ctl_dir_del(struct rblk_ctl_dir *d)
{
	/* kobject_del drains running show/store calls before it returns. */
	kobject_del(&d->kobj);
	kobject_put(&d->kobj);
}
