/* SPDX-License-Identifier: (MIT OR Apache-2.0) */
/*
 * lxprof.h — the one contract between the kernel programs and user space.
 *
 * Every record that crosses the ring buffer, and every map key/value that user
 * space reads or writes, is defined here and nowhere else. The Rust side is
 * generated from this file by bindgen (profiler/build.rs); the build fails if
 * the two drift.
 *
 * Rules: fixed-size types only, explicit padding, every struct a multiple of
 * 8 bytes, no pointers. Timestamps are CLOCK_MONOTONIC nanoseconds
 * (bpf_ktime_get_ns), the clock the emulator also stamps Lambda phases with.
 * "pid" is the kernel's tgid (a process), "tid" the kernel's pid (a thread).
 */
#ifndef LXPROF_H
#define LXPROF_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
typedef __u8 u8;
typedef __u16 u16;
typedef __u32 u32;
typedef __u64 u64;
typedef __s32 s32;
#endif

#define LXPROF_TASK_COMM_LEN 16
#define LXPROF_PATH_LEN 256

/* Kinds of record in the `events` ring buffer. Append only: numbers are stable. */
enum lxprof_event_kind {
	LXPROF_EVENT_ON_CPU = 1,     /* struct lxprof_on_cpu */
	LXPROF_EVENT_FORK = 2,       /* struct lxprof_fork (new process or new thread) */
	LXPROF_EVENT_EXEC = 3,       /* struct lxprof_exec */
	LXPROF_EVENT_EXIT = 4,       /* struct lxprof_exit (a thread; group_dead marks the process) */
	LXPROF_EVENT_COMM = 5,       /* struct lxprof_comm (thread renamed) */
	/* 6: one record per page fault, replaced by LXPROF_EVENT_FAULTS */
	LXPROF_EVENT_RSS = 7,        /* struct lxprof_rss */
	LXPROF_EVENT_ALLOC = 8,      /* struct lxprof_alloc (allocation probes, --alloc) */
	LXPROF_EVENT_SAMPLE = 9,     /* struct lxprof_sample (stack ids; written by user space only) */
	LXPROF_EVENT_FAULTS = 10,    /* struct lxprof_faults (page faults of a thread, aggregated) */
	LXPROF_EVENT_STACK_COPY = 11, /* struct lxprof_stack_copy + variable payload */
};

/* First field of every record. */
struct lxprof_event_header {
	u32 kind;   /* enum lxprof_event_kind */
	u32 cpu;    /* CPU the record was written on */
	u64 ts_ns;  /* when it happened (for ON_CPU: when the interval ended) */
	u32 pid;    /* process (tgid) */
	u32 tid;    /* thread */
};

/*
 * A traced thread ran on a CPU between start_ns and header.ts_ns (its last
 * switch-out), in `stints` stints: stints of a thread less than the on-CPU
 * window apart (lxprof_oncpu_window_ns, 1 ms by default) share a record, so a
 * thread that switches thousands of times a second sends a record per window,
 * not per switch.
 *
 * CPU time comes from the scheduler's own counter, not from the timestamps:
 * cpu_ns is se.sum_exec_runtime at the last switch-out minus its value at the
 * thread's previous record (or when the thread was first seen), so a missed
 * switch-in or switch-out never loses CPU time: the next record carries it.
 * cpu_total_ns is se.sum_exec_runtime then; consecutive records of a thread
 * chain (cpu_total_ns - cpu_ns == the previous cpu_total_ns).
 */
struct lxprof_on_cpu {
	struct lxprof_event_header header;
	u64 start_ns;     /* first stint's switch-in; when not seen: its end - the scheduler's stint */
	u64 cpu_ns;       /* CPU since the previous record of this thread (see above) */
	u64 cpu_total_ns; /* se.sum_exec_runtime at the last stint's switch-out */
	u32 prev_state;   /* scheduler state at the last switch-out: 0 = preempted (runnable) */
	u32 flags;        /* enum lxprof_on_cpu_flag, of any stint of the record */
	u32 stints;       /* stints on a CPU the record covers (>= 1) */
	u32 _pad;
};

enum lxprof_on_cpu_flag {
	LXPROF_ON_CPU_NO_SWITCH_IN = 1, /* the switch-in was not seen: start_ns from the scheduler's stint */
	LXPROF_ON_CPU_FIRST = 2,        /* first record of the thread: cpu_ns is its current stint */
	LXPROF_ON_CPU_DEAD = 4,         /* the thread's last switch-out (it exited) */
};

/* A task was created. For a new thread, child_pid == parent_pid. */
struct lxprof_fork {
	struct lxprof_event_header header; /* pid/tid: the parent */
	u32 child_pid;
	u32 child_tid;
	char comm[LXPROF_TASK_COMM_LEN]; /* the child's name at creation */
};

/* A process called execve successfully. */
struct lxprof_exec {
	struct lxprof_event_header header;
	u32 old_tid; /* the thread that called exec (it becomes the leader) */
	u32 _pad;
	char comm[LXPROF_TASK_COMM_LEN];
	char filename[LXPROF_PATH_LEN]; /* NUL terminated, truncated if longer */
};

/* A thread exited, with its lifetime counters (exact, from task_struct). */
struct lxprof_exit {
	struct lxprof_event_header header;
	u32 exit_code;  /* the kernel's wait status: (code << 8) | signal */
	u32 group_dead; /* 1 when this was the last thread: the process is gone */
	u64 min_flt;    /* minor page faults of this thread (task->min_flt) */
	u64 maj_flt;    /* major page faults of this thread (task->maj_flt) */
	u64 sum_exec_runtime_ns; /* CPU time of this thread (task->se.sum_exec_runtime) */
};

/* A thread changed its name (prctl PR_SET_NAME, pthread_setname_np, /proc/.../comm). */
struct lxprof_comm {
	struct lxprof_event_header header;
	char comm[LXPROF_TASK_COMM_LEN];
};

/*
 * Page faults of one thread, from the kernel's own per-task counters
 * (task->min_flt + task->maj_flt, the figures behind getrusage's
 * ru_minflt/ru_majflt): read at the thread's switch-outs and samples, so no
 * probe runs per fault. Sent with the thread's ON_CPU records, and while it
 * stays on a CPU at a cpu-clock sample once LXPROF_FAULT_BUCKET_NS passed.
 * header.ts_ns is when the counters were read; every fault counted lies in
 * [first_ns, header.ts_ns] (on a CPU in that span).
 */
struct lxprof_faults {
	struct lxprof_event_header header;
	u64 first_ns; /* start of the span the faults lie in */
	u32 count;    /* faults counted (minor + major) */
	u32 major;    /* of which major (needed I/O) */
};

/* A thread on a CPU has its faults sent at a sample once this old. */
#define LXPROF_FAULT_BUCKET_NS (1000 * 1000)

/* RSS counters of mm member types (mm->rss_stat), of a process: read when
 * its threads' records go out and at a thread's exit (memory.bpf.h). */
enum lxprof_rss_member {
	LXPROF_RSS_FILE = 0,  /* MM_FILEPAGES */
	LXPROF_RSS_ANON = 1,  /* MM_ANONPAGES */
	LXPROF_RSS_SWAP = 2,  /* MM_SWAPENTS (not resident) */
	LXPROF_RSS_SHMEM = 3, /* MM_SHMEMPAGES */
};

struct lxprof_rss {
	struct lxprof_event_header header;
	u32 member;    /* enum lxprof_rss_member */
	u32 _pad;
	u64 size_bytes; /* new value of that counter, in bytes */
};

/* An allocation call of a traced process (ebpf/alloc.bpf.h). */
enum lxprof_alloc_op {
	LXPROF_ALLOC_MALLOC = 1,  /* size: requested; address: 0 */
	LXPROF_ALLOC_CALLOC = 2,  /* size: n * size; address: 0 */
	LXPROF_ALLOC_REALLOC = 3, /* size: new size; address: the old block (never NULL) */
	LXPROF_ALLOC_FREE = 4,    /* size: 0; address: the block (never NULL) */
	LXPROF_ALLOC_MMAP = 5,    /* size: requested length; address: the mapping */
	LXPROF_ALLOC_MUNMAP = 6,  /* size: length; address: start */
	LXPROF_ALLOC_BRK = 7,     /* size: heap growth (> 0); address: the old break */
};

struct lxprof_alloc {
	struct lxprof_event_header header;
	u32 op; /* enum lxprof_alloc_op */
	u32 _pad;
	u64 size;    /* bytes requested, released or grown (see enum lxprof_alloc_op) */
	u64 address; /* see enum lxprof_alloc_op */
};

/* A cpu-clock sample as stack ids. The kernel sends LXPROF_EVENT_STACK_COPY;
 * the recorder unwinds it and logs this (ids of stacks it logs beside). */
struct lxprof_sample {
	struct lxprof_event_header header;
	s32 user_stack_id;   /* < 0: none */
	s32 kernel_stack_id; /* < 0: none */
};

/* Kernel return addresses kept per sample (PERF_MAX_STACK_DEPTH). */
#define LXPROF_KERNEL_STACK_MAX 127
/* Most bytes of user stack a sample can carry (--stack-bytes). */
#define LXPROF_STACK_BYTES_MAX (256 * 1024)

/*
 * A cpu-clock sample for unwinding in user space: the thread's user registers
 * (from its saved user pt_regs, also when the sample hit kernel mode) and,
 * after this fixed part, `kernel_depth` u64 kernel addresses (leaf first;
 * 0 when the sample hit user mode) then `stack_len` bytes of user stack
 * copied from `sp` upwards. The record is exactly
 * sizeof(struct lxprof_stack_copy) + 8 * kernel_depth + stack_len bytes.
 */
struct lxprof_stack_copy {
	struct lxprof_event_header header;
	u64 ip; /* user instruction pointer */
	u64 sp; /* user stack pointer: address of the first stack byte */
	u64 bp; /* user frame pointer */
	u64 stack_top; /* where the stack ends above sp (its VMA's end, or the argument
			* strings on the main thread); 0: unknown. sp + stack_len == stack_top:
			* the whole stack was copied */
	u32 kernel_depth; /* kernel addresses following */
	u32 stack_len;    /* user stack bytes following them */
};

/* RSS records are sent when a counter moved by at least this much since the
 * last one sent (or dropped to 0), and at every thread exit whatever it moved.
 * Between two reads the counters are not seen: a peak that lasted less than
 * a thread's stint (or a sample period) may be low by what it rose meanwhile. */
#define LXPROF_RSS_STEP_BYTES (256 * 1024)

/* Value of the `traced` map (key: u32 pid). */
struct lxprof_traced {
	u32 root_pid; /* the pid lxprof was asked to follow, whose tree this belongs to */
	u32 _pad;
	u64 rss_sent[4]; /* last size_bytes sent per enum lxprof_rss_member (kernel-owned) */
};

/*
 * Value of the `threads` map (key: u32 tid): the kernel's per-thread state.
 * User space reads it when recording stops (threads still on a CPU, faults
 * not yet sent) and seeds it for threads that existed before the recording.
 */
struct lxprof_thread {
	u64 start_ns;       /* switched in at; 0: not on a CPU (or the switch-in was not seen) */
	u64 cpu_seen_ns;    /* se.sum_exec_runtime when CPU time was last accounted */
	u64 batch_first_ns; /* stints not yet sent: the first one's start */
	u64 batch_last_ns;  /* and the last one's end */
	u64 batch_cpu_ns;   /* and their CPU (up to cpu_seen_ns) */
	u32 batch_stints;   /* stints not yet sent (0: none) */
	u32 batch_flags;    /* their enum lxprof_on_cpu_flag */
	u32 batch_state;    /* the last one's prev_state */
	u32 pid;            /* its process (tgid) */
	u64 fault_first_ns; /* faults not yet sent: start of their span */
	u64 fault_last_ns;  /* and its end (when the counters were read) */
	u64 flt_seen;       /* task min_flt + maj_flt when last read */
	u64 maj_seen;       /* task maj_flt when last read */
	u32 faults;         /* faults not yet sent */
	u32 faults_major;   /* of which major */
	u32 on_cpu_unseen;  /* kernel-owned: 1 when first seen on a CPU (its switch-in was before) */
	u32 _pad;
	u64 stack_lo;       /* kernel-owned: the user stack's VMA range found at a switch-in or sample */
	u64 stack_hi;       /* (stack_top.bpf.h), for samples whose VMA lookup is refused */
	u64 task; /* kernel-owned: the task_struct it belongs to (a reused tid is another
		   * thread); 0 when seeded by user space (taken by the thread's next event) */
};

/* Values of the per-CPU `counters` array (key: enum lxprof_counter). */
enum lxprof_counter {
	LXPROF_COUNTER_LOST = 0,       /* records dropped: ring buffer full */
	LXPROF_COUNTER_EVENTS = 1,     /* records written */
	LXPROF_COUNTER_MAP_FULL = 2,   /* a child or a thread not tracked: `traced`/`threads` full */
	LXPROF_COUNTER_NO_SWITCH_IN = 3, /* a thread seen before switched out with no switch-in seen */
	LXPROF_COUNTER_CPU_CARRIED = 4,  /* ON_CPU records carrying CPU of stints whose records were missed */
	LXPROF_COUNTER_MAP_BUSY = 5,     /* a `threads` update refused (-EBUSY/-EDEADLK): not full */
	LXPROF_COUNTER_MAX = 6,
};

#endif /* LXPROF_H */
