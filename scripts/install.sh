#!/usr/bin/env bash
# Installs iotmonitor system-wide (as root): the release binary in
# /usr/local/bin, the man pages, the systemd unit (or the SysV script when
# systemd is absent), an `iotmonitor` system user and group, the directories
# the unit uses, all mode 0750 — /etc/iotmonitor (root:iotmonitor, with the
# example config.toml if none), /var/lib/iotmonitor (database, the user's
# home) and /var/log/iotmonitor (agent logs) — and the logrotate snippets.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
prefix="${PREFIX:-/usr/local}"

"$repo/scripts/deps.sh"
cargo build --release --manifest-path "$repo/Cargo.toml"

install -D -m 755 "$repo/target/release/iotmonitor" "$prefix/bin/iotmonitor"
for page in "$repo"/man/*.1; do
  install -D -m 644 "$page" "$prefix/share/man/man1/$(basename "$page")"
done

id iotmonitor >/dev/null 2>&1 || useradd --system --user-group --home-dir /var/lib/iotmonitor --shell /usr/sbin/nologin iotmonitor
# The configuration is root's, readable by the daemon's group only (it may
# hold the broker password); state and logs are the daemon's.
install -d -m 750 -o root -g iotmonitor /etc/iotmonitor
install -d -m 750 -o iotmonitor -g iotmonitor /var/lib/iotmonitor /var/log/iotmonitor
if [ ! -f /etc/iotmonitor/config.toml ]; then
  install -m 640 -o root -g iotmonitor "$repo/config.toml" /etc/iotmonitor/config.toml
fi
if [ -d /etc/logrotate.d ]; then
  install -m 644 "$repo/init/iotmonitor-agents.logrotate" /etc/logrotate.d/iotmonitor-agents
fi

if [ -d /run/systemd/system ]; then
  install -D -m 644 "$repo/init/iotmonitor.service" /etc/systemd/system/iotmonitor.service
  systemctl daemon-reload
  echo "installed; start with: systemctl enable --now iotmonitor" >&2
else
  install -D -m 755 "$repo/init/iotmonitor" /etc/init.d/iotmonitor
  if [ -d /etc/logrotate.d ]; then
    install -m 644 "$repo/init/iotmonitor-sysv.logrotate" /etc/logrotate.d/iotmonitor
  fi
  echo "installed; start with: /etc/init.d/iotmonitor start" >&2
fi
