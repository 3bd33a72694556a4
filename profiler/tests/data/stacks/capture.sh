#!/usr/bin/env bash
# Regenerate the stack fixtures of profiler/tests/classify.rs on this machine:
# run each program under `perf record -F 999 -g` (frame-pointer call graphs, as
# lxprof's eBPF sampler sees them), symbolize with `perf script` (ELF symbols,
# kallsyms and the runtimes' /tmp/perf-PID.map JIT maps) and reduce the result
# with reduce.py. Needs root (or perf_event_paranoid <= 1), linux-perf, mono
# 6.8 + mono-runtime-dbg, node 20, OpenJDK 17, gcc, and for coreclr the .NET runtime that
# `extensions/build.sh dotnet` installs in extensions/build/dotnet.
#
#   profiler/tests/data/stacks/capture.sh            # all fixtures
#   profiler/tests/data/stacks/capture.sh mono node  # some of them
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
PROGS="$HERE/programs"
WORK="$(mktemp -d /tmp/lxprof-stacks.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
SAMPLES=${SAMPLES:-300}

record() { # NAME RUNTIME EXE -- COMMAND...
    local name=$1 runtime=$2 exe=$3
    shift 4
    echo "== $name: $*" >&2
    perf record -q -F 999 -g -o "$WORK/$name.data" -- "$@" >&2
    perf script -i "$WORK/$name.data" -F comm,tid,ip,sym,dso 2>/dev/null >"$WORK/$name.txt"
    python3 "$HERE/reduce.py" "$runtime" "$exe" "$SAMPLES" <"$WORK/$name.txt" >"$HERE/$name.stacks"
    # The runtimes' JIT maps of the recorded processes are no longer needed.
    perf script -i "$WORK/$name.data" -F pid 2>/dev/null | sort -u | while read -r pid; do
        rm -f "/tmp/perf-$pid.map"
    done
    echo "   $(grep -c '^sample' "$HERE/$name.stacks") samples, $(wc -c <"$HERE/$name.stacks") bytes" >&2
}

capture_mono() {
    mcs -out:"$WORK/JitAlloc.exe" "$PROGS/JitAlloc.cs" >&2
    MONO_ENV_OPTIONS=--jitmap MONO_DEBUG=disable_omit_fp \
        record mono mono mono-sgen -- mono "$WORK/JitAlloc.exe" 20000 150
}

capture_coreclr() {
    local rt="${LXPROF_DOTNET:-$HERE/../../../../extensions/build/dotnet}"
    [ -x "$rt/dotnet" ] || { echo "no .NET runtime in $rt: run extensions/build.sh dotnet" >&2; exit 1; }
    mcs -out:"$WORK/JitAlloc.exe" "$PROGS/JitAlloc.cs" >&2
    echo '{"runtimeOptions":{"tfm":"netcoreapp3.1","framework":{"name":"Microsoft.NETCore.App","version":"3.1.0"},"configProperties":{"System.Globalization.Invariant":true}}}' \
        >"$WORK/JitAlloc.runtimeconfig.json"
    # 3.1 reads COMPlus_* only; workstation non-concurrent GC keeps collections on the
    # allocating thread, as in a small Lambda environment (one CPU or less).
    COMPlus_PerfMapEnabled=1 COMPlus_gcConcurrent=0 DOTNET_ROOT="$rt" LD_LIBRARY_PATH="$rt/lib" \
        record coreclr coreclr dotnet -- "$rt/dotnet" exec --runtimeconfig "$WORK/JitAlloc.runtimeconfig.json" \
        "$WORK/JitAlloc.exe" 6000 25
}

capture_node() {
    record node v8 node -- node --perf-basic-prof-only-functions --interpreted-frames-native-stack \
        "$PROGS/jit_alloc.js" 3000 1000
}

capture_java() {
    javac -d "$WORK/java" "$PROGS/JitAlloc.java" >&2
    record java hotspot java -- java -Xmx256m -XX:+PreserveFramePointer \
        -XX:+UnlockDiagnosticVMOptions -XX:+DumpPerfMapAtExit \
        -cp "$WORK/java" JitAlloc 1500 300
}

capture_native() {
    gcc -O2 -g -fno-omit-frame-pointer -o "$WORK/native-fixture" "$PROGS/native.c" >&2
    record native native native-fixture -- "$WORK/native-fixture" 200
}

targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(mono node java native coreclr)
for t in "${targets[@]}"; do "capture_$t"; done
