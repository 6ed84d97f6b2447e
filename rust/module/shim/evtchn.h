/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Declarations of evtchn.c, used by rust/module/sys/evtchn.rs: late-EOI event channels.
 */
#ifndef RBLKBACK_EVTCHN_H
#define RBLKBACK_EVTCHN_H

#include <linux/types.h>

struct xenbus_device;

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

#endif /* RBLKBACK_EVTCHN_H */
