/* SPDX-License-Identifier: (MIT OR Apache-2.0) */
/*
 * sched.bpf.h — on-CPU intervals from sched/sched_switch.
 *
 * When a traced thread is switched in, its start time goes into `oncpu_start`;
 * when a thread with a start time is switched out, one ON_CPU record is sent.
 * The switch-out check uses `oncpu_start` rather than `traced`, so the last
 * interval of a process whose exit already removed it from `traced` is kept.
 *
 * A traced thread switched out without a start time (seen under load: about one
 * switch-in in a few thousand leaves none, cause not found) gets its interval
 * from the scheduler itself when it is a fair-class task: the CPU time of the
 * current stint is se.sum_exec_runtime - se.prev_sum_exec_runtime (the latter
 * is set when the task is picked to run), so the interval is [now - that, now].
 */
#ifndef LXPROF_SCHED_BPF_H
#define LXPROF_SCHED_BPF_H

#include "maps.bpf.h"

/* tid -> CLOCK_MONOTONIC ns when it was last switched in. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, u32);
	__type(value, u64);
} oncpu_start SEC(".maps");

/* SCHED_NORMAL, SCHED_BATCH, SCHED_IDLE: the classes that keep prev_sum_exec_runtime. */
static __always_inline bool lxprof_fair_policy(unsigned int policy)
{
	return policy == 0 || policy == 3 || policy == 5;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(sched_switch, bool preempt, struct task_struct *prev,
	     struct task_struct *next, unsigned int prev_state)
{
	u64 now = bpf_ktime_get_ns();
	u32 prev_tid = prev->pid;
	u64 *start = bpf_map_lookup_elem(&oncpu_start, &prev_tid);
	u64 started = 0;
	if (start) {
		started = *start;
		bpf_map_delete_elem(&oncpu_start, &prev_tid);
	} else if (prev_tid != 0 && lxprof_fair_policy(prev->policy) &&
		   lxprof_traced_pid(prev->tgid)) {
		u64 stint = prev->se.sum_exec_runtime - prev->se.prev_sum_exec_runtime;
		if (stint > 0 && stint < now)
			started = now - stint;
	}
	if (started) {
		struct lxprof_on_cpu *r = LXPROF_RESERVE(lxprof_on_cpu, LXPROF_EVENT_ON_CPU,
							 prev->tgid, prev_tid, now);
		if (r) {
			r->start_ns = started;
			r->prev_state = prev_state;
			r->_pad = 0;
			lxprof_submit(r);
		}
	}
	u32 next_pid = next->tgid;
	if (next->pid != 0 && lxprof_traced_pid(next_pid)) {
		u32 next_tid = next->pid;
		if (bpf_map_update_elem(&oncpu_start, &next_tid, &now, BPF_ANY) != 0)
			lxprof_count(LXPROF_COUNTER_MAP_FULL);
	}
	return 0;
}

#endif
