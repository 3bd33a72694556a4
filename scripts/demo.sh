#!/usr/bin/env bash
# The main job, setup included: `sudo scripts/demo.sh [OUTPUT_DIR]`.
#
# 1. Records the bundled sample workload with eBPF (CPU per thread, page faults,
#    RSS, a fork+exec chain): a Perfetto-readable trace.json and report.json.
# 2. Runs the AWS experiment's HeaderCounter function in the emulated Lambda
#    environment at 128 MB (CPU capped at 128/1769 of a core), without an
#    extension and with the Rust and C# EventCollector extensions writing to a
#    local S3 server, and prints Lambda's numbers for each side by side.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release -p lxprof --bin lxprof --example workload
lxprof=target/release/lxprof
out="${1:-lxprof-out/demo-$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$out"

echo "== 1. lxprof record: the sample workload"
"$lxprof" record -o "$out/record" -- target/release/examples/workload mixed

echo
echo "== 2. lxprof run --lambda: HeaderCounter at 128 MB, 10 invocations, 2 environments"
export LXPROF_S3_STATE="$(cd "$out" && pwd)/local-s3.state"
scripts/local-s3.sh start >/dev/null
trap 'scripts/local-s3.sh stop >/dev/null' EXIT
for ext in none rust-event-collector csharp-event-collector; do
  args=()
  [ "$ext" = none ] || args=(--extension "$ext")
  echo
  "$lxprof" run --lambda "${args[@]}" --memory 128 --invocations 10 --concurrency 2 \
    -o "$out/run-$ext"
done
echo
echo "Open $out/record/trace.json in https://ui.perfetto.dev (Open trace file)."
