#!/usr/bin/env bash
# The README's quick starts, pasted into fresh crates, built and run: the axum one (the ```toml
# and ```rust blocks under "## Quick start") and the actix-web one (under "### Quick start on
# actix-web"). Each becomes a `cargo new` crate whose dependencies are the toml block's, with
# the path of session-core rewritten to this checkout's, and whose src/main.rs is the rust
# block. Then, against a redis-server of our own: POST /login as a browser would (with an
# Origin, for the CSRF layer), GET /me with the cookie (200 "alice"), GET /me without (401).
#
# The pasted code is edited in exactly two places, by sed: the Redis URL
# (redis://127.0.0.1:6379 -> our redis-server's free port) and the listen address
# (127.0.0.1:3000 -> a free port). Nothing else.
#
# The workspace's Cargo.lock is copied into each crate and the build uses the workspace's
# target dir (CARGO_TARGET_DIR, default ./target), so the shared dependencies are not rebuilt.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
export CARGO_TARGET_DIR="$(realpath -m "${CARGO_TARGET_DIR:-$ROOT/target}")"

WORK="$(mktemp -d /tmp/readme-quickstart.XXXXXX)"
# The processes this script started and has not yet ended (each killed by its pid).
REDIS_PID=""
SERVER_PID=""
cleanup() {
  for pid in "$SERVER_PID" "$REDIS_PID"; do
    if [ -n "$pid" ]; then
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
  echo "quickstart: FAILED: $*" >&2
  exit 1
}

# A TCP port nobody listens on now, on 127.0.0.1, below the kernel's range of ephemeral ports
# (a port in that range can be the local end of some other connection, and a bind then fails
# although nobody listens: that failed CI once).
free_port() {
  local port low
  low="$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)"
  [ "$low" -gt 11000 ] 2>/dev/null || low=32768
  for _ in $(seq 1 100); do
    port=$((10000 + RANDOM % (low - 10000)))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return
    fi
  done
  fail "no free port found"
}

# The first fenced block whose fence starts with ```$2, after the line "$1" of the README.
block() {
  awk -v heading="$1" -v fence="$2" '
    $0 == heading { found = 1; next }
    found && !inside && index($0, "```" fence) == 1 { inside = 1; next }
    inside && $0 == "```" { exit }
    inside { print }
  ' README.md
}

# Replaces `from` with `to` in `file`, which must hold `from` exactly once.
replace_once() {
  local file="$1" from="$2" to="$3" n
  n="$(grep -cF -- "$from" "$file" || true)"
  [ "$n" = 1 ] || fail "$file: expected '$from' once in the README's code, found it $n times"
  sed -i "s|$from|$to|" "$file"
}

# Our redis-server, on another port if the one picked was taken meanwhile (three tries).
for _ in 1 2 3; do
  REDIS_PORT="$(free_port)"
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
    >"$WORK/redis.log" 2>&1 &
  REDIS_PID=$!
  for _ in $(seq 1 50); do
    redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
    kill -0 "$REDIS_PID" 2>/dev/null || break
    sleep 0.1
  done
  redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
  kill "$REDIS_PID" 2>/dev/null || true
done
redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 || fail "redis-server on port $REDIS_PORT did not start: $(cat "$WORK/redis.log")"

# quickstart NAME HEADING: build and exercise the quick start under HEADING.
quickstart() {
  local name="$1" heading="$2"
  local crate="$WORK/$name" port body code cookie
  echo "quickstart: $name (README: $heading)"
  grep -qxF -- "$heading" README.md || fail "no heading '$heading' in README.md"

  cargo new --quiet --vcs none --bin --name "$name" "$crate"
  block "$heading" toml >"$crate/deps.toml"
  [ -s "$crate/deps.toml" ] || fail "$name: no \`\`\`toml block under '$heading'"
  block "$heading" rust >"$crate/src/main.rs"
  [ -s "$crate/src/main.rs" ] || fail "$name: no \`\`\`rust block under '$heading'"

  # The dependencies (the block's own [dependencies] header dropped: cargo new wrote one), with
  # session-core's path pointing at this checkout.
  grep -q '^session-core = { path = "[^"]*"' "$crate/deps.toml" ||
    fail "$name: the toml block does not depend on session-core by path: $(cat "$crate/deps.toml")"
  grep -v '^\[dependencies\]$' "$crate/deps.toml" |
    sed "s|^session-core = { path = \"[^\"]*\"|session-core = { path = \"$ROOT/session-core\"|" \
      >>"$crate/Cargo.toml"
  cp Cargo.lock "$crate/Cargo.lock"

  # The only edits of the pasted code: our Redis and a free listen port.
  port="$(free_port)"
  replace_once "$crate/src/main.rs" "redis://127.0.0.1:6379" "redis://127.0.0.1:$REDIS_PORT"
  replace_once "$crate/src/main.rs" "127.0.0.1:3000" "127.0.0.1:$port"

  (cd "$crate" && cargo build --quiet) || fail "$name: the README's code does not build (crate $crate)"

  "$CARGO_TARGET_DIR/debug/$name" >"$WORK/$name.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 100); do
    curl -s -o /dev/null "http://127.0.0.1:$port/" && break
    kill -0 "$SERVER_PID" 2>/dev/null || fail "$name exited at start: $(cat "$WORK/$name.log")"
    sleep 0.1
  done

  # POST /login as a browser on the page's own origin would send it.
  code="$(curl -s -D "$WORK/login.headers" -o "$WORK/login.body" -w '%{http_code}' \
    -X POST -H "Origin: http://127.0.0.1:$port" "http://127.0.0.1:$port/login")" ||
    fail "$name: POST /login: no answer"
  [ "$code" = 200 ] || fail "$name: POST /login answered $code: $(cat "$WORK/login.body")"
  cookie="$(sed -n 's/^[Ss]et-[Cc]ookie: \([^;]*\).*/\1/p' "$WORK/login.headers" | head -n 1 | tr -d '\r')"
  [ -n "$cookie" ] || fail "$name: POST /login set no cookie: $(cat "$WORK/login.headers")"

  body="$(curl -s -H "Cookie: $cookie" -w ' %{http_code}' "http://127.0.0.1:$port/me")" ||
    fail "$name: GET /me: no answer"
  [ "$body" = "alice 200" ] || fail "$name: GET /me with the cookie: expected 'alice 200', got '$body'"

  code="$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/me")" ||
    fail "$name: GET /me without a cookie: no answer"
  [ "$code" = 401 ] || fail "$name: GET /me without a cookie answered $code, not 401"

  kill "$SERVER_PID"
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
  echo "quickstart: $name: login 200, /me 200 alice with the cookie, 401 without"
}

quickstart readme-quickstart-axum "## Quick start"
quickstart readme-quickstart-actix "### Quick start on actix-web"
echo "quickstart: both README quick starts work as written"
