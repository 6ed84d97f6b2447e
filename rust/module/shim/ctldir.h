/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Declarations of ctldir.c, used by the C files of rblkback's control directories
 * (domains.c, groups.c): a sysfs directory whose files are numbered and call back into
 * Rust. Not part of the Rust bindings: Rust sees each directory kind's own functions.
 */
#ifndef RBLKBACK_CTLDIR_H
#define RBLKBACK_CTLDIR_H

#include <linux/kobject.h>
#include <linux/sysfs.h>
#include <linux/types.h>

/* What a directory's files call, with the directory's ctx and the file's number. */
struct rblk_ctl_ops {
	/* the file's value, shown as a decimal line */
	u64 (*show)(void *ctx, unsigned int file);
	/* a write to a writable file; 0 or -errno */
	int (*store)(void *ctx, unsigned int file, const char *buf, size_t len);
};

/* One file of a control directory. */
struct rblk_ctl_file {
	struct attribute attr;
	unsigned int id;
};

#define RBLK_CTL_FILE(kind, fname, perm, fid)                                     \
	static struct rblk_ctl_file kind##_file_##fname = {                       \
		.attr = { .name = #fname, .mode = perm }, .id = fid }

/* For a directory kind's kobj_type: its sysfs_ops and release. */
extern const struct sysfs_ops rblk_ctl_sysfs_ops;
void rblk_ctl_release(struct kobject *kobj);

struct rblk_ctl_dir;
/*
 * Adds directory `name` under `parent` with the files of `kind` (its default_groups; its
 * sysfs_ops and release must be the two above); ERR_PTR on failure.
 */
struct rblk_ctl_dir *rblk_ctl_dir_add(const struct kobj_type *kind, struct kobject *parent,
				      const char *name, const struct rblk_ctl_ops *ops,
				      void *ctx);
/* Removes it; waits for running show/store calls, after which none starts. */
void rblk_ctl_dir_del(struct rblk_ctl_dir *dir);

#endif /* RBLKBACK_CTLDIR_H */
