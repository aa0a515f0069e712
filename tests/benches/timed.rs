//! 10,000 timed services at a 100 ms period for 10 s, against 10,000 hand-written
//! `tokio::time::interval` loops: tick lateness (p50, p99, max), missed ticks, CPU time and
//! resident memory.
//!
//! ```sh
//! cargo bench -p hosted-tests --bench timed
//! ```
//!
//! `TIMED_BENCH_VARIANT=<variant>` runs one variant alone: `hand`, `hosted`, `hosted` with one
//! hook of its ticks left out (`hosted::__private::bypass_hooks`) — `no-metrics` (the `metrics`
//! calls), `no-spans` (the tick's span), `no-status` (the status's record of the tick and its
//! run, and the next due time) — or all three (`bypassed`), what "no cost when nothing listens"
//! is measured against; `spine` (10,000 background services that only wait for the stop)
//! measures what the host costs before any timer. `TIMED_BENCH_TIMERS` and `TIMED_BENCH_RUN_MS`
//! change the number of timers and the window, and `TIMED_BENCH_PAUSED=1` runs the variant on
//! one thread on tokio's paused clock (time jumps from one due tick to the next, so nothing
//! waits and nothing spins): the instruction counts under callgrind are then the same from run
//! to run (see `scripts/bench.sh`).
//!
//! The binary runs each variant in a child process of its own (itself, re-executed), so CPU time
//! and memory are per variant, alternating the variants over two rounds; each child runs a
//! multi-thread tokio runtime on every core. Timers' phases are spread over the period in both
//! variants (the host starts its services one at a time; the loops start 10 µs apart), and only
//! ticks due in the 10 s window after a warm-up count.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hosted::di::{Inject, RunContext};
use hosted::registry::ServiceDescriptor;
use hosted::timer::TimerOptions;
use hosted::{Host, Tick};
use tokio::time::Instant;

const PERIOD: Duration = Duration::from_millis(100);
const WARM_UP: Duration = Duration::from_secs(1);
const ROUNDS: usize = 2;
const VARIANT: &str = "TIMED_BENCH_VARIANT";

fn from_env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// How many timers.
static TIMERS: std::sync::LazyLock<usize> = std::sync::LazyLock::new(|| {
    usize::try_from(from_env("TIMED_BENCH_TIMERS", 10_000)).unwrap_or(10_000)
});

/// The measured window.
static RUN: std::sync::LazyLock<Duration> =
    std::sync::LazyLock::new(|| Duration::from_millis(from_env("TIMED_BENCH_RUN_MS", 10_000)));

/// Lateness in 10 µs buckets up to 100 ms, then one overflow bucket.
const BUCKET: Duration = Duration::from_micros(10);
const BUCKETS: usize = 10_000;

/// What every tick writes: the same in both variants.
struct Recorder {
    measure_from: Instant,
    measure_until: Instant,
    buckets: Vec<AtomicU64>,
    max_nanos: AtomicU64,
    /// Per timer: the highest slot number seen, and the number of ticks run.
    highest: Vec<AtomicU64>,
    runs: Vec<AtomicU64>,
    first: Vec<AtomicU64>,
}

impl Recorder {
    fn new(measure_from: Instant) -> Self {
        let zeros = |count| (0..count).map(|_| AtomicU64::new(0)).collect();
        Self {
            measure_from,
            measure_until: measure_from + *RUN,
            buckets: zeros(BUCKETS + 1),
            max_nanos: AtomicU64::new(0),
            highest: zeros(*TIMERS),
            runs: zeros(*TIMERS),
            first: zeros(*TIMERS),
        }
    }

    fn record(&self, timer: usize, slot: u64, scheduled: Instant, started: Instant) {
        if scheduled < self.measure_from || scheduled >= self.measure_until {
            return;
        }
        let late = started.saturating_duration_since(scheduled);
        let bucket = usize::try_from(late.as_nanos() / BUCKET.as_nanos())
            .unwrap_or(BUCKETS)
            .min(BUCKETS);
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(late.as_nanos()).unwrap_or(u64::MAX);
        self.max_nanos.fetch_max(nanos, Ordering::Relaxed);
        self.highest[timer].fetch_max(slot, Ordering::Relaxed);
        let _ = self.first[timer].compare_exchange(0, slot, Ordering::Relaxed, Ordering::Relaxed);
        self.runs[timer].fetch_add(1, Ordering::Relaxed);
    }

    fn percentile(&self, fraction: f64) -> Duration {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        let wanted = (f64_from(total) * fraction).ceil();
        let mut seen = 0;
        for (index, count) in counts.iter().enumerate() {
            seen += count;
            if f64_from(seen) >= wanted {
                return BUCKET * u32::try_from(index + 1).unwrap_or(u32::MAX);
            }
        }
        BUCKET * u32::try_from(BUCKETS).unwrap_or(u32::MAX)
    }

    /// Ticks run, and slots that passed without a tick of their own.
    fn counts(&self) -> (u64, u64) {
        let mut runs = 0;
        let mut missed = 0;
        for timer in 0..*TIMERS {
            let ran = self.runs[timer].load(Ordering::Relaxed);
            let first = self.first[timer].load(Ordering::Relaxed);
            let highest = self.highest[timer].load(Ordering::Relaxed);
            runs += ran;
            if ran > 0 {
                missed += (highest - first + 1).saturating_sub(ran);
            }
        }
        (runs, missed)
    }
}

fn f64_from(value: u64) -> f64 {
    // Counts stay far below 2^52.
    #[allow(clippy::cast_precision_loss, reason = "counts stay far below 2^52")]
    let value = value as f64;
    value
}

/// CPU time of this process so far (user + system), from /proc/self/stat.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(") ")
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    // utime and stime, fields 14 and 15 of the line (11 and 12 after the command), in clock
    // ticks of 1/100 s on Linux.
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&index| fields.get(index)?.parse::<u64>().ok())
        .sum();
    Duration::from_millis(ticks * 10)
}

/// Resident memory now, in KiB, from /proc/self/status.
fn resident_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Timer `timer` of the hosted variants, registered as `#[timed(every = "100ms")] async fn
/// f(tick: Tick)` expands: with what it declares, nothing scoped, so a tick opens no scope (a
/// service that declares nothing gets one per run).
fn timer_service(timer: usize, recorder: Arc<Recorder>) -> ServiceDescriptor {
    ServiceDescriptor::timed(
        format!("timer-{timer}"),
        TimerOptions::every(PERIOD),
        move |cx: RunContext| {
            let recorder = Arc::clone(&recorder);
            async move {
                let tick = cx.resolve::<Tick>().await?;
                recorder.record(timer, tick.number(), tick.scheduled(), tick.started());
                Ok::<(), hosted::BoxError>(())
            }
        },
    )
    .needs(<Tick as Inject>::declare)
}

/// Runs one variant in this process and prints its figures on one line.
fn run_variant(variant: &str) {
    let runtime = if from_env("TIMED_BENCH_PAUSED", 0) == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    }
    .expect("a runtime");
    runtime.block_on(async {
        let began = Instant::now();
        let recorder = Arc::new(Recorder::new(began + WARM_UP + Duration::from_secs(2)));
        let stop = hosted::CancellationToken::new();
        let running = match variant {
            "hand" => {
                for timer in 0..*TIMERS {
                    let recorder = Arc::clone(&recorder);
                    let stop = stop.clone();
                    let phase = Duration::from_micros(10) * u32::try_from(timer).unwrap_or(0);
                    let start = Instant::now() + phase;
                    tokio::spawn(async move {
                        let mut interval = tokio::time::interval_at(start, PERIOD);
                        loop {
                            tokio::select! {
                                () = stop.cancelled() => break,
                                scheduled = interval.tick() => {
                                    let slot = slot_of(start, scheduled);
                                    recorder.record(timer, slot, scheduled, Instant::now());
                                }
                            }
                        }
                    });
                }
                None
            }
            "spine" => {
                // Not one of the compared variants: the host's own cost of 10,000 services that
                // do nothing but wait for the stop, to tell it apart from the timers'.
                let mut builder = Host::builder();
                for timer in 0..*TIMERS {
                    builder = builder.add_service(
                        ServiceDescriptor::background(
                            format!("idle-{timer}"),
                            |cx: RunContext| async move { cx.stop_token().cancelled().await },
                        )
                        .needs(|_| {}),
                    );
                }
                let host = builder.build().expect("a valid host");
                Some(host.start().await.expect("the host starts"))
            }
            _ => {
                hosted_tests::bench::bypass(variant);
                let mut builder = Host::builder();
                for timer in 0..*TIMERS {
                    builder = builder.add_service(timer_service(timer, Arc::clone(&recorder)));
                }
                let host = builder.build().expect("a valid host");
                Some(host.start().await.expect("the host starts"))
            }
        };
        let started = began.elapsed();
        tokio::time::sleep_until(recorder.measure_from).await;
        let (cpu_before, window_began) = (cpu_time(), Instant::now());
        tokio::time::sleep(*RUN).await;
        let cpu = cpu_time().saturating_sub(cpu_before);
        let window = window_began.elapsed();
        let resident = resident_kib();
        stop.cancel();
        if let Some(running) = running {
            let _ = running.stop().await;
        }
        let (runs, missed) = recorder.counts();
        println!(
            "RESULT variant={variant} startup_ms={} window_ms={} ticks={runs} missed={missed} \
             p50_us={} p99_us={} max_us={} cpu_ms={} rss_kib={resident}",
            started.as_millis(),
            window.as_millis(),
            recorder.percentile(0.50).as_micros(),
            recorder.percentile(0.99).as_micros(),
            recorder.max_nanos.load(Ordering::Relaxed) / 1_000,
            cpu.as_millis(),
        );
    });
}

fn slot_of(start: Instant, scheduled: Instant) -> u64 {
    let nanos = scheduled.saturating_duration_since(start).as_nanos() / PERIOD.as_nanos();
    u64::try_from(nanos).unwrap_or(u64::MAX) + 1
}

/// One child's figures, by name.
#[derive(Clone, Debug)]
struct Figures(Vec<(String, f64)>);

impl Figures {
    fn parse(line: &str) -> Self {
        Self(
            line.split_whitespace()
                .filter_map(|pair| pair.split_once('='))
                .filter_map(|(key, value)| Some((key.to_owned(), value.parse().ok()?)))
                .collect(),
        )
    }

    fn get(&self, key: &str) -> f64 {
        self.0
            .iter()
            .find(|(name, _)| name == key)
            .map_or(f64::NAN, |(_, value)| *value)
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.len().is_multiple_of(2) {
        f64::midpoint(values[middle - 1], values[middle])
    } else {
        values[middle]
    }
}

fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        // `cargo test --benches` lists benchmarks; there is no harness to list.
        return;
    }
    if let Ok(variant) = std::env::var(VARIANT) {
        run_variant(&variant);
        return;
    }
    let program = std::env::current_exe().expect("the benchmark's path");
    let mut results: Vec<(&str, Figures)> = Vec::new();
    for round in 1..=ROUNDS {
        for variant in ["hand", "hosted", "bypassed"] {
            let output = Command::new(&program)
                .env(VARIANT, variant)
                .output()
                .expect("the benchmark runs itself");
            let stdout = String::from_utf8_lossy(&output.stdout);
            let Some(line) = stdout.lines().find(|line| line.starts_with("RESULT")) else {
                panic!(
                    "the {variant} run printed no result:\n{stdout}\n{}",
                    String::from_utf8_lossy(&output.stderr)
                );
            };
            println!("round {round}: {line}");
            results.push((variant, Figures::parse(line)));
        }
    }
    let summary = |variant: &str, key: &str| {
        let mut values: Vec<f64> = results
            .iter()
            .filter(|(name, _)| *name == variant)
            .map(|(_, figures)| figures.get(key))
            .collect();
        median(&mut values)
    };
    println!();
    println!(
        "{} timers every {PERIOD:?} for {:?}, median of {ROUNDS} runs per variant (min-max)",
        *TIMERS, *RUN
    );
    println!(
        "{:<22} {:>12} {:>12} {:>10}  {:>12} target",
        "", "hand-written", "#[timed]", "ratio", "no hooks"
    );
    let rows = [
        ("lateness p50 (µs)", "p50_us", ""),
        ("lateness p99 (µs)", "p99_us", "≤ hand + 500 µs"),
        ("lateness max (µs)", "max_us", ""),
        ("ticks", "ticks", ""),
        ("missed ticks", "missed", "0"),
        ("CPU time (ms)", "cpu_ms", "≤ 1.25×"),
        ("RSS (KiB)", "rss_kib", "≤ 1.5×"),
        ("startup (ms)", "startup_ms", ""),
    ];
    for (label, key, target) in rows {
        let (hand, hosted) = (summary("hand", key), summary("hosted", key));
        println!(
            "{label:<22} {hand:>12.0} {hosted:>12.0} {:>10}  {:>12.0} {target}",
            if hand > 0.0 {
                format!("{:.2}×", hosted / hand)
            } else {
                "-".to_owned()
            },
            summary("bypassed", key)
        );
    }
    let p99_margin = summary("hosted", "p99_us") - summary("hand", "p99_us");
    println!();
    println!(
        "p99 margin: {p99_margin:+.0} µs (target ≤ +500); missed: {} (target 0); CPU {:.2}× (target ≤ 1.25); RSS {:.2}× (target ≤ 1.5)",
        summary("hosted", "missed"),
        summary("hosted", "cpu_ms") / summary("hand", "cpu_ms"),
        summary("hosted", "rss_kib") / summary("hand", "rss_kib"),
    );
    let per_tick = |variant: &str| {
        let mut values: Vec<f64> = results
            .iter()
            .filter(|(name, _)| *name == variant)
            .map(|(_, figures)| figures.get("cpu_ms") * 1e3 / figures.get("ticks"))
            .collect();
        values.sort_by(f64::total_cmp);
        (median(&mut values), values[0], values[values.len() - 1])
    };
    let ((hand, hand_low, hand_high), (hosted, low, high), (bare, bare_low, bare_high)) =
        (per_tick("hand"), per_tick("hosted"), per_tick("bypassed"));
    println!(
        "CPU per tick: hand-written {hand:.2} µs ({hand_low:.2}-{hand_high:.2}), #[timed] {hosted:.2} µs ({low:.2}-{high:.2}), ratio {:.2}×; hooks bypassed {bare:.2} µs ({bare_low:.2}-{bare_high:.2}), with hooks / bypassed {:.3}×",
        hosted / hand,
        hosted / bare
    );
}
