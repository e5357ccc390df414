#!/usr/bin/env bash
# The whole test suite: installs what it needs, then formatting, lints,
# unit and black-box tests (real mosquitto brokers on free loopback ports),
# and the init-file checks.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh

cargo fmt --all -- --check
cargo clippy --all-targets -- -D warnings
cargo test

shellcheck scripts/*.sh .ci/run
if [ -f init/iotmonitor ]; then
  shellcheck init/iotmonitor
fi
if command -v systemd-analyze >/dev/null 2>&1 && [ -f init/iotmonitor.service ]; then
  # The unit names /usr/local/bin/iotmonitor: verify a copy pointing at a
  # binary that exists here.
  tmp=$(mktemp -d)
  sed "s#/usr/local/bin/iotmonitor#$PWD/target/debug/iotmonitor#" init/iotmonitor.service >"$tmp/iotmonitor.service"
  systemd-analyze verify "$tmp/iotmonitor.service" 2>&1 | grep -v -e "^$" -e "Cannot add dependency job" || true
  rm -rf "$tmp"
fi
echo "all tests passed"
