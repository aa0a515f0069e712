#!/usr/bin/env bash
# What the attributes cost at build time, against the same services registered by hand.
#
#   scripts/build-cost.sh [SERVICES] [ROUNDS]      (defaults: 200 services, 5 rounds)
#
# Generates two binaries with SERVICES background services each, in a throwaway workspace under
# target/build-cost (dependencies pinned by this repository's Cargo.lock, built once first):
#   annotated  every service is `#[hosted::hosted_service] async fn`, and `main` is `hosted::run!()`
#   by_hand    the same functions registered with `ServiceDescriptor::background` (declaring the
#              same needs) on `Host::builder()`, and the `main` that `run!()` stands for
#   identity   by_hand with an attribute on every function that returns it unchanged (a
#              proc-macro crate of five lines): what rustc charges for any attribute macro, so
#              the share of the cost that hosted's expansion adds can be read apart from it
# and measures, alternating the two binaries in every round, the median and range of:
#   clean build / clean check   the binary alone rebuilt from scratch (its dependencies built)
#   edit a body                 one mid-file function's body changed, same length
#   lengthen a line             one mid-file line made longer (shifts every byte offset below)
#   insert a line               one line added mid-file (shifts every line number below)
# plus the expansion: lines of `-Zunpretty=expanded` output per annotated function, beyond what
# the same functions take without attributes (`RUSTC_BOOTSTRAP` lets stable rustc print it).
#
# Times are CPU seconds of cargo and rustc (user + system), steadier than wall time on a busy
# machine; still, compare the ratios, not the seconds.
set -euo pipefail

services=${1:-200}
rounds=${2:-5}
repo=$(cd "$(dirname "$0")/.." && pwd)
work="$repo/target/build-cost"
mkdir -p "$work/annotated/src" "$work/by_hand/src" "$work/identity/src" "$work/unchanged/src"
export CARGO_TARGET_DIR="$work/target"
cd "$work"

cat >"$work/Cargo.toml" <<EOF
[workspace]
resolver = "3"
members = ["annotated", "by_hand", "identity", "unchanged"]

[workspace.dependencies]
hosted = { path = "$repo/hosted" }
tokio = { version = "1", features = ["rt-multi-thread"] }
tracing-subscriber = { version = "0.3", features = ["env-filter"] }
EOF
cp "$repo/Cargo.lock" "$work/Cargo.lock"
for crate in annotated by_hand identity; do
    cat >"$work/$crate/Cargo.toml" <<EOF
[package]
name = "$crate"
version = "0.0.0"
edition = "2024"
publish = false

[dependencies]
hosted.workspace = true
tokio.workspace = true
tracing-subscriber.workspace = true
EOF
done
echo 'unchanged = { path = "../unchanged" }' >>"$work/identity/Cargo.toml"
cat >"$work/unchanged/Cargo.toml" <<EOF
[package]
name = "unchanged"
version = "0.0.0"
edition = "2024"
publish = false

[lib]
proc-macro = true
EOF
cat >"$work/unchanged/src/lib.rs" <<EOF
use proc_macro::TokenStream;

#[proc_macro_attribute]
pub fn unchanged(_: TokenStream, item: TokenStream) -> TokenStream {
    item
}
EOF

# The functions, identical in both binaries; `$1` is the attribute line (or nothing).
functions() {
    local attribute=$1 index
    for ((index = 0; index < services; index++)); do
        printf '%s\nasync fn service_%04d(stop: CancellationToken) {\n    let label = "service %04d";\n    stop.cancelled().await;\n    let _ = label;\n}\n\n' \
            "$attribute" "$index" "$index"
    done
}

generate() {
    {
        echo 'use hosted::CancellationToken;'
        echo
        functions '#[hosted::hosted_service]'
        echo 'fn main() {'
        echo '    hosted::run!();'
        echo '}'
    } >"$work/annotated/src/main.rs"
    by_hand '' >"$work/by_hand/src/main.rs"
    by_hand '#[unchanged::unchanged]' >"$work/identity/src/main.rs"
}

# The hand-written binary's source, with `$1` on every function (or nothing).
by_hand() {
    local attribute=$1
    {
        echo 'use hosted::CancellationToken;'
        echo 'use hosted::di::{Inject as _, RunContext};'
        echo 'use hosted::registry::ServiceDescriptor;'
        echo
        functions "$attribute"
        echo 'fn main() -> std::process::ExitCode {'
        echo '    tracing_subscriber::fmt()'
        echo '        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())'
        echo '        .init();'
        echo '    let mut builder = hosted::Host::builder();'
        local index
        for ((index = 0; index < services; index++)); do
            printf '    builder = builder.add_service(\n        ServiceDescriptor::background(concat!(module_path!(), "::service_%04d"), |cx: RunContext| async move {\n            service_%04d(cx.resolve::<CancellationToken>().await?).await;\n            Ok::<(), hosted::BoxError>(())\n        })\n        .needs(CancellationToken::declare),\n    );\n' "$index" "$index"
        done
        echo '    let host = match builder.build() {'
        echo '        Ok(host) => host,'
        echo '        Err(error) => {'
        echo '            eprintln!("error: {error}");'
        echo '            return std::process::ExitCode::FAILURE;'
        echo '        }'
        echo '    };'
        echo '    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");'
        echo '    let outcome = runtime.block_on(host.run());'
        echo '    runtime.shutdown_timeout(std::time::Duration::from_millis(500));'
        echo '    std::process::ExitCode::from(outcome.exit_code())'
        echo '}'
    }
}

# CPU seconds (user + system, cargo and the compilers it ran) that `cargo "$@"` takes: unlike
# wall time, hardly changed by other work on the machine.
timed() {
    local times
    times=$( { TIMEFORMAT='%3U %3S'; time cargo "$@" --offline --quiet >/dev/null 2>"$work/last-error"; } 2>&1 ) || {
        cat "$work/last-error" >&2
        exit 1
    }
    echo "$times" | awk '{ printf "%.3f", $1 + $2 }'
}

# The line of function `service_(services/2)`'s label (the line after its signature), in `$1`'s
# source.
middle_line() {
    local signature
    signature=$(grep -n "^async fn service_$(printf '%04d' $((services / 2)))(" "$work/$1/src/main.rs" | cut -d: -f1)
    echo $((signature + 1))
}

edit_body() { # same length: the label's digits change
    local line
    line=$(middle_line "$1")
    sed -i "${line}s/service \([0-9]\)/servicf \1/;t;${line}s/servicf \([0-9]\)/service \1/" "$work/$1/src/main.rs"
}
lengthen_line() {
    local line
    line=$(middle_line "$1")
    sed -i "${line}s/\";/ (longer)\";/" "$work/$1/src/main.rs"
}
insert_line() {
    local line
    line=$(middle_line "$1")
    sed -i "${line}a\\    // an inserted line" "$work/$1/src/main.rs"
}

declare -A samples
record() { samples[$1]+="$2 "; }

generate
echo "building the dependencies once ..." >&2
cargo build --offline --quiet --workspace
cargo check --offline --quiet --workspace

for ((round = 1; round <= rounds; round++)); do
    echo "round $round of $rounds ..." >&2
    if ((round % 2)); then order="annotated by_hand identity"; else order="identity by_hand annotated"; fi
    for crate in $order; do
        generate
        cargo clean --offline --quiet -p "$crate"
        record "clean build/$crate" "$(timed build -p "$crate")"
        cargo clean --offline --quiet -p "$crate"
        record "clean check/$crate" "$(timed check -p "$crate")"
        cargo build --offline --quiet -p "$crate"
        edit_body "$crate"
        record "edit a body/$crate" "$(timed build -p "$crate")"
        lengthen_line "$crate"
        record "lengthen a line/$crate" "$(timed build -p "$crate")"
        insert_line "$crate"
        record "insert a line/$crate" "$(timed build -p "$crate")"
    done
done
generate

# "median min max" of the numbers given.
stats() {
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
        m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        printf "%.2f %.2f %.2f", m, v[1], v[NR] }'
}

printf '\n%d services, %d rounds, %s, load average %s\n\n' "$services" "$rounds" \
    "$(nproc) cores" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '| case | annotated, CPU s (range) | by hand, CPU s (range) | ratio | by hand + an attribute that changes nothing, CPU s (range) | its ratio to by hand |\n|---|---|---|---|---|---|\n'
for case in "clean build" "clean check" "edit a body" "lengthen a line" "insert a line"; do
    # shellcheck disable=SC2086
    read -r am amin amax <<<"$(stats ${samples["$case/annotated"]})"
    # shellcheck disable=SC2086
    read -r hm hmin hmax <<<"$(stats ${samples["$case/by_hand"]})"
    # shellcheck disable=SC2086
    read -r im imin imax <<<"$(stats ${samples["$case/identity"]})"
    printf '| %s | %s (%s–%s) | %s (%s–%s) | %.2f× | %s (%s–%s) | %.2f× |\n' "$case" "$am" "$amin" "$amax" \
        "$hm" "$hmin" "$hmax" "$(echo "$am / $hm" | bc -l)" \
        "$im" "$imin" "$imax" "$(echo "$im / $hm" | bc -l)"
done

# The expansion, per annotated function.
expanded_lines() {
    RUSTC_BOOTSTRAP=1 cargo rustc --offline --quiet -p annotated --profile check -- \
        -Zunpretty=expanded 2>/dev/null | wc -l
}
annotated_lines=$(expanded_lines)
sed -i 's/^#\[hosted::hosted_service\]$//; s/^    hosted::run!();$//' "$work/annotated/src/main.rs"
bare_lines=$(expanded_lines)
generate
printf '\nexpansion: %d lines with the attributes, %d without: %.1f lines per annotated fn (run!() included)\n' \
    "$annotated_lines" "$bare_lines" "$(echo "($annotated_lines - $bare_lines) / $services" | bc -l)"
