// SPDX-License-Identifier: GPL-2.0
/*
 * Glue for rust/module/sys/block.rs: pages for and mapping of the guest's grants, the
 * backing block device and its limits, bios (read/write/flush, discard, secure erase), plugs.
 */
#include <linux/bio.h>
#include <linux/blkdev.h>
#include <linux/bug.h>
#include <linux/err.h>
#include <linux/file.h>
#include <linux/highmem.h>
#include <linux/minmax.h>
#include <linux/sched.h>
#include <linux/string.h>
#include <xen/grant_table.h>
#include <xen/page.h>

#include "block.h"

/* ---------------------------------------------------------------- grants */

#define rblk_page_vaddr(page) ((unsigned long)pfn_to_kaddr(page_to_pfn(page)))

int rblk_pages_alloc(unsigned int nr, struct page **pages)
{
	return gnttab_alloc_pages(nr, pages);
}

void rblk_pages_free(unsigned int nr, struct page **pages)
{
	gnttab_free_pages(nr, pages);
}

/* Segments per call: a direct request has at most 11; callers batch larger ones. */
#define RBLK_MAX_MAP RBLK_GRANT_BATCH

int rblk_grants_map(u16 domid, const u32 *grefs, struct page **pages, u32 *handles,
		    unsigned int nr, bool readonly)
{
	struct gnttab_map_grant_ref map[RBLK_MAX_MAP];
	u32 flags = GNTMAP_host_map | (readonly ? GNTMAP_readonly : 0);
	unsigned int i, mapped = 0;
	int err;

	if (nr > RBLK_MAX_MAP)
		return -E2BIG;
	for (i = 0; i < nr; i++)
		gnttab_set_map_op(&map[i], rblk_page_vaddr(pages[i]), flags, grefs[i], domid);
	err = gnttab_map_refs(map, NULL, pages, nr);
	for (i = 0; i < nr; i++) {
		if (map[i].status == GNTST_okay) {
			handles[i] = map[i].handle;
			mapped++;
		} else {
			handles[i] = ~0U;
			if (!err)
				err = -EFAULT;
		}
	}
	if (err && mapped) {
		/* All or nothing: undo the ones that did map. */
		struct gnttab_unmap_grant_ref unmap[RBLK_MAX_MAP];
		struct page *unmap_pages[RBLK_MAX_MAP];
		unsigned int n = 0;

		for (i = 0; i < nr; i++) {
			if (handles[i] == ~0U)
				continue;
			gnttab_set_unmap_op(&unmap[n], rblk_page_vaddr(pages[i]), GNTMAP_host_map,
					    handles[i]);
			unmap_pages[n++] = pages[i];
		}
		WARN_ON_ONCE(gnttab_unmap_refs(unmap, NULL, unmap_pages, n));
	}
	return err;
}

void rblk_grants_unmap(struct page **pages, const u32 *handles, unsigned int nr)
{
	struct gnttab_unmap_grant_ref unmap[RBLK_MAX_MAP];
	unsigned int i;

	if (WARN_ON_ONCE(nr > RBLK_MAX_MAP))
		return;
	for (i = 0; i < nr; i++)
		gnttab_set_unmap_op(&unmap[i], rblk_page_vaddr(pages[i]), GNTMAP_host_map,
				    handles[i]);
	WARN_ON_ONCE(gnttab_unmap_refs(unmap, NULL, pages, nr));
}

void rblk_page_read(struct page *page, unsigned int offset, void *dst, unsigned int len)
{
	if (WARN_ON_ONCE(offset > PAGE_SIZE || len > PAGE_SIZE - offset))
		return;
	memcpy_from_page(dst, page, offset, len);
}

/* ---------------------------------------------------------------- block device */

struct file *rblk_bdev_open(u32 major, u32 minor, bool writable, int *err)
{
	struct file *f = bdev_file_open_by_dev(MKDEV(major, minor),
					       writable ? BLK_OPEN_READ | BLK_OPEN_WRITE
							: BLK_OPEN_READ,
					       NULL, NULL);

	if (IS_ERR(f)) {
		*err = PTR_ERR(f);
		return NULL;
	}
	*err = 0;
	return f;
}

void rblk_bdev_close(struct file *f)
{
	fput(f);
}

u64 rblk_bdev_sectors(struct file *f)
{
	return bdev_nr_sectors(file_bdev(f));
}

u32 rblk_bdev_logical_block_size(struct file *f)
{
	return bdev_logical_block_size(file_bdev(f));
}

u32 rblk_bdev_physical_block_size(struct file *f)
{
	return bdev_physical_block_size(file_bdev(f));
}

bool rblk_bdev_read_only(struct file *f)
{
	return bdev_read_only(file_bdev(f));
}

bool rblk_bdev_write_cache(struct file *f)
{
	return bdev_write_cache(file_bdev(f));
}

u32 rblk_bdev_max_discard_sectors(struct file *f)
{
	return bdev_max_discard_sectors(file_bdev(f));
}

u32 rblk_bdev_max_secure_erase_sectors(struct file *f)
{
	return bdev_max_secure_erase_sectors(file_bdev(f));
}

u32 rblk_bdev_discard_granularity(struct file *f)
{
	return bdev_discard_granularity(file_bdev(f));
}

u32 rblk_bdev_discard_alignment(struct file *f)
{
	return bdev_discard_alignment(file_bdev(f));
}

size_t rblk_bdev_disk_name(struct file *f, char *buf, size_t size)
{
	/* The whole disk's name: a partition's disk, or the device itself. */
	const char *name = file_bdev(f)->bd_disk->disk_name;

	if (!size)
		return 0;
	/* Cut to fit (and NUL-terminated) if the name is longer. */
	strscpy(buf, name, size);
	return strlen(buf);
}

bool rblk_bdev_rotational(struct file *f)
{
	return !bdev_nonrot(file_bdev(f));
}

u32 rblk_bdev_queue_depth(struct file *f)
{
	return bdev_get_queue(file_bdev(f))->nr_requests;
}

/* ---------------------------------------------------------------- bios */

static void rblk_c_bio_end(struct bio *bio)
{
	void *ctx = bio->bi_private;
	int err = blk_status_to_errno(bio->bi_status);

	bio_put(bio);
	rblkback_bio_done(ctx, err);
}

struct bio *rblk_bio_new(struct file *f, unsigned int nr_vecs, int kind, u64 sector, void *ctx)
{
	blk_opf_t opf;
	struct bio *bio;

	switch (kind) {
	case RBLK_BIO_READ:
		opf = REQ_OP_READ;
		break;
	case RBLK_BIO_WRITE:
		opf = REQ_OP_WRITE | REQ_SYNC | REQ_IDLE;
		break;
	case RBLK_BIO_FLUSH:
		opf = REQ_OP_WRITE | REQ_PREFLUSH;
		break;
	case RBLK_BIO_WRITE_PREFLUSH:
		opf = REQ_OP_WRITE | REQ_SYNC | REQ_IDLE | REQ_PREFLUSH;
		break;
	default:
		return NULL;
	}
	bio = bio_alloc(file_bdev(f), nr_vecs, opf, GFP_KERNEL);
	if (!bio)
		return NULL;
	bio->bi_iter.bi_sector = sector;
	bio->bi_private = ctx;
	bio->bi_end_io = rblk_c_bio_end;
	return bio;
}

bool rblk_bio_add_page(struct bio *bio, struct page *page, unsigned int len, unsigned int offset)
{
	return bio_add_page(bio, page, len, offset) == len;
}

void rblk_bio_submit(struct bio *bio)
{
	submit_bio(bio);
}

void rblk_with_plug(void (*fn)(void *ctx), void *ctx)
{
	struct blk_plug plug;

	blk_start_plug(&plug);
	fn(ctx);
	blk_finish_plug(&plug);
}

/*
 * The secure-erase bios of [sector, sector + nr_sects), chained like a discard's. As the
 * kernel's own (synchronous) blkdev_issue_secure_erase, which a worker must not wait in:
 * a device that hangs would hang the ring's teardown too.
 */
static int rblk_c_secure_erase_chain(struct block_device *bdev, sector_t sector,
				     sector_t nr_sects, struct bio **biop)
{
	sector_t bs_mask = (bdev_logical_block_size(bdev) >> SECTOR_SHIFT) - 1;
	unsigned int max_sectors = bdev_max_secure_erase_sectors(bdev);
	struct bio *bio = NULL;

	max_sectors = min_t(unsigned int, max_sectors, UINT_MAX >> SECTOR_SHIFT);
	max_sectors &= ~bs_mask;
	if (max_sectors == 0)
		return -EOPNOTSUPP;
	if ((sector | nr_sects) & bs_mask)
		return -EINVAL;
	if (bdev_read_only(bdev))
		return -EPERM;
	while (nr_sects) {
		unsigned int len = min_t(sector_t, nr_sects, max_sectors);

		bio = blk_next_bio(bio, bdev, 0, REQ_OP_SECURE_ERASE, GFP_KERNEL);
		bio->bi_iter.bi_sector = sector;
		bio->bi_iter.bi_size = len << SECTOR_SHIFT;
		sector += len;
		nr_sects -= len;
		cond_resched();
	}
	*biop = bio;
	return 0;
}

struct bio *rblk_bio_discard_new(struct file *f, u64 sector, u64 nr_sects, bool secure,
				 void *ctx, int *err)
{
	struct block_device *bdev = file_bdev(f);
	struct bio *bio = NULL;

	*err = 0;
	if (secure) {
		*err = rblk_c_secure_erase_chain(bdev, sector, nr_sects, &bio);
	} else if (!bdev_max_discard_sectors(bdev)) {
		/* The device no longer discards (a device-mapper table reload can do that). */
		*err = -EOPNOTSUPP;
	} else {
		/* Chains and submits every bio but the last, which completes after all of them. */
		*err = __blkdev_issue_discard(bdev, sector, nr_sects, GFP_KERNEL, &bio);
	}
	/* No bio and no error: the range held no whole discard unit, nothing to do. */
	if (*err || !bio)
		return NULL;
	bio->bi_private = ctx;
	bio->bi_end_io = rblk_c_bio_end;
	return bio;
}

void rblk_bio_drop_unsubmitted(struct bio *bio)
{
	bio_put(bio);
}
