//! Seed 002's timed hosted service: every 5 seconds, it counts its executions with an atomic
//! counter and logs "Timed Hosted Service is working. Count: N".
//!
//! .NET writes a `System.Threading.Timer`, starts it in `StartAsync`, changes it in `StopAsync`
//! and disposes it; its callbacks may overlap and nothing says what happens when one is late.
//! Here the schedule is an attribute, and its policies are declared: a tick due while the
//! previous one still runs waits and coalesces (the default), a late timer runs once and keeps
//! its schedule, and no tick starts once the host stops.
//!
//! ```sh
//! cargo run -p hosted-examples --bin timed_hosted_service
//! ```
//!
//! The period is a setting like every timer argument: `--services.TimedHostedService.every=1s`
//! (or `every = "1s"` under `[services.TimedHostedService]` in `hosted.toml`) shortens it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use hosted::Tick;

/// The execution count, shared by every tick (`Interlocked.Increment` in the seed).
#[hosted::singleton]
struct ExecutionCount(#[hosted(default)] AtomicU64);

/// The work: the tick's number is the count of times the schedule came due, and the counter
/// the count of executions.
#[hosted::timed(every = "5s", name = "TimedHostedService")]
async fn do_work(count: Arc<ExecutionCount>, tick: Tick) {
    let count = count.0.fetch_add(1, Ordering::SeqCst) + 1;
    tracing::info!(
        lateness = ?tick.lateness(),
        "Timed Hosted Service is working. Count: {count}"
    );
}

fn main() {
    hosted::run!();
}
