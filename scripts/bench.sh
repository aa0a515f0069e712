#!/usr/bin/env bash
# Runs every side-by-side benchmark of issue 14's table, one after the other, prints each one's
# own table (hosted against hand-written tokio, as ratios), counts instructions under callgrind
# where wall time is too noisy (injection per iteration, a timer's tick, a queue's item), and ends
# with issue 14's table built from the runs it just did: path | hosted | hand-written | ratio |
# target | met?, with issue 15's "no cost when nothing listens" rows after it.
#
#   scripts/bench.sh            # everything
#   scripts/bench.sh injection  # only the benchmarks named (lifecycle, injection, timed, queue)
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

cargo bench -p hosted-tests --no-run "${BENCHES[@]/#/--bench=}" 2>&1 | grep -E '^(error|warning)' || true
# The newest build of each benchmark, its path as cargo prints it.
binary() {
  cargo bench -p hosted-tests --no-run --bench "$1" --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == sys.argv[1]:
        print(m["executable"])' "$1" | tail -1
}

echo "machine: $(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GiB, $(uname -sr), $(rustc --version)"
for bench in "${BENCHES[@]}"; do
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
  if has timed; then
    BIN=$(binary timed)
    echo
    echo "=== timed under callgrind: instructions per tick (100 timers at 100 ms; a 3 s window minus a 1 s one)"
    # Instructions and ticks in the window of one run under callgrind.
    counted() {
      env "$@" valgrind --tool=callgrind --callgrind-out-file=/dev/null "$BIN" 2>&1 |
        python3 -c 'import re, sys
text = sys.stdin.read()
print(re.search(r"Collected : (\d+)", text).group(1), re.search(r"ticks=(\d+)", text).group(1))'
    }
    for variant in hand hosted bypassed; do
      read -r long long_ticks < <(counted TIMED_BENCH_VARIANT=$variant TIMED_BENCH_TIMERS=100 TIMED_BENCH_RUN_MS=3000)
      read -r short short_ticks < <(counted TIMED_BENCH_VARIANT=$variant TIMED_BENCH_TIMERS=100 TIMED_BENCH_RUN_MS=1000)
      per=$(((long - short) / (long_ticks - short_ticks)))
      echo "timed $variant=$per" >>"$OUT/callgrind.txt"
      echo "  $variant: $per instructions per tick ($long_ticks and $short_ticks ticks in the windows)"
    done
  fi
  if has queue; then
    BIN=$(binary queue)
    echo
    echo "=== queue under callgrind: instructions per item (1 producer; 200,000 items minus 100,000)"
    for case in typed1 work1; do
      for variant in hand hosted bypassed; do
        long=$(instructions "$BIN" QUEUE_BENCH_ONLY=$case:$variant QUEUE_BENCH_ITEMS=200000)
        short=$(instructions "$BIN" QUEUE_BENCH_ONLY=$case:$variant QUEUE_BENCH_ITEMS=100000)
        per=$(((long - short) / 100000))
        echo "queue $case $variant=$per" >>"$OUT/callgrind.txt"
        echo "  $case $variant: $per instructions per item"
      done
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
hand = re.search(r"timed hand=(\d+)", callgrind)
ours = re.search(r"timed hosted=(\d+)", callgrind)
if hand and ours:
    h, b = int(ours.group(1)), int(hand.group(1))
    row("timer per tick, instructions (callgrind, 100 timers)", f"{h:,}", f"{b:,}", f"{h / b:.2f}×", "≤ 1.25×", verdict(h / b <= 1.25))
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
    found = dict(re.findall(r"queue " + case + r" (hosted|hand)=(\d+)", callgrind))
    if "hosted" in found and "hand" in found:
        h, b = int(found["hosted"]), int(found["hand"])
        # Fewer instructions is faster: the throughput target read as instructions.
        row(f"{name} per item, 1 producer, instructions (callgrind)", f"{h:,}", f"{b:,}", f"{h / b:.2f}×", "≤ 1.05× (≥ 0.95× throughput)", verdict(h / b <= 1 / 0.95))
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
for what, key in (("timer per tick", r"timed (hosted|bypassed)=(\d+)"), ):
    found = dict(re.findall(key, callgrind))
    if "hosted" in found and "bypassed" in found:
        h, b = int(found["hosted"]), int(found["bypassed"])
        hooks.append((f"{what}, instructions (callgrind)", f"{h:,}", f"{b:,}", f"{h / b:.3f}×", "—", f"{h - b:+,} per tick"))
for case in ("typed1", "work1"):
    found = dict(re.findall(r"queue " + case + r" (hosted|bypassed)=(\d+)", callgrind))
    if "hosted" in found and "bypassed" in found:
        h, b = int(found["hosted"]), int(found["bypassed"])
        hooks.append((f"queue item ({case}), instructions (callgrind)", f"{h:,}", f"{b:,}", f"{h / b:.3f}×", "—", f"{h - b:+,} per item"))
if hooks:
    print()
    print("issue 15: no cost when no recorder or subscriber listens (hooks bypassed in the 'hand-written' column)")
    print("| path | with hooks | hooks bypassed | ratio | target | met? |")
    print("|---|---|---|---|---|---|")
    for r in hooks:
        print("| " + " | ".join(r) + " |")
EOF
