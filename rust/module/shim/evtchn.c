// SPDX-License-Identifier: GPL-2.0
/*
 * Glue for rust/module/sys/evtchn.rs: binding an interdomain event channel to a late-EOI
 * irq handler that calls back into Rust, notifying the frontend, the late EOI itself.
 */
#include <linux/errno.h>
#include <linux/interrupt.h>
#include <linux/slab.h>
#include <xen/events.h>

#include "evtchn.h"

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
