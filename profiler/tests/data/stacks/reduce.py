#!/usr/bin/env python3
"""Reduce `perf script -F comm,tid,ip,sym,dso` output to an lxprof stack fixture.

Usage: reduce.py RUNTIME EXE MAX_SAMPLES < perf-script.txt > fixture.stacks

The fixture format ("lxprof stacks v1", parsed by profiler/tests/classify.rs):
  lines starting with '#' are comments;
  exe<TAB>NAME                   the traced executable's file name;
  module<TAB>NAME                one line per module seen in the stacks;
  frame<TAB>ID<TAB>KIND<TAB>MODULE<TAB>NAME
                                 KIND is native|jit|kernel|unknown, MODULE a file
                                 name, '[kernel]', '[jit]' (perf map) or '-';
  sample<TAB>TID<TAB>THREAD<TAB>ID ID ...
                                 frame ids, leaf first.
Samples are picked evenly over the capture, per thread name (every thread name
keeps at least a few samples), in capture order. Addresses are dropped. The
outermost run of unsymbolized frames of unknown modules (broken frame-pointer
chains) is dropped and stacks are cut at MAX_DEPTH leaf-most frames.
"""
import os
import re
import sys

MAX_DEPTH = 48
MIN_PER_THREAD = 4
FRAME_RE = re.compile(r"^\s*([0-9a-f]+) (.*) \(([^()]*)\)$")


def frame_of(sym, dso):
    if dso == "[kernel.kallsyms]":
        return ("kernel", "[kernel]", sym)
    if re.match(r"^/tmp/perf-\d+\.map$", dso):
        return ("jit", "[jit]", sym)
    module = "-" if dso == "[unknown]" else os.path.basename(dso)
    if sym == "[unknown]" or not sym:
        return ("unknown", module, "[unknown]")
    return ("native", module, sym)


def parse(lines):
    samples = []
    cur = None
    for line in lines:
        line = line.rstrip("\n")
        if not line.strip():
            if cur is not None:
                samples.append(cur)
                cur = None
            continue
        if not line[0].isspace():
            head = line.rstrip().rsplit(None, 1)
            if len(head) != 2 or not head[1].isdigit():
                raise SystemExit(f"unexpected sample header: {line!r}")
            cur = (head[0], int(head[1]), [])
            continue
        m = FRAME_RE.match(line)
        if m is None or cur is None:
            raise SystemExit(f"unexpected frame line: {line!r}")
        cur[2].append(frame_of(m.group(2), m.group(3)))
    if cur is not None:
        samples.append(cur)
    return samples


def trim(frames):
    end = len(frames)
    while end > 1 and frames[end - 1][0] == "unknown" and frames[end - 1][1] == "-":
        end -= 1
    return frames[: min(end, MAX_DEPTH)]


def pick(samples, limit):
    by_thread = {}
    for i, s in enumerate(samples):
        by_thread.setdefault(s[0], []).append(i)
    total = len(samples)
    chosen = []
    for name, idx in by_thread.items():
        want = max(MIN_PER_THREAD, round(limit * len(idx) / max(total, 1)))
        want = min(want, len(idx))
        step = len(idx) / want
        chosen.extend(idx[int(k * step)] for k in range(want))
    return [samples[i] for i in sorted(set(chosen))]


def main():
    runtime, exe, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
    samples = [(c, t, trim(f)) for c, t, f in parse(sys.stdin)]
    samples = [s for s in samples if s[2]]
    chosen = pick(samples, limit)
    ids = {}
    out_frames = []
    for _, _, frames in chosen:
        for f in frames:
            if f not in ids:
                ids[f] = len(ids)
                out_frames.append(f)
    modules = sorted({f[1] for f in out_frames if f[1] not in ("-", "[jit]", "[kernel]")})
    print("# lxprof stacks v1 (see README.md and reduce.py)")
    print(f"# runtime: {runtime}; {len(chosen)} of {len(samples)} captured samples")
    print(f"exe\t{exe}")
    for m in modules:
        print(f"module\t{m}")
    for f in out_frames:
        print(f"frame\t{ids[f]}\t{f[0]}\t{f[1]}\t{f[2]}")
    for comm, tid, frames in chosen:
        print(f"sample\t{tid}\t{comm}\t{' '.join(str(ids[f]) for f in frames)}")


main()
