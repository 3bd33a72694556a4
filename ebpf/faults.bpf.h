/* SPDX-License-Identifier: (MIT OR Apache-2.0) */
/* faults.bpf.h — user-mode page faults (exceptions/page_fault_user). */
#ifndef LXPROF_FAULTS_BPF_H
#define LXPROF_FAULTS_BPF_H

#include "maps.bpf.h"

SEC("tp_btf/page_fault_user")
int BPF_PROG(page_fault_user, unsigned long address, struct pt_regs *regs,
	     unsigned long error_code)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 pid = id >> 32;
	if (!lxprof_traced_pid(pid))
		return 0;
	struct lxprof_page_fault *r = LXPROF_RESERVE(lxprof_page_fault, LXPROF_EVENT_PAGE_FAULT,
						     pid, (u32)id, bpf_ktime_get_ns());
	if (!r)
		return 0;
	r->address = address;
	r->ip = BPF_CORE_READ(regs, ip);
	r->error_code = error_code;
	lxprof_submit(r);
	return 0;
}

#endif
