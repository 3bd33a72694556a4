/* SPDX-License-Identifier: (MIT OR Apache-2.0) */
/*
 * alloc.bpf.h — allocations of traced processes: one ALLOC record per call.
 *
 * - malloc/calloc/realloc/free: uprobes on each libc's entry points (user
 *   space attaches them per libc file). Only the entry is probed: the
 *   requested size is known there, and a uretprobe would double the cost.
 *   realloc(NULL, n) is not recorded: glibc and musl call malloc for it, whose
 *   own probe records it. free(NULL) is not recorded.
 * - mmap/munmap/brk: the syscalls/sys_enter_* and sys_exit_* tracepoints
 *   (fentry/fexit would be cheaper but are refused on some machines), the
 *   arguments kept per thread in `alloc_pending` until the exit. mmap: the
 *   requested length on success; munmap: the length on success; brk: the
 *   growth of the heap (new break − old break at entry; shrinks and queries
 *   send nothing).
 *
 * Per-call records keep each allocation's time and thread, so any window
 * (an invocation, its post-runtime part) can be attributed exactly.
 */
#ifndef LXPROF_ALLOC_BPF_H
#define LXPROF_ALLOC_BPF_H

#include "maps.bpf.h"

static __always_inline void lxprof_alloc_send(u32 op, u64 size, u64 address)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 pid = id >> 32;
	if (!lxprof_traced_pid(pid))
		return;
	struct lxprof_alloc *r = LXPROF_RESERVE(lxprof_alloc, LXPROF_EVENT_ALLOC, pid, (u32)id,
						bpf_ktime_get_ns());
	if (!r)
		return;
	r->op = op;
	r->_pad = 0;
	r->size = size;
	r->address = address;
	lxprof_submit(r);
}

SEC("uprobe")
int BPF_KPROBE(alloc_malloc, u64 size)
{
	lxprof_alloc_send(LXPROF_ALLOC_MALLOC, size, 0);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(alloc_calloc, u64 n, u64 size)
{
	/* An overflowing n * size fails in calloc: nothing allocated. (The
	 * barrier keeps clang from turning the check into a 128-bit multiply,
	 * which BPF lacks.) */
	u64 bytes = n * size;
	asm volatile("" : "+r"(bytes));
	if (size != 0 && bytes / size != n)
		return 0;
	lxprof_alloc_send(LXPROF_ALLOC_CALLOC, bytes, 0);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(alloc_realloc, u64 ptr, u64 size)
{
	if (!ptr)
		return 0; /* realloc(NULL, n) calls malloc: recorded there */
	lxprof_alloc_send(LXPROF_ALLOC_REALLOC, size, ptr);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(alloc_free, u64 ptr)
{
	if (!ptr)
		return 0;
	lxprof_alloc_send(LXPROF_ALLOC_FREE, 0, ptr);
	return 0;
}

/* mmap/munmap/brk arguments of a thread between sys_enter and sys_exit. */
struct lxprof_alloc_pending {
	u32 op; /* enum lxprof_alloc_op */
	u32 _pad;
	u64 size;
	u64 address;
};

/* LRU: an entry left by a thread killed inside the syscall ages out. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, u32);
	__type(value, struct lxprof_alloc_pending);
} alloc_pending SEC(".maps");

/* Keeps a traced thread's syscall arguments for its sys_exit. */
static __always_inline void lxprof_alloc_enter(u32 op, u64 size, u64 address)
{
	u64 id = bpf_get_current_pid_tgid();
	if (!lxprof_traced_pid(id >> 32))
		return;
	u32 tid = (u32)id;
	struct lxprof_alloc_pending v = { .op = op, ._pad = 0, .size = size, .address = address };
	bpf_map_update_elem(&alloc_pending, &tid, &v, BPF_ANY);
}

/* The arguments kept by lxprof_alloc_enter for `op`, removed; 0 when none. */
static __always_inline int lxprof_alloc_take(u32 op, struct lxprof_alloc_pending *out)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	struct lxprof_alloc_pending *v = bpf_map_lookup_elem(&alloc_pending, &tid);
	if (!v)
		return 0;
	*out = *v;
	bpf_map_delete_elem(&alloc_pending, &tid);
	return out->op == op;
}

/* x86_64 syscall numbers of the calls followed. */
#define LXPROF_NR_MMAP 9
#define LXPROF_NR_MUNMAP 11
#define LXPROF_NR_BRK 12

/*
 * One raw syscall tracepoint each way (a BPF link: detached at once), not the
 * per-syscall perf-event tracepoints, whose every detach waits for RCU grace
 * periods (~70 ms each here: 0.4 s at the end of each recording). Both filter
 * on the syscall number before any map lookup.
 */
SEC("tp_btf/sys_enter")
int BPF_PROG(alloc_sys_enter, struct pt_regs *regs, long id)
{
	if (id == LXPROF_NR_MMAP) {
		lxprof_alloc_enter(LXPROF_ALLOC_MMAP, BPF_CORE_READ(regs, si), 0);
	} else if (id == LXPROF_NR_MUNMAP) {
		lxprof_alloc_enter(LXPROF_ALLOC_MUNMAP, BPF_CORE_READ(regs, si),
				   BPF_CORE_READ(regs, di));
	} else if (id == LXPROF_NR_BRK) {
		struct task_struct *task = bpf_get_current_task_btf();
		lxprof_alloc_enter(LXPROF_ALLOC_BRK, 0, BPF_CORE_READ(task, mm, brk));
	}
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(alloc_sys_exit, struct pt_regs *regs, long ret)
{
	long id = BPF_CORE_READ(regs, orig_ax);
	if (id != LXPROF_NR_MMAP && id != LXPROF_NR_MUNMAP && id != LXPROF_NR_BRK)
		return 0;
	struct lxprof_alloc_pending v;
	if (id == LXPROF_NR_MMAP) {
		if (!lxprof_alloc_take(LXPROF_ALLOC_MMAP, &v))
			return 0;
		if (ret < 0 && ret >= -4095)
			return 0; /* -errno */
		lxprof_alloc_send(LXPROF_ALLOC_MMAP, v.size, (u64)ret);
	} else if (id == LXPROF_NR_MUNMAP) {
		if (!lxprof_alloc_take(LXPROF_ALLOC_MUNMAP, &v) || ret != 0)
			return 0;
		lxprof_alloc_send(LXPROF_ALLOC_MUNMAP, v.size, v.address);
	} else {
		if (!lxprof_alloc_take(LXPROF_ALLOC_BRK, &v))
			return 0;
		/* brk returns the new break (the old one when it failed). */
		u64 old = v.address, now = (u64)ret;
		if (now > old)
			lxprof_alloc_send(LXPROF_ALLOC_BRK, now - old, old);
	}
	return 0;
}

#endif
