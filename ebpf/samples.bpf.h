/* SPDX-License-Identifier: (MIT OR Apache-2.0) */
/*
 * samples.bpf.h — cpu-clock stack sampling of the traced processes.
 *
 * User space opens a software cpu-clock perf event on every online CPU (all
 * pids, at the requested frequency) and attaches `sample_cpu` to each. For a
 * traced process it stores the user and kernel stacks (frame pointers) in
 * `stacks` and sends one SAMPLE record with their ids.
 *
 * No BPF_F_REUSE_STACKID: a stack id, once given, keeps its stack for the
 * whole recording (user space reads `stacks` at the end), and a hash collision
 * with a different stack fails with -EEXIST instead of overwriting. Failures
 * are counted in `stack_errors` rather than dropped silently.
 */
#ifndef LXPROF_SAMPLES_BPF_H
#define LXPROF_SAMPLES_BPF_H

#include "maps.bpf.h"

#define LXPROF_EFAULT 14
#define LXPROF_EEXIST 17

/* Stack id -> up to 127 return addresses (PERF_MAX_STACK_DEPTH). */
struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 16384);
	__uint(key_size, sizeof(u32));
	__uint(value_size, 127 * sizeof(u64));
} stacks SEC(".maps");

/*
 * Per-CPU failure counts of bpf_get_stackid: 0 = user stack failed,
 * 1 = kernel stack failed (other than "no kernel stack": a sample taken in
 * user mode), 2 = a stack collided with a different one (-EEXIST, counted
 * also in 0 or 1), 3 = samples of traced threads taken.
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

SEC("perf_event")
int sample_cpu(struct bpf_perf_event_data *ctx)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 pid = id >> 32;
	u32 tid = (u32)id;
	if (tid == 0 || !lxprof_traced_pid(pid))
		return 0;
	lxprof_stack_error(3);
	long user = bpf_get_stackid(ctx, &stacks, BPF_F_USER_STACK);
	long kernel = bpf_get_stackid(ctx, &stacks, 0);
	if (user < 0) {
		lxprof_stack_error(0);
		if (user == -LXPROF_EEXIST)
			lxprof_stack_error(2);
	}
	if (kernel < 0 && kernel != -LXPROF_EFAULT) {
		lxprof_stack_error(1);
		if (kernel == -LXPROF_EEXIST)
			lxprof_stack_error(2);
	}
	struct lxprof_sample *r = LXPROF_RESERVE(lxprof_sample, LXPROF_EVENT_SAMPLE, pid, tid,
						 bpf_ktime_get_ns());
	if (!r)
		return 0;
	r->user_stack_id = user < 0 ? -1 : (s32)user;
	r->kernel_stack_id = kernel < 0 ? -1 : (s32)kernel;
	lxprof_submit(r);
	return 0;
}

#endif
