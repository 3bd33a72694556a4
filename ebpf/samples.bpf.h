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
 * stops at the top of the stack (lxprof_stack_top): on the main thread where
 * the argument/environment strings start (mm->arg_start), on others at the end
 * of the stack's VMA (bpf_find_vma; while the mmap lock is held, the one found
 * at the thread's earlier sample), so the outermost frames (main,
 * start_thread) are not lost to a read crossing the top of the stack, nor the
 * copy spent on strings or on the mappings above a thread's stack.
 *
 * The record is built in a per-CPU scratch buffer (`stack_scratch`, one entry
 * per CPU: too large for a per-CPU array) and copied into the ring with
 * bpf_ringbuf_output, which takes a variable length.
 */
#ifndef LXPROF_SAMPLES_BPF_H
#define LXPROF_SAMPLES_BPF_H

#include "maps.bpf.h"
#include "faults.bpf.h"
#include "stack_top.bpf.h"

#define LXPROF_EFAULT 14

struct lxprof_stack_scratch {
	struct lxprof_stack_copy rec;
	u8 data[LXPROF_KERNEL_STACK_MAX * 8 + LXPROF_STACK_BYTES_MAX + 4096];
};

/* One page of zeros: what an unreadable stack page is copied as. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u8[4096]);
} stack_zeros SEC(".maps");

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
 * 2 = user stack copied with a hole (a page not present, copied as zeros) or
 * without a known end (copied up to the first unreadable page), 3 = samples of traced
 * threads taken, 4 = samples dropped to leave the ring to the other records.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 5);
	__type(key, u32);
	__type(value, u64);
} stack_errors SEC(".maps");

static __always_inline void lxprof_stack_error(u32 which)
{
	u64 *v = bpf_map_lookup_elem(&stack_errors, &which);
	if (v)
		__sync_fetch_and_add(v, 1);
}

/* State of the page-by-page copy of a user stack with holes (bpf_loop). The
 * callback only writes constants into it: the verifier then sees the same
 * state at every iteration and checks the callback once (a running byte count
 * made every iteration a new state: 235,000 instructions verified, ~250 ms). */
struct lxprof_page_copy {
	struct lxprof_stack_scratch *b;
	u64 sp, want, kbytes;
	u32 hole, failed;
};

/* Copies page `i` of the stack (counted from sp's page; an unreadable one as
 * zeros); 1 ends the loop. */
static long lxprof_copy_page(u64 i, void *data)
{
	struct lxprof_page_copy *c = data;
	u64 base = (c->sp & ~4095ULL) + i * 4096;
	u64 end = c->sp + c->want;
	u64 from = base > c->sp ? base : c->sp;
	if (from >= end)
		return 1;
	u64 to = base + 4096 < end ? base + 4096 : end;
	u64 len = to - from;
	u64 off = c->kbytes + (from - c->sp);
	if (off > LXPROF_KERNEL_STACK_MAX * 8 + LXPROF_STACK_BYTES_MAX || len > 4096 || len == 0) {
		c->failed = 1;
		return 1;
	}
	struct lxprof_stack_scratch *b = c->b;
	if (!b) {
		c->failed = 1;
		return 1;
	}
	if (bpf_probe_read_user(b->data + off, len, (void *)from) != 0) {
		u32 zkey = 0;
		const u8 *zeros = bpf_map_lookup_elem(&stack_zeros, &zkey);
		if (!zeros) {
			c->failed = 1;
			return 1;
		}
		bpf_probe_read_kernel(b->data + off, len, zeros);
		c->hole = 1;
	}
	return 0;
}

/* State of the search for the readable memory above sp (bpf_loop): `end` is
 * the first unreadable page, or `limit`. Written only at the end (see above). */
struct lxprof_probe {
	u64 sp, limit, end;
};

/* Reads a byte of the `i`+1-th page above sp's page; 1 ends the loop. */
static long lxprof_probe_page(u64 i, void *data)
{
	struct lxprof_probe *c = data;
	u64 page = (c->sp & ~4095ULL) + (i + 1) * 4096;
	u8 byte;
	if (page >= c->limit)
		return 1;
	if (bpf_probe_read_user(&byte, 1, (void *)page) != 0) {
		c->end = page;
		return 1;
	}
	return 0;
}

/* Bytes of a uprobe's out-of-line slot (x86's UPROBE_XOL_SLOT_BYTES). */
#define LXPROF_XOL_SLOT_BYTES 128

/* A thread stepping a probed instruction out of line is, for its stack, at that
 * instruction: uprobes copy it into a slot of the `[uprobes]` page, which no
 * unwind table covers, and single-step it there (and trap, and fix the ip up
 * afterwards). So an ip in the slot of a step in progress becomes the probed
 * address plus its offset in the slot. --alloc full's malloc/free probes (and
 * any other tool's uprobes) send most of a malloc-heavy program's samples there. */
static __always_inline u64 lxprof_uprobe_ip(struct task_struct *task, u64 ip)
{
	struct uprobe_task *ut = BPF_CORE_READ(task, utask);
	if (!ut)
		return ip;
	if (BPF_CORE_READ(ut, state) == bpf_core_enum_value(enum uprobe_task_state, UTASK_RUNNING))
		return ip;
	u64 xol = BPF_CORE_READ(ut, xol_vaddr);
	if (ip < xol || ip >= xol + LXPROF_XOL_SLOT_BYTES)
		return ip;
	return BPF_CORE_READ(ut, vaddr) + (ip - xol);
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
	struct task_struct *task = bpf_get_current_task_btf();
	struct lxprof_thread *e = lxprof_thread_of(task, tid);
	lxprof_faults_sample(e, task, pid, tid, bpf_ktime_get_ns());
	u32 cpu = bpf_get_smp_processor_id();
	struct lxprof_stack_scratch *b = bpf_map_lookup_elem(&stack_scratch, &cpu);
	if (!b)
		return 0;
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
	u64 ip = lxprof_uprobe_ip(task, BPF_CORE_READ(regs, ip));
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
	u64 top = lxprof_stack_top(task, e, sp);
	bool bounded = top > sp;
	if (bounded && top - sp < want)
		want = top - sp;
	if (want > LXPROF_STACK_BYTES_MAX)
		want = LXPROF_STACK_BYTES_MAX;
	u64 got = 0;
	asm volatile("" : "+r"(kbytes));
	if (kbytes > LXPROF_KERNEL_STACK_MAX * 8)
		return 0;
	if (want >= 8 && bpf_probe_read_user(b->data + kbytes, want, (void *)sp) == 0) {
		got = want;
	} else if (bounded && want >= 8) {
		/* A page in between is not present (a large local buffer never
		 * touched): copy page by page, an unreadable page as zeros. */
		struct lxprof_page_copy c = {
			.b = b, .sp = sp, .want = want, .kbytes = kbytes, .hole = 0, .failed = 0,
		};
		/* bpf_loop: the verifier checks the page step once, not once per
		 * page (an unrolled 65-page loop took ~300 ms to load). */
		bpf_loop(LXPROF_STACK_BYTES_MAX / 4096 + 2, lxprof_copy_page, &c, 0);
		got = c.failed ? 0 : want;
		if (c.hole)
			lxprof_stack_error(2);
	} else if (want >= 8) {
		/* No stack end known (a thread's first sample while the mmap lock
		 * is held): copy up to the first unreadable page, and say the top
		 * is unknown (that page may be a hole inside the stack). */
		lxprof_stack_error(2);
		struct lxprof_probe pr = { .sp = sp, .limit = sp + want, .end = sp + want };
		bpf_loop(LXPROF_STACK_BYTES_MAX / 4096 + 1, lxprof_probe_page, &pr, 0);
		want = pr.end > sp ? pr.end - sp : 0;
		if (want > LXPROF_STACK_BYTES_MAX)
			want = LXPROF_STACK_BYTES_MAX;
		if (want >= 8 && bpf_probe_read_user(b->data + kbytes, want, (void *)sp) == 0)
			got = want;
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
	b->rec.stack_top = bounded ? top : 0;
	b->rec.kernel_depth = kbytes / 8;
	b->rec.stack_len = got;
	u64 size = sizeof(b->rec) + kbytes + got;
	if (size > sizeof(*b))
		return 0;
	u64 avail = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	u64 ring = bpf_ringbuf_query(&events, BPF_RB_RING_SIZE);
	/* Samples are the large records and the ones a profile can spare: past
	 * half a ring not yet read, they give way, so the small records (forks,
	 * execs, CPU, faults) still find room while the reader catches up. */
	if (avail + size > ring / 2) {
		lxprof_stack_error(4);
		return 0;
	}
	if (bpf_ringbuf_output(&events, b, size,
			       avail >= ring / 4 ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP)) {
		lxprof_count(LXPROF_COUNTER_LOST);
		return 0;
	}
	lxprof_count(LXPROF_COUNTER_EVENTS);
	return 0;
}

#endif
