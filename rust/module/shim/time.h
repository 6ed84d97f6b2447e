/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Declarations of time.c, used by rust/module/sys/time.rs: slice timers, the monotonic clock.
 */
#ifndef RBLKBACK_TIME_H
#define RBLKBACK_TIME_H

#include <linux/types.h>

struct rblk_worker;

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

#endif /* RBLKBACK_TIME_H */
