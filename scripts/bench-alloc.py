#!/usr/bin/env python3
"""Benchmark of allocation recording (issue 5): the same workloads run bare and
under `lxprof record --alloc off|syscalls|full`, interleaved (the order rotates
each round), per-round ratios to that round's bare run, medians over rounds.

Workloads (each reports its own work time, so lxprof's start/stop is excluded):
  malloc -- `workload alloc --count N`: N malloc calls (16..4000 bytes) in
            batches of 1,000, each freed: the worst case for uprobes. Its
            time is the malloc loop's wall time.
  mixed  -- `workload mixed --ms MS`: CPU bursts, a 256 KiB Vec per burst
            (malloc -> mmap/munmap in glibc), pipe ping-pong; fixed wall time,
            so the cost shows as fewer round trips (bare / round trips).
  syscall -- a C program (embedded below, compiled with cc) making N getppid
            syscalls: the syscall tracepoints put every syscall of every task
            on the kernel's slow path; this shows what that costs.
  node   -- (if `node` is installed) a fixed JSON parse/stringify loop in
            Node.js, like a small Lambda handler: a managed runtime's mix of
            malloc and mmap'd GC heap. Its time is its own wall time.

Run as root:  scripts/bench-alloc.py [--rounds N] [--write-docs]
Uses CARGO_TARGET_DIR if set (else <repo>/target); builds lxprof and the
workload example in release mode first (--no-build to skip).
"""

import argparse
import datetime
import functools
import json
import os
import platform
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

TOOL = "bench-alloc"
die = functools.partial(benchlib.die, TOOL)
SECTION = "## Allocation recording overhead (issue 5)"
MODES = ("bare", "off", "syscalls", "full")
LABELS = {"bare": "bare", "off": "--alloc off", "syscalls": "--alloc syscalls",
          "full": "--alloc full"}

SYSCALL_C = r"""
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long i = 0; i < n; i++) syscall(SYS_getppid);
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("{\"ns\":%lld,\"syscalls\":%ld}\n",
           (long long)(b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec), n);
    return 0;
}
"""

NODE_JS = r"""
// Fixed work: build, stringify and parse an API-Gateway-like event, ITER times.
const iters = Number(process.argv[2] || 20000);
const t0 = process.hrtime.bigint();
let headers = 0;
for (let i = 0; i < iters; i++) {
  const ev = { resource: "/", path: "/", httpMethod: "GET", requestContext: { requestId: "r" + i },
    headers: {}, multiValueHeaders: {}, body: "x".repeat(200 + (i % 50)) };
  for (let h = 0; h < 20; h++) { ev.headers["X-H" + h] = "v" + (i * h); ev.multiValueHeaders["X-H" + h] = ["v" + h]; }
  const back = JSON.parse(JSON.stringify(ev));
  headers += Object.keys(back.headers).length;
}
const ns = Number(process.hrtime.bigint() - t0);
console.log(JSON.stringify({ ns, headers }));
"""


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    p.add_argument("--count", type=int, default=300000,
                   help="malloc: malloc calls (default 300000)")
    p.add_argument("--syscalls", type=int, default=2000000,
                   help="syscall: getppid calls (default 2000000)")
    p.add_argument("--mixed-ms", type=int, default=1000,
                   help="mixed: wall time of `workload mixed` (default 1000)")
    p.add_argument("--node-iters", type=int, default=20000,
                   help="node: JSON round trips (default 20000)")
    p.add_argument("--no-node", action="store_true", help="skip the Node.js workload")
    p.add_argument("--no-build", action="store_true", help="do not run cargo build")
    p.add_argument("--write-docs", action="store_true",
                   help=f"replace the section '{SECTION}' of docs/BENCHMARKS.md")
    a = p.parse_args()
    if a.rounds < 1:
        die("--rounds must be at least 1")
    return a


def run_once(mode, cmd, key, lxprof, tmp, run_id):
    """Runs CMD bare or under lxprof; returns its JSON line, plus the ALLOC
    records and lost events of the recording."""
    out_dir = os.path.join(tmp, f"run-{run_id}")
    full = cmd if mode == "bare" else (
        [lxprof, "record", "--freq", "0", "--alloc", mode, "-o", out_dir, "--"] + cmd)
    r = subprocess.run(full, capture_output=True, text=True)
    if r.returncode != 0:
        die(f"{mode} run failed (exit {r.returncode}): {' '.join(full)}\n{r.stderr[-2000:]}")
    res = last_json(r.stdout, key)
    if res is None:
        die(f"{mode}: no result line with '{key}' in output:\n{r.stdout[-2000:]}")
    if mode != "bare":
        with open(os.path.join(out_dir, "report.json")) as f:
            rep = json.load(f)
        res["lost"] = rep.get("lost_events", 0)
        res["alloc_records"] = sum(
            a["malloc_count"] + a["free_count"] + a["mmap_count"]
            for p in rep.get("processes", []) if (a := p.get("alloc")))
        shutil.rmtree(out_dir, ignore_errors=True)
    return res


def untraced_cost(lxprof, cmd, tmp):
    """Median malloc-loop ns of CMD run bare (untraced) without, then with, a
    `--alloc full` recording of another process going on."""
    def loops():
        out = []
        for _ in range(3):
            r = subprocess.run(cmd, capture_output=True, text=True)
            res = last_json(r.stdout, "ns")
            if r.returncode != 0 or res is None:
                die(f"untraced run failed: {' '.join(cmd)}\n{r.stderr[-2000:]}")
            out.append(res["ns"])
        return statistics.median(out)
    without = loops()
    rec = subprocess.Popen([lxprof, "record", "--freq", "0", "--alloc", "full", "-o",
                            os.path.join(tmp, "untraced"), "--", "sleep", "600"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        # Wait until the probes are attached: the recorded sleep has started.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            r = subprocess.run(["pgrep", "-P", str(rec.pid), "-x", "sleep"],
                               capture_output=True)
            if r.returncode == 0:
                break
            time.sleep(0.1)
        else:
            die("lxprof record --alloc full did not start its command")
        with_probes = loops()
    finally:
        rec.send_signal(2)  # SIGINT: forwarded to sleep, the recording ends
        try:
            rec.wait(timeout=30)
        except subprocess.TimeoutExpired:
            rec.kill()
            rec.wait()
    return without, with_probes


def spread(xs):
    xs = sorted(xs)
    return statistics.median(xs), xs[0], xs[-1]


def main():
    args = parse_args()
    if os.geteuid() != 0:
        die("run as root (lxprof loads BPF programs)")
    lxprof, workload = benchlib.build_release(TOOL, args.no_build)
    started = datetime.datetime.now(datetime.timezone.utc)
    t_start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="lxprof-bench-alloc-") as tmp:
        # (name, command, result key, higher-is-better, description)
        workloads = [
            ("malloc", [workload, "alloc", "--count", str(args.count)], "ns", False,
             f"`workload alloc --count {args.count}`: malloc loop wall time"),
            ("mixed", [workload, "mixed", "--ms", str(args.mixed_ms)], "round_trips", True,
             f"`workload mixed --ms {args.mixed_ms}`: time per pipe round trip"),
        ]
        cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
        if cc:
            src = os.path.join(tmp, "getppid.c")
            with open(src, "w") as f:
                f.write(SYSCALL_C)
            exe = os.path.join(tmp, "getppid")
            if subprocess.run([cc, "-O2", "-o", exe, src]).returncode != 0:
                die("compiling the syscall workload failed")
            workloads.append(("syscall", [exe, str(args.syscalls)], "ns", False,
                              f"{args.syscalls} getppid syscalls: wall time"))
        else:
            print("bench-alloc: no C compiler, skipping the syscall workload", file=sys.stderr)
        node = shutil.which("node")
        if node and not args.no_node:
            js = os.path.join(tmp, "json-loop.js")
            with open(js, "w") as f:
                f.write(NODE_JS)
            workloads.append(("node", [node, js, str(args.node_iters)], "ns", False,
                              f"Node.js, {args.node_iters} JSON event round trips: wall time"))
        load_before = os.getloadavg()
        for mode in MODES:  # warm-up, not counted
            run_once(mode, workloads[0][1], workloads[0][2], lxprof, tmp, f"warm-{mode}")
        results = {w[0]: {m: [] for m in MODES} for w in workloads}
        run_id = 0
        for rnd in range(args.rounds):
            k = rnd % len(MODES)
            order = MODES[k:] + MODES[:k]
            for name, cmd, key, _, _ in workloads:
                for mode in order:
                    run_id += 1
                    results[name][mode].append(run_once(mode, cmd, key, lxprof, tmp, run_id))
            print(f"round {rnd + 1}/{args.rounds} done (order {', '.join(order)})",
                  file=sys.stderr)
        untraced = untraced_cost(lxprof, workloads[0][1], tmp)
        load_after = os.getloadavg()
    elapsed = time.monotonic() - t_start
    table = render(workloads, results)
    table += ("\n\nWhile `lxprof record --alloc full` runs (recording another process), an "
              "UNTRACED process's malloc loop takes "
              f"{untraced[1] / 1e6:.1f} ms instead of {untraced[0] / 1e6:.1f} ms: "
              f"{(untraced[1] - untraced[0]) / (2 * args.count) / 1e3:.1f} µs per call. "
              "A uprobe belongs to the libc file, so every process using that libc "
              "traps; the kernel program only drops the call.")
    meta = (f"load average {load_before[0]:.2f} / {load_before[1]:.2f} / {load_before[2]:.2f}"
            f" before, {load_after[0]:.2f} / {load_after[1]:.2f} / {load_after[2]:.2f} after;"
            f" {args.rounds} rounds in {elapsed:.0f} s")
    print(table + "\n\n" + meta)
    if args.write_docs:
        cmdline = "sudo scripts/bench-alloc.py" + "".join(
            " " + a for a in sys.argv[1:] if a not in ("--write-docs", "--no-build"))
        write_doc_section(SECTION, doc_section(table, meta, cmdline, started))
        print(f"updated {os.path.relpath(DOC, os.getcwd())}", file=sys.stderr)


def render(workloads, results):
    tools = [m for m in MODES if m != "bare"]
    lines = ["Cost per unit of work vs bare: per-round ratio, median [min … max] over rounds;",
             "ALLOC records per run (median) and lost events (max) below each.", "",
             "| workload | bare (median) | " + " | ".join(LABELS[m] for m in tools) + " |",
             "|---|---|" + "---|" * len(tools)]
    for name, _, key, higher_better, desc in workloads:
        runs = results[name]
        bare = statistics.median(r[key] for r in runs["bare"])
        bare_cell = (f"{bare:.0f} round trips" if higher_better else f"{bare / 1e6:.1f} ms")
        cells = []
        for mode in tools:
            ratios = [(b[key] / x[key]) if higher_better else (x[key] / b[key])
                      for b, x in zip(runs["bare"], runs[mode])]
            med, lo, hi = spread(ratios)
            cells.append(f"{pct(med)} [{pct(lo)} … {pct(hi)}]")
        lines.append(f"| {desc} | {bare_cell} | " + " | ".join(cells) + " |")
        # The allocation probes' own cost: each mode against that round's
        # --alloc off run (the recorder without allocation probes).
        cells = []
        for mode in ("syscalls", "full"):
            ratios = [(o[key] / x[key]) if higher_better else (x[key] / o[key])
                      for o, x in zip(runs["off"], runs[mode])]
            med, lo, hi = spread(ratios)
            cells.append(f"{pct(med)} [{pct(lo)} … {pct(hi)}]")
        lines.append("| ↳ vs --alloc off (the probes' own cost) | | – | " + " | ".join(cells)
                     + " |")
        recs = [f"{statistics.median(r['alloc_records'] for r in runs[m]):.0f} records, "
                f"lost {max(r['lost'] for r in runs[m])}" for m in tools]
        lines.append("| ↳ ALLOC records, lost | | " + " | ".join(recs) + " |")
    # Cost of one uprobe hit, from the malloc workload: extra time per call.
    if "malloc" in results:
        runs = results["malloc"]
        per_call = [(f["ns"] - o["ns"]) / max(1, f["alloc_records"])
                    for o, f in zip(runs["off"], runs["full"])]
        lines.append("")
        lines.append(f"`--alloc full` costs {statistics.median(per_call) / 1e3:.1f} µs per "
                     "malloc/free call recorded (malloc workload, full − off, median).")
    return "\n".join(lines)


def doc_section(table, meta, cmdline, started):
    return f"""{SECTION}

What it measures: the cost of each `--alloc` mode of `lxprof record` (the
rest of the recorder included: `--alloc off` is the baseline recorder, without
sampling) on a malloc-heavy program and on realistic mixes, against the same
program run bare, in one run of the script, interleaved (the order of the
four modes rotates each round). Each workload reports its own work time, so
lxprof's start/stop cost is excluded. `syscalls` adds the mmap/munmap/brk
syscall tracepoints; `full` adds uprobes on malloc/calloc/realloc/free of
libc (one ring record per call).

Command (as root; run {started:%Y-%m-%d %H:%M} UTC on Linux {platform.release()},
{os.cpu_count()} CPUs):

    {cmdline}

{table}

Conditions: {meta}. This is a small VM shared with other builds: ranges
that straddle 0 are within noise.
"""


if __name__ == "__main__":
    main()
