/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Declarations of sync.c, used by rust/module/sys/sync.rs: a spinlock taken with irqs off.
 */
#ifndef RBLKBACK_SYNC_H
#define RBLKBACK_SYNC_H

#include <linux/types.h>

/*
 * --- a spinlock taken with interrupts off: shared by a ring's worker and its bio
 * completions, which may run in hard-irq context ---
 */
struct rblk_irqlock;
struct rblk_irqlock *rblk_irqlock_new(void);
void rblk_irqlock_free(struct rblk_irqlock *lock);
unsigned long rblk_irqlock_lock(struct rblk_irqlock *lock); /* returns the saved irq flags */
void rblk_irqlock_unlock(struct rblk_irqlock *lock, unsigned long flags);

#endif /* RBLKBACK_SYNC_H */
