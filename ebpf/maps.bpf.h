/* SPDX-License-Identifier: (MIT OR Apache-2.0) */
/*
 * maps.bpf.h — the maps every probe family shares, and the helpers that
 * reserve/submit ring-buffer records and count them.
 *
 * Included once, by lxprof.bpf.c (see there why the families are one object).
 */
#ifndef LXPROF_MAPS_BPF_H
#define LXPROF_MAPS_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "lxprof.h"

#define E2BIG 7
#define ENOMEM 12

char LICENSE[] SEC("license") = "GPL";

/* Every record for user space. Size set by user space before loading. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 * 1024 * 1024);
} events SEC(".maps");

/* Processes (tgid) being followed. User space inserts the roots; FORK adds children. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, u32);
	__type(value, struct lxprof_traced);
} traced SEC(".maps");

/* Per-CPU record counters, indexed by enum lxprof_counter. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LXPROF_COUNTER_MAX);
	__type(key, u32);
	__type(value, u64);
} counters SEC(".maps");

static __always_inline void lxprof_count(u32 which)
{
	u64 *v = bpf_map_lookup_elem(&counters, &which);
	if (v)
		__sync_fetch_and_add(v, 1);
}

/* The traced-map entry of a process, or NULL: the filter every probe starts with. */
static __always_inline struct lxprof_traced *lxprof_traced_pid(u32 pid)
{
	return bpf_map_lookup_elem(&traced, &pid);
}

/* Reserves a record of `size` bytes and fills its header; counts a loss on failure. */
static __always_inline void *lxprof_reserve(u64 size, u32 kind, u32 pid, u32 tid, u64 ts)
{
	struct lxprof_event_header *h = bpf_ringbuf_reserve(&events, size, 0);
	if (!h) {
		lxprof_count(LXPROF_COUNTER_LOST);
		return NULL;
	}
	h->kind = kind;
	h->cpu = bpf_get_smp_processor_id();
	h->ts_ns = ts;
	h->pid = pid;
	h->tid = tid;
	return h;
}

/*
 * Wake the reader only once a quarter of the ring is filled: a wakeup per
 * record would cost the traced program a context switch per event. The reader
 * also drains on a short poll timeout, so nothing waits long.
 */
static __always_inline void lxprof_submit(void *rec)
{
	u64 avail = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	u64 size = bpf_ringbuf_query(&events, BPF_RB_RING_SIZE);
	bpf_ringbuf_submit(rec, avail >= size / 4 ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP);
	lxprof_count(LXPROF_COUNTER_EVENTS);
}

#define LXPROF_RESERVE(type, kind, pid, tid, ts) \
	((struct type *)lxprof_reserve(sizeof(struct type), kind, pid, tid, ts))

/*
 * Per-thread state of traced threads (key: tid), shared by the sched and
 * faults families; see struct lxprof_thread. An entry lives from the
 * thread's first sighting to its last switch-out.
 */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, u32);
	__type(value, struct lxprof_thread);
} threads SEC(".maps");

/* SCHED_NORMAL, SCHED_BATCH, SCHED_IDLE: the classes that keep prev_sum_exec_runtime. */
static __always_inline bool lxprof_fair_policy(unsigned int policy)
{
	return policy == 0 || policy == 3 || policy == 5;
}

/* The entry of `task` (tid `tid`), or NULL when there is none for this task. */
static __always_inline struct lxprof_thread *lxprof_thread_of(struct task_struct *task, u32 tid)
{
	struct lxprof_thread *e = bpf_map_lookup_elem(&threads, &tid);
	if (!e)
		return NULL;
	if (!e->task)
		e->task = (u64)task; /* seeded by user space for a thread alive before tracing */
	else if (e->task != (u64)task)
		return NULL;
	return e;
}

/*
 * A new entry for `task`, first seen now. Its CPU is counted from here on:
 * for a task on a CPU (`running`), from the start of its current stint
 * (se.prev_sum_exec_runtime, fair class), else from its total so far.
 */
static __always_inline struct lxprof_thread *
lxprof_thread_new(struct task_struct *task, u32 tid, bool running, u64 start_ns)
{
	struct lxprof_thread e = {};
	u64 sum = task->se.sum_exec_runtime;
	e.task = (u64)task;
	e.pid = task->tgid;
	e.on_cpu_unseen = running;
	e.start_ns = start_ns;
	e.cpu_seen_ns = sum;
	e.maj_seen = task->maj_flt;
	e.flt_seen = task->min_flt + e.maj_seen;
	if (running && lxprof_fair_policy(task->policy)) {
		u64 prev = task->se.prev_sum_exec_runtime;
		if (prev <= sum)
			e.cpu_seen_ns = prev;
	}
	long err = bpf_map_update_elem(&threads, &tid, &e, BPF_ANY);
	if (err) {
		lxprof_count(err == -E2BIG || err == -ENOMEM ? LXPROF_COUNTER_MAP_FULL
							     : LXPROF_COUNTER_MAP_BUSY);
		return NULL;
	}
	return bpf_map_lookup_elem(&threads, &tid);
}

#endif
