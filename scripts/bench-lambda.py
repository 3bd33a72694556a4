#!/usr/bin/env python3
"""Benchmark of `lxprof record --lambda` (issue 5): the function's Duration
(Lambda's metric, from the emulator) unprofiled (`lxprof run --lambda`) and
recorded with each `--alloc` mode, interleaved (the order rotates each round),
per-round ratio of the median Duration to that round's unprofiled run, medians
over rounds. Warm invocations only (cold starts are reported apart by Lambda).

Scenarios (function header-counter, HEADER_COUNTER_DELAY_MS as given):
  csharp-blank   -- a Mono extension (JIT, SGen GC heap through mmap)
  rust-blank     -- a native extension

Run as root:  scripts/bench-lambda.py [--rounds N] [--invocations N]
              [--delay-ms MS] [--memory MB] [--write-docs]
Uses CARGO_TARGET_DIR if set (else <repo>/target); builds lxprof in release
mode first (--no-build to skip). Needs the presets (extensions/build.sh).
"""

import argparse
import datetime
import functools
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # importing benchlib leaves no scripts/__pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402
from benchlib import DOC, pct, write_doc_section  # noqa: E402

TOOL = "bench-lambda"
die = functools.partial(benchlib.die, TOOL)
SECTION = "## Lambda Duration under the recorder (issue 5)"
MODES = ("run", "off", "syscalls", "full")
LABELS = {"run": "unprofiled (run --lambda)", "off": "record --alloc off",
          "syscalls": "record --alloc syscalls", "full": "record --alloc full"}
SCENARIOS = ("rust-blank", "csharp-blank")


def one(lxprof, mode, ext, args, out):
    cmd = [lxprof] + (["run", "--lambda"] if mode == "run" else
                      ["record", "--lambda", "--alloc", mode])
    cmd += ["--extension", ext, "--memory", str(args.memory),
            "--invocations", str(args.invocations),
            "--env", f"HEADER_COUNTER_DELAY_MS={args.delay_ms}", "-o", out]
    p = subprocess.run(cmd, capture_output=True, text=True)
    # 3: some invocation failed (e.g. timed out under the probes): still a result.
    if p.returncode not in (0, 3):
        die(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr[-2000:]}")
    with open(os.path.join(out, "report.json")) as f:
        inv = json.load(f)["lambda"]["invocations"]
    warm = [i["duration_ms"] for i in inv if not i["cold"] and i["status"] == "success"]
    failed = sum(1 for i in inv if i["status"] != "success")
    return (statistics.median(warm) if warm else None), failed


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--invocations", type=int, default=20)
    ap.add_argument("--delay-ms", type=int, default=0)
    ap.add_argument("--memory", type=int, default=512)
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--write-docs", action="store_true")
    args = ap.parse_args()
    if os.geteuid() != 0:
        die("run as root (cgroups, BPF)")
    (lxprof,) = benchlib.build_release(TOOL, args.no_build, examples=())
    load_before = os.getloadavg()
    started = time.time()
    results = {ext: {m: [] for m in MODES} for ext in SCENARIOS}
    failures = {ext: {m: 0 for m in MODES} for ext in SCENARIOS}
    with tempfile.TemporaryDirectory(prefix="lxprof-bench-lambda-") as tmp:
        n = 0
        for r in range(args.rounds):
            for ext in SCENARIOS:
                order = MODES[r % len(MODES):] + MODES[:r % len(MODES)]
                for mode in order:
                    n += 1
                    d, failed = one(lxprof, mode, ext, args, os.path.join(tmp, f"run-{n}"))
                    results[ext][mode].append(d)
                    failures[ext][mode] += failed
                    shown = "none succeeded warm" if d is None else f"{d:.3f} ms"
                    print(f"round {r + 1} {ext:13} {mode:9} median warm Duration {shown}"
                          f" ({failed} failed)", file=sys.stderr)
    lines = [SECTION, "",
             "What it measures: the function's Duration (the emulator's, Lambda's own",
             "metric) when the run is recorded, against the same run unprofiled, in one",
             "run of the script, interleaved (the order of the modes rotates each round).",
             f"Function header-counter (`HEADER_COUNTER_DELAY_MS={args.delay_ms}`), "
             f"{args.memory} MB, {args.invocations} invocations per run,",
             "median over the warm invocations of each run; sampling at the default 499 Hz.",
             "",
             f"Command (as root; run {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC "
             f"on Linux {platform.release()}, {os.cpu_count()} CPUs):",
             "",
             f"    sudo scripts/bench-lambda.py --rounds {args.rounds} --invocations "
             f"{args.invocations} --delay-ms {args.delay_ms} --memory {args.memory}",
             "",
             "Per-round ratio of the median warm Duration to the unprofiled run's, "
             "median [min … max] over rounds:",
             "",
             "| extension | unprofiled (median) | " + " | ".join(LABELS[m] for m in MODES[1:]) + " |",
             "|---|---|" + "---|" * (len(MODES) - 1)]
    for ext in SCENARIOS:
        base = results[ext]["run"]
        cells = []
        for m in MODES[1:]:
            ratios = [x / b for x, b in zip(results[ext][m], base) if x and b]
            cell = (f"{pct(statistics.median(ratios))} [{pct(min(ratios))} … {pct(max(ratios))}]"
                    if ratios else "no warm invocation succeeded")
            if failures[ext][m]:
                cell += f"; {failures[ext][m]} invocations failed"
            cells.append(cell)
        ok = [b for b in base if b]
        shown = f"{statistics.median(ok):.3f} ms" if ok else "–"
        lines.append(f"| {ext} | {shown} | " + " | ".join(cells) + " |")
    load_after = os.getloadavg()
    lines += ["",
              f"Conditions: load average {' / '.join(f'{x:.2f}' for x in load_before)} before, "
              f"{' / '.join(f'{x:.2f}' for x in load_after)} after; {args.rounds} rounds in "
              f"{time.time() - started:.0f} s.", ""]
    text = "\n".join(lines)
    print(text)
    if args.write_docs:
        write_doc_section(SECTION, text)
        print(f"written to {DOC}", file=sys.stderr)


if __name__ == "__main__":
    main()
