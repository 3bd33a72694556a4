/* SPDX-License-Identifier: (MIT OR Apache-2.0) */
/*
 * sched.bpf.h — on-CPU time and intervals from sched/sched_switch.
 *
 * CPU time is the scheduler's own: at each switch-out of a traced thread,
 * ON_CPU carries se.sum_exec_runtime minus its value at the thread's previous
 * record (`threads` map, struct lxprof_thread). So a switch-in or switch-out
 * this program did not see (never observed with the program's recursion
 * counter at 0, but counted: LXPROF_COUNTER_NO_SWITCH_IN) loses no CPU time;
 * only its placement on the timeline is approximate: an interval whose
 * switch-in was not seen starts at now minus the scheduler's current stint
 * (se.sum_exec_runtime - se.prev_sum_exec_runtime, fair class).
 *
 * Stints less than lxprof_oncpu_window_ns apart share a record (see
 * struct lxprof_on_cpu). A thread's page faults (the kernel's counters, read
 * at each switch-out: faults.bpf.h) go out before its ON_CPU record, its
 * process's RSS after it (memory.bpf.h), and its entry is removed at its last
 * switch-out (TASK_DEAD).
 */
#ifndef LXPROF_SCHED_BPF_H
#define LXPROF_SCHED_BPF_H

#include "maps.bpf.h"
#include "faults.bpf.h"
#include "memory.bpf.h"
#include "stack_top.bpf.h"

#define LXPROF_TASK_DEAD 0x80

/* CPU carried by a stint beyond its own interval by more than this: a stint missed. */
#define LXPROF_CARRY_SLACK_NS (200 * 1000)

/* Stints of a thread closer than this to the first one not yet sent share an
 * ON_CPU record (0: a record per stint). Set by user space before loading. */
volatile const u64 lxprof_oncpu_window_ns = 1000 * 1000;

/* Sends the thread's pending stints (its faults first); false when the ring
 * is full: they stay pending and go with the next record. */
static __always_inline bool lxprof_oncpu_flush(struct lxprof_thread *e, u32 pid, u32 tid)
{
	if (!e->batch_stints)
		return true;
	lxprof_faults_flush(e, pid, tid);
	struct lxprof_on_cpu *r =
		LXPROF_RESERVE(lxprof_on_cpu, LXPROF_EVENT_ON_CPU, pid, tid, e->batch_last_ns);
	if (!r)
		return false;
	r->start_ns = e->batch_first_ns;
	r->cpu_ns = e->batch_cpu_ns;
	r->cpu_total_ns = e->cpu_seen_ns;
	r->prev_state = e->batch_state;
	r->flags = e->batch_flags;
	r->stints = e->batch_stints;
	r->_pad = 0;
	lxprof_submit(r);
	e->batch_stints = 0;
	e->batch_cpu_ns = 0;
	e->batch_flags = 0;
	return true;
}

static __always_inline void lxprof_switch_out(struct task_struct *prev, unsigned int prev_state,
					      u64 now)
{
	u32 tid = prev->pid;
	u32 pid = prev->tgid;
	struct lxprof_thread *e = lxprof_thread_of(prev, tid);
	u32 flags = 0;
	if (!e) {
		if (!lxprof_traced_pid(pid))
			return;
		/* First seen on a CPU: counted from its current stint. */
		e = lxprof_thread_new(prev, tid, true, 0);
		if (!e)
			return; /* `threads` full: counted */
		flags |= LXPROF_ON_CPU_FIRST;
	}
	u64 sum = prev->se.sum_exec_runtime;
	u64 stint = 0;
	if (lxprof_fair_policy(prev->policy)) {
		u64 ps = prev->se.prev_sum_exec_runtime;
		if (ps <= sum)
			stint = sum - ps;
	}
	u64 start = e->start_ns;
	u64 cpu = sum >= e->cpu_seen_ns ? sum - e->cpu_seen_ns : stint;
	if (!start || start > now) {
		flags |= LXPROF_ON_CPU_NO_SWITCH_IN;
		/* A thread seen before whose switch-in this program did not see
		 * (a first sighting, on a CPU when it became traced, is expected). */
		if (!e->on_cpu_unseen)
			lxprof_count(LXPROF_COUNTER_NO_SWITCH_IN);
		start = stint < now ? now - stint : now;
	} else if (cpu > now - start + LXPROF_CARRY_SLACK_NS) {
		lxprof_count(LXPROF_COUNTER_CPU_CARRIED);
	}
	/* Pending stints a window before this one go out on their own. */
	if (e->batch_stints && start - e->batch_first_ns >= lxprof_oncpu_window_ns)
		lxprof_oncpu_flush(e, pid, tid);
	lxprof_faults_take(e, prev, start, now);
	if (!e->batch_stints)
		e->batch_first_ns = start;
	e->batch_last_ns = now;
	e->batch_cpu_ns += cpu;
	e->batch_stints++;
	bool dead = prev_state & LXPROF_TASK_DEAD;
	if (dead)
		flags |= LXPROF_ON_CPU_DEAD;
	e->batch_flags |= flags;
	e->batch_state = prev_state;
	e->cpu_seen_ns = sum;
	e->start_ns = 0;
	e->on_cpu_unseen = 0;
	if (dead || now - e->batch_first_ns >= lxprof_oncpu_window_ns) {
		lxprof_oncpu_flush(e, pid, tid);
		lxprof_rss_check(prev, pid, tid, now, false);
	}
	if (dead)
		bpf_map_delete_elem(&threads, &tid);
}

SEC("tp_btf/sched_switch")
int BPF_PROG(sched_switch, bool preempt, struct task_struct *prev,
	     struct task_struct *next, unsigned int prev_state)
{
	u64 now = bpf_ktime_get_ns();
	if (prev->pid != 0)
		lxprof_switch_out(prev, prev_state, now);
	u32 next_tid = next->pid;
	if (next_tid == 0)
		return 0;
	struct lxprof_thread *e = lxprof_thread_of(next, next_tid);
	if (e) {
		e->start_ns = now;
	} else if (lxprof_traced_pid(next->tgid)) {
		e = lxprof_thread_new(next, next_tid, false, now);
		if (e)
			lxprof_stack_seed(next, e);
	}
	return 0;
}

#endif
