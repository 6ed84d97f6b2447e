/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Declarations of params.c, used by rust/module/sys/params.rs: the module parameters' ids and
 * defaults, their getter (C) and the parser C calls before it stores a value (Rust).
 */
#ifndef RBLKBACK_PARAMS_H
#define RBLKBACK_PARAMS_H

#include <linux/types.h>

/* Module parameters, in the order of throttle::params::ALL. */
enum rblk_param_id {
	RBLK_PARAM_TIMESLICE_US = 0,
	RBLK_PARAM_DEFAULT_IOPS = 1,
	RBLK_PARAM_DEFAULT_BPS = 2,
	RBLK_PARAM_BURST = 3,
	RBLK_PARAM_OP_SIZE = 4,
	RBLK_PARAM_MAX_INDIRECT_SEGMENTS = 5,
	RBLK_PARAM_MAX_RING_PAGE_ORDER = 6,
	RBLK_PARAM_MAX_QUEUES = 7,
	RBLK_PARAM_FEATURE_PERSISTENT = 8,
	RBLK_PARAM_MAX_PERSISTENT_GRANTS = 9,
	RBLK_PARAM_PERSISTENT_GRANT_UNUSED_SECONDS = 10,
	RBLK_PARAM_MAX_RING_BUFFER_PAGES = 11,
	RBLK_PARAM_DEFAULT_WEIGHT = 12,
	RBLK_PARAM_COUNT = 13,
};

/* Defaults; Rust asserts at compile time that they equal throttle::params' defaults. */
#define RBLK_DEFAULT_TIMESLICE_US 10000ULL
#define RBLK_DEFAULT_DEFAULT_IOPS 0ULL
#define RBLK_DEFAULT_DEFAULT_BPS 0ULL
#define RBLK_DEFAULT_BURST 0ULL
#define RBLK_DEFAULT_OP_SIZE 0ULL
#define RBLK_DEFAULT_MAX_INDIRECT_SEGMENTS 256ULL
#define RBLK_DEFAULT_MAX_RING_PAGE_ORDER 4ULL
#define RBLK_DEFAULT_MAX_QUEUES 0ULL
#define RBLK_DEFAULT_FEATURE_PERSISTENT 1ULL
#define RBLK_DEFAULT_MAX_PERSISTENT_GRANTS 1056ULL
#define RBLK_DEFAULT_PERSISTENT_GRANT_UNUSED_SECONDS 60ULL
#define RBLK_DEFAULT_MAX_RING_BUFFER_PAGES 4096ULL
#define RBLK_DEFAULT_DEFAULT_WEIGHT 100ULL

/* C: current value of a module parameter (a racy read is fine: each value is one u64). */
u64 rblk_param_get(unsigned int id);

/*
 * Rust: parses and validates the text given for a parameter (NUL-terminated) before C stores
 * it. Returns 0 with *value set to accept, -EINVAL to refuse; on refusal it has already
 * logged a line naming the parameter and what it accepts.
 */
int rblkback_param_parse(unsigned int id, const char *text, u64 *value);

#endif /* RBLKBACK_PARAMS_H */
