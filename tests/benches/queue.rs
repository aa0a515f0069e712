//! `#[queued]` against the same work written by hand with a tokio `mpsc` channel, in one run.
//!
//! Each case pushes 1,000,000 items through a queue of capacity 100 drained by one worker, from
//! 1 and from 4 producer tasks, on a two-thread runtime:
//!
//! * typed items (`u64`): a `#[queued(capacity = 100)]` function versus `mpsc::channel(100)` and
//!   a worker loop; throughput, and enqueue-to-start latency (p50, p99) of every item;
//! * work items (async closures receiving the stop token): the [`WorkQueue`] versus a channel of
//!   boxed closures and a worker loop.
//!
//! Rounds alternate between `hosted`, `hosted` with its metrics, span and status hooks
//! bypassed (`hosted::__private::bypass_hooks`: what "no cost when nothing listens" is measured
//! against) and the hand-written code; the report gives the median of each with its spread, and
//! the ratios (above 1 means `hosted` is faster for throughput; for latency, the ratio is
//! `hosted` / hand-written, so below 1 means `hosted` is faster).
//!
//! ```sh
//! cargo bench -p hosted-tests --bench queue
//! cargo bench -p hosted-tests --bench queue -- "u64,"   # only the cases whose label contains it
//! ```
//!
//! `QUEUE_BENCH_ONLY=<case>:<variant>` runs one case once and prints nothing, for instruction
//! counts under callgrind (`QUEUE_BENCH_ITEMS` sets the item count, `QUEUE_BENCH_THREADS=1` runs
//! it on one thread, where the counts are the same from run to run): the case is `typed1`,
//! `typed4`, `work1` or `work4`, the variant `hand`, `hosted`, `hosted` with one hook left out
//! (`no-metrics`, `no-spans`, `no-status`), or all three (`bypassed`).

use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use hosted::host::RunningHost;
use hosted::queue::QueueOptions;
use hosted::registry::ServiceDescriptor;
use hosted::{CancellationToken, Host, Queue, WorkQueue};
use tokio::sync::{Notify, mpsc};

static ITEMS: LazyLock<u64> = LazyLock::new(|| {
    std::env::var("QUEUE_BENCH_ITEMS")
        .ok()
        .and_then(|items| items.parse().ok())
        .unwrap_or(1_000_000)
});
const CAPACITY: usize = 100;
const ROUNDS: usize = 5;

/// Counts handled items and wakes the measuring task after the last one.
struct Done {
    handled: AtomicU64,
    sum: AtomicU64,
    all: Notify,
}

impl Done {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            handled: AtomicU64::new(0),
            sum: AtomicU64::new(0),
            all: Notify::new(),
        })
    }

    /// The work done per item, the same on both sides.
    fn handle(&self, item: u64) {
        self.sum.fetch_add(black_box(item), Ordering::Relaxed);
        if self.handled.fetch_add(1, Ordering::Relaxed) + 1 == *ITEMS {
            self.all.notify_one();
        }
    }
}

/// Enqueue-to-start latencies, one slot per item, in nanoseconds.
struct Latencies {
    epoch: Instant,
    next: AtomicUsize,
    samples: Vec<AtomicU64>,
}

impl Latencies {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            epoch: Instant::now(),
            next: AtomicUsize::new(0),
            samples: (0..*ITEMS).map(|_| AtomicU64::new(0)).collect(),
        })
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn record(&self, enqueued: u64) {
        let latency = self.now().saturating_sub(enqueued);
        let slot = self.next.fetch_add(1, Ordering::Relaxed);
        self.samples[slot].store(latency, Ordering::Relaxed);
    }

    /// (p50, p99) in nanoseconds.
    fn percentiles(&self) -> (u64, u64) {
        let mut all: Vec<u64> = self
            .samples
            .iter()
            .map(|sample| sample.load(Ordering::Relaxed))
            .collect();
        all.sort_unstable();
        let at = |fraction: f64| {
            #[allow(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                clippy::cast_precision_loss,
                reason = "an index into a million samples"
            )]
            let index = ((all.len() - 1) as f64 * fraction) as usize;
            all[index]
        };
        (at(0.50), at(0.99))
    }
}

/// What one run measured.
#[derive(Clone, Copy)]
struct Run {
    elapsed: Duration,
    p50: u64,
    p99: u64,
}

/// Which work the items carry.
#[derive(Clone, Copy, PartialEq)]
enum Case {
    Throughput,
    Latency,
}

async fn start_host(builder: hosted::host::HostBuilder) -> RunningHost {
    builder
        .build()
        .expect("a valid host")
        .start()
        .await
        .expect("the host starts")
}

/// Sends `ITEMS` items from `producers` tasks through `send`, and waits for the last one to be
/// handled.
async fn drive<S, Fut>(producers: u64, done: &Done, send: S) -> Duration
where
    S: Fn(u64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let began = Instant::now();
    let per_producer = *ITEMS / producers;
    let tasks: Vec<_> = (0..producers)
        .map(|producer| {
            let send = send.clone();
            tokio::spawn(async move {
                for n in 0..per_producer {
                    send(producer * per_producer + n).await;
                }
            })
        })
        .collect();
    let finished = done.all.notified();
    tokio::pin!(finished);
    finished.as_mut().enable();
    if done.handled.load(Ordering::Relaxed) < *ITEMS {
        finished.await;
    }
    let elapsed = began.elapsed();
    for task in tasks {
        task.await.expect("a producer");
    }
    elapsed
}

/// What the attribute-registered queue reports to: statics, since its handler is a plain
/// function. Reset before each run.
static TYPED_DONE: LazyLock<Arc<Done>> = LazyLock::new(Done::new);
static TYPED_LATENCIES: LazyLock<Arc<Latencies>> = LazyLock::new(Latencies::new);
static MEASURE_LATENCY: AtomicBool = AtomicBool::new(false);

#[hosted::queued(capacity = 100)]
async fn typed(item: u64) {
    if MEASURE_LATENCY.load(Ordering::Relaxed) {
        TYPED_LATENCIES.record(item);
    }
    TYPED_DONE.handle(item);
}

async fn typed_hosted(producers: u64, case: Case, variant: &str) -> Run {
    hosted_tests::bench::bypass(variant);
    let (done, latencies) = (&*TYPED_DONE, &*TYPED_LATENCIES);
    done.handled.store(0, Ordering::Relaxed);
    latencies.next.store(0, Ordering::Relaxed);
    MEASURE_LATENCY.store(case == Case::Latency, Ordering::Relaxed);
    let host = start_host(Host::builder().discover()).await;
    let queue: Queue<u64> = Queue::clone(&*host.get::<Queue<u64>>().await.expect("the queue"));
    let elapsed = drive(producers, done, {
        let latencies = Arc::clone(latencies);
        move |n| {
            let queue = Queue::clone(&queue);
            let item = if case == Case::Latency {
                latencies.now()
            } else {
                n
            };
            async move { queue.send(item).await.expect("accepted") }
        }
    })
    .await;
    assert!(host.stop().await.is_success());
    let (p50, p99) = if case == Case::Latency {
        latencies.percentiles()
    } else {
        (0, 0)
    };
    Run { elapsed, p50, p99 }
}

async fn typed_by_hand(producers: u64, case: Case) -> Run {
    let done = Done::new();
    let latencies = Latencies::new();
    let (sender, mut receiver) = mpsc::channel::<u64>(CAPACITY);
    let worker = tokio::spawn({
        let (done, latencies) = (Arc::clone(&done), Arc::clone(&latencies));
        async move {
            while let Some(item) = receiver.recv().await {
                if case == Case::Latency {
                    latencies.record(item);
                }
                done.handle(item);
            }
        }
    });
    let elapsed = drive(producers, &done, {
        let latencies = Arc::clone(&latencies);
        move |n| {
            let sender = sender.clone();
            let item = if case == Case::Latency {
                latencies.now()
            } else {
                n
            };
            async move { sender.send(item).await.expect("accepted") }
        }
    })
    .await;
    worker.await.expect("the worker");
    let (p50, p99) = if case == Case::Latency {
        latencies.percentiles()
    } else {
        (0, 0)
    };
    Run { elapsed, p50, p99 }
}

async fn closures_hosted(producers: u64, variant: &str) -> Run {
    hosted_tests::bench::bypass(variant);
    let done = Done::new();
    let host = start_host(Host::builder().add_service(ServiceDescriptor::work_queue(
        "bench",
        QueueOptions::new(CAPACITY),
    )))
    .await;
    let queue: WorkQueue = Queue::clone(&*host.get::<WorkQueue>().await.expect("the queue"));
    let elapsed = drive(producers, &done, {
        let done = Arc::clone(&done);
        move |n| {
            let (queue, done) = (Queue::clone(&queue), Arc::clone(&done));
            async move {
                queue
                    .enqueue(move |stop: CancellationToken| async move {
                        black_box(&stop);
                        done.handle(n);
                    })
                    .await
                    .expect("accepted");
            }
        }
    })
    .await;
    assert!(host.stop().await.is_success());
    Run {
        elapsed,
        p50: 0,
        p99: 0,
    }
}

type Job = Box<dyn FnOnce(CancellationToken) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

async fn closures_by_hand(producers: u64) -> Run {
    let done = Done::new();
    let (sender, mut receiver) = mpsc::channel::<Job>(CAPACITY);
    let stop = CancellationToken::new();
    let worker = tokio::spawn(async move {
        while let Some(job) = receiver.recv().await {
            job(stop.clone()).await;
        }
    });
    let elapsed = drive(producers, &done, {
        let done = Arc::clone(&done);
        move |n| {
            let (sender, done) = (sender.clone(), Arc::clone(&done));
            async move {
                let job: Job = Box::new(move |stop| {
                    Box::pin(async move {
                        black_box(&stop);
                        done.handle(n);
                    })
                });
                sender
                    .send(job)
                    .await
                    .unwrap_or_else(|_| panic!("accepted"));
            }
        }
    })
    .await;
    worker.await.expect("the worker");
    Run {
        elapsed,
        p50: 0,
        p99: 0,
    }
}

/// The median, lowest and highest.
fn summary(mut values: Vec<f64>) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    (
        values[values.len() / 2],
        values[0],
        values[values.len() - 1],
    )
}

/// Runs the three variants `ROUNDS` times, alternating, and prints the medians.
fn compare<H, P, B, HF, PF, BF>(
    runtime: &tokio::runtime::Runtime,
    label: &str,
    hosted: H,
    bypassed: P,
    by_hand: B,
) where
    H: Fn() -> HF,
    P: Fn() -> PF,
    B: Fn() -> BF,
    HF: Future<Output = Run>,
    PF: Future<Output = Run>,
    BF: Future<Output = Run>,
{
    // `cargo bench --bench queue -- <word>` runs only the cases whose label contains it.
    if let Some(filter) = std::env::args().skip(1).find(|arg| !arg.starts_with('-'))
        && !label.contains(&filter)
    {
        return;
    }
    let (mut ours, mut bare, mut theirs) = (Vec::new(), Vec::new(), Vec::new());
    // One warm-up round each.
    runtime.block_on(hosted());
    runtime.block_on(bypassed());
    runtime.block_on(by_hand());
    for round in 0..ROUNDS {
        // The order turns each round, so no variant always follows the same one.
        for variant in 0..3 {
            match (round + variant) % 3 {
                0 => ours.push(runtime.block_on(hosted())),
                1 => bare.push(runtime.block_on(bypassed())),
                _ => theirs.push(runtime.block_on(by_hand())),
            }
        }
    }
    #[allow(
        clippy::cast_precision_loss,
        reason = "a million items per second is far below f64 precision"
    )]
    let rate = |runs: &[Run]| {
        summary(
            runs.iter()
                .map(|run| *ITEMS as f64 / run.elapsed.as_secs_f64() / 1e6)
                .collect(),
        )
    };
    let (ours_rate, ours_low, ours_high) = rate(&ours);
    let (bare_rate, bare_low, bare_high) = rate(&bare);
    let (theirs_rate, theirs_low, theirs_high) = rate(&theirs);
    println!(
        "{label:<38} hosted {ours_rate:>6.2} M items/s   by hand {theirs_rate:>6.2} M items/s   ratio {:.2}x   (hosted {ours_low:.2}-{ours_high:.2}, by hand {theirs_low:.2}-{theirs_high:.2})",
        ours_rate / theirs_rate
    );
    println!(
        "{:<38} hooks bypassed {bare_rate:>6.2} M items/s ({bare_low:.2}-{bare_high:.2})   with hooks / bypassed {:.3}x",
        "",
        ours_rate / bare_rate
    );
    if ours.iter().any(|run| run.p99 > 0) {
        #[allow(clippy::cast_precision_loss, reason = "nanoseconds")]
        let pick = |runs: &[Run], p: fn(&Run) -> u64| {
            summary(runs.iter().map(|run| p(run) as f64).collect()).0
        };
        let (ours_p50, theirs_p50) = (pick(&ours, |run| run.p50), pick(&theirs, |run| run.p50));
        let (ours_p99, theirs_p99) = (pick(&ours, |run| run.p99), pick(&theirs, |run| run.p99));
        println!(
            "{:<38} hosted p50 {:>7.1} us p99 {:>7.1} us   by hand p50 {:>7.1} us p99 {:>7.1} us   p50 ratio {:.2}x   p99 ratio {:.2}x",
            "  enqueue-to-start latency",
            ours_p50 / 1e3,
            ours_p99 / 1e3,
            theirs_p50 / 1e3,
            theirs_p99 / 1e3,
            ours_p50 / theirs_p50,
            ours_p99 / theirs_p99
        );
    }
}

/// One case, once, for callgrind (`QUEUE_BENCH_ONLY`).
fn only(runtime: &tokio::runtime::Runtime, spec: &str) {
    let (case, variant) = spec
        .split_once(':')
        .expect("QUEUE_BENCH_ONLY=<case>:<variant>");
    let (work, producers) = match case {
        "typed1" => (false, 1),
        "typed4" => (false, 4),
        "work1" => (true, 1),
        "work4" => (true, 4),
        other => panic!("unknown case {other}"),
    };
    runtime.block_on(async {
        match (work, variant) {
            (false, "hand") => typed_by_hand(producers, Case::Throughput).await,
            (false, hosted) => typed_hosted(producers, Case::Throughput, hosted).await,
            (true, "hand") => closures_by_hand(producers).await,
            (true, hosted) => closures_hosted(producers, hosted).await,
        }
    });
}

fn main() {
    let runtime = if std::env::var("QUEUE_BENCH_THREADS").as_deref() == Ok("1") {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
    }
    .expect("a runtime");
    if let Ok(spec) = std::env::var("QUEUE_BENCH_ONLY") {
        only(&runtime, &spec);
        return;
    }
    println!(
        "{} items, capacity {CAPACITY}, one worker, median of {ROUNDS} rounds (min-max), 2 runtime threads",
        *ITEMS
    );
    for producers in [1, 4] {
        compare(
            &runtime,
            &format!("typed u64, {producers} producer(s)"),
            || typed_hosted(producers, Case::Throughput, "hosted"),
            || typed_hosted(producers, Case::Throughput, "bypassed"),
            || typed_by_hand(producers, Case::Throughput),
        );
        compare(
            &runtime,
            &format!("typed u64 + latency, {producers} producer(s)"),
            || typed_hosted(producers, Case::Latency, "hosted"),
            || typed_hosted(producers, Case::Latency, "bypassed"),
            || typed_by_hand(producers, Case::Latency),
        );
        compare(
            &runtime,
            &format!("work items, {producers} producer(s)"),
            || closures_hosted(producers, "hosted"),
            || closures_hosted(producers, "bypassed"),
            || closures_by_hand(producers),
        );
    }
}
