/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Declarations of ring.c, used by rust/module/sys/ring.rs: shared ring mapping and the
 * memory barriers between us and the frontend.
 */
#ifndef RBLKBACK_RING_H
#define RBLKBACK_RING_H

#include <linux/types.h>

struct xenbus_device;

/* --- shared ring pages and memory barriers --- */
/* The caller holds a reference on dev (rblk_dev_get) from map until after unmap. */
void *rblk_ring_map(struct xenbus_device *dev, const u32 *grefs, unsigned int nr, int *err);
void rblk_ring_unmap(struct xenbus_device *dev, void *addr);
void rblk_virt_rmb(void);
void rblk_virt_wmb(void);
void rblk_virt_mb(void);

#endif /* RBLKBACK_RING_H */
