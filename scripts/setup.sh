#!/usr/bin/env bash
# Idempotent setup for a fresh Debian bookworm machine (run as root): system
# packages, kernel mounts lxprof needs, and the extension builds. Safe to re-run;
# each step skips work already done.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  # eBPF build: clang for the BPF target, libbpf headers, bindgen's libclang, bpftool
  clang-19 llvm-19 libclang-19-dev libbpf-dev bpftool
  # C# extensions on Mono (JIT and full AOT)
  mono-mcs mono-runtime mono-runtime-dbg
  libmono-system-net-http4.0-cil libmono-system-runtime-serialization4.0-cil
  libmono-system-json4.0-cil
  # Node.js extension, local S3 server's venv, benchmarks' peer
  nodejs npm python3-venv linux-perf hyperfine bpftrace
  # JVM runtime for symbolization tests (perf maps, frame pointers)
  openjdk-17-jdk-headless
  # the suite's report (suite.html) is checked by a real browser engine, headless
  chromium
  # the local S3 server's TLS certificates (scripts/local-s3.sh start --tls)
  openssl
)

# Disk: a first build and test run fills ~4.5 GiB (target/, the moto venv, the
# extension builds); say so now rather than fail later inside pip or the linker.
need_gib=2
[ -d target/debug/deps ] || need_gib=5
free_kib=$(df -Pk . | awk 'NR == 2 { print $4 }')
if [ -n "$free_kib" ] && ((free_kib < need_gib * 1024 * 1024)); then
  echo "setup: only $((free_kib / 1024)) MiB free on $(df -P . | awk 'NR == 2 { print $6 }');" \
    "a build here needs about ${need_gib} GiB. Free some space and re-run." >&2
  exit 1
fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# node/npm/python may come from elsewhere on this machine kind: only install if absent.
filtered=()
for p in "${missing[@]}"; do
  case "$p" in
    nodejs) command -v node >/dev/null || filtered+=("$p") ;;
    npm) command -v npm >/dev/null || filtered+=("$p") ;;
    python3-venv) python3 -c 'import venv, ensurepip' 2>/dev/null || filtered+=("$p") ;;
    openjdk-17-jdk-headless) command -v javac >/dev/null || filtered+=("$p") ;;
    *) filtered+=("$p") ;;
  esac
done
if ((${#filtered[@]})); then
  echo "setup: installing ${filtered[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${filtered[@]}" >/dev/null
fi

# tracefs is not mounted at boot on this machine kind; aya needs it for tracepoints.
if [ ! -e /sys/kernel/tracing/events ]; then
  mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null || true
fi

# Extension builds (C# on Mono and AOT, the .NET runtime and its presets, Node) and the
# local S3 server's venv, if present.
if [ -x extensions/build.sh ]; then
  extensions/build.sh
fi
