#!/usr/bin/env bash
# Runs every side-by-side benchmark of issue 14's table, one after the other, and prints each
# one's table (hosted against hand-written tokio, as ratios), then the injection benchmark's
# instruction counts under callgrind, which the machine's load does not move.
#
#   scripts/bench.sh            # everything
#   scripts/bench.sh injection  # only the benchmarks named (lifecycle, injection, timed, queue)
#
# Each benchmark runs its variants in fresh processes or alternating rounds and reports medians
# with their spread (see BENCHMARKS.md). The machine's load average is printed before each one:
# on a shared machine, compare ratios, never absolute times. Callgrind needs valgrind (installed
# when missing and running as root).
set -euo pipefail
cd "$(dirname "$0")/.."

BENCHES=("$@")
[ ${#BENCHES[@]} -eq 0 ] && BENCHES=(lifecycle injection timed queue)

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
  cargo bench -q -p hosted-tests --bench "$bench" 2>/dev/null
done

case " ${BENCHES[*]} " in
  *" injection "*)
    if ! command -v valgrind >/dev/null && [ "$(id -u)" = 0 ]; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind
    fi
    if command -v valgrind >/dev/null; then
      BIN=$(binary injection)
      echo
      echo "=== injection under callgrind: instructions per iteration (100,000 iterations)"
      count() {
        INJECTION_ONLY=$1 valgrind --tool=callgrind --callgrind-out-file=/dev/null "$BIN" 2>&1 |
          sed -n 's/.*Collected : //p'
      }
      base=$(count none)
      hosted=$(( ($(count hosted) - base) / 100000 ))
      hand=$(( ($(count hand) - base) / 100000 ))
      python3 -c "import sys; h, b = int(sys.argv[1]), int(sys.argv[2]); print(f'  hosted {h:6d}   by hand {b:6d}   ratio {h / b:.2f}x (target <= 2.00x)')" "$hosted" "$hand"
    else
      echo "valgrind not found: no instruction counts" >&2
    fi
    ;;
esac
