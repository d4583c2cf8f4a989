#!/usr/bin/env bash
# Runs the session-core benchmarks (release, `cargo bench -p session-benches --bench <name>`)
# and prints their rows as one Markdown table on stdout. Progress goes to stderr.
#
#   benches/run.sh                  # all of them (about 10 minutes on 2 cores)
#   benches/run.sh guard scale      # some of them
#   BENCH_QUICK=1 benches/run.sh    # smoke run: tiny sizes, meaningless figures
#
# Needs `redis-server` on PATH (the Redis benches start their own servers on free ports) and
# `wrk` for the HTTP bench (installed here with apt-get when missing).
set -euo pipefail
cd "$(dirname "$0")/.."

benches=(store_ops memory scale guard http data_write)
if [ "$#" -gt 0 ]; then
  benches=("$@")
fi

started=$(date +%s)
# The HTTP bench drives the real demo-server with wrk (Debian package).
if ! command -v wrk >/dev/null 2>&1; then
  echo "installing wrk (apt-get install wrk) for the HTTP bench" >&2
  SUDO=""; [ "$(id -u)" != 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq >&2 && $SUDO apt-get install -y -qq wrk >&2
fi
cargo build -q --release -p session-examples --bin demo-server >&2
export DEMO_SERVER_BIN="${CARGO_TARGET_DIR:-$PWD/target}/release/demo-server"
cargo bench -q -p session-benches --no-run >&2

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for b in "${benches[@]}"; do
  echo "== $b" >&2
  t0=$(date +%s)
  cargo bench -q -p session-benches --bench "$b" >"$tmp/$b.md"
  echo "== $b: $(($(date +%s) - t0)) s" >&2
done

# One header (every bench prints the same one), then every bench's rows.
first=${benches[0]}
grep -m2 '^|' "$tmp/$first.md"
for b in "${benches[@]}"; do
  grep '^| ' "$tmp/$b.md" | grep -v '^| bench |' || true
done

echo
echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), \
$(free -h | awk '/^Mem:/ {print $2}') RAM; $(redis-server --version | cut -d' ' -f1-3)."
echo "Command: benches/run.sh${*:+ $*}${BENCH_QUICK:+ (BENCH_QUICK=$BENCH_QUICK)}; took $(($(date +%s) - started)) s."
