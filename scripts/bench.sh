#!/usr/bin/env bash
# Runs every side-by-side benchmark of issue 14's table, one after the other, prints each one's
# own table (hosted against hand-written tokio, as ratios), counts instructions under callgrind
# where wall time is too noisy (injection per iteration, a timer's tick, a queue's item), and ends
# with issue 14's table built from the runs it just did: path | hosted | hand-written | ratio |
# target | met?, with issue 15's "no cost when nothing listens" rows after it.
#
#   scripts/bench.sh            # everything
#   scripts/bench.sh injection  # only the benchmarks named (lifecycle, injection, timed, queue)
#   CALLGRIND_ONLY=1 scripts/bench.sh timed queue   # only the instruction counts (a loaded machine)
#
# CALLGRIND_ROUNDS (default 3) sets the rounds of the counts, CALLGRIND_ITEMS (default 200000) the
# longer of a queue's two runs (the shorter has half as many items).
#
# Each benchmark runs its variants in fresh processes or alternating rounds and reports medians
# with their spread (see BENCHMARKS.md). The machine's load average is printed before each one:
# on a shared machine, compare ratios, never absolute times; the callgrind counts are what the
# load does not move. Callgrind needs valgrind (installed when missing and running as root).
set -euo pipefail
cd "$(dirname "$0")/.."

BENCHES=("$@")
[ ${#BENCHES[@]} -eq 0 ] && BENCHES=(lifecycle injection timed queue)
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

# BENCH_BIN_<name>=path runs that build of a benchmark instead of building it (a copy kept
# aside while the tree is rebuilt).
[ -n "${BENCH_BIN_timed:-}${BENCH_BIN_queue:-}" ] ||
  cargo bench -p hosted-tests --no-run "${BENCHES[@]/#/--bench=}" 2>&1 | grep -E '^(error|warning)' || true
# The newest build of each benchmark, its path as cargo prints it.
binary() {
  local kept="BENCH_BIN_$1"
  if [ -n "${!kept:-}" ]; then
    echo "${!kept}"
    return
  fi
  cargo bench -p hosted-tests --no-run --bench "$1" --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == sys.argv[1]:
        print(m["executable"])' "$1" | tail -1
}

echo "machine: $(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GiB, $(uname -sr), $(rustc --version)"
for bench in "${BENCHES[@]}"; do
  [ "${CALLGRIND_ONLY:-0}" = 1 ] && break
  echo
  echo "=== $bench (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
  cut -d' ' -f1-3 /proc/loadavg >"$OUT/$bench.load"
  cargo bench -q -p hosted-tests --bench "$bench" 2>/dev/null | tee "$OUT/$bench.txt"
done

if ! command -v valgrind >/dev/null && [ "$(id -u)" = 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind
fi
# Instructions of one whole run of a benchmark binary under callgrind, with the environment given.
instructions() {
  local bin=$1
  shift
  env "$@" valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" 2>&1 |
    sed -n 's/.*Collected : //p'
}
has() { case " ${BENCHES[*]} " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

if command -v valgrind >/dev/null; then
  if has injection; then
    BIN=$(binary injection)
    echo
    echo "=== injection under callgrind: instructions per iteration (100,000 iterations)"
    base=$(instructions "$BIN" INJECTION_ONLY=none)
    hosted=$((($(instructions "$BIN" INJECTION_ONLY=hosted) - base) / 100000))
    hand=$((($(instructions "$BIN" INJECTION_ONLY=hand) - base) / 100000))
    echo "injection hosted=$hosted hand=$hand" >>"$OUT/callgrind.txt"
    python3 -c "import sys; h, b = int(sys.argv[1]), int(sys.argv[2]); print(f'  hosted {h:6d}   by hand {b:6d}   ratio {h / b:.2f}x (target <= 2.00x)')" "$hosted" "$hand"
  fi
  # Issue 15: each hook of the hot paths left out on its own (metrics, spans, status), and all of
  # them, beside the host as it ships, alternating in every round. ROUNDS rounds (default 3), so
  # the run-to-run spread of every figure is printed beside its median.
  ROUNDS=${CALLGRIND_ROUNDS:-3}
  VARIANTS=(hand hosted no-metrics no-spans no-status bypassed)
  if has timed; then
    BIN=$(binary timed)
    echo
    echo "=== timed under callgrind: instructions per tick (100 timers at 100 ms on the paused clock, one thread; a 20 s window minus a 10 s one; $ROUNDS rounds)"
    # Instructions and ticks in the window of one run under callgrind.
    counted() {
      env "$@" valgrind --tool=callgrind --callgrind-out-file=/dev/null "$BIN" 2>&1 |
        python3 -c 'import re, sys
text = sys.stdin.read()
print(re.search(r"Collected : (\d+)", text).group(1), re.search(r"ticks=(\d+)", text).group(1))'
    }
    declare -A TICKS_SEEN=()
    for round in $(seq "$ROUNDS"); do
      for variant in "${VARIANTS[@]}"; do
        read -r long long_ticks < <(counted TIMED_BENCH_VARIANT=$variant TIMED_BENCH_TIMERS=100 TIMED_BENCH_RUN_MS=20000 TIMED_BENCH_PAUSED=1)
        read -r short short_ticks < <(counted TIMED_BENCH_VARIANT=$variant TIMED_BENCH_TIMERS=100 TIMED_BENCH_RUN_MS=10000 TIMED_BENCH_PAUSED=1)
        per=$(python3 -c "import sys; print(f'{(int(sys.argv[1]) - int(sys.argv[2])) / (int(sys.argv[3]) - int(sys.argv[4])):.1f}')" "$long" "$short" "$long_ticks" "$short_ticks")
        TICKS_SEEN[$variant]+="$per,"
        echo "  round $round $variant: $per instructions per tick ($long_ticks and $short_ticks ticks in the windows)"
      done
    done
    for variant in "${VARIANTS[@]}"; do
      echo "timed tick $variant=${TICKS_SEEN[$variant]%,}" >>"$OUT/callgrind.txt"
    done
  fi
  if has queue; then
    BIN=$(binary queue)
    for threads in 1 2; do
      echo
      ITEMS=${CALLGRIND_ITEMS:-200000}
      echo "=== queue under callgrind: instructions per item (1 producer, $threads runtime thread(s); $ITEMS items minus $((ITEMS / 2)); $ROUNDS rounds)"
      declare -A ITEMS_SEEN=()
      for round in $(seq "$ROUNDS"); do
        for case in typed1 work1; do
          for variant in "${VARIANTS[@]}"; do
            long=$(instructions "$BIN" QUEUE_BENCH_ONLY=$case:$variant QUEUE_BENCH_ITEMS=$ITEMS QUEUE_BENCH_THREADS=$threads)
            short=$(instructions "$BIN" QUEUE_BENCH_ONLY=$case:$variant QUEUE_BENCH_ITEMS=$((ITEMS / 2)) QUEUE_BENCH_THREADS=$threads)
            per=$(python3 -c "import sys; print(f'{(int(sys.argv[1]) - int(sys.argv[2])) / (int(sys.argv[3]) / 2):.1f}')" "$long" "$short" "$ITEMS")
            ITEMS_SEEN[$case.$variant]+="$per,"
            echo "  round $round $case $variant: $per instructions per item"
          done
        done
      done
      for case in typed1 work1; do
        for variant in "${VARIANTS[@]}"; do
          echo "queue$threads $case $variant=${ITEMS_SEEN[$case.$variant]%,}" >>"$OUT/callgrind.txt"
        done
      done
      unset ITEMS_SEEN
    done
  fi
else
  echo "valgrind not found: no instruction counts" >&2
fi

echo
echo "=== issue 14: every path, from the runs above"
python3 - "$OUT" <<'EOF'
import os, re, sys

out = sys.argv[1]
def read(name):
    path = os.path.join(out, name)
    return open(path).read() if os.path.exists(path) else ""
def load(name):
    text = read(name + ".load").strip()
    return f" (load {text})" if text else ""

rows = []
def row(path, hosted, hand, ratio, target, met):
    rows.append((path, hosted, hand, ratio, target, met))
def verdict(ok):
    return "yes" if ok else "**no**"

# lifecycle: "| start (ms) | 1000 | h (min–max) | o (min–max) | r× |"
life = read("lifecycle.txt")
for measure, target in (("stop (ms)", 1.5), ("start (ms)", 2.0)):
    for count in ("1000", "10000"):
        m = re.search(r"\| " + re.escape(measure) + r" \| " + count + r" \| ([^|]+) \| ([^|]+) \| ([\d.]+)×", life)
        if m:
            ratio = float(m.group(3))
            row(f"{measure.split()[0]} {int(count):,} idle services, ms{load('lifecycle')}", m.group(2).strip(), m.group(1).strip(), f"{ratio:.1f}×", f"≤ {target}×", verdict(ratio <= target))
m = re.search(r"\| memory per service \(KiB\) \| 10000 \| ([^|]+) \| ([^|]+) \| ([\d.]+)×", life)
if m:
    ratio = float(m.group(3))
    row("memory per idle service (10,000), KiB", m.group(2).strip(), m.group(1).strip(), f"{ratio:.1f}×", "≤ 2×", verdict(ratio <= 2))

callgrind = read("callgrind.txt")
def runs(prefix):
    """Per variant, the per-unit counts of every round: `<prefix> <variant>=a,b,c`."""
    return {variant: [float(x) for x in values.split(",")]
            for variant, values in re.findall(re.escape(prefix) + r" ([a-z-]+)=([\d.,]+)", callgrind)}
def median(values):
    values = sorted(values)
    middle = len(values) // 2
    return values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2
def figure(values):
    return f"{median(values):,.0f} ({min(values):,.0f}–{max(values):,.0f})"
m = re.search(r"injection hosted=(\d+) hand=(\d+)", callgrind)
if m:
    h, b = int(m.group(1)), int(m.group(2))
    row("scope + 3 scoped + 2 singleton resolves, instructions (callgrind)", f"{h:,}", f"{b:,}", f"{h / b:.1f}×", "≤ 2×", verdict(h / b <= 2))
m = re.search(r"ratio\s+([\d.]+)x \(target <= 2.00x\)", read("injection.txt"))
if m:
    ratio = float(m.group(1))
    row(f"scope + resolves, wall{load('injection')}", "", "", f"{ratio:.1f}×", "≤ 2×", verdict(ratio <= 2))

timed = read("timed.txt")
m = re.search(r"CPU per tick: hand-written ([\d.]+) µs \(([^)]*)\), #\[timed\] ([\d.]+) µs \(([^)]*)\), ratio ([\d.]+)×; hooks bypassed ([\d.]+) µs \(([^)]*)\), with hooks / bypassed ([\d.]+)×", timed)
if m:
    ratio = float(m.group(5))
    row(f"timer CPU per tick (10,000 at 100 ms), wall{load('timed')}", f"{m.group(3)} µs ({m.group(4)})", f"{m.group(1)} µs ({m.group(2)})", f"{ratio:.2f}×", "≤ 1.25×", verdict(ratio <= 1.25))
ticks = runs("timed tick")
if "hand" in ticks and "hosted" in ticks:
    h, b = median(ticks["hosted"]), median(ticks["hand"])
    row("timer per tick, instructions (callgrind, 100 timers, paused clock)", figure(ticks["hosted"]), figure(ticks["hand"]), f"{h / b:.2f}×", "≤ 1.25×", verdict(h / b <= 1.25))
m = re.search(r"RSS \(KiB\)\s+(\d+)\s+(\d+)\s+([\d.]+)×", timed)
if m:
    ratio = float(m.group(3))
    row("timer memory (10,000 at 100 ms), RSS KiB", m.group(2), m.group(1), f"{ratio:.2f}×", "≤ 1.5×", verdict(ratio <= 1.5))
m = re.search(r"lateness p99 \(µs\)\s+(\d+)\s+(\d+)", timed)
missed = re.search(r"missed ticks\s+(\d+)\s+(\d+)", timed)
if m:
    hand_p99, ours_p99 = int(m.group(1)), int(m.group(2))
    extra = f", missed {missed.group(2)} / {missed.group(1)}" if missed else ""
    row(f"timer lateness p99 (10,000 at 100 ms), µs{extra}", str(ours_p99), str(hand_p99), f"{ours_p99 - hand_p99:+d} µs", "≤ hand + 500 µs", verdict(ours_p99 - hand_p99 <= 500))

queue = read("queue.txt")
def throughput(label):
    m = re.search(re.escape(label) + r"\s+hosted\s+([\d.]+) M items/s\s+by hand\s+([\d.]+) M items/s\s+ratio ([\d.]+)x\s+\(hosted ([^,]+), by hand ([^)]+)\)", queue)
    return m
for name, label in (("`#[queued]`", "typed u64"), ("`WorkQueue`", "work items")):
    for producers in (1, 4):
        m = throughput(f"{label}, {producers} producer(s)")
        if m:
            ratio = float(m.group(3))
            row(f"{name} throughput, {producers} producer{'s' if producers > 1 else ''}, M items/s{load('queue')}", f"{m.group(1)} ({m.group(4)})", f"{m.group(2)} ({m.group(5)})", f"{ratio:.2f}×", "≥ 0.95×", verdict(ratio >= 0.95))
for case, name in (("typed1", "`#[queued]`"), ("work1", "`WorkQueue`")):
    found = runs(f"queue2 {case}")
    if "hosted" in found and "hand" in found:
        h, b = median(found["hosted"]), median(found["hand"])
        # Fewer instructions is faster: the throughput target read as instructions.
        row(f"{name} per item, 1 producer, instructions (callgrind)", figure(found["hosted"]), figure(found["hand"]), f"{h / b:.2f}×", "≤ 1.05× (≥ 0.95× throughput)", verdict(h / b <= 1 / 0.95))
for producers in (1, 4):
    m = re.search(r"typed u64 \+ latency, " + str(producers) + r" producer\(s\).*\n\s+hooks bypassed.*\n\s+enqueue-to-start latency\s+hosted p50\s+([\d.]+) us p99\s+([\d.]+) us\s+by hand p50\s+([\d.]+) us p99\s+([\d.]+) us\s+p50 ratio ([\d.]+)x\s+p99 ratio ([\d.]+)x", queue)
    if m:
        p50, p99 = float(m.group(5)), float(m.group(6))
        row(f"enqueue-to-start p50 / p99, {producers} producer{'s' if producers > 1 else ''}, µs", f"{m.group(1)} / {m.group(2)}", f"{m.group(3)} / {m.group(4)}", f"{p50:.2f}× / {p99:.2f}×", "≤ 1.2×", verdict(p50 <= 1.2 and p99 <= 1.2))

def show(title, rows):
    print(title)
    print("| path | hosted | hand-written | ratio | target | met? |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")

show("", rows)

# Issue 15: the hooks (status, metrics, tracing) with nothing listening, against the same host
# with them bypassed, in the same run.
hooks = []
def spread(text):
    low, high = (float(x) for x in text.split("-"))
    return low, high
for label in ("typed u64, 1 producer(s)", "typed u64, 4 producer(s)", "work items, 1 producer(s)", "work items, 4 producer(s)"):
    m = throughput(label)
    b = re.search(re.escape(label) + r".*\n\s+hooks bypassed\s+([\d.]+) M items/s \(([^)]+)\)\s+with hooks / bypassed ([\d.]+)x", queue)
    if m and b:
        (lo, hi), (blo, bhi) = spread(m.group(4)), spread(b.group(2))
        overlap = lo <= bhi and blo <= hi
        hooks.append((f"queue {label}, M items/s", f"{m.group(1)} ({m.group(4)})", f"{b.group(1)} ({b.group(2)})", f"{float(b.group(3)):.3f}×", "within noise (spreads overlap)", verdict(overlap)))
m = re.search(r"#\[timed\] ([\d.]+) µs \(([^)]*)\).*hooks bypassed ([\d.]+) µs \(([^)]*)\), with hooks / bypassed ([\d.]+)×", timed)
if m:
    (lo, hi), (blo, bhi) = spread(m.group(2)), spread(m.group(4))
    overlap = lo <= bhi and blo <= hi
    hooks.append(("timer CPU per tick, µs", f"{m.group(1)} ({m.group(2)})", f"{m.group(3)} ({m.group(4)})", f"{float(m.group(5)):.3f}×", "within noise (spreads overlap)", verdict(overlap)))
# Each hook's cost, from the callgrind counts: the host as it ships against the same host with
# that hook left out, medians of the rounds with their spread (min–max). Within noise when the
# difference is no larger than the larger of the two spreads, or the two ranges overlap.
def hook_rows(label, found, unit):
    if "hosted" not in found:
        return
    ours = found["hosted"]
    for variant, what in (("no-metrics", "metrics, no recorder"), ("no-spans", "run span and origin, no subscriber"), ("no-status", "status record"), ("bypassed", "all three")):
        if variant not in found:
            continue
        theirs = found[variant]
        difference = median(ours) - median(theirs)
        noise = max(max(ours) - min(ours), max(theirs) - min(theirs))
        overlap = min(ours) <= max(theirs) and min(theirs) <= max(ours)
        within = overlap or abs(difference) <= noise
        hooks.append((f"{label}: {what}", figure(ours), figure(theirs), f"{difference:+,.0f} per {unit} ({difference / median(theirs):+.1%}), spread {noise:,.0f}", "within noise", verdict(within)))
hook_rows("timer tick, instructions (callgrind, paused clock)", runs("timed tick"), "tick")
for threads in (1, 2):
    for case, name in (("typed1", "`#[queued]` item"), ("work1", "work item")):
        hook_rows(f"{name}, instructions (callgrind, {threads} thread{'s' if threads > 1 else ''})", runs(f"queue{threads} {case}"), "item")
if hooks:
    print()
    print("issue 15: no cost when no recorder or subscriber listens (each hook left out in the second column)")
    print("| path, hook | hosted | hook left out | cost | target | met? |")
    print("|---|---|---|---|---|---|")
    for r in hooks:
        print("| " + " | ".join(r) + " |")
EOF
