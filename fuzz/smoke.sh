#!/usr/bin/env bash
# Runs every fuzz target for N seconds (default 30; `fuzz/smoke.sh 60`) and fails on the first
# crash. Needs the nightly toolchain and cargo-fuzz. New inputs go to a scratch corpus, so the
# committed seeds (fuzz/corpus/<target>) stay small; a crash leaves its input in
# fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-30}"
targets=(token_parse cookie_header record_decode redis_replies macro_args dbsc_jws)
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

cargo +nightly fuzz build
for target in "${targets[@]}"; do
  mkdir -p "$scratch/$target"
  echo "fuzz: $target for ${secs}s"
  if ! cargo +nightly fuzz run "$target" "$scratch/$target" "corpus/$target" -- \
      -max_total_time="$secs" -print_final_stats=1 2>"$scratch/$target.log"; then
    tail -n 40 "$scratch/$target.log"
    echo "fuzz: $target CRASHED; the input is in fuzz/artifacts/$target/" >&2
    exit 1
  fi
  grep -E '^(stat::number_of_executed_units|#[0-9]+ +DONE)' "$scratch/$target.log" || true
done
echo "fuzz: ${#targets[@]} targets, ${secs}s each, no crash"
