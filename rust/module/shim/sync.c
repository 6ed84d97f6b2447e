// SPDX-License-Identifier: GPL-2.0
/*
 * Glue for rust/module/sys/sync.rs: an irq-safe spinlock (spin_lock_irqsave is a macro).
 */
#include <linux/slab.h>
#include <linux/spinlock.h>

#include "sync.h"

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
