//! Seed 002's queued background tasks: a bounded queue of work items (capacity 100, waiting
//! when full), a queued service that runs them one by one, and a monitor loop that enqueues a
//! work item each time the user types `w` (then Enter).
//!
//! Each work item runs three 5-second delays, logging "is running 1/3", "2/3", "3/3", then "is
//! complete"; if the host stops meanwhile, it logs "was cancelled". Unlike .NET, stopping drains
//! the queue first: accepted items keep running while the shutdown budget lasts, and the
//! queue logs how many were processed and how many were left undone.
//!
//! ```sh
//! cargo run -p hosted-examples --bin queued_work
//! ```
//!
//! Configuration: the seed's flat `QueueCapacity` key sets the queue's capacity (default 100),
//! from `hosted.toml`, `HOSTED_QUEUECAPACITY=10` or `--QueueCapacity=10`; it is an alias of
//! `services.QueuedHostedService.capacity`, which works too, as do the queue's other settings
//! (`workers`, `full_mode`, ...). `QUEUED_WORK_STEP_MS` replaces the 5 s delays (the example's
//! test shortens them).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hosted::queue::QueueOptions;
use hosted::registry::ServiceDescriptor;
use hosted::{CancellationToken, WorkQueue};

/// The queued service's name, as `--list` and the logs show it.
const QUEUE: &str = "QueuedHostedService";

/// The length of each of a work item's three delays.
fn step() -> Duration {
    std::env::var("QUEUED_WORK_STEP_MS")
        .ok()
        .and_then(|text| text.parse().ok())
        .map_or(Duration::from_secs(5), Duration::from_millis)
}

/// Why a work item stopped before its end: the queue counts it as left undone.
#[derive(Debug)]
struct Cancelled(u32);

impl std::fmt::Display for Cancelled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cancelled after {}/3 steps", self.0)
    }
}

impl std::error::Error for Cancelled {}

/// The work item of the seed: three delays, cut short when the host gives up on it.
async fn build_work_item(
    id: u64,
    delay: Duration,
    stop: CancellationToken,
) -> Result<(), Cancelled> {
    tracing::info!("Queued Background Task {id} is starting.");
    let mut delay_loop = 0;
    while !stop.is_cancelled() && delay_loop < 3 {
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = stop.cancelled() => {}
        }
        delay_loop += 1;
        tracing::info!("Queued Background Task {id} is running. {delay_loop}/3");
    }
    if delay_loop == 3 && !stop.is_cancelled() {
        tracing::info!("Queued Background Task {id} is complete.");
        Ok(())
    } else {
        tracing::info!("Queued Background Task {id} was cancelled.");
        Err(Cancelled(delay_loop))
    }
}

/// The monitor loop: reads lines from the terminal on a thread of its own (reading a terminal
/// blocks), and enqueues a work item for each `w`. It starts after the queue and stops before it.
#[hosted::hosted_service(after = "QueuedHostedService")]
async fn monitor_loop(queue: WorkQueue, stop: CancellationToken) {
    tracing::info!(
        "MonitorAsync Loop is starting. Type `w` and Enter to add a work item to the background queue."
    );
    let runtime = tokio::runtime::Handle::current();
    let delay = step();
    std::thread::spawn(move || {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            if !line.trim().eq_ignore_ascii_case("w") {
                continue;
            }
            let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
            let queued =
                runtime.block_on(queue.enqueue(move |stop| build_work_item(id, delay, stop)));
            match queued {
                Ok(()) => tracing::info!("work item {id} queued"),
                Err(error) => {
                    tracing::warn!(%error, "work item {id} was not queued");
                    break;
                }
            }
        }
    });
    stop.cancelled().await;
}

fn main() {
    hosted::run!(|host| host
        .add_service(ServiceDescriptor::work_queue(QUEUE, QueueOptions::new(100)))
        .config_alias("QueueCapacity", "services.QueuedHostedService.capacity"));
}
