// SPDX-License-Identifier: GPL-2.0
/*
 * vcputime: prints the CPU time, in nanoseconds, that Xen has run dom0's vCPUs since boot
 * (the sum over its vCPUs of XEN_DOMCTL_getvcpuinfo's cpu_time). The benchmark's dom0 driver
 * (scripts/rig.d/dom0/bench) reads it around each measurement: Xen's own account of dom0's
 * running time, exact to the nanosecond and free of the guest's idle and steal bookkeeping.
 */
#include <stdio.h>
#include <xenctrl.h>

int main(void)
{
	xc_interface *xch = xc_interface_open(NULL, NULL, 0);
	unsigned long long total = 0;
	xc_vcpuinfo_t info;
	int vcpu;

	if (!xch) {
		perror("xc_interface_open");
		return 1;
	}
	for (vcpu = 0; vcpu < 128; vcpu++) {
		if (xc_vcpu_getinfo(xch, 0, vcpu, &info))
			break;
		total += info.cpu_time;
	}
	if (!vcpu) {
		perror("xc_vcpu_getinfo");
		return 1;
	}
	printf("%llu\n", total);
	return 0;
}
