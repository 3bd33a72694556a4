#!/usr/bin/env bash
# CPU exactness, in full: `sudo scripts/check-cpu-exact.sh [RUNS]` (default 200).
#
# Records a short multi-threaded program (`workload threads`: two named
# worker threads burning 100 ms of CPU each and touching 5,000 pages, the main
# thread burning 100 ms too) RUNS times in a row with `lxprof record`'s default
# sampling, and checks every thread's CPU against the program's own
# CLOCK_THREAD_CPUTIME_ID: within 2 % in every run. The test suite runs the
# same test with 30 runs (profiler/tests/record.rs, cpu_exact).
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-200}"
scripts/setup.sh >/dev/null
echo "== $runs recordings; load: $(cut -d' ' -f1-3 /proc/loadavg)"
LXPROF_CPU_RUNS="$runs" CI="${CI:-true}" cargo test -p lxprof --test record -- \
  cpu_exact --nocapture --test-threads=1 2>&1 | grep -E "runs, |threads off|test result|panicked"
echo "== load after: $(cut -d' ' -f1-3 /proc/loadavg)"
