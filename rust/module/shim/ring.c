// SPDX-License-Identifier: GPL-2.0
/*
 * Glue for rust/module/sys/ring.rs: mapping the frontend's shared ring pages and the
 * virt_* memory barriers (macros) the ring protocol needs.
 */
#include <linux/device.h>
#include <linux/errno.h>
#include <asm/barrier.h>
#include <xen/xenbus.h>

#include "ring.h"

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
	return addr;
}

void rblk_ring_unmap(struct xenbus_device *dev, void *addr)
{
	xenbus_unmap_ring_vfree(dev, addr);
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
