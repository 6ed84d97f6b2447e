/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Declarations of xenbus.c, used by rust/module/sys/xenbus.rs: the xenbus driver and
 * device, xenstore, the vbd's sysfs files, the module reference and host queries.
 */
#ifndef RBLKBACK_XENBUS_H
#define RBLKBACK_XENBUS_H

#include <linux/types.h>

struct xenbus_device;
struct rblk_watch;

/* --- xenbus driver registration --- */
struct rblk_xenbus_ops {
	int (*probe)(void *ctx, struct xenbus_device *dev);
	void (*remove)(struct xenbus_device *dev);
	void (*frontend_changed)(struct xenbus_device *dev, int frontend_state);
	/* sysfs: a statistic (enum rblk_stat) of the device's driver data */
	u64 (*stat)(void *drvdata, unsigned int stat);
	/* sysfs: a text file (enum rblk_stat) into buf (size bytes); its length */
	size_t (*text)(void *drvdata, unsigned int stat, char *buf, size_t size);
	/* sysfs: a write to a writable file (enum rblk_stat); 0 or -errno */
	int (*store)(void *drvdata, unsigned int stat, const char *buf, size_t len);
	/* passed to probe */
	void *ctx;
};
int rblk_xenbus_register(const struct rblk_xenbus_ops *ops);
bool rblk_running_on_xen(void);
void rblk_xenbus_unregister(void);

/* --- xenbus device --- */
void *rblk_dev_drvdata(struct xenbus_device *dev);
void rblk_dev_set_drvdata(struct xenbus_device *dev, void *data);
const char *rblk_dev_nodename(struct xenbus_device *dev);
const char *rblk_dev_otherend(struct xenbus_device *dev);
u16 rblk_dev_otherend_id(struct xenbus_device *dev);
int rblk_dev_state(struct xenbus_device *dev);
int rblk_dev_switch_state(struct xenbus_device *dev, int state);
void rblk_dev_fatal(struct xenbus_device *dev, int err, const char *msg);
bool rblk_dev_is_online(struct xenbus_device *dev);
void rblk_dev_unregister(struct xenbus_device *dev);
/* Takes a reference on the xenbus device's struct device (get_device). */
void rblk_dev_get(struct xenbus_device *dev);
/* Drops a reference taken by rblk_dev_get (put_device). */
void rblk_dev_put(struct xenbus_device *dev);

/* --- xenstore --- */
/* Reads dir/node into buf (NUL-terminated); returns its length or -errno (-ERANGE: too long). */
int rblk_xs_read(const char *dir, const char *node, char *buf, unsigned int len);
int rblk_xs_write(u32 xbt, const char *dir, const char *node, const char *value);
int rblk_xs_transaction_start(u32 *xbt);
int rblk_xs_transaction_end(u32 xbt, bool abort);

/* Watch on dev->nodename/node; callback(ctx) runs in the xenwatch thread. */
struct rblk_watch *rblk_watch_node(struct xenbus_device *dev, const char *node,
				   void (*callback)(void *ctx), void *ctx);
void rblk_unwatch(struct rblk_watch *watch);

/* --- sysfs: statistics/, sched/, physical_device, mode under the xenbus device --- */
enum rblk_stat {
	RBLK_STAT_OO_REQ = 0,
	RBLK_STAT_RD_REQ = 1,
	RBLK_STAT_WR_REQ = 2,
	RBLK_STAT_F_REQ = 3,
	RBLK_STAT_DS_REQ = 4,
	RBLK_STAT_RD_SECT = 5,
	RBLK_STAT_WR_SECT = 6,
	RBLK_STAT_MAJOR = 7,
	RBLK_STAT_MINOR = 8,
	RBLK_STAT_WRITABLE = 9,
	RBLK_STAT_BUFFER_PAGES = 10,
	RBLK_STAT_SCHED_WEIGHT = 11,
	RBLK_STAT_SCHED_DISPATCHED = 12,
	RBLK_STAT_SCHED_HELD_BY_SCHEDULER = 13,
	RBLK_STAT_SCHED_HELD_BY_LIMIT = 14,
	/* text */
	RBLK_STAT_SCHED_GROUP = 15,
	RBLK_STAT_SCHED_IOPS_LIMIT = 16,
	RBLK_STAT_SCHED_BPS_LIMIT = 17,
	RBLK_STAT_LATENCY = 18,
};
int rblk_sysfs_add(struct xenbus_device *dev);
void rblk_sysfs_remove(struct xenbus_device *dev);

/* --- module reference: held per backend device, so rmmod refuses while guests are attached */
void rblk_module_get(void);
/* CPUs online now: the default for how many queues a frontend may open. */
unsigned int rblk_num_online_cpus(void);
void rblk_module_put(void);

#endif /* RBLKBACK_XENBUS_H */
