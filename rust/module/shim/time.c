// SPDX-License-Identifier: GPL-2.0
/*
 * Glue for rust/module/sys/time.rs: one-shot hrtimers that kick a worker (worker.c) at an
 * absolute monotonic time, and the monotonic clock in microseconds.
 */
#include <linux/container_of.h>
#include <linux/hrtimer.h>
#include <linux/math64.h>
#include <linux/slab.h>
#include <linux/time64.h>
#include <linux/timekeeping.h>

#include "time.h"
#include "worker.h"

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
