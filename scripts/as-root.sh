# Sourced by demo.sh and test.sh: they need root (cgroups, mount namespaces,
# BPF). As root they just run; from another user they re-run themselves
# through sudo when it is installed (keeping PATH, so cargo is found), else
# say what to do. A fresh Debian machine used as root has no sudo.
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    exec sudo env "PATH=$PATH" ${CARGO_HOME:+"CARGO_HOME=$CARGO_HOME"} \
      ${RUSTUP_HOME:+"RUSTUP_HOME=$RUSTUP_HOME"} ${CI:+"CI=$CI"} "$0" "$@"
  fi
  echo "$0: needs root (cgroups, mount namespaces, BPF): run it as root (sudo is not installed)" >&2
  exit 1
fi
