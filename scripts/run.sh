#!/usr/bin/env bash
# Runs iotmonitor from a fresh checkout: installs the build dependencies,
# builds the release binary and runs it in the current directory (Ctrl-C
# stops it). Without a ./config.toml it creates one from the example; when
# nothing listens on 127.0.0.1:1883 that config also starts the embedded
# MQTT broker there, so nothing else is needed. Extra arguments go to
# iotmonitor.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"

"$repo/scripts/deps.sh"

if [ ! -f config.toml ] && [ "$#" -eq 0 ]; then
  cp "$repo/config.toml" config.toml
  if ! (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null; then
    printf '\n# Added by scripts/run.sh: nothing listened on 1883.\n[broker]\nlisten="127.0.0.1:1883"\n' >>config.toml
    echo "created ./config.toml from the example, with the embedded broker on 127.0.0.1:1883" >&2
  else
    echo "created ./config.toml from the example (broker on 127.0.0.1:1883)" >&2
  fi
fi

cargo build --release --manifest-path "$repo/Cargo.toml"
exec "$repo/target/release/iotmonitor" "$@"
