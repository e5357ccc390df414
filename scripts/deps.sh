#!/usr/bin/env bash
# Installs what building iotmonitor needs, when missing: cmake, a C
# compiler, libssl-dev and pkg-config (paho-mqtt builds its bundled C
# library), mosquitto and its clients.
#
# With --test, also what the test suite needs: shellcheck (the scripts and
# the init script), faketime (the clock-step tests shift the daemon's wall
# clock), prometheus (promtool checks the metrics), chromium (the status
# page is tested in a real browser), strace (counts the database's syncs),
# systemd, logrotate, groff and man-db (the packaging checks), python3-venv
# (hadolint comes from PyPI).
set -euo pipefail

missing=()
need() { # need COMMAND-OR-dpkg:PACKAGE PACKAGE
  case "$1" in
    dpkg:*) dpkg -s "${1#dpkg:}" >/dev/null 2>&1 || missing+=("$2") ;;
    *) command -v "$1" >/dev/null 2>&1 || missing+=("$2") ;;
  esac
}

need cmake cmake
need cc gcc
[ -x /usr/sbin/mosquitto ] || need mosquitto mosquitto
need mosquitto_pub mosquitto-clients
need openssl openssl
need dpkg:libssl-dev libssl-dev
need dpkg:pkg-config pkg-config
if [ "${1:-}" = "--test" ]; then
  need shellcheck shellcheck
  need dpkg:libfaketime faketime
  need promtool prometheus
  need chromium chromium
  need strace strace
  need systemd-analyze systemd
  need logrotate logrotate
  need groff groff-base
  need man man-db
  need python3 python3
  python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
fi

if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is missing: install Rust from https://rustup.rs first" >&2
  exit 1
fi
