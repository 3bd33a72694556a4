/* SPDX-License-Identifier: (MIT OR Apache-2.0) */
/*
 * faults.bpf.h — page faults of traced threads, from the kernel's own
 * per-task counters (task->min_flt, task->maj_flt: what getrusage reports),
 * read when a thread switches out (sched.bpf.h) and when a cpu-clock sample
 * hits it (samples.bpf.h). No probe runs per fault: a BPF program on every
 * fault (exceptions/page_fault_user, plus kmem/rss_stat for the RSS) made
 * the traced program's faults 14 % slower, where perf's sampling costs none.
 * The counters also count faults the kernel takes on user memory for the
 * thread (a read() into a fresh buffer), as getrusage does.
 *
 * The faults go out as FAULTS records with the thread's ON_CPU records, and
 * at a sample once LXPROF_FAULT_BUCKET_NS passed, so the rate of a thread
 * that stays on a CPU is seen at the sampling frequency.
 */
#ifndef LXPROF_FAULTS_BPF_H
#define LXPROF_FAULTS_BPF_H

#include "maps.bpf.h"
#include "memory.bpf.h"

#define LXPROF_PF_EXITING 0x4 /* task->flags: in do_exit (process.bpf.h reads its last faults) */

/* Takes the faults `task` made since they were last read into the thread's
 * pending ones, as made between `since` and `now`. */
static __always_inline void lxprof_faults_take(struct lxprof_thread *e, struct task_struct *task,
					       u64 since, u64 now)
{
	u64 maj = task->maj_flt;
	u64 all = task->min_flt + maj;
	if (all <= e->flt_seen)
		return;
	if (!e->faults)
		e->fault_first_ns = since > e->fault_last_ns ? since : e->fault_last_ns;
	e->faults += all - e->flt_seen;
	if (maj > e->maj_seen)
		e->faults_major += maj - e->maj_seen;
	e->fault_last_ns = now;
	e->flt_seen = all;
	e->maj_seen = maj;
}

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
	r->major = e->faults_major;
	lxprof_submit(r);
	e->faults = 0;
	e->faults_major = 0;
}

/* At a cpu-clock sample of a traced thread (samples.bpf.h; `e`: its entry, may
 * be NULL): its faults since the last read, sent with its process's RSS once
 * LXPROF_FAULT_BUCKET_NS old, so a thread that stays on a CPU shows its fault
 * rate as it goes. */
static __always_inline void lxprof_faults_sample(struct lxprof_thread *e, struct task_struct *task,
						 u32 pid, u32 tid, u64 now)
{
	if (!e || task->flags & LXPROF_PF_EXITING)
		return;
	u64 since = e->start_ns && e->start_ns <= now ? e->start_ns : now;
	lxprof_faults_take(e, task, since, now);
	if (e->faults && now - e->fault_first_ns >= LXPROF_FAULT_BUCKET_NS) {
		lxprof_faults_flush(e, pid, tid);
		lxprof_rss_check(task, pid, tid, now, false);
	}
}

#endif
