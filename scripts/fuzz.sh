#!/usr/bin/env bash
# Fuzzes the configuration loader and the topic-filter index (against the
# reference matcher) for a bounded time each: scripts/fuzz.sh [SECONDS]
# (default 60). Installs cargo-fuzz when missing; runs on the stable
# toolchain through RUSTC_BOOTSTRAP (cargo-fuzz needs -Z flags).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"

scripts/deps.sh
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked

export RUSTC_BOOTSTRAP=1
for target in config filter_index; do
  mkdir -p "fuzz/corpus/$target"
  echo "== fuzzing $target for ${seconds}s"
  cargo fuzz run "$target" "fuzz/corpus/$target" fuzz/seeds/"$target" -- \
    -max_total_time="$seconds" -print_final_stats=1 2>&1 | grep -E "^(stat::|#[0-9]+ +DONE|Done|==|SUMMARY)" || true
  test -z "$(ls fuzz/artifacts/"$target" 2>/dev/null)" || { echo "crash found: fuzz/artifacts/$target" >&2; exit 1; }
done
