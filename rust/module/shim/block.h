/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Declarations of block.c, used by rust/module/sys/block.rs: grant mapping of data pages,
 * the backing block device, bios and the plug, and error numbers Rust cannot name.
 */
#ifndef RBLKBACK_BLOCK_H
#define RBLKBACK_BLOCK_H

#include <linux/errno.h>
#include <linux/types.h>

struct page;
struct file;
struct bio;

/* Error numbers the kernel crate of 6.12 does not name, for Rust to take from here. */
enum rblk_errno {
	RBLK_ERRNO_EOPNOTSUPP = EOPNOTSUPP,
};

/* --- grant mapping of guest data pages --- */
#define RBLK_GRANT_BATCH 16 /* most grants one rblk_grants_map/unmap call takes */
int rblk_pages_alloc(unsigned int nr, struct page **pages);
void rblk_pages_free(unsigned int nr, struct page **pages);
/*
 * Maps nr grants of domain domid into pages[]; handles[] receives the grant handles.
 * All or nothing: on failure nothing stays mapped and -errno is returned.
 */
int rblk_grants_map(u16 domid, const u32 *grefs, struct page **pages, u32 *handles,
		    unsigned int nr, bool readonly);
void rblk_grants_unmap(struct page **pages, const u32 *handles, unsigned int nr);
/* Copies len bytes at offset of a (mapped) page to dst; offset + len <= PAGE_SIZE. */
void rblk_page_read(struct page *page, unsigned int offset, void *dst, unsigned int len);

/* --- backing block device --- */
struct file *rblk_bdev_open(u32 major, u32 minor, bool writable, int *err);
void rblk_bdev_close(struct file *bdev_file);
u64 rblk_bdev_sectors(struct file *bdev_file);
u32 rblk_bdev_logical_block_size(struct file *bdev_file);
u32 rblk_bdev_physical_block_size(struct file *bdev_file);
bool rblk_bdev_read_only(struct file *bdev_file);
bool rblk_bdev_write_cache(struct file *bdev_file);
/* Discard limits (0 = the device cannot discard / securely erase) and geometry, in bytes. */
u32 rblk_bdev_max_discard_sectors(struct file *bdev_file);
u32 rblk_bdev_max_secure_erase_sectors(struct file *bdev_file);
u32 rblk_bdev_discard_granularity(struct file *bdev_file);
u32 rblk_bdev_discard_alignment(struct file *bdev_file);
/* The whole disk's kernel name (`vdb` for /dev/vdb3) into buf, NUL-terminated (cut to fit); its length. */
size_t rblk_bdev_disk_name(struct file *bdev_file, char *buf, size_t size);
/* Whether the device says it is rotational (a disk with heads to move). */
bool rblk_bdev_rotational(struct file *bdev_file);
/* Requests the device's queue takes at once (nr_requests). */
u32 rblk_bdev_queue_depth(struct file *bdev_file);
/* Synchronous secure erase of a range (sleeps); 0 or -errno. */

/* --- bios --- */
enum rblk_bio_kind {
	RBLK_BIO_READ = 0,
	RBLK_BIO_WRITE = 1,
	RBLK_BIO_FLUSH = 2,         /* empty write with preflush */
	RBLK_BIO_WRITE_PREFLUSH = 3,
};
/*
 * On completion the bio is freed and rblkback_bio_done(ctx, errno) (Rust) runs in the
 * completion context, possibly hard or soft irq.
 */
struct bio *rblk_bio_new(struct file *bdev_file, unsigned int nr_vecs, int kind, u64 sector,
			 void *ctx);
void rblkback_bio_done(void *ctx, int err);
/* Adds len bytes at offset of page; returns false if the bio is full. */
bool rblk_bio_add_page(struct bio *bio, struct page *page, unsigned int len, unsigned int offset);
void rblk_bio_submit(struct bio *bio);
/*
 * Runs fn(ctx) with the calling task's block plug started: bios it submits are held and
 * sent to the device together when fn returns (or the task sleeps), so that one pass over a
 * ring kicks the device once rather than once per request.
 */
void rblk_with_plug(void (*fn)(void *ctx), void *ctx);
/*
 * A discard (secure: a secure erase) of nr_sects sectors at sector, ready to submit with
 * rblk_bio_submit: the device's limits may split it into a chain of bios, all but the last
 * submitted here; the last one (returned) completes through rblkback_bio_done(ctx, ...)
 * after all of them. NULL with *err = 0 if the range holds no whole discard unit (nothing
 * to do); NULL with *err = -errno if the device cannot (-EOPNOTSUPP) or the range is not
 * valid for it.
 */
struct bio *rblk_bio_discard_new(struct file *bdev_file, u64 sector, u64 nr_sects, bool secure,
				 void *ctx, int *err);
void rblk_bio_drop_unsubmitted(struct bio *bio);

#endif /* RBLKBACK_BLOCK_H */
