#!/usr/bin/env python3
"""Benchmark of `lxprof record` overhead (issue 2): the same fixed workload run
bare, under `lxprof record` and under `perf record -F 99 -g`, interleaved
(the order rotates each round), medians of --rounds runs.

Two workloads:
  fixed  -- a C program (source below, compiled with cc) doing a FIXED amount
            of work in three timed phases, each over --threads threads:
            pipe ping-pong (context switches), fresh-page touches (page
            faults), integer arithmetic (CPU). It prints its own phase wall
            times; the overhead is the ratio of those times to bare.
  mixed  -- the bundled `workload mixed --ms MS` (profiler/examples). It runs
            for a fixed wall time, so its overhead shows as fewer pipe round
            trips: cost per unit of work = bare round trips / round trips.

Besides the workload's own time, each run is timed from the outside (spawn to
exit): outside minus inside is the tool's fixed start/stop cost (BPF load,
output writing for lxprof; perf.data writing for perf). A fourth mode,
`perf stat` with the four inherited software counters lxprof also opens,
separates their cost from the BPF probes' (--no-counters skips it).

Run as root from anywhere:  scripts/bench-record.py [--rounds N] [--write-docs]
Uses CARGO_TARGET_DIR if set (else <repo>/target); builds lxprof and the
workload example in release mode first (--no-build to skip).
"""

import argparse
import datetime
import functools
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # importing benchlib leaves no scripts/__pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402
from benchlib import DOC, last_json, pct, write_doc_section  # noqa: E402

TOOL = "bench-record"
die = functools.partial(benchlib.die, TOOL)
SECTION = "## lxprof record overhead (issues 2 and 13)"
MODES = ("bare", "lxprof", "lxprof-noalloc", "perf")
LABELS = {"bare": "bare", "lxprof": "lxprof record",
          "lxprof-noalloc": "lxprof record --alloc off", "perf": "perf record -F 99 -g",
          "bpftrace": "bpftrace (on-CPU + faults)", "counters": "perf stat, 4 counters"}
# The peer doing lxprof's core job in bpftrace: per-thread on-CPU time from
# sched_switch and per-thread page faults, for the command's process.
BPFTRACE_PROG = ("tracepoint:sched:sched_switch { if (pid == cpid) { "
                 "@oncpu[tid] = sum(nsecs - @in[tid]); } @in[args->next_pid] = nsecs; } "
                 "tracepoint:exceptions:page_fault_user /pid == cpid/ { @faults[tid] = count(); }")
PHASES = (("pingpong_ns", "context switches (ping-pong)"), ("faults_ns", "page faults"),
          ("cpu_ns", "CPU"), ("total_ns", "**total**"))

FIXEDWORK_C = r"""
/* Fixed-work benchmark workload (scripts/bench-record.py): three phases, each
 * over THREADS threads; prints each phase's wall time (CLOCK_MONOTONIC). */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static long round_trips, pages, cpu_miters;
static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}
struct pair { int a[2], b[2]; long n; };
static void *echo(void *arg) {
    struct pair *p = arg;
    char c;
    for (long i = 0; i < p->n; i++)
        if (read(p->a[0], &c, 1) != 1 || write(p->b[1], &c, 1) != 1) { perror("echo"); exit(1); }
    return NULL;
}
/* One ping thread per pair; each pair also has an echo thread. */
static void *ping(void *arg) {
    struct pair *p = arg;
    pthread_t t;
    if (pipe(p->a) || pipe(p->b)) { perror("pipe"); exit(1); }
    if (pthread_create(&t, NULL, echo, p)) { perror("pthread_create"); exit(1); }
    char c = 1;
    for (long i = 0; i < p->n; i++)
        if (write(p->a[1], &c, 1) != 1 || read(p->b[0], &c, 1) != 1) { perror("ping"); exit(1); }
    pthread_join(t, NULL);
    close(p->a[0]); close(p->a[1]); close(p->b[0]); close(p->b[1]);
    return NULL;
}
#define CHUNK 256
static void *faults(void *arg) {
    long n = (long)arg;
    for (long done = 0; done < n; done += CHUNK) {
        char *p = mmap(NULL, CHUNK * 4096, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) { perror("mmap"); exit(1); }
        for (int i = 0; i < CHUNK; i++) ((volatile char *)p)[i * 4096] = 1;
        munmap(p, CHUNK * 4096);
    }
    return NULL;
}
static void *cpu(void *arg) {
    long n = (long)arg;
    volatile uint64_t sink;
    uint64_t x = 1;
    for (long i = 0; i < n; i++) x = x * 6364136223846793005ull + 1442695040888963407ull;
    sink = x;
    (void)sink;
    return NULL;
}
static void parallel(void *(*f)(void *), void **args, int n) {
    pthread_t t[64];
    for (int i = 0; i < n; i++)
        if (pthread_create(&t[i], NULL, f, args[i])) { perror("pthread_create"); exit(1); }
    for (int i = 0; i < n; i++) pthread_join(t[i], NULL);
}
int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: fixedwork ROUND_TRIPS PAGES CPU_MITERS THREADS\n");
        return 2;
    }
    round_trips = atol(argv[1]);
    pages = atol(argv[2]);
    cpu_miters = atol(argv[3]);
    int threads = atoi(argv[4]);
    if (threads < 1 || threads > 32) threads = 2;
    int pairs = threads > 1 ? threads / 2 : 1;
    struct pair pr[32];
    void *args[64];
    uint64_t t0 = now_ns();
    for (int i = 0; i < pairs; i++) { pr[i].n = round_trips / pairs; args[i] = &pr[i]; }
    parallel(ping, args, pairs);
    uint64_t t1 = now_ns();
    for (int i = 0; i < threads; i++) args[i] = (void *)(pages / threads);
    parallel(faults, args, threads);
    uint64_t t2 = now_ns();
    for (int i = 0; i < threads; i++) args[i] = (void *)(cpu_miters * 1000000 / threads);
    parallel(cpu, args, threads);
    uint64_t t3 = now_ns();
    printf("{\"pingpong_ns\":%llu,\"faults_ns\":%llu,\"cpu_ns\":%llu,\"total_ns\":%llu}\n",
           (unsigned long long)(t1 - t0), (unsigned long long)(t2 - t1),
           (unsigned long long)(t3 - t2), (unsigned long long)(t3 - t0));
    return 0;
}
"""


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=7, help="interleaved rounds (default 7)")
    p.add_argument("--round-trips", type=int, default=40000,
                   help="fixed: pipe round trips in total (default 40000)")
    p.add_argument("--pages", type=int, default=131072,
                   help="fixed: fresh pages touched in total (default 131072)")
    p.add_argument("--cpu-miters", type=int, default=300,
                   help="fixed: million arithmetic steps in total (default 300)")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 2,
                   help="fixed: threads per phase (default: number of CPUs)")
    p.add_argument("--mixed-ms", type=int, default=1000,
                   help="mixed: wall time of `workload mixed` (default 1000)")
    p.add_argument("--no-mixed", action="store_true", help="skip the mixed workload")
    p.add_argument("--no-counters", action="store_true",
                   help="skip the `perf stat` mode (lxprof's four perf-event counters alone)")
    p.add_argument("--no-bpftrace", action="store_true",
                   help="skip the bpftrace mode (skipped anyway when bpftrace is missing)")
    p.add_argument("--startup-rounds", type=int, default=11,
                   help="rounds of the start-up comparison on /bin/true (0: skip; default 11)")
    p.add_argument("--capacity-ms", type=int, default=2000,
                   help="duration of the event-capacity run (yield storm; 0: skip; default 2000)")
    p.add_argument("--no-build", action="store_true", help="do not run cargo build")
    p.add_argument("--write-docs", action="store_true",
                   help=f"replace the section '{SECTION}' of docs/BENCHMARKS.md")
    a = p.parse_args()
    if a.rounds < 1:
        die("--rounds must be at least 1")
    return a


def build(args, tmp):
    """The release lxprof and workload binaries, and the fixed workload
    compiled into TMP."""
    lxprof, workload = benchlib.build_release(TOOL, args.no_build)
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if not cc:
        die("no C compiler (cc) found: apt-get install gcc")
    src = os.path.join(tmp, "fixedwork.c")
    with open(src, "w") as f:
        f.write(FIXEDWORK_C)
    fixedwork = os.path.join(tmp, "fixedwork")
    r = subprocess.run([cc, "-O2", "-pthread", "-o", fixedwork, src])
    if r.returncode != 0:
        die("compiling the fixed workload failed")
    return lxprof, workload, fixedwork


def command_for(mode, cmd, lxprof, out_dir, extra=()):
    """The command line that runs CMD under MODE, writing into OUT_DIR
    (EXTRA: more lxprof record options)."""
    if mode == "bare":
        return cmd
    if mode == "lxprof":
        return [lxprof, "record", "-o", out_dir, *extra, "--"] + cmd
    if mode == "lxprof-noalloc":
        return [lxprof, "record", "-o", out_dir, "--alloc", "off", *extra, "--"] + cmd
    os.makedirs(out_dir, exist_ok=True)
    if mode == "perf":
        return ["perf", "record", "-F", "99", "-g", "-q", "-o",
                os.path.join(out_dir, "perf.data"), "--"] + cmd
    if mode == "bpftrace":
        return ["bpftrace", "-q", "-o", os.path.join(out_dir, "bpftrace.out"), "-e",
                BPFTRACE_PROG, "-c", " ".join(cmd)]
    # counters: the same four inherited software counters lxprof opens.
    return ["perf", "stat", "-e", "task-clock,minor-faults,major-faults,context-switches",
            "-x", ",", "-o", os.path.join(out_dir, "stat.csv"), "--"] + cmd


def run_once(mode, cmd, key, lxprof, tmp, run_id, extra=()):
    """Runs CMD under MODE; returns the workload's JSON line plus the outside
    wall time, the CPU time of the whole tree and, for lxprof, its report figures."""
    env = dict(os.environ)
    if mode.startswith("lxprof"):
        env["RUST_LOG"] = "info"  # for the "N records written by the kernel" line
    out_dir = os.path.join(tmp, f"run-{run_id}")
    full = command_for(mode, cmd, lxprof, out_dir, extra)
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.monotonic_ns()
        child = subprocess.Popen(full, stdout=out, stderr=err, env=env)
        # wait4: the rusage covers the tool and the workload (waited-for descendants).
        _, status, ru = os.wait4(child.pid, 0)
        outside_ns = time.monotonic_ns() - t0
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if child.returncode != 0:
        die(f"{mode} run failed (exit {child.returncode}): {' '.join(full)}\n{stderr[-2000:]}")
    res = last_json(stdout, key)
    if res is None:
        die(f"{mode}: no workload result line with '{key}' in output:\n{stdout[-2000:]}")
    res["outside_ns"] = outside_ns
    res["tree_cpu_ns"] = int((ru.ru_utime + ru.ru_stime) * 1e9)
    # The workload's own CPU time (BPF programs and perf-event bookkeeping run
    # in its context): rusage when bare, eBPF/sched lifetime totals under
    # lxprof, task-clock under perf stat; perf record does not report it.
    res["workload_cpu_ns"] = res["tree_cpu_ns"] if mode == "bare" else None
    if mode == "counters":
        res["workload_cpu_ns"] = stat_task_clock(os.path.join(out_dir, "stat.csv"))
    if mode.startswith("lxprof"):
        with open(os.path.join(out_dir, "report.json")) as f:
            rep = json.load(f)
        procs = rep.get("processes", [])
        if procs and all(p.get("cpu_ns_sched") is not None for p in procs):
            res["workload_cpu_ns"] = sum(p["cpu_ns_sched"] for p in procs)
        res["lost"] = rep.get("lost_events", 0)
        m = re.search(r"(\d+) records written by the kernel, (\d+) lost; "
                      r"lxprof's own CPU while recording: (\d+) ms", stderr)
        res["records"] = int(m.group(1)) if m else None
        res["recording_cpu_s"] = int(m.group(3)) / 1e3 if m else None
        res["faults"] = rep.get("totals", {}).get("page_faults_minor")
        res["switch_ins"] = sum(t.get("on_cpu_intervals", 0)
                                for p in rep.get("processes", [])
                                for t in p.get("threads", []))
        res["out_bytes"] = sum(os.path.getsize(os.path.join(out_dir, n))
                               for n in os.listdir(out_dir))
    elif mode == "perf":
        res["out_bytes"] = os.path.getsize(os.path.join(out_dir, "perf.data"))
    elif mode == "bpftrace":
        res["out_bytes"] = os.path.getsize(os.path.join(out_dir, "bpftrace.out"))
    shutil.rmtree(out_dir, ignore_errors=True)
    return res


def stat_task_clock(path):
    """task-clock in ns from `perf stat -x ,` output (first field is msec)."""
    try:
        with open(path) as f:
            for line in f:
                fields = line.strip().split(",")
                if len(fields) > 2 and fields[2].startswith("task-clock"):
                    return int(float(fields[0]) * 1e6)
    except (OSError, ValueError):
        pass
    return None


def spread(xs):
    """(median, min, max, q1, q3)."""
    xs = sorted(xs)
    if len(xs) >= 2:
        q1, _, q3 = statistics.quantiles(xs, n=4, method="inclusive")
    else:
        q1 = q3 = xs[0]
    return statistics.median(xs), xs[0], xs[-1], q1, q3


def main():
    args = parse_args()
    if os.geteuid() != 0:
        die("run as root (lxprof loads BPF programs; perf needs access to all events)")
    if not shutil.which("perf"):
        die("perf not found: apt-get install linux-perf")
    use_bpftrace = not args.no_bpftrace and shutil.which("bpftrace")
    if not use_bpftrace and not args.no_bpftrace:
        print("bpftrace not found (apt-get install bpftrace): its column is skipped",
              file=sys.stderr)
    modes = (MODES + (("bpftrace",) if use_bpftrace else ())
             + (() if args.no_counters else ("counters",)))
    started = datetime.datetime.now(datetime.timezone.utc)
    t_start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="lxprof-bench-") as tmp:
        lxprof, workload, fixedwork = build(args, tmp)
        workloads = [("fixed",
                      [fixedwork, str(args.round_trips), str(args.pages),
                       str(args.cpu_miters), str(args.threads)], "total_ns")]
        if not args.no_mixed:
            workloads.append(("mixed", [workload, "mixed", "--ms", str(args.mixed_ms)],
                              "round_trips"))
        load_before = os.getloadavg()
        # Warm-up (page cache, BPF JIT paths), not counted.
        for mode in modes:
            run_once(mode, workloads[0][1], workloads[0][2], lxprof, tmp, f"warm-{mode}")
        results = {w[0]: {m: [] for m in modes} for w in workloads}
        run_id = 0
        for rnd in range(args.rounds):
            k = rnd % len(modes)
            order = modes[k:] + modes[:k]
            for name, cmd, key in workloads:
                for mode in order:
                    run_id += 1
                    results[name][mode].append(run_once(mode, cmd, key, lxprof, tmp, run_id))
            print(f"round {rnd + 1}/{args.rounds} done (order {', '.join(order)})",
                  file=sys.stderr)
        startup = startup_times(args, lxprof, use_bpftrace, tmp)
        capacity = capacity_run(args, lxprof, workload, tmp)
        load_after = os.getloadavg()
    elapsed = time.monotonic() - t_start
    report = render(args, modes, results, load_before, load_after, started, elapsed,
                    startup, capacity)
    print(report["table"])
    if args.write_docs:
        write_doc_section(SECTION, report["doc"])
        print(f"updated {os.path.relpath(DOC, os.getcwd())}", file=sys.stderr)


def timed(cmd):
    """Wall time of CMD in seconds (output discarded); dies if it fails."""
    t0 = time.monotonic()
    r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        die(f"failed: {' '.join(cmd)}\n{r.stderr[-1000:]}")
    return time.monotonic() - t0


def startup_times(args, lxprof, use_bpftrace, tmp):
    """Median wall time of each tool around /bin/true, interleaved rounds:
    {label: (median s, min, max)}; empty with --startup-rounds 0."""
    if args.startup_rounds < 1:
        return {}
    out = os.path.join(tmp, "startup")
    cmds = {
        "bare `true`": ["/bin/true"],
        "`lxprof record -- true`": [lxprof, "record", "-o", out + "-lxprof", "--", "/bin/true"],
        "`perf record -F 99 -g -- true`": ["perf", "record", "-F", "99", "-g", "-q", "-o",
                                           out + "-perf.data", "--", "/bin/true"],
    }
    if use_bpftrace:
        cmds["`bpftrace -e 'tracepoint:sched:sched_switch {…}' -c true`"] = [
            "bpftrace", "-q", "-e", "tracepoint:sched:sched_switch { @[pid] = count(); }",
            "-c", "/bin/true"]
    times = {k: [] for k in cmds}
    for rnd in range(args.startup_rounds):
        keys = list(cmds)
        k = rnd % len(keys)
        for key in keys[k:] + keys[:k]:
            shutil.rmtree(out + "-lxprof", ignore_errors=True)
            times[key].append(timed(cmds[key]))
    print(f"start-up: {args.startup_rounds} rounds done", file=sys.stderr)
    return {k: spread(v)[:3] for k, v in times.items()}


def capacity_run(args, lxprof, workload, tmp):
    """lxprof recording a sched_yield storm (the densest stream of kernel
    records): records per second, lost, lxprof's own CPU per million records.
    None with --capacity-ms 0."""
    if args.capacity_ms < 1:
        return None
    threads = 2 * (os.cpu_count() or 2)
    cmd = [workload, "yield", "--threads", str(threads), "--ms", str(args.capacity_ms)]
    # One record per context switch (no on-CPU window): the recorder's raw
    # capacity for kernel records. No stack sampling: on a 2-CPU machine the
    # samples' unwinding takes CPU from the workload that makes the records.
    res = run_once("lxprof", cmd, "yields", lxprof, tmp, "capacity",
                   extra=["--oncpu-window-us", "0", "--freq", "0"])
    tool_cpu_s = (res["tree_cpu_ns"] - (res["workload_cpu_ns"] or 0)) / 1e9
    recs = res["records"] or 0
    rate = recs / (args.capacity_ms / 1e3)
    rec_cpu = res.get("recording_cpu_s")
    return {"threads": threads, "records": recs, "rate": rate, "lost": res["lost"],
            "tool_cpu_s": tool_cpu_s, "recording_cpu_s": rec_cpu,
            "cpu_per_million": tool_cpu_s / (recs / 1e6) if recs else None,
            "recording_cpu_per_million": rec_cpu / (recs / 1e6) if recs and rec_cpu else None}


def paired(runs, mode, key, invert=False):
    """Per-round ratio of MODE's run to that round's bare run (bare/MODE if
    INVERT, for a throughput)."""
    return [(b[key] / x[key]) if invert else (x[key] / b[key])
            for b, x in zip(runs["bare"], runs[mode])]


def ratio_cell(runs, mode, key, invert=False):
    med, lo, hi, _, _ = spread(paired(runs, mode, key, invert))
    return (med, lo, hi), f"{pct(med)} [{pct(lo)} … {pct(hi)}]"


def render(args, modes, results, load_before, load_after, started, elapsed,
           startup, capacity):
    tools = [m for m in modes if m != "bare"]
    lines = []
    fx = results["fixed"]
    lines.append(f"fixed workload: {args.round_trips} pipe round trips, {args.pages} fresh "
                 f"pages, {args.cpu_miters}M arithmetic steps, {args.threads} threads per phase."
                 " Workload's own wall time, ms, median [min–max]:")
    lines.append("")
    lines.append("| phase | " + " | ".join(LABELS[m] for m in modes) + " |")
    lines.append("|---|" + "---|" * len(modes))
    for key, label in PHASES:
        cells = []
        for mode in modes:
            med, lo, hi, _, _ = spread([r[key] / 1e6 for r in fx[mode]])
            cells.append(f"{med:.0f} [{lo:.0f}–{hi:.0f}]")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Overhead: per-round ratio to that round's bare run, median [min … max]:")
    lines.append("")
    lines.append("| phase | " + " | ".join(LABELS[m] for m in tools) + " |")
    lines.append("|---|" + "---|" * len(tools))
    ratios = {}
    for key, label in PHASES:
        cells = []
        for mode in tools:
            ratios[(key, mode)], cell = ratio_cell(fx, mode, key)
            cells.append(cell)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append("")
    # Start/stop cost: outside wall time minus the workload's own time.
    stop = {m: statistics.median((r["outside_ns"] - r["total_ns"]) / 1e6 for r in fx[m])
            for m in modes}
    tree = {m: statistics.median(r["tree_cpu_ns"] / 1e6 for r in fx[m]) for m in modes}
    lines.append("| fixed workload, per run, median | " + " | ".join(LABELS[m] for m in modes)
                 + " |")
    lines.append("|---|" + "---|" * len(modes))
    lines.append("| start/stop: outside wall time − workload's own time, ms | "
                 + " | ".join(f"{stop[m]:.0f}" for m in modes) + " |")
    lines.append("| CPU time of tool + workload (user + sys), ms | "
                 + " | ".join(f"{tree[m]:.0f}" for m in modes) + " |")
    own = {}
    for m in modes:
        xs = [r["workload_cpu_ns"] / 1e6 for r in fx[m] if r["workload_cpu_ns"] is not None]
        own[m] = statistics.median(xs) if xs else None
    lines.append("| CPU time of the workload itself, ms | "
                 + " | ".join("–" if own[m] is None else f"{own[m]:.0f}" for m in modes)
                 + " |")
    lines.append("| CPU time of the tool's own process, ms | "
                 + " | ".join("–" if own[m] is None or m == "bare"
                              else f"{tree[m] - own[m]:.0f}" for m in modes) + " |")
    lx = fx["lxprof"]
    lost = [r["lost"] for r in lx]
    recs = [r["records"] for r in lx if r["records"] is not None]
    lines.append("")
    lines.append(
        "lxprof per run (median): "
        + (f"{statistics.median(recs):.0f} kernel records, " if recs else "")
        + f"{statistics.median(r['switch_ins'] for r in lx):.0f} on-CPU intervals, "
        f"{statistics.median(r['faults'] for r in lx):.0f} minor faults; "
        f"lost events max {max(lost)} (total {sum(lost)}); outputs "
        f"{statistics.median(r['out_bytes'] for r in lx) / 1e6:.1f} MB "
        f"(perf.data: {statistics.median(r['out_bytes'] for r in fx['perf']) / 1e3:.0f} kB)")
    if "mixed" in results:
        mx = results["mixed"]
        lines.append("")
        lines.append(f"mixed workload (`workload mixed --ms {args.mixed_ms}`, fixed wall "
                     "time): pipe round trips per run, and time per round trip vs bare:")
        lines.append("")
        lines.append("| | " + " | ".join(LABELS[m] for m in modes) + " |")
        lines.append("|---|" + "---|" * len(modes))
        cells = []
        for mode in modes:
            med, lo, hi, _, _ = spread([r["round_trips"] for r in mx[mode]])
            cells.append(f"{med:.0f} [{lo:.0f}–{hi:.0f}]")
        lines.append("| round trips, median [min–max] | " + " | ".join(cells) + " |")
        cells = []
        for mode in tools:
            ratios[("mixed", mode)], cell = ratio_cell(mx, mode, "round_trips", invert=True)
            cells.append(cell)
        lines.append("| time per round trip vs bare, per-round median [min … max] | – | "
                     + " | ".join(cells) + " |")
        mlost = [r["lost"] for r in mx["lxprof"]]
        mrecs = [r["records"] for r in mx["lxprof"] if r["records"] is not None]
        lines.append("")
        lines.append("lxprof per run (median): "
                     + (f"{statistics.median(mrecs):.0f} kernel records; " if mrecs else "")
                     + f"lost events max {max(mlost)} (total {sum(mlost)})")
    if startup:
        lines.append("")
        lines.append(f"Start-up: wall time around `/bin/true`, {args.startup_rounds} interleaved "
                     "rounds, seconds, median [min–max]:")
        lines.append("")
        lines.append("| command | wall time, s |")
        lines.append("|---|---|")
        for label, (med, lo, hi) in startup.items():
            lines.append(f"| {label} | {med:.3f} [{lo:.3f}–{hi:.3f}] |")
    if capacity:
        c = capacity
        lines.append("")
        lines.append(f"Event capacity: `lxprof record --oncpu-window-us 0 --freq 0 -- workload yield --threads {c['threads']}"
                     f" --ms {args.capacity_ms}` (sched_yield storm): {c['records']} kernel "
                     f"records, {c['rate'] / 1e6:.2f} M records/s, {c['lost']} lost; lxprof's "
                     f"own process {c['tool_cpu_s']:.2f} CPU-s in all"
                     + (f" = {c['cpu_per_million']:.2f} CPU-s per million records"
                        if c["cpu_per_million"] is not None else "")
                     + (f", of which {c['recording_cpu_s']:.2f} CPU-s while recording = "
                        f"{c['recording_cpu_per_million']:.2f} per million (the rest builds the "
                        "outputs after the command exited)"
                        if c["recording_cpu_per_million"] is not None else ""))
    # Verdict against the issues' targets.
    lx_med, lx_lo, lx_hi = ratios[("total_ns", "lxprof")]
    pf_med, _, _ = ratios[("total_ns", "perf")]
    bare_total = [r["total_ns"] for r in fx["bare"]]
    bmed, blo, bhi, bq1, bq3 = spread(bare_total)
    noise = (bhi - blo) / bmed
    lines.append("")
    lines.append(f"- target 1, lxprof's overhead below perf's (fixed workload, total): "
                 f"{'met' if lx_med < pf_med else 'NOT met'} ({pct(lx_med)} vs {pct(pf_med)})")
    lines.append(f"- target 2, lxprof's overhead under 2 % (fixed workload, total): "
                 f"{'met' if lx_med < 1.02 else 'NOT met'} ({pct(lx_med)}, per-round "
                 f"{pct(lx_lo)} … {pct(lx_hi)})")
    for key, label in PHASES[:3]:
        med, _, _ = ratios[(key, "lxprof")]
        pmed, _, _ = ratios[(key, "perf")]
        lines.append(f"- issue 13, {label}: lxprof {pct(med)} "
                     f"({'within' if med <= 1.02 else 'NOT within'} 2 % of bare; "
                     f"{'not above' if med <= max(pmed, 1.0) + 1e-9 else 'ABOVE'} perf's {pct(pmed)})")
    if startup:
        lx = next(v for k, v in startup.items() if "lxprof" in k)[0]
        bt = [v[0] for k, v in startup.items() if "bpftrace" in k]
        lines.append(f"- issue 13, start-up: `lxprof record -- true` {lx:.3f} s median "
                     f"({'within' if lx <= 0.3 else 'NOT within'} 0.3 s"
                     + (f"; {'below' if lx < bt[0] else 'NOT below'} bpftrace's {bt[0]:.3f} s"
                        if bt else "") + ")")
    if capacity and capacity["cpu_per_million"] is not None:
        rpm = capacity["recording_cpu_per_million"]
        lines.append(f"- issue 13, capacity: {capacity['rate'] / 1e6:.2f} M records/s with "
                     f"{capacity['lost']} lost (target ≥ 1 M/s, 0 lost), "
                     f"{capacity['cpu_per_million']:.2f} CPU-s per million in all"
                     + (f", {rpm:.2f} while recording" if rpm is not None else "")
                     + " (target ≤ 0.5)")
    lines.append(f"- noise: bare total varies {noise * 100:.1f} % min-to-max, IQR "
                 f"{(bq3 - bq1) / bmed * 100:.1f} %"
                 + (" (larger than the lxprof effect: read it as a bound)"
                    if noise > abs(lx_med - 1) else ""))
    cmdline = "sudo scripts/bench-record.py" + "".join(
        " " + a for a in sys.argv[1:] if a not in ("--write-docs", "--no-build"))
    meta = (f"load average {load_before[0]:.2f} / {load_before[1]:.2f} / {load_before[2]:.2f}"
            f" before, {load_after[0]:.2f} / {load_after[1]:.2f} / {load_after[2]:.2f} after;"
            f" {args.rounds} rounds in {elapsed:.0f} s")
    table = "\n".join(lines)
    return {"table": table + "\n\n" + meta,
            "doc": doc_section(table, meta, cmdline, started)}


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def doc_section(table, meta, cmdline, started):
    return f"""{SECTION}

What it measures: the wall time of a fixed workload run bare, under
`lxprof record -o DIR -- CMD` and under `perf record -F 99 -g -o FILE -- CMD`,
in one run of the script, interleaved (bare, lxprof, perf, perf stat; the
order rotates each round so drift and caches hit every mode alike). Ratios are taken per
round (each tool's run against that round's bare run), then the median over
rounds; brackets give the min–max over rounds.

- **fixed**: a C program embedded in `scripts/bench-record.py` (compiled with
  `cc -O2`) does a fixed amount of work in three timed phases, each on as many
  threads as CPUs so that the profiler's own user-space work competes for CPU:
  pipe ping-pong between thread pairs (two context switches per round trip),
  touching fresh anonymous pages (mmap 256 pages, touch, munmap: one minor
  fault each), and integer arithmetic. The figures are the program's own phase
  times (CLOCK_MONOTONIC), so they exclude process start and exit.
- **mixed**: the bundled `workload mixed` runs for a fixed wall time, so its
  overhead shows as fewer pipe round trips; the cost per round trip relative to
  bare is bare round trips / round trips.
- **perf stat, 4 counters**: `perf stat -e task-clock,minor-faults,major-faults,
  context-switches`, i.e. only the inherited perf-event counters that
  `lxprof record` also opens for its cross-check: it separates their cost
  (per-task perf contexts switched on every context switch) from the BPF
  probes' and the reader's.
- **CPU time**: user + system time of the whole tree (tool and workload,
  from wait4) and of the workload alone (bare: the same; lxprof: the
  threads' lifetime CPU from report.json; perf stat: its task-clock). BPF
  programs and perf-event bookkeeping run in the workload's context, so
  their cost lands in the workload's CPU time; the difference is the tool
  process (lxprof: ring-buffer reader, model, output writing). CPU time
  depends far less on the machine's load than wall time does.
- **start/stop cost**: outside wall time (spawn to exit, measured by the
  script) minus the workload's own time: for lxprof, loading and attaching
  the BPF programs plus writing trace.json/report.json/events.bin after the
  workload exits; for perf, its setup and writing perf.data. The workload
  does not wait on it, but a user does.

Command (as root; run {started:%Y-%m-%d %H:%M} UTC on Linux {platform.release()},
{os.cpu_count()} × {cpu_model()}; no hardware PMU, so perf samples with
cpu-clock):

    {cmdline}

{table}

Conditions: {meta}. This is a small VM shared with other builds, so the
spread is part of the result: ratios whose range straddles 0 are within noise.
"""


if __name__ == "__main__":
    main()
