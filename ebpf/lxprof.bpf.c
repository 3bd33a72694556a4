/* SPDX-License-Identifier: (MIT OR Apache-2.0) */
/*
 * lxprof.bpf.c — the kernel side of `lxprof record`, one object.
 *
 * Each probe family lives in its own header (sched, process, faults, memory,
 * samples, alloc); they are compiled together into one object because they share the
 * `traced`, `events` and `counters` maps, and aya 0.14 can only share a map
 * between objects by pinning it in bpffs (files that outlive a crash).
 */
#include "maps.bpf.h"
#include "faults.bpf.h"
#include "sched.bpf.h"
#include "process.bpf.h"
#include "memory.bpf.h"
#include "samples.bpf.h"
#include "alloc.bpf.h"
