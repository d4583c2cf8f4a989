#!/usr/bin/env bash
# The tests, on a fresh Debian/Ubuntu machine with only Rust installed: installs what they need
# when it is missing (redis-server; Chromium and chromedriver for the browser test; iptables for
# the network-fault tests), then runs every test of the workspace. `.ci/run` calls this too.
#   bash test.sh            # everything
#   bash test.sh -- NAME    # arguments after the script go to `cargo test` (a filter, say)
set -euo pipefail
cd "$(dirname "$0")"

missing=()
command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1 || missing+=(redis-server)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
command -v iptables >/dev/null 2>&1 || missing+=(iptables)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing what the tests need (Debian packages): ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "no apt-get here: install ${missing[*]} with your package manager, then run this again" >&2
    exit 1
  fi
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
redis-server --version
chromium --version
chromedriver --version

cargo test --workspace --all-features "$@"
