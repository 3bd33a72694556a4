#!/usr/bin/env bash
# A real S3-compatible server on loopback for the event collectors: moto's server
# from a venv at .venv (created on first use, pinned version), on 127.0.0.1 at a free
# port, with one bucket created. Stopped by PID, never by name.
#
#   scripts/local-s3.sh install          create/refresh the venv only
#   scripts/local-s3.sh start [BUCKET]   start the server, create BUCKET (default lxprof-events)
#   scripts/local-s3.sh env              print `export` lines for the running server
#   scripts/local-s3.sh stop             stop the server recorded in the state file
#
# State file (shell-sourceable: PID, PORT, BUCKET, ENDPOINT, LOG):
#   $LXPROF_S3_STATE, default ${TMPDIR:-/tmp}/lxprof-local-s3.state.
# Several servers may run at once when each caller sets its own LXPROF_S3_STATE.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${LXPROF_VENV:-$ROOT/.venv}"
MOTO_SPEC='moto[s3,server]==5.2.5'
STATE="${LXPROF_S3_STATE:-${TMPDIR:-/tmp}/lxprof-local-s3.state}"
REGION="${AWS_REGION:-us-east-1}"

die() { echo "local-s3: $*" >&2; exit 1; }

install_venv() {
  if [ -x "$VENV/bin/moto_server" ] && [ "$(cat "$VENV/.lxprof-spec" 2>/dev/null)" = "$MOTO_SPEC" ]; then
    return 0
  fi
  command -v python3 >/dev/null || die "python3 not found: install python3 and python3-venv"
  echo "local-s3: creating $VENV with $MOTO_SPEC" >&2
  python3 -m venv "$VENV" || die "python3 -m venv failed: install python3-venv"
  "$VENV/bin/pip" install -q --disable-pip-version-check "$MOTO_SPEC" \
    || die "pip install $MOTO_SPEC failed: see pip's error above (PyPI unreachable? disk full?)"
  echo "$MOTO_SPEC" >"$VENV/.lxprof-spec"
}

free_port() {
  "$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# True when the state file names a live moto server.
running() {
  [ -f "$STATE" ] || return 1
  # shellcheck disable=SC1090
  local PID; PID="$(. "$STATE"; echo "$PID")"
  [ -n "$PID" ] && [ -r "/proc/$PID/cmdline" ] && tr '\0' ' ' <"/proc/$PID/cmdline" | grep -q moto_server
}

start() {
  local bucket="${1:-lxprof-events}"
  install_venv
  if running; then
    die "already running (state $STATE); run '$0 stop' first"
  fi
  local port log pid
  port="$(free_port)"
  log="$STATE.log"
  setsid "$VENV/bin/moto_server" -H 127.0.0.1 -p "$port" </dev/null >"$log" 2>&1 &
  pid=$!
  local endpoint="http://127.0.0.1:$port"
  # Wait (up to 30 s) for it to answer.
  local i
  for i in $(seq 1 300); do
    if "$VENV/bin/python" - "$endpoint" <<'EOF' 2>/dev/null; then break; fi
import sys, urllib.request
urllib.request.urlopen(sys.argv[1] + "/", timeout=1).read()
EOF
    kill -0 "$pid" 2>/dev/null || die "moto_server exited; see $log"
    sleep 0.1
  done
  [ "$i" -lt 300 ] || { kill "$pid"; die "moto_server did not answer on $endpoint within 30 s; see $log"; }
  # Create the bucket (moto accepts unsigned requests).
  "$VENV/bin/python" - "$endpoint" "$bucket" "$REGION" <<'EOF' || { kill "$pid"; die "creating bucket $bucket failed"; }
import sys, urllib.request
endpoint, bucket, region = sys.argv[1:4]
body = None
if region != "us-east-1":
    body = ("<CreateBucketConfiguration><LocationConstraint>%s</LocationConstraint>"
            "</CreateBucketConfiguration>" % region).encode()
req = urllib.request.Request(endpoint + "/" + bucket, data=body, method="PUT")
urllib.request.urlopen(req, timeout=5).read()
EOF
  mkdir -p "$(dirname "$STATE")"
  cat >"$STATE" <<EOF
PID=$pid
PORT=$port
BUCKET=$bucket
ENDPOINT=$endpoint
LOG=$log
EOF
  echo "local-s3: moto_server pid $pid on $endpoint, bucket $bucket (state $STATE)" >&2
}

print_env() {
  running || die "not running (state $STATE); run '$0 start' first"
  # shellcheck disable=SC1090
  . "$STATE"
  cat <<EOF
export AWS_ENDPOINT_URL_S3=$ENDPOINT
export AWS_REGION=$REGION
export AWS_ACCESS_KEY_ID=testing
export AWS_SECRET_ACCESS_KEY=testing
export EVENT_COLLECTOR_BUCKET=$BUCKET
EOF
}

stop() {
  if ! [ -f "$STATE" ]; then
    echo "local-s3: not running (no state file $STATE)" >&2
    return 0
  fi
  # shellcheck disable=SC1090
  . "$STATE"
  if running; then
    kill "$PID"
    local i
    for i in $(seq 1 50); do
      running || break
      sleep 0.1
    done
    if running; then kill -9 "$PID"; fi
    echo "local-s3: stopped pid $PID" >&2
  else
    echo "local-s3: pid $PID is gone already" >&2
  fi
  rm -f "$STATE" "$LOG"
}

case "${1:-}" in
  install) install_venv ;;
  start) shift; start "$@" ;;
  env) print_env ;;
  stop) stop ;;
  *) die "usage: $0 install | start [BUCKET] | env | stop" ;;
esac
