// SPDX-License-Identifier: GPL-2.0
/*
 * Glue for rust/module/sys/worker.rs: the per-ring worker thread (kthread, wait queue,
 * kref), the wait queue for a vbd's rings, and deferred jobs on the module's workqueue.
 */
#include <linux/atomic.h>
#include <linux/container_of.h>
#include <linux/err.h>
#include <linux/jiffies.h>
#include <linux/kref.h>
#include <linux/kthread.h>
#include <linux/sched.h>
#include <linux/sched/task.h>
#include <linux/slab.h>
#include <linux/wait.h>
#include <linux/workqueue.h>

#include "worker.h"

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
