//! Starting and stopping many idle services, against the same written by hand with a tokio
//! `JoinSet` and one `CancellationToken`: time to start, time to stop, and resident memory per
//! service.
//!
//! ```sh
//! cargo bench -p hosted-tests --bench lifecycle
//! ```
//!
//! Each measurement runs in a fresh child process (this binary, re-executed with
//! `LIFECYCLE_BENCH=variant:count`), alternating the variants, five processes per variant and
//! count; the table gives the median and the spread (min–max) of each. The services are
//! registered the way `#[hosted_service] async fn idle(stop: CancellationToken)` expands: a
//! background body that resolves its stop token through `Inject` and declares that it does.

use std::process::Command;
use std::time::{Duration, Instant};

use hosted::di::{Inject, RunContext};
use hosted::registry::ServiceDescriptor;
use hosted::{BoxError, CancellationToken, Host};

const COUNTS: [usize; 2] = [1_000, 10_000];
const PROCESSES: usize = 5;
const CHILD: &str = "LIFECYCLE_BENCH";

/// What one child measured.
#[derive(Clone, Copy)]
struct Sample {
    start: Duration,
    stop: Duration,
    /// Resident memory added by the running services, in bytes.
    memory: u64,
}

fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|kib| kib.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

fn hosted(count: usize) -> Sample {
    runtime().block_on(async {
        let before = resident_bytes();
        let mut builder = Host::builder();
        for index in 0..count {
            builder = builder.add_service(
                ServiceDescriptor::background(
                    format!("idle{index}"),
                    |cx: RunContext| async move {
                        let stop = cx.resolve::<CancellationToken>().await?;
                        stop.cancelled().await;
                        Ok::<(), BoxError>(())
                    },
                )
                .needs(<CancellationToken as Inject>::declare),
            );
        }
        let host = builder.build().expect("a valid host");
        let began = Instant::now();
        let running = host.start().await.expect("a clean start");
        let start = began.elapsed();
        let memory = resident_bytes().saturating_sub(before);
        let began = Instant::now();
        assert!(running.stop().await.is_success());
        Sample {
            start,
            stop: began.elapsed(),
            memory,
        }
    })
}

fn by_hand(count: usize) -> Sample {
    runtime().block_on(async {
        let before = resident_bytes();
        let stop = CancellationToken::new();
        let began = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..count {
            let stop = stop.clone();
            tasks.spawn(async move { stop.cancelled().await });
        }
        // Every task has run once, as every hosted service has started.
        tokio::task::yield_now().await;
        let start = began.elapsed();
        let memory = resident_bytes().saturating_sub(before);
        let began = Instant::now();
        stop.cancel();
        while let Some(ended) = tasks.join_next().await {
            ended.expect("a task that does not panic");
        }
        Sample {
            start,
            stop: began.elapsed(),
            memory,
        }
    })
}

fn child(spec: &str) {
    let (variant, count) = spec.split_once(':').expect("variant:count");
    let count: usize = count.parse().expect("a count");
    let sample = match variant {
        "hosted" => hosted(count),
        "hand" => by_hand(count),
        other => panic!("unknown variant {other}"),
    };
    println!(
        "{} {} {}",
        sample.start.as_nanos(),
        sample.stop.as_nanos(),
        sample.memory
    );
}

fn run_child(variant: &str, count: usize) -> Sample {
    let program = std::env::current_exe().expect("the benchmark's path");
    let output = Command::new(program)
        .env(CHILD, format!("{variant}:{count}"))
        .output()
        .expect("the child runs");
    assert!(output.status.success(), "{variant}:{count} failed");
    let text = String::from_utf8_lossy(&output.stdout);
    let numbers: Vec<u64> = text
        .split_whitespace()
        .map(|number| number.parse().expect("a number"))
        .collect();
    Sample {
        start: Duration::from_nanos(numbers[0]),
        stop: Duration::from_nanos(numbers[1]),
        memory: numbers[2],
    }
}

/// Which duration of a sample a row shows.
type Pick = fn(&Sample) -> Duration;

/// Median, min and max.
fn summary(mut values: Vec<f64>) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    (
        values[values.len() / 2],
        values[0],
        values[values.len() - 1],
    )
}

fn main() {
    if let Ok(spec) = std::env::var(CHILD) {
        child(&spec);
        return;
    }
    println!(
        "idle services, {PROCESSES} fresh processes per figure, median (min–max), ratio of medians"
    );
    println!("| measure | count | hand-written | hosted | ratio |\n|---|---:|---:|---:|---:|");
    for count in COUNTS {
        let (mut hand, mut ours) = (Vec::new(), Vec::new());
        for round in 0..PROCESSES {
            if round % 2 == 0 {
                hand.push(run_child("hand", count));
                ours.push(run_child("hosted", count));
            } else {
                ours.push(run_child("hosted", count));
                hand.push(run_child("hand", count));
            }
        }
        let millis = |samples: &[Sample], pick: fn(&Sample) -> Duration| {
            summary(
                samples
                    .iter()
                    .map(|s| pick(s).as_secs_f64() * 1e3)
                    .collect(),
            )
        };
        let rows: [(&str, Pick); 2] = [("start (ms)", |s| s.start), ("stop (ms)", |s| s.stop)];
        for (name, pick) in rows {
            let (h, hmin, hmax) = millis(&hand, pick);
            let (o, omin, omax) = millis(&ours, pick);
            println!(
                "| {name} | {count} | {h:.2} ({hmin:.2}–{hmax:.2}) | {o:.2} ({omin:.2}–{omax:.2}) | {:.1}× |",
                o / h
            );
        }
        #[expect(clippy::cast_precision_loss, reason = "a byte count shown in KiB")]
        let per_service = |samples: &[Sample]| {
            summary(
                samples
                    .iter()
                    .map(|s| s.memory as f64 / 1024.0 / count as f64)
                    .collect(),
            )
        };
        let (h, hmin, hmax) = per_service(&hand);
        let (o, omin, omax) = per_service(&ours);
        println!(
            "| memory per service (KiB) | {count} | {h:.2} ({hmin:.2}–{hmax:.2}) | {o:.2} ({omin:.2}–{omax:.2}) | {:.1}× |",
            o / h
        );
    }
}
