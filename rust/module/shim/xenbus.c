// SPDX-License-Identifier: GPL-2.0
/*
 * Glue for rust/module/sys/xenbus.rs: xenbus driver registration, xenbus device accessors,
 * xenstore reads/writes/transactions/watches, the vbd's sysfs statistics/physical_device/
 * mode, the module reference, num_online_cpus and whether we run on Xen.
 */
#include <linux/container_of.h>
#include <linux/cpumask.h>
#include <linux/device.h>
#include <linux/err.h>
#include <linux/minmax.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/sysfs.h>
#include <xen/xen.h>
#include <xen/xenbus.h>

#include "xenbus.h"

/* ---------------------------------------------------------------- xenbus driver */

static const struct rblk_xenbus_ops *rblk_ops;

static int rblk_c_probe(struct xenbus_device *dev, const struct xenbus_device_id *id)
{
	return rblk_ops->probe(rblk_ops->ctx, dev);
}

static void rblk_c_remove(struct xenbus_device *dev)
{
	rblk_ops->remove(dev);
}

static void rblk_c_frontend_changed(struct xenbus_device *dev, enum xenbus_state state)
{
	rblk_ops->frontend_changed(dev, state);
}

static const struct xenbus_device_id rblk_ids[] = {
	{ "vbd" },
	{ "" }
};

static struct xenbus_driver rblk_driver = {
	.ids = rblk_ids,
	.probe = rblk_c_probe,
	.remove = rblk_c_remove,
	.otherend_changed = rblk_c_frontend_changed,
	.allow_rebind = true,
};

int rblk_xenbus_register(const struct rblk_xenbus_ops *ops)
{
	rblk_ops = ops;
	return xenbus_register_backend(&rblk_driver);
}

bool rblk_running_on_xen(void)
{
	return xen_domain();
}

void rblk_xenbus_unregister(void)
{
	xenbus_unregister_driver(&rblk_driver);
}

/* ---------------------------------------------------------------- xenbus device */

void *rblk_dev_drvdata(struct xenbus_device *dev)
{
	return dev_get_drvdata(&dev->dev);
}

void rblk_dev_set_drvdata(struct xenbus_device *dev, void *data)
{
	dev_set_drvdata(&dev->dev, data);
}

const char *rblk_dev_nodename(struct xenbus_device *dev)
{
	return dev->nodename;
}

const char *rblk_dev_otherend(struct xenbus_device *dev)
{
	return dev->otherend;
}

u16 rblk_dev_otherend_id(struct xenbus_device *dev)
{
	return dev->otherend_id;
}

int rblk_dev_state(struct xenbus_device *dev)
{
	return dev->state;
}

int rblk_dev_switch_state(struct xenbus_device *dev, int state)
{
	return xenbus_switch_state(dev, state);
}

void rblk_dev_fatal(struct xenbus_device *dev, int err, const char *msg)
{
	xenbus_dev_fatal(dev, err, "%s", msg);
}

bool rblk_dev_is_online(struct xenbus_device *dev)
{
	return xenbus_dev_is_online(dev);
}

void rblk_dev_unregister(struct xenbus_device *dev)
{
	device_unregister(&dev->dev);
}

void rblk_dev_get(struct xenbus_device *dev)
{
	get_device(&dev->dev);
}

void rblk_dev_put(struct xenbus_device *dev)
{
	put_device(&dev->dev);
}

/* ---------------------------------------------------------------- xenstore */

int rblk_xs_read(const char *dir, const char *node, char *buf, unsigned int len)
{
	unsigned int n;
	char *val = xenbus_read(XBT_NIL, dir, node, &n);

	if (IS_ERR(val))
		return PTR_ERR(val);
	if (n + 1 > len) {
		kfree(val);
		return -ERANGE;
	}
	memcpy(buf, val, n);
	buf[n] = '\0';
	kfree(val);
	return n;
}

int rblk_xs_write(u32 xbt, const char *dir, const char *node, const char *value)
{
	struct xenbus_transaction t = { .id = xbt };

	return xenbus_write(t, dir, node, value);
}

int rblk_xs_transaction_start(u32 *xbt)
{
	struct xenbus_transaction t;
	int err = xenbus_transaction_start(&t);

	if (!err)
		*xbt = t.id;
	return err;
}

int rblk_xs_transaction_end(u32 xbt, bool abort)
{
	struct xenbus_transaction t = { .id = xbt };

	return xenbus_transaction_end(t, abort);
}

struct rblk_watch {
	struct xenbus_watch watch;
	void (*callback)(void *ctx);
	void *ctx;
};

static void rblk_c_watch_fired(struct xenbus_watch *w, const char *path, const char *token)
{
	struct rblk_watch *rw = container_of(w, struct rblk_watch, watch);

	rw->callback(rw->ctx);
}

struct rblk_watch *rblk_watch_node(struct xenbus_device *dev, const char *node,
				   void (*callback)(void *ctx), void *ctx)
{
	struct rblk_watch *rw = kzalloc(sizeof(*rw), GFP_KERNEL);
	int err;

	if (!rw)
		return ERR_PTR(-ENOMEM);
	rw->callback = callback;
	rw->ctx = ctx;
	err = xenbus_watch_pathfmt(dev, &rw->watch, NULL, rblk_c_watch_fired, "%s/%s",
				   dev->nodename, node);
	if (err) {
		kfree(rw);
		return ERR_PTR(err);
	}
	return rw;
}

void rblk_unwatch(struct rblk_watch *rw)
{
	/* Waits for a running callback; afterwards none can start. */
	unregister_xenbus_watch(&rw->watch);
	kfree(rw->watch.node);
	kfree(rw);
}

/* ---------------------------------------------------------------- sysfs */

static u64 rblk_dev_stat(struct device *d, unsigned int stat)
{
	void *data = dev_get_drvdata(d);

	return data ? rblk_ops->stat(data, stat) : 0;
}

#define RBLK_STAT_ATTR(name, id)                                                      \
	static ssize_t name##_show(struct device *d, struct device_attribute *a, char *buf) \
	{                                                                                   \
		return sysfs_emit(buf, "%llu\n", rblk_dev_stat(d, id));                     \
	}                                                                                   \
	static DEVICE_ATTR_RO(name)

RBLK_STAT_ATTR(oo_req, RBLK_STAT_OO_REQ);
RBLK_STAT_ATTR(rd_req, RBLK_STAT_RD_REQ);
RBLK_STAT_ATTR(wr_req, RBLK_STAT_WR_REQ);
RBLK_STAT_ATTR(f_req, RBLK_STAT_F_REQ);
RBLK_STAT_ATTR(ds_req, RBLK_STAT_DS_REQ);
RBLK_STAT_ATTR(rd_sect, RBLK_STAT_RD_SECT);
RBLK_STAT_ATTR(wr_sect, RBLK_STAT_WR_SECT);
RBLK_STAT_ATTR(buffer_pages, RBLK_STAT_BUFFER_PAGES);

/* A file of text lines that Rust writes (it ends them with newlines itself). */
static ssize_t latency_show(struct device *d, struct device_attribute *a, char *buf)
{
	void *data = dev_get_drvdata(d);
	size_t n = data ? rblk_ops->text(data, RBLK_STAT_LATENCY, buf, PAGE_SIZE) : 0;

	return min_t(size_t, n, PAGE_SIZE);
}
static DEVICE_ATTR_RO(latency);

static struct attribute *rblk_stat_attrs[] = {
	&dev_attr_oo_req.attr, &dev_attr_rd_req.attr, &dev_attr_wr_req.attr,
	&dev_attr_f_req.attr,  &dev_attr_ds_req.attr, &dev_attr_rd_sect.attr,
	&dev_attr_wr_sect.attr, &dev_attr_buffer_pages.attr, &dev_attr_latency.attr, NULL,
};

static const struct attribute_group rblk_stat_group = {
	.name = "statistics",
	.attrs = rblk_stat_attrs,
};

/* sched/: the vbd's place in the I/O scheduler (its weight, its group) and its counters. */
static ssize_t rblk_dev_store(struct device *d, unsigned int stat, const char *buf, size_t len)
{
	void *data = dev_get_drvdata(d);
	int err = data ? rblk_ops->store(data, stat, buf, len) : -ENODEV;

	return err ? err : len;
}


static ssize_t group_show(struct device *d, struct device_attribute *a, char *buf)
{
	void *data = dev_get_drvdata(d);
	/* Room for the newline: Rust writes at most PAGE_SIZE - 1 bytes. */
	size_t n = data ? rblk_ops->text(data, RBLK_STAT_SCHED_GROUP, buf, PAGE_SIZE - 1) : 0;

	n = min_t(size_t, n, PAGE_SIZE - 1);
	buf[n] = '\n';
	return n + 1;
}

static ssize_t group_store(struct device *d, struct device_attribute *a, const char *buf,
			   size_t len)
{
	return rblk_dev_store(d, RBLK_STAT_SCHED_GROUP, buf, len);
}
static DEVICE_ATTR_RW(group);

#define RBLK_RW_STAT_ATTR(name, id)                                                      \
	static ssize_t name##_show(struct device *d, struct device_attribute *a, char *buf)  \
	{                                                                                    \
		return sysfs_emit(buf, "%llu\n", rblk_dev_stat(d, id));                      \
	}                                                                                    \
	static ssize_t name##_store(struct device *d, struct device_attribute *a,            \
				    const char *buf, size_t len)                             \
	{                                                                                    \
		return rblk_dev_store(d, id, buf, len);                                      \
	}                                                                                    \
	static DEVICE_ATTR_RW(name)

RBLK_RW_STAT_ATTR(weight, RBLK_STAT_SCHED_WEIGHT);
RBLK_RW_STAT_ATTR(iops_limit, RBLK_STAT_SCHED_IOPS_LIMIT);
RBLK_RW_STAT_ATTR(bps_limit, RBLK_STAT_SCHED_BPS_LIMIT);
RBLK_STAT_ATTR(dispatched, RBLK_STAT_SCHED_DISPATCHED);
RBLK_STAT_ATTR(held_by_scheduler, RBLK_STAT_SCHED_HELD_BY_SCHEDULER);
RBLK_STAT_ATTR(held_by_limit, RBLK_STAT_SCHED_HELD_BY_LIMIT);

static struct attribute *rblk_sched_attrs[] = {
	&dev_attr_weight.attr, &dev_attr_group.attr, &dev_attr_iops_limit.attr,
	&dev_attr_bps_limit.attr, &dev_attr_dispatched.attr,
	&dev_attr_held_by_scheduler.attr, &dev_attr_held_by_limit.attr, NULL,
};

static const struct attribute_group rblk_sched_group = {
	.name = "sched",
	.attrs = rblk_sched_attrs,
};

static ssize_t physical_device_show(struct device *d, struct device_attribute *a, char *buf)
{
	return sysfs_emit(buf, "%llx:%llx\n", rblk_dev_stat(d, RBLK_STAT_MAJOR),
			  rblk_dev_stat(d, RBLK_STAT_MINOR));
}
static DEVICE_ATTR_RO(physical_device);

static ssize_t mode_show(struct device *d, struct device_attribute *a, char *buf)
{
	return sysfs_emit(buf, "%s\n", rblk_dev_stat(d, RBLK_STAT_WRITABLE) ? "w" : "r");
}
static DEVICE_ATTR_RO(mode);

int rblk_sysfs_add(struct xenbus_device *dev)
{
	int err;

	/* Rust may hold the device past its removal: no files on a device no longer in sysfs. */
	if (!device_is_registered(&dev->dev))
		return -ENODEV;
	err = device_create_file(&dev->dev, &dev_attr_physical_device);
	if (err)
		return err;
	err = device_create_file(&dev->dev, &dev_attr_mode);
	if (err)
		goto fail_mode;
	err = sysfs_create_group(&dev->dev.kobj, &rblk_stat_group);
	if (err)
		goto fail_group;
	err = sysfs_create_group(&dev->dev.kobj, &rblk_sched_group);
	if (err)
		goto fail_sched;
	return 0;
fail_sched:
	sysfs_remove_group(&dev->dev.kobj, &rblk_stat_group);
fail_group:
	device_remove_file(&dev->dev, &dev_attr_mode);
fail_mode:
	device_remove_file(&dev->dev, &dev_attr_physical_device);
	return err;
}

void rblk_sysfs_remove(struct xenbus_device *dev)
{
	/* device_del removed the whole directory already. */
	if (!device_is_registered(&dev->dev))
		return;
	sysfs_remove_group(&dev->dev.kobj, &rblk_sched_group);
	sysfs_remove_group(&dev->dev.kobj, &rblk_stat_group);
	device_remove_file(&dev->dev, &dev_attr_mode);
	device_remove_file(&dev->dev, &dev_attr_physical_device);
}

/* ---------------------------------------------------------------- module reference */

void rblk_module_get(void)
{
	__module_get(THIS_MODULE);
}

void rblk_module_put(void)
{
	module_put(THIS_MODULE);
}

unsigned int rblk_num_online_cpus(void)
{
	return num_online_cpus();
}
