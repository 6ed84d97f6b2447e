# rblkback top-level Makefile.
#   make            build rblkback.ko against KDIR (default: the cached rig kernel)
#   make demo       the main job (README)
#   make sched      rblkback's scheduler scenarios next to stock, with their report (rig, ~36 min)
#   make test       every test: host crates, module build, QEMU tests
#   make soak       the rig's functional tests with 20 create/destroy cycles
#   make isolation  the noisy-neighbour isolation scenario alone (rig, rblkback, ~6 min)
#   make bench      rblkback vs stock xen-blkback, back-to-back pairs in one rig boot, ratios (~13 min)
# KDIR may point at any Rust-enabled 6.12 build tree (see Documentation/user-guide.md).

SHELL := /bin/bash
LLVM ?= -19
KDIR ?= $(shell scripts/build-kernel --print-dir)
export RBLKBACK_CACHE ?= /var/cache/rblkback
# The host crates' build outside the clone, like the kernel's: a fresh clone (CI's) reuses
# what an earlier one compiled (cargo's own fingerprints decide what is stale), which spares
# make test a cold build of the dependencies (95 s of CI's 35 min), and the rig's builds of
# rblkctl and rblk-hostile.
export CARGO_TARGET_DIR ?= $(RBLKBACK_CACHE)/cargo-target

.PHONY: all module deps kernel host-test lint qemu-test test soak isolation bench demo sched clean

all: module

deps:
	@scripts/install-deps

kernel: deps
	@scripts/build-kernel

module:
	@test -f $(KDIR)/Makefile || { echo "KDIR=$(KDIR) is not a kernel build tree; run 'make kernel' or set KDIR" >&2; exit 1; }
	$(MAKE) -C $(KDIR) M=$(CURDIR) LLVM=$(LLVM) modules

host-test:
	cargo test --workspace

lint:
	cargo fmt --all --check
	tests/check-module-format $(KDIR)
	cargo clippy --workspace --all-targets -- -D warnings
	tests/check-unsafe

qemu-test: module
	tests/qemu-module-test --kdir $(KDIR) --ko $(CURDIR)/rblkback.ko

test: deps kernel
	@tests/run-all

# The rig's functional tests with 20 create/destroy cycles instead of make test's 3.
soak: module
	scripts/rig soak --rblkback-ko $(CURDIR)/rblkback.ko

isolation: deps kernel module
	scripts/rig run isolation --backend rblkback --rblkback-ko $(CURDIR)/rblkback.ko --out results/isolation

# The same fio jobs against stock xen-blkback and rblkback on the same disk, in back-to-back
# pairs in one boot (scripts/rig.d/host/bench.py); prints one ratio line per figure.
bench: deps kernel module
	scripts/rig bench --rblkback-ko $(CURDIR)/rblkback.ko --out results/bench

demo: deps kernel module
	scripts/demo

# rblkback's scheduler (tests/scenarios/sched-*), each scenario under stock and rblkback in one
# boot; the report (results/sched/report.md) has the seed's shares/throughput/latency figure.
sched: deps kernel module
	scripts/demo --sched

clean:
	-$(MAKE) -C $(KDIR) M=$(CURDIR) LLVM=$(LLVM) clean 2>/dev/null
	rm -rf rust/module/generated
	cargo clean
