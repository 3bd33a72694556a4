/* SPDX-License-Identifier: (MIT OR Apache-2.0) */
/*
 * process.bpf.h — the process tree: fork, exec, exit and thread renames.
 *
 * A fork by a traced process inserts the child's tgid into `traced` in the
 * kernel, so the tree is followed from the child's first instruction.
 */
#ifndef LXPROF_PROCESS_BPF_H
#define LXPROF_PROCESS_BPF_H

#include "maps.bpf.h"
#include "faults.bpf.h"
#include "memory.bpf.h"

SEC("tp_btf/sched_process_fork")
int BPF_PROG(sched_process_fork, struct task_struct *parent, struct task_struct *child)
{
	u32 ppid = parent->tgid;
	struct lxprof_traced *t = lxprof_traced_pid(ppid);
	if (!t)
		return 0;
	u32 child_pid = child->tgid;
	u32 child_tid = child->pid;
	if (child_pid != ppid) {
		struct lxprof_traced v = { .root_pid = t->root_pid, ._pad = 0 };
		if (bpf_map_update_elem(&traced, &child_pid, &v, BPF_NOEXIST) == -E2BIG)
			lxprof_count(LXPROF_COUNTER_MAP_FULL);
	}
	struct lxprof_fork *r = LXPROF_RESERVE(lxprof_fork, LXPROF_EVENT_FORK, ppid,
					       parent->pid, bpf_ktime_get_ns());
	if (!r)
		return 0;
	r->child_pid = child_pid;
	r->child_tid = child_tid;
	bpf_probe_read_kernel_str(r->comm, sizeof(r->comm), child->comm);
	lxprof_submit(r);
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(sched_process_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	u32 pid = p->tgid;
	struct lxprof_traced *t = lxprof_traced_pid(pid);
	if (!t)
		return 0;
	/* A new mm: its RSS counts from 0 (as the model's does). */
	for (int i = 0; i < 4; i++)
		t->rss_sent[i] = 0;
	/* A non-leader thread exec'd and took the leader's tid: its state moves
	 * along, but for its stack's range, which was in the old mm. */
	u32 old_tid = old_pid, tid = p->pid;
	struct lxprof_thread *e = lxprof_thread_of(p, old_tid);
	if (e) {
		e->stack_lo = 0;
		e->stack_hi = 0;
		if (old_tid != tid) {
			struct lxprof_thread moved = *e;
			bpf_map_delete_elem(&threads, &old_tid);
			bpf_map_update_elem(&threads, &tid, &moved, BPF_ANY);
		}
	}
	struct lxprof_exec *r = LXPROF_RESERVE(lxprof_exec, LXPROF_EVENT_EXEC, pid, p->pid,
					       bpf_ktime_get_ns());
	if (!r)
		return 0;
	r->old_tid = old_pid;
	r->_pad = 0;
	bpf_probe_read_kernel_str(r->comm, sizeof(r->comm), p->comm);
	const char *filename = BPF_CORE_READ(bprm, filename);
	if (bpf_probe_read_kernel_str(r->filename, sizeof(r->filename), filename) < 0)
		r->filename[0] = 0;
	lxprof_submit(r);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(sched_process_exit, struct task_struct *p, bool group_dead)
{
	u32 pid = p->tgid;
	if (!lxprof_traced_pid(pid))
		return 0;
	u64 now = bpf_ktime_get_ns();
	/* The last look at the RSS while the thread holds the mm (this
	 * tracepoint precedes exit_mm since Linux 6.16; before, mm is NULL). */
	lxprof_rss_check(p, pid, p->pid, now, true);
	/* Faults so far go before EXIT, whose counters include them: those
	 * after it (the exit path's own) follow with the last switch-out. */
	u32 tid = p->pid;
	struct lxprof_thread *e = lxprof_thread_of(p, tid);
	if (e) {
		lxprof_faults_take(e, p, e->start_ns, now);
		lxprof_faults_flush(e, pid, tid);
	}
	struct lxprof_exit *r = LXPROF_RESERVE(lxprof_exit, LXPROF_EVENT_EXIT, pid, p->pid, now);
	if (r) {
		r->exit_code = p->exit_code;
		r->group_dead = group_dead ? 1 : 0;
		r->min_flt = p->min_flt;
		r->maj_flt = p->maj_flt;
		r->sum_exec_runtime_ns = p->se.sum_exec_runtime;
		lxprof_submit(r);
	}
	if (group_dead)
		bpf_map_delete_elem(&traced, &pid);
	return 0;
}

SEC("tp_btf/task_rename")
int BPF_PROG(task_rename, struct task_struct *task, const char *comm)
{
	u32 pid = task->tgid;
	if (!lxprof_traced_pid(pid))
		return 0;
	struct lxprof_comm *r = LXPROF_RESERVE(lxprof_comm, LXPROF_EVENT_COMM, pid, task->pid,
					       bpf_ktime_get_ns());
	if (!r)
		return 0;
	if (bpf_probe_read_kernel_str(r->comm, sizeof(r->comm), comm) < 0)
		r->comm[0] = 0;
	lxprof_submit(r);
	return 0;
}

#endif
