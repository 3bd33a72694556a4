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

#endif
