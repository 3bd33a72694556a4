#!/usr/bin/env bash
# The main job, setup included: `scripts/demo.sh [OUTPUT_DIR]` as root
# (or `sudo scripts/demo.sh [OUTPUT_DIR]` from another user).
#
# Reproduces the AWS experiment (aws-samples/lambda-extension-optimization) in
# the emulated Lambda environment: `lxprof suite` records the HeaderCounter
# function (C# on .NET, as AWS ran it; the Rust one as a second baseline) alone and
# with each extension (Rust, C# on Mono JIT and full AOT, C# on .NET, Node; blank
# and EventCollector writing to a local S3 server over HTTPS) at 128 and 512 MB,
# each scenario with eBPF (`lxprof record --lambda`) under the seed's load shape
# scaled to one machine (200 requests, 10 in flight), and writes suite.md and
# suite.html — the AWS dashboard's numbers, where each extension's CPU goes
# (app/JIT/GC/runtime/kernel), charts, differential flamegraphs, and the seed's
# published figures beside ours with a reading — and suite.json. Safe to run
# again (each run gets its own output directory; the local S3 server is stopped
# by PID).
set -euo pipefail
source "$(dirname "$0")/as-root.sh"
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release -p lxprof --bin lxprof
lxprof="${CARGO_TARGET_DIR:-target}/release/lxprof"
out="${1:-lxprof-out/demo-$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$out"

# The event collectors write to a local S3 server (moto) over HTTPS, as to real
# S3; lxprof finds it, and its CA, through this state file.
export LXPROF_S3_STATE="$(cd "$out" && pwd)/local-s3.state"
scripts/local-s3.sh start --tls >/dev/null
trap 'scripts/local-s3.sh stop >/dev/null' EXIT

echo "== lxprof suite: HeaderCounter (.NET; Rust alone as a baseline) × {no extension, 8 extensions} × {128, 512} MB"
rc=0
"$lxprof" suite -o "$out" || rc=$?
echo
echo "The report: $out/suite.md and $out/suite.html (open it in a browser)."
echo "Each scenario's recording is in $out/<memory>mb/<scenario>/: open its trace.json"
echo "(or trace.perfetto-trace) in https://ui.perfetto.dev (Open trace file), e.g."
echo "  $out/128mb/csharp-event-collector/trace.json"
exit "$rc"
