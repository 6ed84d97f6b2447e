/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Thin C glue over xenbus, shared-ring mapping, event channels, grant mapping, block
 * devices and bios: macros, static inlines and statically initialised structures that Rust
 * cannot use directly. No policy lives here; see rust/module/sys/ for the safe wrappers.
 * Functions named rblk_* are C called by Rust; callbacks go through function pointers that
 * Rust passes in (or fixed rblkback_* symbols implemented in Rust).
 */
#ifndef RBLKBACK_XEN_H
#define RBLKBACK_XEN_H

#include <linux/errno.h>
#include <linux/types.h>

/* Error numbers the kernel crate of 6.12 does not name, for Rust to take from here. */
enum rblk_errno {
	RBLK_ERRNO_EOPNOTSUPP = EOPNOTSUPP,
};

struct xenbus_device;
struct rblk_watch;
struct rblk_worker;
struct page;
struct file;
struct bio;

/* --- xenbus driver registration --- */
struct rblk_xenbus_ops {
	int (*probe)(void *ctx, struct xenbus_device *dev);
	void (*remove)(struct xenbus_device *dev);
	void (*frontend_changed)(struct xenbus_device *dev, int frontend_state);
	/* sysfs: a statistic (enum rblk_stat) of the device's driver data */
	u64 (*stat)(void *drvdata, unsigned int stat);
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

/* --- sysfs: statistics/, physical_device, mode under the xenbus device --- */
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
};
int rblk_sysfs_add(struct xenbus_device *dev);
void rblk_sysfs_remove(struct xenbus_device *dev);

/* --- shared ring pages and memory barriers --- */
void *rblk_ring_map(struct xenbus_device *dev, const u32 *grefs, unsigned int nr, int *err);
void rblk_ring_unmap(struct xenbus_device *dev, void *addr);
void rblk_virt_rmb(void);
void rblk_virt_wmb(void);
void rblk_virt_mb(void);

/* --- event channels (late EOI) --- */
/*
 * Returns the irq or -errno; handler(ctx) runs in hard-irq context. *cookie receives what
 * rblk_evtchn_unbind needs besides the irq.
 */
int rblk_evtchn_bind(struct xenbus_device *dev, u32 port, void (*handler)(void *ctx), void *ctx,
		     void **cookie);
void rblk_evtchn_unbind(int irq, void *cookie);
void rblk_evtchn_notify(int irq);
void rblk_evtchn_lateeoi(int irq, bool spurious);

/*
 * --- per-ring worker thread: sleeps until kicked, never spins ---
 * The structure is reference counted (new: 1 reference); the thread is started and stopped
 * explicitly. Kicking a stopped worker is harmless.
 */
struct rblk_worker *rblk_worker_new(void);
/* The thread is named rblkback.<domid>.<devid>, with .<queue> appended for queues past 0. */
int rblk_worker_start(struct rblk_worker *worker, void (*run)(void *ctx), void *ctx, u16 domid,
		      u32 devid, u32 queue);
void rblk_worker_kick(struct rblk_worker *worker); /* any context */
void rblk_worker_stop(struct rblk_worker *worker); /* waits for run() to return */
void rblk_worker_get(struct rblk_worker *worker);
void rblk_worker_put(struct rblk_worker *worker);

/*
 * --- a spinlock taken with interrupts off: shared by a ring's worker and its bio
 * completions, which may run in hard-irq context ---
 */
struct rblk_irqlock;
struct rblk_irqlock *rblk_irqlock_new(void);
void rblk_irqlock_free(struct rblk_irqlock *lock);
unsigned long rblk_irqlock_lock(struct rblk_irqlock *lock); /* returns the saved irq flags */
void rblk_irqlock_unlock(struct rblk_irqlock *lock, unsigned long flags);

/* --- a wait queue for "every ring of this vbd is freed" --- */
struct rblk_waitq;
struct rblk_waitq *rblk_waitq_new(void);
void rblk_waitq_free(struct rblk_waitq *wq);
void rblk_waitq_wake(struct rblk_waitq *wq);
/*
 * Sleeps until done(ctx) returns true (re-checked after each wake) or timeout_ms pass;
 * uninterruptible. Returns whether done() held.
 */
bool rblk_waitq_wait_timeout(struct rblk_waitq *wq, bool (*done)(void *ctx), void *ctx,
			     unsigned int timeout_ms);

/* Deferred jobs: run once, in process context, on the module's own workqueue. */
struct rblk_deferred;
int rblk_deferred_wq_create(void);
void rblk_deferred_wq_destroy(void);
/* fn(ctx, true) runs the job, fn(ctx, false) only releases ctx; exactly one of them happens. */
struct rblk_deferred *rblk_deferred_new(void (*fn)(void *ctx, bool run), void *ctx);
/* Any context. The job owns the structure from here on. */
void rblk_deferred_queue(struct rblk_deferred *d);
/* Runs the job on the calling thread (process context) and frees the structure. */
void rblk_deferred_run_now(struct rblk_deferred *d);
/* Releases a job that never ran, without running it (process context). */
void rblk_deferred_cancel(struct rblk_deferred *d);

/* --- grant mapping of guest data pages --- */
#define RBLK_GRANT_BATCH 16 /* most grants one rblk_grants_map/unmap call takes */
int rblk_pages_alloc(unsigned int nr, struct page **pages);
void rblk_pages_free(unsigned int nr, struct page **pages);
/*
 * Maps nr grants of domain domid into pages[]; handles[] receives the grant handles.
 * All or nothing: on failure nothing stays mapped and -errno is returned.
 */
int rblk_grants_map(u16 domid, const u32 *grefs, struct page **pages, u32 *handles,
		    unsigned int nr, bool readonly);
void rblk_grants_unmap(struct page **pages, const u32 *handles, unsigned int nr);
/* Copies len bytes at offset of a (mapped) page to dst; offset + len <= PAGE_SIZE. */
void rblk_page_read(struct page *page, unsigned int offset, void *dst, unsigned int len);

/* --- backing block device --- */
struct file *rblk_bdev_open(u32 major, u32 minor, bool writable, int *err);
void rblk_bdev_close(struct file *bdev_file);
u64 rblk_bdev_sectors(struct file *bdev_file);
u32 rblk_bdev_logical_block_size(struct file *bdev_file);
u32 rblk_bdev_physical_block_size(struct file *bdev_file);
bool rblk_bdev_read_only(struct file *bdev_file);
bool rblk_bdev_write_cache(struct file *bdev_file);
/* Discard limits (0 = the device cannot discard / securely erase) and geometry, in bytes. */
u32 rblk_bdev_max_discard_sectors(struct file *bdev_file);
u32 rblk_bdev_max_secure_erase_sectors(struct file *bdev_file);
u32 rblk_bdev_discard_granularity(struct file *bdev_file);
u32 rblk_bdev_discard_alignment(struct file *bdev_file);
/* Synchronous secure erase of a range (sleeps); 0 or -errno. */

/* --- bios --- */
enum rblk_bio_kind {
	RBLK_BIO_READ = 0,
	RBLK_BIO_WRITE = 1,
	RBLK_BIO_FLUSH = 2,         /* empty write with preflush */
	RBLK_BIO_WRITE_PREFLUSH = 3,
};
/*
 * On completion the bio is freed and rblkback_bio_done(ctx, errno) (Rust) runs in the
 * completion context, possibly hard or soft irq.
 */
struct bio *rblk_bio_new(struct file *bdev_file, unsigned int nr_vecs, int kind, u64 sector,
			 void *ctx);
void rblkback_bio_done(void *ctx, int err);
/* Adds len bytes at offset of page; returns false if the bio is full. */
bool rblk_bio_add_page(struct bio *bio, struct page *page, unsigned int len, unsigned int offset);
void rblk_bio_submit(struct bio *bio);
/*
 * Runs fn(ctx) with the calling task's block plug started: bios it submits are held and
 * sent to the device together when fn returns (or the task sleeps), so that one pass over a
 * ring kicks the device once rather than once per request.
 */
void rblk_with_plug(void (*fn)(void *ctx), void *ctx);
/*
 * A discard (secure: a secure erase) of nr_sects sectors at sector, ready to submit with
 * rblk_bio_submit: the device's limits may split it into a chain of bios, all but the last
 * submitted here; the last one (returned) completes through rblkback_bio_done(ctx, ...)
 * after all of them. NULL with *err = 0 if the range holds no whole discard unit (nothing
 * to do); NULL with *err = -errno if the device cannot (-EOPNOTSUPP) or the range is not
 * valid for it.
 */
struct bio *rblk_bio_discard_new(struct file *bdev_file, u64 sector, u64 nr_sects, bool secure,
				 void *ctx, int *err);
void rblk_bio_drop_unsubmitted(struct bio *bio);

/* --- module reference: held per backend device, so rmmod refuses while guests are attached */
void rblk_module_get(void);
/* CPUs online now: the default for how many queues a frontend may open. */
unsigned int rblk_num_online_cpus(void);
void rblk_module_put(void);

/*
 * --- slice timers: a one-shot hrtimer that kicks a worker at an absolute monotonic time ---
 * The timer holds a reference on the worker; rblk_timer_free cancels (waiting for a running
 * callback) and drops it.
 */
struct rblk_timer;
struct rblk_timer *rblk_timer_new(struct rblk_worker *worker);
void rblk_timer_arm_at_us(struct rblk_timer *timer, u64 monotonic_us);
void rblk_timer_free(struct rblk_timer *timer);
u64 rblk_monotonic_us(void);

/*
 * --- /sys/module/rblkback/domains: per-domain limits and statistics ---
 * Files of a domain directory, in this order: the six limits (read-write), then counters.
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
	RBLK_DOM_ATTR_COUNT = 13,
};
struct rblk_domains_ops {
	/* a line written to domains/limits; 0 or -errno */
	int (*limits_write)(void *ctx, const char *buf, size_t len);
	/* a domain file's value */
	u64 (*attr_show)(void *domain, unsigned int attr);
	/* a write to a domain's limit file; 0 or -errno */
	int (*attr_store)(void *domain, unsigned int attr, const char *buf, size_t len);
};
int rblk_domains_dir_add(const struct rblk_domains_ops *ops, void *ctx);
void rblk_domains_dir_del(void);
struct rblk_domain_dir;
/* domains/<domid>/; ERR_PTR on failure */
struct rblk_domain_dir *rblk_domain_dir_add(u16 domid, void *domain);
/* Removes it; waits for running show/store calls. */
void rblk_domain_dir_del(struct rblk_domain_dir *dir);

#endif /* RBLKBACK_XEN_H */
