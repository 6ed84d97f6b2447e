/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Declarations of worker.c, used by rust/module/sys/worker.rs (and by time.c, whose
 * timers kick a worker): the worker thread, a wait queue, deferred jobs.
 */
#ifndef RBLKBACK_WORKER_H
#define RBLKBACK_WORKER_H

#include <linux/types.h>

struct rblk_worker;

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

#endif /* RBLKBACK_WORKER_H */
