#!/usr/bin/env bash
# Runs iotmonitor from a fresh checkout: installs the build dependencies,
# starts a local mosquitto on 127.0.0.1:1883 when nothing listens there,
# creates ./config.toml from the example when missing, and runs the daemon
# in the current directory (Ctrl-C stops it). Extra arguments go to
# iotmonitor.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"

"$repo/scripts/deps.sh"

if ! (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null; then
  conf="${TMPDIR:-/tmp}/iotmonitor-mosquitto.conf"
  printf 'listener 1883 127.0.0.1\nallow_anonymous true\n' >"$conf"
  mosq=$(command -v mosquitto || echo /usr/sbin/mosquitto)
  "$mosq" -c "$conf" -d
  echo "started mosquitto on 127.0.0.1:1883" >&2
  sleep 0.5
fi

if [ ! -f config.toml ] && [ "$#" -eq 0 ]; then
  cp "$repo/config.toml" config.toml
  echo "created ./config.toml from the example" >&2
fi

cargo build --release --manifest-path "$repo/Cargo.toml"
exec "$repo/target/release/iotmonitor" "$@"
