/* SPDX-License-Identifier: (MIT OR Apache-2.0) */
/*
 * faults.bpf.h — user-mode page faults (exceptions/page_fault_user), counted
 * per thread in the kernel (struct lxprof_thread in the `threads` map) and
 * sent as FAULTS records: when a thread's pending faults span
 * LXPROF_FAULT_BUCKET_NS, and at its switch-out (sched.bpf.h). A record per
 * fault cost the traced program a third of its fault-handling speed.
 */
#ifndef LXPROF_FAULTS_BPF_H
#define LXPROF_FAULTS_BPF_H

#include "maps.bpf.h"

/* x86 page fault error code bits (arch/x86/include/asm/trap_pf.h). */
#define LXPROF_PF_PROT 0x1
#define LXPROF_PF_WRITE 0x2
#define LXPROF_PF_INSTR 0x10

/* Sends the thread's pending faults, if any, and resets them. A failed
 * reservation (ring full) keeps them pending: they go with the next record. */
static __always_inline void lxprof_faults_flush(struct lxprof_thread *e, u32 pid, u32 tid)
{
	if (!e->faults)
		return;
	struct lxprof_faults *r =
		LXPROF_RESERVE(lxprof_faults, LXPROF_EVENT_FAULTS, pid, tid, e->fault_last_ns);
	if (!r)
		return;
	r->first_ns = e->fault_first_ns;
	r->count = e->faults;
	r->write = e->faults_write;
	r->exec = e->faults_exec;
	r->present = e->faults_present;
	lxprof_submit(r);
	e->faults = 0;
	e->faults_write = 0;
	e->faults_exec = 0;
	e->faults_present = 0;
}

SEC("tp_btf/page_fault_user")
int BPF_PROG(page_fault_user, unsigned long address, struct pt_regs *regs,
	     unsigned long error_code)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 pid = id >> 32;
	u32 tid = (u32)id;
	struct task_struct *task = bpf_get_current_task_btf();
	struct lxprof_thread *e = lxprof_thread_of(task, tid);
	if (!e) {
		if (!lxprof_traced_pid(pid))
			return 0;
		/* On a CPU since before it was traced: start unknown (sched.bpf.h). */
		e = lxprof_thread_new(task, tid, true, 0);
		if (!e)
			return 0;
	}
	u64 now = bpf_ktime_get_ns();
	if (e->faults && now - e->fault_first_ns >= LXPROF_FAULT_BUCKET_NS)
		lxprof_faults_flush(e, pid, tid);
	if (!e->faults)
		e->fault_first_ns = now;
	e->fault_last_ns = now;
	e->faults++;
	if (error_code & LXPROF_PF_WRITE)
		e->faults_write++;
	if (error_code & LXPROF_PF_INSTR)
		e->faults_exec++;
	if (error_code & LXPROF_PF_PROT)
		e->faults_present++;
	return 0;
}

#endif
