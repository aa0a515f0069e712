//! The services of `{{project-name}}`: one running for the life of the process, one timed, one
//! queued. `hosted::run!()` in `main.rs` finds them; `cargo run -- --list` lists them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hosted::{CancellationToken, Queue, Tick};

/// A unit of work for the queue.
#[derive(Clone, Debug)]
pub struct Job {
    /// The tick that scheduled it.
    pub id: u64,
}

/// Jobs processed so far.
pub static PROCESSED: AtomicU64 = AtomicU64::new(0);

/// Runs from start to stop, like a .NET `BackgroundService`: ends when the host stops.
#[hosted::hosted_service]
async fn worker(stop: CancellationToken) {
    tracing::info!("worker running");
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(Duration::from_secs(60)) => {
                tracing::info!(processed = PROCESSED.load(Ordering::Relaxed), "still working");
            }
        }
    }
    tracing::info!("worker stopping");
}

/// Every 5 seconds (`every` in `hosted.toml`), schedules a job.
#[hosted::timed(every = "5s")]
async fn schedule(tick: Tick, jobs: Queue<Job>) -> Result<(), hosted::BoxError> {
    jobs.send(Job { id: tick.number() }).await?;
    Ok(())
}

/// Processes the jobs; at the stop, those accepted are drained within the shutdown budget.
#[hosted::queued(capacity = 100)]
async fn process(job: Job) {
    PROCESSED.fetch_add(1, Ordering::Relaxed);
    tracing::info!(job = job.id, "processed");
}
