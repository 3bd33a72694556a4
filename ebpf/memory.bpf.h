/* SPDX-License-Identifier: (MIT OR Apache-2.0) */
/*
 * memory.bpf.h — RSS over time: a process's mm counters (mm->rss_stat), read
 * when one of its threads sends an ON_CPU record (sched.bpf.h), at a sample
 * that sends faults (samples.bpf.h) and when a thread exits (process.bpf.h).
 * RSS only grows by faults, which happen on a CPU, so reading it when a
 * thread leaves one sees every rise; the kmem/rss_stat tracepoint this
 * replaces ran on every page fault.
 *
 * The size is computed as that tracepoint does: the counter's value (clamped
 * at 0, like percpu_counter_read_positive) times PAGE_SIZE. A counter is sent
 * when it moved by LXPROF_RSS_STEP_BYTES since the value last sent (or
 * dropped to 0); `force` sends any change (a thread's exit: the last look).
 */
#ifndef LXPROF_MEMORY_BPF_H
#define LXPROF_MEMORY_BPF_H

#include "maps.bpf.h"

#define LXPROF_PAGE_SHIFT 12

static __always_inline void lxprof_rss_send(struct lxprof_traced *t, u32 member, s64 count,
					    u32 pid, u32 tid, u64 now, bool force)
{
	if (count < 0)
		count = 0;
	u64 size = (u64)count << LXPROF_PAGE_SHIFT;
	u64 sent = t->rss_sent[member & 3];
	if (size == sent)
		return;
	u64 moved = size > sent ? size - sent : sent - size;
	if (!force && moved < LXPROF_RSS_STEP_BYTES && size != 0)
		return;
	struct lxprof_rss *r = LXPROF_RESERVE(lxprof_rss, LXPROF_EVENT_RSS, pid, tid, now);
	if (!r)
		return;
	t->rss_sent[member & 3] = size;
	r->member = member;
	r->_pad = 0;
	r->size_bytes = size;
	lxprof_submit(r);
}

/* Sends the RSS counters of `task`'s process (pid `pid`) that moved. */
static __always_inline void lxprof_rss_check(struct task_struct *task, u32 pid, u32 tid, u64 now,
					     bool force)
{
	struct mm_struct *mm = task->mm;
	if (!mm)
		return;
	struct lxprof_traced *t = lxprof_traced_pid(pid);
	if (!t)
		return;
	/* Constant indices: the verifier rejects a variable offset into mm. */
	lxprof_rss_send(t, LXPROF_RSS_FILE, BPF_CORE_READ(mm, rss_stat[0].count), pid, tid, now,
			force);
	lxprof_rss_send(t, LXPROF_RSS_ANON, BPF_CORE_READ(mm, rss_stat[1].count), pid, tid, now,
			force);
	lxprof_rss_send(t, LXPROF_RSS_SWAP, BPF_CORE_READ(mm, rss_stat[2].count), pid, tid, now,
			force);
	lxprof_rss_send(t, LXPROF_RSS_SHMEM, BPF_CORE_READ(mm, rss_stat[3].count), pid, tid, now,
			force);
}

#endif
