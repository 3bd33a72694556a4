/* SPDX-License-Identifier: (MIT OR Apache-2.0) */
/*
 * samples.bpf.h — cpu-clock stack sampling of the traced processes.
 *
 * User space opens a software cpu-clock perf event on every online CPU (all
 * pids, at the requested frequency) and attaches `sample_cpu` to each. For a
 * traced thread it sends one STACK_COPY record (ebpf/lxprof.h): the user
 * registers, the kernel stack (bpf_get_stack: streamed, so no stack map can
 * fill up) and a copy of the top of the user stack, which user space unwinds
 * with the unwind tables (.eh_frame/.debug_frame) of the mapped objects, and
 * frame pointers where there are none (JIT code).
 *
 * The user registers are the thread's saved user pt_regs (bpf_task_pt_regs),
 * which are the interrupted user state whether the sample hit user mode or a
 * syscall/fault in the kernel. The copy is at most `lxprof_stack_bytes` and
 * stops at the end of the stack's VMA (bpf_find_vma), or on the main thread
 * where the argument/environment strings start (mm->arg_start), so the
 * outermost frames (main, start_thread) are not lost to a read crossing the
 * top of the stack, nor the copy spent on strings.
 *
 * The record is built in a per-CPU scratch buffer (`stack_scratch`, one entry
 * per CPU: too large for a per-CPU array) and copied into the ring with
 * bpf_ringbuf_output, which takes a variable length.
 */
#ifndef LXPROF_SAMPLES_BPF_H
#define LXPROF_SAMPLES_BPF_H

#include "maps.bpf.h"

#define LXPROF_EFAULT 14

/* Bytes of user stack copied per sample; set by user space before loading. */
volatile const u32 lxprof_stack_bytes = 131072;

struct lxprof_stack_scratch {
	struct lxprof_stack_copy rec;
	u8 data[LXPROF_KERNEL_STACK_MAX * 8 + LXPROF_STACK_BYTES_MAX];
};

/* CPU id -> the record being built. max_entries set by user space (CPUs). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct lxprof_stack_scratch);
} stack_scratch SEC(".maps");

/*
 * Per-CPU counts: 0 = user stack not copied (unreadable), 1 = kernel stack
 * failed (other than "no kernel stack": a sample taken in user mode),
 * 2 = user stack copy shortened (the VMA lookup failed: halved until readable),
 * 3 = samples of traced threads taken.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4);
	__type(key, u32);
	__type(value, u64);
} stack_errors SEC(".maps");

static __always_inline void lxprof_stack_error(u32 which)
{
	u64 *v = bpf_map_lookup_elem(&stack_errors, &which);
	if (v)
		__sync_fetch_and_add(v, 1);
}

struct lxprof_vma_end {
	u64 end;
};

static long lxprof_stack_vma_end(struct task_struct *task, struct vm_area_struct *vma, void *data)
{
	struct lxprof_vma_end *c = data;
	c->end = vma->vm_end;
	return 0;
}

SEC("perf_event")
int sample_cpu(struct bpf_perf_event_data *ctx)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 pid = id >> 32;
	u32 tid = (u32)id;
	if (tid == 0 || !lxprof_traced_pid(pid))
		return 0;
	lxprof_stack_error(3);
	u32 cpu = bpf_get_smp_processor_id();
	struct lxprof_stack_scratch *b = bpf_map_lookup_elem(&stack_scratch, &cpu);
	if (!b)
		return 0;
	struct task_struct *task = bpf_get_current_task_btf();
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
	u64 ip = BPF_CORE_READ(regs, ip);
	u64 sp = BPF_CORE_READ(regs, sp);
	u64 bp = BPF_CORE_READ(regs, bp);

	long k = bpf_get_stack(ctx, b->data, LXPROF_KERNEL_STACK_MAX * 8, 0);
	if (k < 0) {
		if (k != -LXPROF_EFAULT)
			lxprof_stack_error(1);
		k = 0;
	}
	u64 kbytes = (u64)k & ~7ULL;
	if (kbytes > LXPROF_KERNEL_STACK_MAX * 8)
		kbytes = LXPROF_KERNEL_STACK_MAX * 8;

	u64 want = lxprof_stack_bytes;
	struct lxprof_vma_end vma = { .end = 0 };
	bool bounded = bpf_find_vma(task, sp, lxprof_stack_vma_end, &vma, 0) == 0 && vma.end > sp;
	/* On the main thread the top of the stack VMA holds the argument and
	 * environment strings, above every frame: stop where they start. */
	u64 arg_start = BPF_CORE_READ(task, mm, arg_start);
	if (bounded && sp < arg_start && arg_start < vma.end)
		vma.end = arg_start;
	if (bounded && vma.end - sp < want)
		want = vma.end - sp;
	if (!bounded)
		lxprof_stack_error(2);
	u64 got = 0;
	for (int i = 0; i < 6 && want >= 8; i++) {
		u64 len = want;
		if (len > LXPROF_STACK_BYTES_MAX)
			len = LXPROF_STACK_BYTES_MAX;
		asm volatile("" : "+r"(kbytes));
		if (kbytes > LXPROF_KERNEL_STACK_MAX * 8)
			break;
		if (bpf_probe_read_user(b->data + kbytes, len, (void *)sp) == 0) {
			got = len;
			break;
		}
		want >>= 1;
	}
	if (got == 0 && want >= 8)
		lxprof_stack_error(0);

	b->rec.header.kind = LXPROF_EVENT_STACK_COPY;
	b->rec.header.cpu = cpu;
	b->rec.header.ts_ns = bpf_ktime_get_ns();
	b->rec.header.pid = pid;
	b->rec.header.tid = tid;
	b->rec.ip = ip;
	b->rec.sp = sp;
	b->rec.bp = bp;
	b->rec.stack_top = bounded ? vma.end : 0;
	b->rec.kernel_depth = kbytes / 8;
	b->rec.stack_len = got;
	u64 size = sizeof(b->rec) + kbytes + got;
	if (size > sizeof(*b))
		return 0;
	u64 avail = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	u64 ring = bpf_ringbuf_query(&events, BPF_RB_RING_SIZE);
	if (bpf_ringbuf_output(&events, b, size,
			       avail >= ring / 4 ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP)) {
		lxprof_count(LXPROF_COUNTER_LOST);
		return 0;
	}
	lxprof_count(LXPROF_COUNTER_EVENTS);
	return 0;
}

#endif
