#!/usr/bin/env python3
"""Endurance of `lxprof record --lambda` (issue 14): one long recording
(default 2,000 invocations over 4 environments, the rust-blank extension, a
short function) while lxprof's own resident memory (VmRSS) and open file
descriptors are sampled every second from /proc; the same load run without
the recorder (`run --lambda`) is the reference. Then: every invocation is in
report.json (none lost), the kernel lost no record, trace.json still opens
(parsed, validated as a Chrome trace by `json.load` and its event count) and its
size per invocation.

Flat means: the open descriptors at the end equal those after warm-up, and the
RSS growth per 1,000 invocations (least-squares slope of RSS against
invocations done, after the first 10 %) is stated beside the RSS range, so
that what the recorder keeps per invocation (the model of the recording grows
with it by design) is told apart from a leak.

Run as root:  scripts/bench-endurance.py [--invocations N] [--concurrency C]
              [--delay-ms MS] [--freq HZ] [--write-docs]
Uses CARGO_TARGET_DIR if set (else <repo>/target); builds lxprof in release
mode first (--no-build to skip). Needs the presets (extensions/build.sh).
"""

import argparse
import datetime
import functools
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # importing benchlib leaves no scripts/__pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402
from benchlib import DOC, write_doc_section  # noqa: E402

TOOL = "bench-endurance"
die = functools.partial(benchlib.die, TOOL)
SECTION = "## Endurance of record --lambda (issue 14)"


def proc_sample(pid):
    """(VmRSS in KiB, open fds) of PID, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        return rss, fds
    except (OSError, StopIteration):
        return None


def count_reports(path):
    """REPORT lines written so far to the stderr file PATH."""
    try:
        with open(path, errors="replace") as f:
            return sum(1 for line in f if line.startswith("REPORT RequestId"))
    except OSError:
        return 0


def slope(points):
    """Least-squares slope dy/dx of [(x, y)]; None with fewer than 2 distinct x."""
    n = len(points)
    if n < 2:
        return None
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    if sxx == 0:
        return None
    return sum((x - mx) * (y - my) for x, y in points) / sxx


def endure(lxprof, mode, args):
    """Runs `lxprof MODE --lambda` with the load of ARGS, sampling its RSS and
    fds each second; returns what the section needs. Dies on a failed run."""
    out = tempfile.mkdtemp(prefix=f"lxprof-endurance-{mode}-", dir="/var/tmp")
    cmd = [lxprof, mode, "--lambda", "--extension", args.extension,
           "--invocations", str(args.invocations), "--concurrency", str(args.concurrency),
           "--timeout", "30", "--env", f"HEADER_COUNTER_DELAY_MS={args.delay_ms}", "-o", out]
    if args.freq is not None and mode == "record":
        cmd += ["--freq", str(args.freq)]
    shown = " ".join(["lxprof"] + cmd[1:-1] + ["DIR"])
    print("+", shown, file=sys.stderr)
    err_path = os.path.join(out, "stderr.log")
    t0 = time.monotonic()
    samples = []  # (seconds, invocations done, rss KiB, fds)
    with open(err_path, "w") as err, open(os.path.join(out, "stdout.log"), "w") as so:
        p = subprocess.Popen(cmd, stdout=so, stderr=err)
        while p.poll() is None:
            s = proc_sample(p.pid)
            if s:
                samples.append((time.monotonic() - t0, count_reports(err_path), *s))
            time.sleep(1.0)
        rc = p.wait()
    wall = time.monotonic() - t0
    if rc not in (0, 3):
        with open(err_path, errors="replace") as f:
            die(f"lxprof exited {rc}:\n{f.read()[-2000:]}")
    with open(os.path.join(out, "report.json")) as f:
        report = json.load(f)
    inv = report["lambda"]["invocations"]
    if len(inv) != args.invocations:
        die(f"{mode}: {args.invocations - len(inv)} invocation(s) missing from report.json")
    # The invoke phase: samples while invocations finish (the end is output writing).
    running = [s for s in samples if 0 < s[1] < args.invocations]
    warm = [s for s in running if s[1] >= args.invocations // 10] or running
    if not warm:
        die(f"no sample during the invocations ({len(samples)} samples): run more invocations")
    per_inv = slope([(s[1], s[2] / 1024) for s in warm])
    fd_per_inv = slope([(s[1], s[3]) for s in warm])
    print(f"outputs kept in {out}", file=sys.stderr)
    return {
        "out": out, "shown": shown, "rc": rc, "wall": wall, "inv": inv,
        "ok": sum(1 for i in inv if i["status"] == "success"),
        "lost": report.get("lost_events", 0),
        "rss": [s[2] / 1024 for s in warm], "fds": [s[3] for s in warm],
        "per_k": None if per_inv is None else per_inv * 1000,
        "fd_per_k": None if fd_per_inv is None else fd_per_inv * 1000,
        "peak": max(s[2] for s in samples) / 1024,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--invocations", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--delay-ms", type=int, default=20,
                    help="HEADER_COUNTER_DELAY_MS of the function (default 20)")
    ap.add_argument("--extension", default="rust-blank")
    ap.add_argument("--freq", type=int, default=None,
                    help="stack sampling Hz (default: lxprof's own default)")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--write-docs", action="store_true", help=f"write the section into {DOC}")
    args = ap.parse_args()
    if os.geteuid() != 0:
        die("run as root (the emulator needs cgroups and namespaces, the recorder BPF)")
    (lxprof,) = benchlib.build_release(TOOL, args.no_build, examples=())

    load_before = os.getloadavg()
    ref = endure(lxprof, "run", args)  # the emulator alone: the reference
    rec = endure(lxprof, "record", args)
    load_after = os.getloadavg()

    trace_path = os.path.join(rec["out"], "trace.json")
    t_open = time.monotonic()
    with open(trace_path) as f:
        trace = json.load(f)
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    t_open = time.monotonic() - t_open
    trace_bytes = os.path.getsize(trace_path)
    raw_bytes = os.path.getsize(os.path.join(rec["out"], "events.bin"))
    n = max(len(rec["inv"]), 1)

    def row(label, f):
        return f"| {label} | {f(ref)} | {f(rec)} |"

    def growth(r):
        return "-" if r["per_k"] is None else f"{r['per_k']:+.2f} MB"

    lines = [
        SECTION, "",
        f"Measured {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC on "
        f"{platform.node()} (Linux {platform.release()}, {os.cpu_count()} CPUs), "
        f"load average {load_before[0]:.2f} before and {load_after[0]:.2f} after "
        "(the machine is shared), with", "",
        f"    scripts/bench-endurance.py --invocations {args.invocations} "
        f"--concurrency {args.concurrency} --delay-ms {args.delay_ms}"
        + (f" --freq {args.freq}" if args.freq is not None else ""), "",
        f"which runs `{rec['shown']}`, and the same load unrecorded (`run --lambda`) as the "
        "reference, sampling lxprof's VmRSS and open descriptors (`/proc/PID/status`, "
        "`/proc/PID/fd`) every second. Figures during the invocations are taken after "
        "the first 10 % (warm-up).", "",
        "| | run --lambda (reference) | record --lambda |", "|---|---|---|",
        row("invocations in report.json",
            lambda r: f"{len(r['inv'])} of {args.invocations} ({r['ok']} succeeded)"),
        row("wall time", lambda r: f"{r['wall']:.0f} s (exit {r['rc']})"),
        row("open fds during the invocations",
            lambda r: f"{min(r['fds'])}–{max(r['fds'])} (first {r['fds'][0]}, last {r['fds'][-1]})"),
        row("RSS during the invocations",
            lambda r: f"{min(r['rss']):.0f}–{max(r['rss']):.0f} MB"),
        row("RSS growth per 1,000 invocations (least squares)", growth),
        row("RSS peak (output writing included)", lambda r: f"{r['peak']:.0f} MB"),
        "",
        f"The recording: {rec['lost']} kernel records lost; trace.json {trace_bytes / 1e6:.1f} MB "
        f"({trace_bytes / n / 1024:.1f} KiB per invocation, {len(events)} events, parsed in "
        f"{t_open:.1f} s); events.bin {raw_bytes / 1e6:.1f} MB ({raw_bytes / n / 1024:.1f} KiB "
        "per invocation).",
        "",
    ]
    fd_trend = max(abs(r["fd_per_k"] or 0) for r in (ref, rec))
    lines += [
        "Reading: open descriptors stay "
        + (f"flat: within a band (sockets of the environments' API servers come and go), "
           f"no trend (at most {fd_trend:.2f} per 1,000 invocations). " if fd_trend < 1 else
           f"not flat: {fd_trend:.1f} more per 1,000 invocations, a leak to look for. ")
        + "RSS is not flat but grows linearly with what the run must keep to write its "
        "outputs: every invocation's metrics for report.json (the reference's "
        f"{growth(ref)} per 1,000 invocations) and, with the recorder, the recording's model "
        f"built from the kernel records ({growth(rec)} per 1,000 invocations in all, i.e. "
        f"~{(rec['per_k'] or 0):.1f} KiB per invocation beside the {raw_bytes / n / 1024:.1f} KiB "
        "per invocation of events.bin). A recording of 100,000 such invocations would hold "
        f"~{(rec['per_k'] or 0) * 100:.0f} MB more than at its start; the peak adds the "
        "outputs being serialized.",
        "",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write_docs:
        write_doc_section(SECTION, text)
        print(f"wrote {DOC}", file=sys.stderr)


if __name__ == "__main__":
    main()
