// SPDX-License-Identifier: GPL-2.0
/*
 * ksample SECONDS: a minimal system-wide kernel profiler for the rig's dom0 (scripts/rig
 * bench --profile). It samples the instruction pointer of whatever runs, every 100 us of CPU
 * clock, for SECONDS seconds, and prints "total N user N" and then the 60 kernel functions
 * (from /proc/kallsyms, module names in brackets) with the most samples. The dom0 image has
 * no perf; this needs only perf_event_open, which a Xen PV guest offers for software events.
 * Samples landing in hypercalls include the idle loop's, so compare backends by the other
 * kernel functions.
 */
#define _GNU_SOURCE
#include <linux/perf_event.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

struct symbol {
	uint64_t addr;
	char name[200]; /* long Rust names are cut */
};

static struct symbol *symbols;
static size_t nr_symbols;

static int by_addr(const void *a, const void *b)
{
	uint64_t x = ((const struct symbol *)a)->addr, y = ((const struct symbol *)b)->addr;

	return x < y ? -1 : x > y;
}

static void load_kallsyms(void)
{
	FILE *f = fopen("/proc/kallsyms", "r");
	size_t cap = 1 << 16;
	char line[512];

	symbols = malloc(cap * sizeof(*symbols));
	if (!f || !symbols) {
		perror("kallsyms");
		exit(1);
	}
	while (fgets(line, sizeof(line), f)) {
		unsigned long long addr;
		char type, name[256], module[128] = "";

		if (sscanf(line, "%llx %c %255s %127s", &addr, &type, name, module) < 3 || !addr)
			continue;
		if (type != 't' && type != 'T')
			continue;
		if (nr_symbols == cap) {
			cap *= 2;
			symbols = realloc(symbols, cap * sizeof(*symbols));
			if (!symbols)
				exit(1);
		}
		symbols[nr_symbols].addr = addr;
		snprintf(symbols[nr_symbols].name, sizeof(symbols[0].name), "%.150s%.40s", name, module);
		nr_symbols++;
	}
	fclose(f);
	qsort(symbols, nr_symbols, sizeof(*symbols), by_addr);
}

/* Index of the function containing ip, or nr_symbols if none. */
static size_t lookup(uint64_t ip)
{
	size_t lo = 0, hi = nr_symbols;

	if (!nr_symbols || ip < symbols[0].addr)
		return nr_symbols;
	while (hi - lo > 1) {
		size_t mid = (lo + hi) / 2;

		if (symbols[mid].addr <= ip)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

int main(int argc, char **argv)
{
	int seconds = argc > 1 ? atoi(argv[1]) : 10;
	struct perf_event_attr attr;
	size_t page = sysconf(_SC_PAGESIZE), data_pages = 256;
	struct perf_event_mmap_page *meta;
	long *counts, total = 0, user = 0;
	struct timespec start, now;
	uint64_t size = data_pages * page;
	char *data;
	int fd;

	load_kallsyms();
	counts = calloc(nr_symbols + 1, sizeof(*counts));
	memset(&attr, 0, sizeof(attr));
	attr.size = sizeof(attr);
	attr.type = PERF_TYPE_SOFTWARE;
	attr.config = PERF_COUNT_SW_CPU_CLOCK;
	attr.sample_period = 100000; /* ns */
	attr.sample_type = PERF_SAMPLE_IP;
	attr.disabled = 1;
	fd = syscall(SYS_perf_event_open, &attr, -1, 0, -1, 0);
	if (fd < 0 || !counts) {
		perror("perf_event_open");
		return 1;
	}
	meta = mmap(NULL, (data_pages + 1) * page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (meta == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	data = (char *)meta + page;
	ioctl(fd, PERF_EVENT_IOC_ENABLE, 0);
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		uint64_t head = __atomic_load_n(&meta->data_head, __ATOMIC_ACQUIRE);
		uint64_t tail = meta->data_tail;

		while (tail < head) {
			struct perf_event_header hdr;
			unsigned char rec[64];
			size_t i;

			for (i = 0; i < sizeof(hdr); i++)
				((unsigned char *)&hdr)[i] = data[(tail + i) % size];
			for (i = 0; i < hdr.size && i < sizeof(rec); i++)
				rec[i] = data[(tail + i) % size];
			if (hdr.type == PERF_RECORD_SAMPLE && hdr.size >= sizeof(hdr) + 8) {
				uint64_t ip;

				memcpy(&ip, rec + sizeof(hdr), sizeof(ip));
				total++;
				if (ip < 0xffff000000000000ULL)
					user++;
				else
					counts[lookup(ip)]++;
			}
			if (!hdr.size)
				break;
			tail += hdr.size;
		}
		__atomic_store_n(&meta->data_tail, tail, __ATOMIC_RELEASE);
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - start.tv_sec >= seconds)
			break;
		usleep(20000);
	}
	printf("total %ld user %ld\n", total, user);
	for (int shown = 0; shown < 60; shown++) {
		size_t best = nr_symbols;

		for (size_t i = 0; i < nr_symbols; i++)
			if (counts[i] && (best == nr_symbols || counts[i] > counts[best]))
				best = i;
		if (best == nr_symbols)
			break;
		printf("%6ld %s\n", counts[best], symbols[best].name);
		counts[best] = 0;
	}
	return 0;
}
