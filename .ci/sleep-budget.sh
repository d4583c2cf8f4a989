#!/usr/bin/env bash
# How long session-core's tests and its conformance suite really wait on purpose, measured (the
# issue's budget: 1 s in all, per run of each test). Every `tokio::time::sleep(..).await` under
# session-core/tests/it and in src/testing/conformance.rs, the suite's `jitter(..)` and the cache
# test's 15 ms PING probe are wrapped in a timer that prints what the wait took; the tests run;
# the files are put back as they were (also on failure or Ctrl-C). Then the waits are summed
# per file, and per test for the conformance suite (which runs once per store).
#
#   .ci/sleep-budget.sh                    # every test of session-core's `it` binary
#   .ci/sleep-budget.sh redis_cache::      # only some (filters for the `it` test binary)
#
# Waits in tasks a test spawns (on runtime worker threads: background traffic pacing) run beside
# the test, not before it: listed apart as "background". The two sides of a race that wait at
# once (the suite's `jitter`) are both counted. Rebuilds session-core twice (instrumented, then
# as it was).
set -euo pipefail
cd "$(dirname "$0")/.."

files=(session-core/tests/it/*.rs session-core/tests/it/common/*.rs session-core/src/testing/conformance.rs)

backup="$(mktemp -d)"
log="$(mktemp)"
restore() {
  for f in "${files[@]}"; do cp -p "$backup/$(echo "$f" | tr / _)" "$f"; done
  rm -rf "$backup" "$log"
}
for f in "${files[@]}"; do cp -p "$f" "$backup/$(echo "$f" | tr / _)"; done
trap restore EXIT

python3 - "${files[@]}" <<'EOF'
import sys

# What is timed: `<prefix>...).await`, wherever it stands in code (not in comments).
PREFIXES = ["tokio::time::sleep(", "jitter(", "tokio::time::timeout(PROBE"]

def instrument(text):
    out, i, n = [], 0, 0
    while True:
        hits = [(text.find(p, i), p) for p in PREFIXES if text.find(p, i) >= 0]
        if not hits:
            out.append(text[i:])
            return "".join(out), n
        start, prefix = min(hits)
        line_start = text.rfind("\n", 0, start) + 1
        # balanced parentheses from the prefix's opening one
        depth, j = 0, start + prefix.index("(")
        while True:
            c = text[j]
            depth += c == "("
            depth -= c == ")"
            j += 1
            if depth == 0:
                break
        comment = text[line_start:start].lstrip().startswith("//")
        if comment or not text.startswith(".await", j) or text[start - 3:start] == "fn ":
            out.append(text[i:j])
            i = j
            continue
        expr = text[start:j] + ".await"
        out.append(text[i:start])
        out.append(
            "{ let __t = std::time::Instant::now(); let __r = " + expr + "; "
            "eprintln!(\"SLEPT\\t{}:{}\\t{}\\t{}\", file!(), line!(), "
            "std::thread::current().name().unwrap_or(\"?\"), __t.elapsed().as_micros()); __r }"
        )
        i = j + len(".await")
        n += 1

for path in sys.argv[1:]:
    with open(path) as f:
        text = f.read()
    new, n = instrument(text)
    if n:
        with open(path, "w") as f:
            f.write(new)
        print(f"sleep-budget: {n:3} waits timed in {path}", file=sys.stderr)
EOF

cargo test -p session-core --all-features --test it -- --nocapture "$@" >"$log" 2>&1 || {
  grep -v '^SLEPT' "$log" | tail -n 40
  echo "sleep-budget: the tests failed" >&2
  exit 1
}

python3 - "$log" <<'EOF'
import collections, sys

per_file = collections.Counter()
background = collections.Counter()
per_test = collections.Counter()
sites = collections.Counter()
for line in open(sys.argv[1], errors="replace"):
    if not line.startswith("SLEPT\t"):
        continue
    _, site, thread, micros = line.rstrip("\n").split("\t")
    path = site.rsplit(":", 1)[0]
    us = int(micros)
    sites[site] += us
    # libtest names a test's thread after the test (`module::name`); the runtime's workers are
    # named otherwise.
    if "::" not in thread:
        background[path] += us
    else:
        per_file[path] += us
    if path.endswith("conformance.rs"):
        per_test[thread] += us

ms = lambda us: f"{us / 1000:8.1f} ms"
print("waited on purpose, in the tests' own flow (a normal run):")
for path, us in sorted(per_file.items()):
    print(f"  {ms(us)}  {path}")
print(f"  {ms(sum(per_file.values()))}  TOTAL")
if per_test:
    print("the conformance suite's waits, per test (store):")
    for test, us in sorted(per_test.items()):
        print(f"  {ms(us)}  {test}")
if background:
    print("in background tasks (beside the test, not adding to its time):")
    for path, us in sorted(background.items()):
        print(f"  {ms(us)}  {path}")
print("by site:")
for site, us in sorted(sites.items(), key=lambda kv: -kv[1]):
    print(f"  {ms(us)}  {site}")
EOF
