#!/usr/bin/env bash
# Installs what ztopo needs on a Debian machine, once: libzmq (cgo), pkg-config,
# and for the tests pyzmq (the foreign peer), graphviz (graph rendering) and
# iproute2 (hosts as network namespaces, when the tests run as root);
# `deps.sh test` adds Chromium (the --ui page's browser tests).
# tmux gives the test of ztopo top a real terminal.
# Idempotent and quiet when everything is already there.
set -euo pipefail

need=()
pkg-config --exists libzmq 2>/dev/null || need+=(libzmq3-dev)
command -v pkg-config >/dev/null || need+=(pkg-config)
/usr/bin/python3 -c 'import zmq' 2>/dev/null || need+=(python3-zmq)
command -v dot >/dev/null || need+=(graphviz)
command -v gcc >/dev/null || need+=(gcc)
command -v git >/dev/null || need+=(git)
command -v ip >/dev/null || need+=(iproute2)
command -v tmux >/dev/null || need+=(tmux) # a real terminal for the test of ztopo top
command -v mawk >/dev/null || need+=(mawk) # Debian's awk, buffering: the exec handler's warning is tested with it
if [ "${1:-}" = test ]; then
  [ -x /usr/bin/chromium ] || need+=(chromium)
fi

if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing: ${need[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

if ! command -v go >/dev/null; then
  echo "ztopo needs Go >= 1.26 on PATH (https://go.dev/dl); Debian's golang-go is too old" >&2
  exit 1
fi
