#!/usr/bin/env bash
# Installs iotmonitor system-wide (as root): the release binary in
# /usr/local/bin, the man page, the systemd unit (or the SysV script when
# systemd is absent), an `iotmonitor` system user, /etc/iotmonitor (with the
# example config.toml if none) and /var/lib/iotmonitor (database, agent logs).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
prefix="${PREFIX:-/usr/local}"

"$repo/scripts/deps.sh"
cargo build --release --manifest-path "$repo/Cargo.toml"

install -D -m 755 "$repo/target/release/iotmonitor" "$prefix/bin/iotmonitor"
install -D -m 644 "$repo/man/iotmonitor.1" "$prefix/share/man/man1/iotmonitor.1"

id iotmonitor >/dev/null 2>&1 || useradd --system --home-dir /var/lib/iotmonitor --shell /usr/sbin/nologin iotmonitor
install -d -m 755 -o iotmonitor -g iotmonitor /var/lib/iotmonitor
install -d -m 755 /etc/iotmonitor
if [ ! -f /etc/iotmonitor/config.toml ]; then
  install -m 640 -g iotmonitor "$repo/config.toml" /etc/iotmonitor/config.toml
fi

if [ -d /run/systemd/system ]; then
  install -D -m 644 "$repo/init/iotmonitor.service" /etc/systemd/system/iotmonitor.service
  systemctl daemon-reload
  echo "installed; start with: systemctl enable --now iotmonitor" >&2
else
  install -D -m 755 "$repo/init/iotmonitor" /etc/init.d/iotmonitor
  echo "installed; start with: /etc/init.d/iotmonitor start" >&2
fi
