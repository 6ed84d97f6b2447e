// SPDX-License-Identifier: GPL-2.0
/*
 * Thin C glue for rblkback: see xen.h. Each function wraps one kernel facility that Rust
 * cannot reach directly (macros, static inlines, container_of, static structures).
 */
#include <linux/bio.h>
#include <linux/cpumask.h>
#include <linux/blkdev.h>
#include <linux/device.h>
#include <linux/err.h>
#include <linux/fs.h>
#include <linux/interrupt.h>
#include <linux/highmem.h>
#include <linux/hrtimer.h>
#include <linux/kobject.h>
#include <linux/kref.h>
#include <linux/kthread.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/sched.h>
#include <linux/wait.h>
#include <linux/workqueue.h>
#include <xen/events.h>
#include <xen/grant_table.h>
#include <xen/page.h>
#include <xen/xen.h>
#include <xen/xenbus.h>

#include "xen.h"

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

static struct attribute *rblk_stat_attrs[] = {
	&dev_attr_oo_req.attr, &dev_attr_rd_req.attr, &dev_attr_wr_req.attr,
	&dev_attr_f_req.attr,  &dev_attr_ds_req.attr, &dev_attr_rd_sect.attr,
	&dev_attr_wr_sect.attr, &dev_attr_buffer_pages.attr, NULL,
};

static const struct attribute_group rblk_stat_group = {
	.name = "statistics",
	.attrs = rblk_stat_attrs,
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
	int err = device_create_file(&dev->dev, &dev_attr_physical_device);

	if (err)
		return err;
	err = device_create_file(&dev->dev, &dev_attr_mode);
	if (err)
		goto fail_mode;
	err = sysfs_create_group(&dev->dev.kobj, &rblk_stat_group);
	if (err)
		goto fail_group;
	return 0;
fail_group:
	device_remove_file(&dev->dev, &dev_attr_mode);
fail_mode:
	device_remove_file(&dev->dev, &dev_attr_physical_device);
	return err;
}

void rblk_sysfs_remove(struct xenbus_device *dev)
{
	sysfs_remove_group(&dev->dev.kobj, &rblk_stat_group);
	device_remove_file(&dev->dev, &dev_attr_mode);
	device_remove_file(&dev->dev, &dev_attr_physical_device);
}

/* ---------------------------------------------------------------- shared ring */

void *rblk_ring_map(struct xenbus_device *dev, const u32 *grefs, unsigned int nr, int *err)
{
	grant_ref_t refs[XENBUS_MAX_RING_GRANTS];
	void *addr = NULL;
	unsigned int i;

	if (nr == 0 || nr > XENBUS_MAX_RING_GRANTS) {
		*err = -EINVAL;
		return NULL;
	}
	for (i = 0; i < nr; i++)
		refs[i] = grefs[i];
	*err = xenbus_map_ring_valloc(dev, refs, nr, &addr);
	if (*err)
		return NULL;
	/*
	 * The unmap needs the device, and may come after the device is removed (a ring whose
	 * I/O is still in flight is freed by its last completion): hold it until then.
	 */
	get_device(&dev->dev);
	return addr;
}

void rblk_ring_unmap(struct xenbus_device *dev, void *addr)
{
	xenbus_unmap_ring_vfree(dev, addr);
	put_device(&dev->dev);
}

void rblk_virt_rmb(void)
{
	virt_rmb();
}

void rblk_virt_wmb(void)
{
	virt_wmb();
}

void rblk_virt_mb(void)
{
	virt_mb();
}

/* ---------------------------------------------------------------- event channels */

struct rblk_irq_ctx {
	void (*handler)(void *ctx);
	void *ctx;
};

static irqreturn_t rblk_c_irq(int irq, void *dev_id)
{
	struct rblk_irq_ctx *ic = dev_id;

	ic->handler(ic->ctx);
	return IRQ_HANDLED;
}

int rblk_evtchn_bind(struct xenbus_device *dev, u32 port, void (*handler)(void *ctx), void *ctx,
		     void **cookie)
{
	struct rblk_irq_ctx *ic = kzalloc(sizeof(*ic), GFP_KERNEL);
	int irq;

	if (!ic)
		return -ENOMEM;
	ic->handler = handler;
	ic->ctx = ctx;
	irq = bind_interdomain_evtchn_to_irqhandler_lateeoi(dev, port, rblk_c_irq, 0,
							    "rblkback", ic);
	if (irq < 0)
		kfree(ic);
	else
		*cookie = ic;
	return irq;
}

void rblk_evtchn_unbind(int irq, void *cookie)
{
	/* Waits for a running handler; afterwards none can start. */
	unbind_from_irqhandler(irq, cookie);
	kfree(cookie);
}

void rblk_evtchn_notify(int irq)
{
	notify_remote_via_irq(irq);
}

void rblk_evtchn_lateeoi(int irq, bool spurious)
{
	xen_irq_lateeoi(irq, spurious ? XEN_EOI_FLAG_SPURIOUS : 0);
}

/* ---------------------------------------------------------------- worker thread */

/*
 * The structure is reference counted separately from the thread, so that a kick racing
 * with (or arriving after) the thread's stop is harmless: it sets a flag nobody reads.
 */
struct rblk_worker {
	struct kref ref;
	struct task_struct *task;
	wait_queue_head_t wq;
	atomic_t kicked;
	void (*run)(void *ctx);
	void *ctx;
};

static int rblk_c_worker_fn(void *data)
{
	struct rblk_worker *w = data;

	while (!kthread_should_stop()) {
		wait_event_interruptible(w->wq, atomic_read(&w->kicked) || kthread_should_stop());
		if (kthread_should_stop())
			break;
		/* Clear before running: a kick that arrives during run() runs it again. */
		atomic_set(&w->kicked, 0);
		smp_mb__after_atomic();
		w->run(w->ctx);
		cond_resched();
	}
	return 0;
}

struct rblk_worker *rblk_worker_new(void)
{
	struct rblk_worker *w = kzalloc(sizeof(*w), GFP_KERNEL);

	if (!w)
		return NULL;
	kref_init(&w->ref);
	init_waitqueue_head(&w->wq);
	atomic_set(&w->kicked, 1); /* look at the ring once at start */
	return w;
}

int rblk_worker_start(struct rblk_worker *w, void (*run)(void *ctx), void *ctx, u16 domid,
		      u32 devid, u32 queue)
{
	struct task_struct *task;

	if (w->task)
		return -EBUSY;
	w->run = run;
	w->ctx = ctx;
	if (queue)
		task = kthread_run(rblk_c_worker_fn, w, "rblkback.%u.%u.%u", domid, devid, queue);
	else
		task = kthread_run(rblk_c_worker_fn, w, "rblkback.%u.%u", domid, devid);
	if (IS_ERR(task))
		return PTR_ERR(task);
	get_task_struct(task);
	w->task = task;
	return 0;
}

void rblk_worker_kick(struct rblk_worker *w)
{
	atomic_set(&w->kicked, 1);
	wake_up(&w->wq);
}

void rblk_worker_stop(struct rblk_worker *w)
{
	if (!w->task)
		return;
	kthread_stop(w->task);
	put_task_struct(w->task);
	w->task = NULL;
}

void rblk_worker_get(struct rblk_worker *w)
{
	kref_get(&w->ref);
}

static void rblk_worker_release(struct kref *ref)
{
	kfree(container_of(ref, struct rblk_worker, ref));
}

void rblk_worker_put(struct rblk_worker *w)
{
	kref_put(&w->ref, rblk_worker_release);
}

struct rblk_irqlock {
	spinlock_t lock;
};

struct rblk_irqlock *rblk_irqlock_new(void)
{
	struct rblk_irqlock *l = kzalloc(sizeof(*l), GFP_KERNEL);

	if (l)
		spin_lock_init(&l->lock);
	return l;
}

void rblk_irqlock_free(struct rblk_irqlock *l)
{
	kfree(l);
}

unsigned long rblk_irqlock_lock(struct rblk_irqlock *l)
{
	unsigned long flags;

	spin_lock_irqsave(&l->lock, flags);
	return flags;
}

void rblk_irqlock_unlock(struct rblk_irqlock *l, unsigned long flags)
{
	spin_unlock_irqrestore(&l->lock, flags);
}

struct rblk_waitq {
	wait_queue_head_t wq;
};

struct rblk_waitq *rblk_waitq_new(void)
{
	struct rblk_waitq *q = kzalloc(sizeof(*q), GFP_KERNEL);

	if (q)
		init_waitqueue_head(&q->wq);
	return q;
}

void rblk_waitq_free(struct rblk_waitq *q)
{
	kfree(q);
}

void rblk_waitq_wake(struct rblk_waitq *q)
{
	wake_up_all(&q->wq);
}

bool rblk_waitq_wait_timeout(struct rblk_waitq *q, bool (*done)(void *ctx), void *ctx,
			     unsigned int timeout_ms)
{
	return wait_event_timeout(q->wq, done(ctx), msecs_to_jiffies(timeout_ms)) > 0;
}

/* ---------------------------------------------------------------- deferred jobs */

/*
 * One workqueue of the module's own for jobs that must not run on the caller's thread
 * (freeing a ring after its last bio completes). Destroying it at unload waits for a job
 * that is still returning after it released its module reference.
 */
static struct workqueue_struct *rblk_deferred_wq;

int rblk_deferred_wq_create(void)
{
	rblk_deferred_wq = alloc_workqueue("rblkback_deferred", WQ_UNBOUND | WQ_MEM_RECLAIM, 0);
	return rblk_deferred_wq ? 0 : -ENOMEM;
}

void rblk_deferred_wq_destroy(void)
{
	if (rblk_deferred_wq)
		destroy_workqueue(rblk_deferred_wq);
	rblk_deferred_wq = NULL;
}

struct rblk_deferred {
	struct work_struct work;
	/* Runs the job (run = true) or only releases it (false); called exactly once. */
	void (*fn)(void *ctx, bool run);
	void *ctx;
};

static void rblk_c_deferred_finish(struct rblk_deferred *d, bool run)
{
	void (*fn)(void *ctx, bool run) = d->fn;
	void *ctx = d->ctx;

	/* Freed first: the job may end with the last reference to anything, even this module. */
	kfree(d);
	fn(ctx, run);
}

static void rblk_c_deferred_work(struct work_struct *work)
{
	rblk_c_deferred_finish(container_of(work, struct rblk_deferred, work), true);
}

struct rblk_deferred *rblk_deferred_new(void (*fn)(void *ctx, bool run), void *ctx)
{
	struct rblk_deferred *d = kzalloc(sizeof(*d), GFP_KERNEL);

	if (!d)
		return NULL;
	INIT_WORK(&d->work, rblk_c_deferred_work);
	d->fn = fn;
	d->ctx = ctx;
	return d;
}

void rblk_deferred_queue(struct rblk_deferred *d)
{
	queue_work(rblk_deferred_wq, &d->work);
}

void rblk_deferred_run_now(struct rblk_deferred *d)
{
	rblk_c_deferred_finish(d, true);
}

void rblk_deferred_cancel(struct rblk_deferred *d)
{
	rblk_c_deferred_finish(d, false);
}

/* ---------------------------------------------------------------- grants */

#define rblk_page_vaddr(page) ((unsigned long)pfn_to_kaddr(page_to_pfn(page)))

int rblk_pages_alloc(unsigned int nr, struct page **pages)
{
	return gnttab_alloc_pages(nr, pages);
}

void rblk_pages_free(unsigned int nr, struct page **pages)
{
	gnttab_free_pages(nr, pages);
}

/* Segments per call: a direct request has at most 11; callers batch larger ones. */
#define RBLK_MAX_MAP RBLK_GRANT_BATCH

int rblk_grants_map(u16 domid, const u32 *grefs, struct page **pages, u32 *handles,
		    unsigned int nr, bool readonly)
{
	struct gnttab_map_grant_ref map[RBLK_MAX_MAP];
	u32 flags = GNTMAP_host_map | (readonly ? GNTMAP_readonly : 0);
	unsigned int i, mapped = 0;
	int err;

	if (nr > RBLK_MAX_MAP)
		return -E2BIG;
	for (i = 0; i < nr; i++)
		gnttab_set_map_op(&map[i], rblk_page_vaddr(pages[i]), flags, grefs[i], domid);
	err = gnttab_map_refs(map, NULL, pages, nr);
	for (i = 0; i < nr; i++) {
		if (map[i].status == GNTST_okay) {
			handles[i] = map[i].handle;
			mapped++;
		} else {
			handles[i] = ~0U;
			if (!err)
				err = -EFAULT;
		}
	}
	if (err && mapped) {
		/* All or nothing: undo the ones that did map. */
		struct gnttab_unmap_grant_ref unmap[RBLK_MAX_MAP];
		struct page *unmap_pages[RBLK_MAX_MAP];
		unsigned int n = 0;

		for (i = 0; i < nr; i++) {
			if (handles[i] == ~0U)
				continue;
			gnttab_set_unmap_op(&unmap[n], rblk_page_vaddr(pages[i]), GNTMAP_host_map,
					    handles[i]);
			unmap_pages[n++] = pages[i];
		}
		WARN_ON_ONCE(gnttab_unmap_refs(unmap, NULL, unmap_pages, n));
	}
	return err;
}

void rblk_grants_unmap(struct page **pages, const u32 *handles, unsigned int nr)
{
	struct gnttab_unmap_grant_ref unmap[RBLK_MAX_MAP];
	unsigned int i;

	if (WARN_ON_ONCE(nr > RBLK_MAX_MAP))
		return;
	for (i = 0; i < nr; i++)
		gnttab_set_unmap_op(&unmap[i], rblk_page_vaddr(pages[i]), GNTMAP_host_map,
				    handles[i]);
	WARN_ON_ONCE(gnttab_unmap_refs(unmap, NULL, pages, nr));
}

void rblk_page_read(struct page *page, unsigned int offset, void *dst, unsigned int len)
{
	if (WARN_ON_ONCE(offset > PAGE_SIZE || len > PAGE_SIZE - offset))
		return;
	memcpy_from_page(dst, page, offset, len);
}

/* ---------------------------------------------------------------- block device */

struct file *rblk_bdev_open(u32 major, u32 minor, bool writable, int *err)
{
	struct file *f = bdev_file_open_by_dev(MKDEV(major, minor),
					       writable ? BLK_OPEN_READ | BLK_OPEN_WRITE
							: BLK_OPEN_READ,
					       NULL, NULL);

	if (IS_ERR(f)) {
		*err = PTR_ERR(f);
		return NULL;
	}
	*err = 0;
	return f;
}

void rblk_bdev_close(struct file *f)
{
	fput(f);
}

u64 rblk_bdev_sectors(struct file *f)
{
	return bdev_nr_sectors(file_bdev(f));
}

u32 rblk_bdev_logical_block_size(struct file *f)
{
	return bdev_logical_block_size(file_bdev(f));
}

u32 rblk_bdev_physical_block_size(struct file *f)
{
	return bdev_physical_block_size(file_bdev(f));
}

bool rblk_bdev_read_only(struct file *f)
{
	return bdev_read_only(file_bdev(f));
}

bool rblk_bdev_write_cache(struct file *f)
{
	return bdev_write_cache(file_bdev(f));
}

u32 rblk_bdev_max_discard_sectors(struct file *f)
{
	return bdev_max_discard_sectors(file_bdev(f));
}

u32 rblk_bdev_max_secure_erase_sectors(struct file *f)
{
	return bdev_max_secure_erase_sectors(file_bdev(f));
}

u32 rblk_bdev_discard_granularity(struct file *f)
{
	return bdev_discard_granularity(file_bdev(f));
}

u32 rblk_bdev_discard_alignment(struct file *f)
{
	return bdev_discard_alignment(file_bdev(f));
}


/* ---------------------------------------------------------------- bios */

static void rblk_c_bio_end(struct bio *bio)
{
	void *ctx = bio->bi_private;
	int err = blk_status_to_errno(bio->bi_status);

	bio_put(bio);
	rblkback_bio_done(ctx, err);
}

struct bio *rblk_bio_new(struct file *f, unsigned int nr_vecs, int kind, u64 sector, void *ctx)
{
	blk_opf_t opf;
	struct bio *bio;

	switch (kind) {
	case RBLK_BIO_READ:
		opf = REQ_OP_READ;
		break;
	case RBLK_BIO_WRITE:
		opf = REQ_OP_WRITE | REQ_SYNC | REQ_IDLE;
		break;
	case RBLK_BIO_FLUSH:
		opf = REQ_OP_WRITE | REQ_PREFLUSH;
		break;
	case RBLK_BIO_WRITE_PREFLUSH:
		opf = REQ_OP_WRITE | REQ_SYNC | REQ_IDLE | REQ_PREFLUSH;
		break;
	default:
		return NULL;
	}
	bio = bio_alloc(file_bdev(f), nr_vecs, opf, GFP_KERNEL);
	if (!bio)
		return NULL;
	bio->bi_iter.bi_sector = sector;
	bio->bi_private = ctx;
	bio->bi_end_io = rblk_c_bio_end;
	return bio;
}

bool rblk_bio_add_page(struct bio *bio, struct page *page, unsigned int len, unsigned int offset)
{
	return bio_add_page(bio, page, len, offset) == len;
}

void rblk_bio_submit(struct bio *bio)
{
	submit_bio(bio);
}

void rblk_with_plug(void (*fn)(void *ctx), void *ctx)
{
	struct blk_plug plug;

	blk_start_plug(&plug);
	fn(ctx);
	blk_finish_plug(&plug);
}

/*
 * The secure-erase bios of [sector, sector + nr_sects), chained like a discard's. As the
 * kernel's own (synchronous) blkdev_issue_secure_erase, which a worker must not wait in:
 * a device that hangs would hang the ring's teardown too.
 */
static int rblk_c_secure_erase_chain(struct block_device *bdev, sector_t sector,
				     sector_t nr_sects, struct bio **biop)
{
	sector_t bs_mask = (bdev_logical_block_size(bdev) >> SECTOR_SHIFT) - 1;
	unsigned int max_sectors = bdev_max_secure_erase_sectors(bdev);
	struct bio *bio = NULL;

	max_sectors = min_t(unsigned int, max_sectors, UINT_MAX >> SECTOR_SHIFT);
	max_sectors &= ~bs_mask;
	if (max_sectors == 0)
		return -EOPNOTSUPP;
	if ((sector | nr_sects) & bs_mask)
		return -EINVAL;
	if (bdev_read_only(bdev))
		return -EPERM;
	while (nr_sects) {
		unsigned int len = min_t(sector_t, nr_sects, max_sectors);

		bio = blk_next_bio(bio, bdev, 0, REQ_OP_SECURE_ERASE, GFP_KERNEL);
		bio->bi_iter.bi_sector = sector;
		bio->bi_iter.bi_size = len << SECTOR_SHIFT;
		sector += len;
		nr_sects -= len;
		cond_resched();
	}
	*biop = bio;
	return 0;
}

struct bio *rblk_bio_discard_new(struct file *f, u64 sector, u64 nr_sects, bool secure,
				 void *ctx, int *err)
{
	struct block_device *bdev = file_bdev(f);
	struct bio *bio = NULL;

	*err = 0;
	if (secure) {
		*err = rblk_c_secure_erase_chain(bdev, sector, nr_sects, &bio);
	} else if (!bdev_max_discard_sectors(bdev)) {
		/* The device no longer discards (a device-mapper table reload can do that). */
		*err = -EOPNOTSUPP;
	} else {
		/* Chains and submits every bio but the last, which completes after all of them. */
		*err = __blkdev_issue_discard(bdev, sector, nr_sects, GFP_KERNEL, &bio);
	}
	/* No bio and no error: the range held no whole discard unit, nothing to do. */
	if (*err || !bio)
		return NULL;
	bio->bi_private = ctx;
	bio->bi_end_io = rblk_c_bio_end;
	return bio;
}

void rblk_bio_drop_unsubmitted(struct bio *bio)
{
	bio_put(bio);
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

/* ---------------------------------------------------------------- slice timers */

struct rblk_timer {
	struct hrtimer timer;
	struct rblk_worker *worker;
};

static enum hrtimer_restart rblk_c_timer_fired(struct hrtimer *t)
{
	struct rblk_timer *rt = container_of(t, struct rblk_timer, timer);

	rblk_worker_kick(rt->worker);
	return HRTIMER_NORESTART;
}

struct rblk_timer *rblk_timer_new(struct rblk_worker *worker)
{
	struct rblk_timer *rt = kzalloc(sizeof(*rt), GFP_KERNEL);

	if (!rt)
		return NULL;
	hrtimer_init(&rt->timer, CLOCK_MONOTONIC, HRTIMER_MODE_ABS);
	rt->timer.function = rblk_c_timer_fired;
	rblk_worker_get(worker);
	rt->worker = worker;
	return rt;
}

void rblk_timer_arm_at_us(struct rblk_timer *rt, u64 monotonic_us)
{
	hrtimer_start(&rt->timer, ns_to_ktime(monotonic_us * NSEC_PER_USEC), HRTIMER_MODE_ABS);
}

void rblk_timer_free(struct rblk_timer *rt)
{
	hrtimer_cancel(&rt->timer);
	rblk_worker_put(rt->worker);
	kfree(rt);
}

u64 rblk_monotonic_us(void)
{
	return div_u64(ktime_get_ns(), NSEC_PER_USEC);
}

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
