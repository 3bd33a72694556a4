/* SPDX-License-Identifier: (MIT OR Apache-2.0) */
/*
 * stack_top.bpf.h — where a traced thread's user stack ends: how much of it a
 * cpu-clock sample copies (samples.bpf.h).
 *
 * bpf_find_vma only try-locks the mmap lock, so the lookup of a stack's VMA
 * is refused while any thread of the process maps, unmaps or protects memory
 * (a GC returning blocks, malloc trimming): each thread keeps the range found
 * at its first switch-in (sched.bpf.h) and at each sample, for those moments.
 */
#ifndef LXPROF_STACK_TOP_BPF_H
#define LXPROF_STACK_TOP_BPF_H

#include "maps.bpf.h"

/* Bytes of user stack copied per sample; set by user space before loading
 * (0: no sampling, no stack ranges kept). */
volatile const u32 lxprof_stack_bytes = 131072;

struct lxprof_vma_end {
	u64 start;
	u64 end;
};

static long lxprof_stack_vma_end(struct task_struct *task, struct vm_area_struct *vma, void *data)
{
	struct lxprof_vma_end *c = data;
	c->start = vma->vm_start;
	c->end = vma->vm_end;
	return 0;
}

/* The end of the VMA holding `sp` (`*start`: its start); 0 when no VMA holds it
 * or the lookup was refused. */
static __always_inline u64 lxprof_stack_vma(struct task_struct *task, u64 sp, u64 *start)
{
	struct lxprof_vma_end v = { .start = 0, .end = 0 };
	if (bpf_find_vma(task, sp, lxprof_stack_vma_end, &v, 0) != 0)
		return 0;
	*start = v.start;
	return v.end;
}

/* Where the stack holding `sp` ends, or 0 (unknown). On the main thread the
 * top of the stack holds the argument and environment strings, above every
 * frame: it ends where they start (mm->arg_start), and an sp at most 256 KiB
 * below them is on it, as the kernel keeps a gap of 1 MiB below the stack free
 * of mappings (stack_guard_gap). On other threads, the end of sp's VMA; when
 * the lookup is refused, the end found at an earlier sample of the thread if
 * sp is still in that range (`e`: the thread's entry, may be NULL). */
static __always_inline u64 lxprof_stack_top(struct task_struct *task, struct lxprof_thread *e,
					    u64 sp)
{
	u64 arg_start = BPF_CORE_READ(task, mm, arg_start);
	if (sp < arg_start && arg_start - sp <= LXPROF_STACK_BYTES_MAX)
		return arg_start;
	u64 lo = 0;
	u64 top = lxprof_stack_vma(task, sp, &lo);
	if (top > sp) {
		if (e) {
			e->stack_lo = lo;
			e->stack_hi = top;
		}
	} else if (e && e->stack_lo <= sp && sp < e->stack_hi) {
		top = e->stack_hi;
	}
	/* A main thread deeper than 256 KiB. */
	if (top > sp && sp < arg_start && arg_start < top)
		top = arg_start;
	return top;
}

/* At a thread's first switch-in: the range of its stack, so that its samples
 * find their stack's end while the mmap lock is held from the start (a thread
 * born to map memory). */
static __always_inline void lxprof_stack_seed(struct task_struct *task, struct lxprof_thread *e)
{
	if (!lxprof_stack_bytes)
		return;
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
	lxprof_stack_top(task, e, BPF_CORE_READ(regs, sp));
}

#endif
