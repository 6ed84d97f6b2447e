// SPDX-License-Identifier: GPL-2.0
/*
 * ksample SECONDS: a minimal system-wide kernel profiler for the rig's dom0 (scripts/rig
 * bench --profile). It samples the instruction pointer of whatever runs on every CPU, every
 * 100 us of CPU clock, for SECONDS seconds, and prints "total N user N", the 60 kernel
 * functions (from /proc/kallsyms, module names in brackets) with the most samples, and then
 * the 40 commonest callers of samples that landed in a hypercall ("hypercall via F < G": F
 * made the hypercall, G called F), which tells the idle loop's blocking from the hypercalls
 * a backend makes. The dom0 image has no perf; this needs only perf_event_open, which a Xen
 * PV guest offers for software events, and the kernel's own unwinder for the callchains.
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

/* Callers of hypercall samples: an open-addressed table of (F, G) symbol index pairs. */
#define CALLER_SLOTS 65536
static struct caller {
	uint32_t f, g;
	long count;
} callers[CALLER_SLOTS];

static void count_caller(size_t f, size_t g)
{
	size_t h = ((f * 2654435761u) ^ (g * 40503u)) % CALLER_SLOTS;

	while (callers[h].count && (callers[h].f != f || callers[h].g != g))
		h = (h + 1) % CALLER_SLOTS;
	callers[h].f = f;
	callers[h].g = g;
	callers[h].count++;
}

/*
 * A sample's callchain: entries at or above PERF_CONTEXT_MAX are context markers; the first
 * real entry is the sampled IP itself. Records the two callers of a sample in a hypercall.
 */
static void hypercall_caller(const uint64_t *chain, uint64_t nr)
{
	size_t frames[3], n = 0;

	for (uint64_t i = 0; i < nr && n < 3; i++) {
		if (chain[i] >= (uint64_t)PERF_CONTEXT_MAX)
			continue;
		frames[n++] = lookup(chain[i]);
	}
	if (n == 3)
		count_caller(frames[1], frames[2]);
	else if (n == 2)
		count_caller(frames[1], nr_symbols);
}

#define MAX_CPUS 64
#define MAX_STACK 8

int main(int argc, char **argv)
{
	int seconds = argc > 1 ? atoi(argv[1]) : 10;
	struct perf_event_attr attr;
	size_t page = sysconf(_SC_PAGESIZE), data_pages = 256;
	struct perf_event_mmap_page *meta[MAX_CPUS];
	long *counts, total = 0, user = 0;
	struct timespec start, now;
	uint64_t size = data_pages * page;
	int nr_cpus = sysconf(_SC_NPROCESSORS_ONLN), cpu;
	size_t hypercall;

	load_kallsyms();
	hypercall = nr_symbols;
	for (size_t i = 0; i < nr_symbols; i++)
		if (!strcmp(symbols[i].name, "xen_hypercall_pv"))
			hypercall = i;
	counts = calloc(nr_symbols + 1, sizeof(*counts));
	memset(&attr, 0, sizeof(attr));
	attr.size = sizeof(attr);
	attr.type = PERF_TYPE_SOFTWARE;
	attr.config = PERF_COUNT_SW_CPU_CLOCK;
	attr.sample_period = 100000; /* ns */
	attr.sample_type = PERF_SAMPLE_IP | PERF_SAMPLE_CALLCHAIN;
	attr.exclude_callchain_user = 1;
	attr.sample_max_stack = MAX_STACK;
	attr.disabled = 1;
	if (nr_cpus > MAX_CPUS)
		nr_cpus = MAX_CPUS;
	if (!counts)
		return 1;
	for (cpu = 0; cpu < nr_cpus; cpu++) {
		int fd = syscall(SYS_perf_event_open, &attr, -1, cpu, -1, 0);

		if (fd < 0) {
			perror("perf_event_open");
			return 1;
		}
		meta[cpu] = mmap(NULL, (data_pages + 1) * page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (meta[cpu] == MAP_FAILED) {
			perror("mmap");
			return 1;
		}
		ioctl(fd, PERF_EVENT_IOC_ENABLE, 0);
	}
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		for (cpu = 0; cpu < nr_cpus; cpu++) {
			char *data = (char *)meta[cpu] + page;
			uint64_t head = __atomic_load_n(&meta[cpu]->data_head, __ATOMIC_ACQUIRE);
			uint64_t tail = meta[cpu]->data_tail;

			while (tail < head) {
				struct perf_event_header hdr;
				uint64_t rec[3 + MAX_STACK + 8];
				size_t i;

				for (i = 0; i < sizeof(hdr); i++)
					((unsigned char *)&hdr)[i] = data[(tail + i) % size];
				for (i = 0; i < hdr.size && i < sizeof(rec); i++)
					((unsigned char *)rec)[i] = data[(tail + i) % size];
				/* header, ip, nr, nr callchain entries */
				if (hdr.type == PERF_RECORD_SAMPLE && hdr.size >= 3 * 8) {
					uint64_t ip = rec[1], nr = rec[2];
					size_t sym;

					total++;
					if (ip < 0xffff000000000000ULL) {
						user++;
					} else {
						sym = lookup(ip);
						counts[sym]++;
						if (nr > (uint64_t)(hdr.size - 3 * 8) / 8)
							nr = (uint64_t)(hdr.size - 3 * 8) / 8;
						if (nr > MAX_STACK + 5)
							nr = MAX_STACK + 5;
						if (sym == hypercall)
							hypercall_caller(rec + 3, nr);
					}
				}
				if (!hdr.size)
					break;
				tail += hdr.size;
			}
			__atomic_store_n(&meta[cpu]->data_tail, tail, __ATOMIC_RELEASE);
		}
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
	for (int shown = 0; shown < 40; shown++) {
		struct caller *best = NULL;

		for (size_t h = 0; h < CALLER_SLOTS; h++)
			if (callers[h].count && (!best || callers[h].count > best->count))
				best = &callers[h];
		if (!best)
			break;
		printf("%6ld hypercall via %s < %s\n", best->count,
		       best->f < nr_symbols ? symbols[best->f].name : "?",
		       best->g < nr_symbols ? symbols[best->g].name : "?");
		best->count = 0;
	}
	return 0;
}
