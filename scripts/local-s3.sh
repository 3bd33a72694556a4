#!/usr/bin/env bash
# A real S3-compatible server on loopback for the event collectors: moto's server
# from a venv at .venv (created on first use, pinned version), on 127.0.0.1 at a free
# port, with one bucket created. Stopped by PID, never by name.
#
#   scripts/local-s3.sh install                create/refresh the venv only
#   scripts/local-s3.sh start [--tls] [BUCKET] start the server, create BUCKET (default lxprof-events)
#   scripts/local-s3.sh env                    print `export` lines for the running server
#   scripts/local-s3.sh stop                   stop the server recorded in the state file
#
# --tls (or LXPROF_S3_TLS=1): HTTPS, as real S3, at https://localhost:PORT with a
# certificate (localhost, 127.0.0.1) signed by a CA made at start (openssl), in $VENV/tls/<port>/ (outside /tmp: the emulated
# environments have a private /tmp). Each runtime trusts it through its standard setting,
# which `env` prints and lxprof passes to the extensions: SSL_CERT_FILE (the system's CAs
# plus this one; rustls-native-certs, OpenSSL, .NET), NODE_EXTRA_CA_CERTS (Node) and
# XDG_CONFIG_HOME holding a Mono certificate store (.mono/new-certs/Trust, what cert-sync
# writes) with the CA.
#
# State file (shell-sourceable: PID, PORT, BUCKET, ENDPOINT, LOG; with TLS also CA_FILE,
# CA_BUNDLE, MONO_CONFIG_HOME, TLS_DIR):
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

# Makes a CA and a server certificate for 127.0.0.1 / localhost in $1; prints nothing.
make_tls() {
  local dir="$1"
  command -v openssl >/dev/null || die "openssl not found: install openssl (or start without --tls)"
  mkdir -p "$dir"
  (
    cd "$dir"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=lxprof local S3 CA" \
      -keyout ca.key -out ca.pem -addext basicConstraints=critical,CA:TRUE \
      -addext keyUsage=critical,keyCertSign,cRLSign
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout server.key -out server.csr
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
      -extfile server.ext -out server.pem
    # The system's CAs and this one: SSL_CERT_FILE replaces the default store.
    cat /etc/ssl/certs/ca-certificates.crt ca.pem >bundle.pem 2>/dev/null || cp ca.pem bundle.pem
    # Mono's user store (btls: hashed PEM files; the managed store: DER by thumbprint).
    mkdir -p mono/.mono/new-certs/Trust mono/.mono/certs/Trust
    cp ca.pem "mono/.mono/new-certs/Trust/$(openssl x509 -in ca.pem -noout -subject_hash).0"
    openssl x509 -in ca.pem -outform der \
      -out "mono/.mono/certs/Trust/$(openssl x509 -in ca.pem -noout -fingerprint -sha1 | sed 's/.*=//; s/://g').cer"
    rm -f server.csr server.ext ca.srl ca.key
  ) >/dev/null 2>&1 || die "making the TLS certificates in $dir failed"
  # The sandboxed extensions run as nobody: everything but the server key is world-readable.
  chmod -R a+rX "$dir"
  chmod 600 "$dir/server.key"
}

start() {
  local tls="${LXPROF_S3_TLS:-0}"
  if [ "${1:-}" = "--tls" ]; then
    tls=1
    shift
  fi
  local bucket="${1:-lxprof-events}"
  install_venv
  if running; then
    die "already running (state $STATE); run '$0 stop' first"
  fi
  local port log pid scheme=http tls_dir="" ca=""
  port="$(free_port)"
  log="$STATE.log"
  local tls_args=()
  if [ "$tls" = 1 ]; then
    scheme=https
    tls_dir="$VENV/tls/$port"
    rm -rf "$tls_dir"
    make_tls "$tls_dir"
    ca="$tls_dir/ca.pem"
    tls_args=(-c "$tls_dir/server.pem" -k "$tls_dir/server.key")
  fi
  setsid "$VENV/bin/moto_server" -H 127.0.0.1 -p "$port" "${tls_args[@]}" </dev/null >"$log" 2>&1 &
  pid=$!
  # Over TLS the name is localhost: Mono does not match IP addresses against the
  # certificate's names (the certificate has both).
  local host=127.0.0.1
  [ "$tls" = 1 ] && host=localhost
  local endpoint="$scheme://$host:$port"
  # Wait (up to 30 s) for it to answer.
  local i
  for i in $(seq 1 300); do
    if "$VENV/bin/python" - "$endpoint" "$ca" <<'EOF' 2>/dev/null; then break; fi
import ssl, sys, urllib.request
ctx = ssl.create_default_context(cafile=sys.argv[2]) if sys.argv[2] else None
urllib.request.urlopen(sys.argv[1] + "/", timeout=1, context=ctx).read()
EOF
    kill -0 "$pid" 2>/dev/null || die "moto_server exited; see $log"
    sleep 0.1
  done
  [ "$i" -lt 300 ] || { kill "$pid"; die "moto_server did not answer on $endpoint within 30 s; see $log"; }
  # Create the bucket (moto accepts unsigned requests).
  "$VENV/bin/python" - "$endpoint" "$bucket" "$REGION" "$ca" <<'EOF' || { kill "$pid"; die "creating bucket $bucket failed"; }
import ssl, sys, urllib.request
endpoint, bucket, region, ca = sys.argv[1:5]
ctx = ssl.create_default_context(cafile=ca) if ca else None
body = None
if region != "us-east-1":
    body = ("<CreateBucketConfiguration><LocationConstraint>%s</LocationConstraint>"
            "</CreateBucketConfiguration>" % region).encode()
req = urllib.request.Request(endpoint + "/" + bucket, data=body, method="PUT")
urllib.request.urlopen(req, timeout=5, context=ctx).read()
EOF
  mkdir -p "$(dirname "$STATE")"
  cat >"$STATE" <<EOF
PID=$pid
PORT=$port
BUCKET=$bucket
ENDPOINT=$endpoint
LOG=$log
EOF
  if [ "$tls" = 1 ]; then
    cat >>"$STATE" <<EOF
TLS_DIR=$tls_dir
CA_FILE=$ca
CA_BUNDLE=$tls_dir/bundle.pem
MONO_CONFIG_HOME=$tls_dir/mono
EOF
  fi
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
  if [ -n "${CA_FILE:-}" ]; then
    cat <<EOF
export SSL_CERT_FILE=$CA_BUNDLE
export NODE_EXTRA_CA_CERTS=$CA_FILE
export XDG_CONFIG_HOME=$MONO_CONFIG_HOME
EOF
  fi
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
  if [ -n "${TLS_DIR:-}" ] && [ "$TLS_DIR" = "$VENV/tls/$PORT" ]; then
    rm -rf "$TLS_DIR"
  fi
  rm -f "$STATE" "$LOG"
}

case "${1:-}" in
  install) install_venv ;;
  start) shift; start "$@" ;;
  env) print_env ;;
  stop) stop ;;
  *) die "usage: $0 install | start [--tls] [BUCKET] | env | stop" ;;
esac
