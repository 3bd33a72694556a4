/* SPDX-License-Identifier: (MIT OR Apache-2.0) */
/*
 * memory.bpf.h — RSS over time (kmem/rss_stat), for the current process only.
 *
 * The size is computed as the tracepoint does: the counter's value (clamped at
 * 0, like percpu_counter_read_positive) times PAGE_SIZE. Records are throttled
 * to one per LXPROF_RSS_STEP_BYTES of change (the tracepoint fires on every
 * page fault, which doubled the cost of a fault).
 */
#ifndef LXPROF_MEMORY_BPF_H
#define LXPROF_MEMORY_BPF_H

#include "maps.bpf.h"

#define LXPROF_PAGE_SHIFT 12

SEC("tp_btf/rss_stat")
int BPF_PROG(rss_stat, struct mm_struct *mm, int member)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 pid = id >> 32;
	struct lxprof_traced *t = lxprof_traced_pid(pid);
	if (!t)
		return 0;
	struct task_struct *task = bpf_get_current_task_btf();
	if (task->mm != mm)
		return 0;
	if (member < 0 || member > LXPROF_RSS_SHMEM)
		return 0;
	/* Constant indices: the verifier rejects a variable offset into mm. */
	s64 count;
	switch (member) {
	case LXPROF_RSS_FILE:
		count = BPF_CORE_READ(mm, rss_stat[0].count);
		break;
	case LXPROF_RSS_ANON:
		count = BPF_CORE_READ(mm, rss_stat[1].count);
		break;
	case LXPROF_RSS_SWAP:
		count = BPF_CORE_READ(mm, rss_stat[2].count);
		break;
	default:
		count = BPF_CORE_READ(mm, rss_stat[3].count);
		break;
	}
	if (count < 0)
		count = 0;
	/* Throttle: a record only when the counter moved by a step (see lxprof.h). */
	u64 size = (u64)count << LXPROF_PAGE_SHIFT;
	u64 sent = t->rss_sent[member & 3];
	u64 moved = size > sent ? size - sent : sent - size;
	if (moved < LXPROF_RSS_STEP_BYTES && !(size == 0 && sent != 0))
		return 0;
	t->rss_sent[member & 3] = size;
	struct lxprof_rss *r = LXPROF_RESERVE(lxprof_rss, LXPROF_EVENT_RSS, pid, (u32)id,
					      bpf_ktime_get_ns());
	if (!r)
		return 0;
	r->member = member;
	r->_pad = 0;
	r->size_bytes = size;
	lxprof_submit(r);
	return 0;
}

#endif
