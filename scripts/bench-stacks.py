#!/usr/bin/env python3
"""Benchmark of lxprof's stack sampling (issue 10): the call chain
main -> outer -> middle -> inner -> leaf in a C program built with
-O2 -fomit-frame-pointer, a Mono C# program and a Node script, each doing a
FIXED amount of work and printing its own time, run

  bare                      the program alone
  lxprof --freq 0           lxprof record without sampling (the other probes)
  lxprof                    lxprof record --freq 499 (DWARF/CFI + frame-pointer unwinding)
  perf dwarf                perf record --call-graph dwarf -F 499 (8 KiB stack copies)

interleaved (the order rotates each round), medians of --rounds runs. Reported:
the workload's own time against bare (overhead), the share of sample weight
with an unresolved frame ([unknown], [truncated], [no unwind info: ...]), the
share of the chain's samples that show the whole chain, bytes per sample
(lxprof: its record bytes; perf: perf.data size / samples), the cost of the
sampling program in the kernel (bpf run time per sample, kernel.bpf_stats_enabled)
and of lxprof's unwinding (its own CPU time, --freq 499 minus --freq 0, per
sample). Then one lxprof run per --stack-bytes size: what smaller copies lose.

All runs get the same runtime settings lxprof's launcher gives (Mono --jitmap,
Node --perf-basic-prof-only-functions), so perf can name JIT code too.

Run as root from anywhere:  scripts/bench-stacks.py [--rounds N] [--write-docs]
Uses CARGO_TARGET_DIR if set (else <repo>/target); builds lxprof in release
mode first (--no-build to skip). Needs cc (or clang-19), mono/mcs, node, perf.
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
import threading
import time

sys.dont_write_bytecode = True  # importing benchlib leaves no scripts/__pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402
from benchlib import DOC, last_json, pct, write_doc_section  # noqa: E402

TOOL = "bench-stacks"
die = functools.partial(benchlib.die, TOOL)
SECTION = "## Stack unwinding: lxprof vs perf --call-graph dwarf (issue 10)"
FREQ = 499
STACK_SIZES = (8192, 16384, 32768, 65536, 131072, 262144)
STACK = 262144  # lxprof's default --stack-bytes

CHAIN_DIR = os.path.join(benchlib.REPO, "profiler", "tests", "data", "chain")

# (name, chain root first, runtime env lxprof's launcher would set)
WORKLOADS = {
    "c": (["main", "chain_outer", "chain_middle", "chain_inner", "chain_leaf"], {}),
    "mono": (["P:Main", "P:ChainOuter", "P:ChainMiddle", "P:ChainInner", "P:ChainLeaf"],
             {"MONO_ENV_OPTIONS": "--jitmap", "MONO_DEBUG": "disable_omit_fp"}),
    "node": (["main", "chainOuter", "chainMiddle", "chainInner", "chainLeaf"],
             {"NODE_OPTIONS": "--perf-basic-prof-only-functions --interpreted-frames-native-stack"}),
}


def build(work, rounds):
    """Builds the three programs in WORK; returns {name: argv}."""
    cc = shutil.which("gcc") or shutil.which("clang-19") or shutil.which("cc")
    if not cc:
        die("no C compiler (gcc, clang-19 or cc)")
    exe = os.path.join(work, "chain")
    subprocess.run([cc, "-O2", "-fomit-frame-pointer", "-pthread", "-o", exe, os.path.join(CHAIN_DIR, "chain.c")],
                   check=True)
    subprocess.run(["mcs", "-out:" + os.path.join(work, "chain.exe"), os.path.join(CHAIN_DIR, "chain.cs")],
                   check=True, stdout=subprocess.DEVNULL)
    return {
        "c": [exe, str(rounds["c"])],
        "mono": ["mono", os.path.join(work, "chain.exe"), str(rounds["mono"])],
        "node": ["node", "--no-turbo-inlining", os.path.join(CHAIN_DIR, "chain.js"), str(rounds["node"])],
    }


class BpfStats:
    """Polls `bpftool prog show name sample_cpu` while lxprof runs: the last
    run_time_ns / run_cnt seen (needs kernel.bpf_stats_enabled=1)."""

    def __init__(self):
        self.run_ns = self.runs = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.poll, daemon=True)

    def poll(self):
        while not self.stop.wait(0.1):
            out = subprocess.run(["bpftool", "prog", "show", "name", "sample_cpu", "--json"],
                                 capture_output=True, text=True)
            try:
                progs = json.loads(out.stdout or "[]")
            except ValueError:
                continue
            progs = progs if isinstance(progs, list) else [progs]
            for p in progs:
                if p.get("run_cnt", 0) >= self.runs:
                    self.run_ns, self.runs = p.get("run_time_ns", 0), p.get("run_cnt", 0)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


def unresolved(frame):
    return frame == "[unknown]" or frame.startswith("[truncated]") or frame.startswith("[no unwind info")


def chain_whole(frames_root_first, chain):
    n = len(chain)
    return any(all(c in f for c, f in zip(chain, frames_root_first[i:i + n]))
               for i in range(len(frames_root_first) - n + 1))


def folded_stats(path, chain):
    """(unresolved weight share, whole-chain share of the chain's weight) of lxprof's folded."""
    tot = unres = in_chain = whole = 0
    with open(path) as f:
        for line in f:
            stack, _, w = line.rstrip("\n").rpartition(" ")
            w = int(w)
            frames = [re.sub(r" \[(app|jit|gc|runtime|kernel)\]$", "", x) for x in stack.split(";")]
            tot += w
            unres += w if any(unresolved(x) for x in frames) else 0
            if any(chain[-1] in x for x in frames):
                in_chain += w
                whole += w if chain_whole(frames, chain) else 0
    return unres / max(tot, 1), whole / max(in_chain, 1)


def perf_stats(data, chain):
    """(unresolved share, whole-chain share, samples) from `perf script` of DATA."""
    out = subprocess.run(["perf", "script", "-i", data, "-F", "comm,ip,sym"],
                         capture_output=True, text=True).stdout
    samples = unres = in_chain = whole = 0
    for block in out.split("\n\n"):
        lines = [x.strip() for x in block.strip().splitlines()]
        if len(lines) < 2:
            continue
        syms = []
        for x in lines[1:]:
            parts = x.split(None, 1)
            syms.append(parts[1] if len(parts) > 1 else "[unknown]")
        syms = [re.sub(r"\+0x[0-9a-f]+$", "", s) for s in syms]
        samples += 1
        unres += any(unresolved(s) for s in syms)
        root_first = list(reversed(syms))
        if any(chain[-1] in s for s in syms):
            in_chain += 1
            whole += chain_whole(root_first, chain)
    return unres / max(samples, 1), whole / max(in_chain, 1), samples


def run_once(mode, argv, env, lxprof, work, tag):
    """One run; returns a dict: self_ns, wall_ns, and mode-specific figures."""
    full_env = dict(os.environ, **env)
    out_dir = os.path.join(work, f"out-{tag}")
    shutil.rmtree(out_dir, ignore_errors=True)
    res = {}
    if mode == "bare":
        cmd = argv
    elif mode.startswith("lxprof"):
        freq, stack = mode.split(":")[1:3]
        cmd = [lxprof, "record", "--freq", freq, "--stack-bytes", stack, "-o", out_dir, "--"] + argv
        full_env["RUST_LOG"] = "lxprof=info"
    else:
        data = os.path.join(work, f"perf-{tag}.data")
        cmd = ["perf", "record", "-q", "--call-graph", "dwarf", "-F", str(FREQ), "-o", data, "--"] + argv
    t0 = time.monotonic_ns()
    before = os.times()
    with BpfStats() as bpf:
        p = subprocess.run(cmd, env=full_env, capture_output=True, text=True)
    after = os.times()
    res["wall_ns"] = time.monotonic_ns() - t0
    if p.returncode != 0:
        die(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr[-2000:]}")
    printed = last_json(p.stdout, "self_ns")
    if not printed:
        die(f"no self_ns line from {' '.join(cmd)}:\n{p.stdout[-1000:]}")
    res["self_ns"] = printed["self_ns"]
    # CPU of the tool and the workload together (children of this script).
    res["children_cpu_ns"] = int(((after.children_user - before.children_user)
                                  + (after.children_system - before.children_system)) * 1e9)
    if mode.startswith("lxprof"):
        m = re.search(r"(\d+) samples; .* (\d+) bytes per sample \((\d+) of user stack\)", p.stderr)
        if m:
            res["samples"], res["bytes"] = int(m.group(1)), int(m.group(2))
        res["bpf_run_ns"], res["bpf_runs"] = bpf.run_ns, bpf.runs
        report = json.load(open(os.path.join(out_dir, "report.json")))
        cmdp = [q for q in report["processes"] if q["role"] == "command"]
        res["workload_cpu_ns"] = sum(q["cpu_ns"] for q in cmdp)
        folded = os.path.join(out_dir, "flamegraphs", "command.folded")
        res["folded"] = folded if os.path.exists(folded) else None
    elif mode == "perf":
        res["data"] = data
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--write-docs", action="store_true")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--only", choices=sorted(WORKLOADS), action="append")
    args = ap.parse_args()
    if os.geteuid() != 0:
        die("run as root (BPF, perf)")
    for tool in ("perf", "bpftool", "mono", "mcs", "node"):
        if not shutil.which(tool):
            die(f"{tool} missing (scripts/setup.sh installs it)")
    lxprof, = benchlib.build_release(TOOL, args.no_build, examples=())
    subprocess.run(["sysctl", "-qw", "kernel.bpf_stats_enabled=1"], check=False)
    uptime_before = open("/proc/loadavg").read().split()[:3]
    work = tempfile.mkdtemp(prefix="bench-stacks-")
    rounds_of_work = {"c": 6000, "mono": 6000, "node": 3000}
    progs = build(work, rounds_of_work)
    modes = ["bare", f"lxprof:0:{STACK}", f"lxprof:{FREQ}:{STACK}", "perf"]
    results = {}
    for name in args.only or sorted(WORKLOADS):
        chain, env = WORKLOADS[name]
        runs = {m: [] for m in modes}
        for r in range(args.rounds):
            order = modes[r % len(modes):] + modes[:r % len(modes)]
            for m in order:
                res = run_once(m, progs[name], env, lxprof, work, f"{name}-{m.replace(':', '_')}-{r}")
                runs[m].append(res)
                print(f"{name} {m} round {r}: self {res['self_ns'] / 1e6:.0f} ms", file=sys.stderr)
        sizes = {}
        for size in STACK_SIZES:
            res = run_once(f"lxprof:{FREQ}:{size}", progs[name], env, lxprof, work, f"{name}-size-{size}")
            sizes[size] = (folded_stats(res["folded"], chain), res.get("bytes", 0))
        results[name] = (runs, sizes, chain)
    uptime_after = open("/proc/loadavg").read().split()[:3]

    lines = []
    med = statistics.median
    for name, (runs, sizes, chain) in results.items():
        bare = med(r["self_ns"] for r in runs["bare"])
        lx = runs[f"lxprof:{FREQ}:{STACK}"]
        lx0 = runs[f"lxprof:0:{STACK}"]
        pf = runs["perf"]
        lx_unres, lx_whole = zip(*(folded_stats(r["folded"], chain) for r in lx))
        pf_stats = [perf_stats(r["data"], chain) for r in pf]
        pf_bytes = [os.path.getsize(r["data"]) / max(s[2], 1) for r, s in zip(pf, pf_stats)]
        samples = med(r.get("samples", 0) for r in lx)
        bpf_ns = med(r["bpf_run_ns"] / max(r["bpf_runs"], 1) for r in lx)
        bpf_share = med(r["bpf_run_ns"] / max(r["workload_cpu_ns"], 1) for r in lx)
        # The recorder's own CPU: (tool + workload CPU) minus the workload's,
        # with sampling minus without (unwinding, symbolizing, flamegraphs).
        def tool_cpu(rs):
            return med(r["children_cpu_ns"] - r["workload_cpu_ns"] for r in rs)
        extra_ms = (tool_cpu(lx) - tool_cpu(lx0)) / 1e6
        lines.append(
            f"| {name} | {pct(med(r['self_ns'] for r in lx0) / bare)} | {pct(med(r['self_ns'] for r in lx) / bare)} "
            f"| {pct(med(r['self_ns'] for r in pf) / bare)} "
            f"| {100 * med(lx_unres):.1f} % | {100 * med(s[0] for s in pf_stats):.1f} % "
            f"| {100 * med(lx_whole):.1f} % | {100 * med(s[1] for s in pf_stats):.1f} % "
            f"| {med(r.get('bytes', 0) for r in lx):.0f} | {med(pf_bytes):.0f} "
            f"| {samples:.0f} | {bpf_ns / 1e3:.1f} µs ({100 * bpf_share:.2f} %) | {extra_ms:.0f} ms |")
    size_lines = []
    for name, (_, sizes, _) in results.items():
        cells = " | ".join(f"{100 * s[0][0]:.1f} % / {100 * s[0][1]:.0f} % / {s[1]} B" for s in sizes.values())
        size_lines.append(f"| {name} | {cells} |")

    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    text = f"""{SECTION}

Command: `sudo scripts/bench-stacks.py --rounds {args.rounds}` ({now}, {platform.node()},
{os.cpu_count()} CPUs, load average {' '.join(uptime_before)} before and {' '.join(uptime_after)} after:
other work shared the machine). Each program does a fixed amount of work
(the chain main → outer → middle → inner → leaf; {rounds_of_work['c']} calls of
`outer` in C and C#, {rounds_of_work['node']} in Node) and prints its own time; modes interleaved, medians of {args.rounds} rounds.
lxprof samples at {FREQ} Hz with its default `--stack-bytes {STACK}`; perf records
`--call-graph dwarf -F {FREQ}` (8 KiB stack copies). Both get the runtime settings
lxprof's launcher gives (Mono `--jitmap`, Node `--perf-basic-prof-only-functions`).

| program | lxprof --freq 0 | lxprof {FREQ} Hz | perf dwarf | unresolved: lxprof | unresolved: perf | whole chain: lxprof | whole chain: perf | bytes/sample lxprof | bytes/sample perf | samples | sampling program in the kernel per sample (share of the workload's CPU) | lxprof's own extra CPU with sampling |
|---|---|---|---|---|---|---|---|---|---|---|---|---|
""" + "\n".join(lines) + f"""

The first three columns are the workload's own time against bare. "Unresolved" is
the share of sample weight with an `[unknown]`, `[truncated]` or `[no unwind info]`
frame; "whole chain" the share of the samples in the chain that show all of it.
The kernel figure is `kernel.bpf_stats_enabled`'s run time of `sample_cpu` (it runs
in the sampled thread's context, so it is the CPU the workload pays); the last
column is lxprof's own CPU with sampling minus without (reading the samples,
unwinding them, loading each object's unwind tables once, symbolizing and
writing flamegraphs at the end), which the workload does not pay but shares the
machine with. The workload's own time is too noisy on this shared machine to
show an overhead below ~10 %: read the kernel figure for the cost of sampling.

What a smaller copy loses (one lxprof run per size; unresolved weight / whole
chain / bytes per sample):

| program | {' | '.join(f'{s // 1024} KiB' for s in STACK_SIZES)} |
|---|{'---|' * len(STACK_SIZES)}
""" + "\n".join(size_lines) + "\n"
    print(text)
    if args.write_docs:
        write_doc_section(SECTION, text)
        print(f"wrote {DOC}", file=sys.stderr)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
