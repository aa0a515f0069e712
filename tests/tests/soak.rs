//! Soak: 1,000 timed services ticking every second and a busy work queue (10,000 items a second)
//! on the real clock, for `HOSTED_SOAK_SECS` seconds (20 by default, which CI runs; the long run
//! is 300). Targets: the resident set grows by less than 5 % after the warm-up (the first quarter
//! of the run, at most a minute), and no tick is missed: every tick has `missed() == 0`, and
//! every timer ticked once per second of the run.
//!
//! ```sh
//! HOSTED_SOAK_SECS=300 cargo test -p hosted-tests --release --test soak -- --nocapture
//! ```
//!
//! Linux only: the resident set is read from `/proc/self/status`.

#![cfg(target_os = "linux")]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hosted::queue::QueueOptions;
use hosted::registry::ServiceDescriptor;
use hosted::timer::TimerOptions;
use hosted::{CancellationToken, Host, Queue, Tick, WorkQueue};

const TIMERS: usize = 1_000;
const PERIOD: Duration = Duration::from_secs(1);
const ITEMS_PER_MILLISECOND: u64 = 10;

/// The resident set in kibibytes.
fn resident_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a VmRSS line")
}

#[derive(Default)]
struct Counts {
    ticks: Vec<AtomicU64>,
    missed: AtomicU64,
    handled: AtomicU64,
}

#[test]
fn a_thousand_timers_and_a_busy_queue_hold_their_memory_and_miss_no_tick() {
    let seconds: u64 = std::env::var("HOSTED_SOAK_SECS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(20);
    let warm_up = Duration::from_secs((seconds / 4).clamp(1, 60));
    let run = Duration::from_secs(seconds);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let counts = Arc::new(Counts {
            ticks: (0..TIMERS).map(|_| AtomicU64::new(0)).collect(),
            ..Counts::default()
        });
        let mut builder = Host::builder()
            .add_service(ServiceDescriptor::work_queue("soak::queue", QueueOptions::new(10_000)));
        for index in 0..TIMERS {
            let counts = Arc::clone(&counts);
            builder = builder.add_service(ServiceDescriptor::timed(
                format!("soak::timer{index}"),
                TimerOptions::every(PERIOD),
                move |cx: hosted::di::RunContext| {
                    let counts = Arc::clone(&counts);
                    async move {
                        let tick = cx.extension::<Tick>().copied().expect("a tick");
                        counts.ticks[index].fetch_add(1, Ordering::Relaxed);
                        counts.missed.fetch_add(tick.missed(), Ordering::Relaxed);
                    }
                },
            ));
        }
        let host = builder
            .build()
            .expect("a valid host")
            .start()
            .await
            .expect("the host starts");
        let queue: WorkQueue = Queue::clone(&*host.get::<WorkQueue>().await.expect("the queue"));
        let stop = CancellationToken::new();
        let producer = tokio::spawn({
            let (stop, counts) = (stop.clone(), Arc::clone(&counts));
            async move {
                let mut every = tokio::time::interval(Duration::from_millis(1));
                every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                while !stop.is_cancelled() {
                    every.tick().await;
                    for _ in 0..ITEMS_PER_MILLISECOND {
                        let counts = Arc::clone(&counts);
                        let sent = queue
                            .enqueue(move |_: CancellationToken| async move {
                                counts.handled.fetch_add(1, Ordering::Relaxed);
                            })
                            .await;
                        if sent.is_err() {
                            return;
                        }
                    }
                }
            }
        });
        let began = Instant::now();
        tokio::time::sleep(warm_up).await;
        let after_warm_up = resident_kib();
        let mut peak = after_warm_up;
        while began.elapsed() < run {
            tokio::time::sleep(Duration::from_secs(1)).await;
            peak = peak.max(resident_kib());
        }
        let ran = began.elapsed();
        stop.cancel();
        let _ = producer.await;
        assert!(host.stop().await.is_success());

        let kib = |value: u64| f64::from(u32::try_from(value).unwrap_or(u32::MAX));
        let growth = kib(peak.saturating_sub(after_warm_up)) / kib(after_warm_up) * 100.0;
        let ticks: Vec<u64> = counts
            .ticks
            .iter()
            .map(|count| count.load(Ordering::Relaxed))
            .collect();
        let (fewest, most) = (
            ticks.iter().min().copied().unwrap_or(0),
            ticks.iter().max().copied().unwrap_or(0),
        );
        let due = ran.as_secs();
        println!(
            "soak: {seconds} s, {TIMERS} timers, {} items handled; resident set {after_warm_up} KiB \
             after {warm_up:?} of warm-up, peak {peak} KiB after (+{growth:.2} %); ticks per \
             timer {fewest}..={most} (due: {due} or {}), missed {}",
            counts.handled.load(Ordering::Relaxed),
            due + 1,
            counts.missed.load(Ordering::Relaxed)
        );
        assert!(growth < 5.0, "the resident set grew by {growth:.2} % after the warm-up");
        assert_eq!(counts.missed.load(Ordering::Relaxed), 0, "missed ticks");
        assert!(fewest >= due, "a timer ticked {fewest} times in {ran:?}");
        assert!(counts.handled.load(Ordering::Relaxed) > 0, "the queue handled nothing");
    });
}
