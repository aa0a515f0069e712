//! A timer that sends what it sees to a queue, for the trace test: each tick (within its run
//! span) sends its number, and the queued item's run logs it. Run with
//! `--host.otel_endpoint=http://…` to export the spans.

use hosted::{Queue, Tick};

#[derive(Debug, Clone)]
struct Seen(u64);

#[hosted::timed(every = "100ms")]
async fn watch(tick: Tick, seen: Queue<Seen>) -> Result<(), hosted::BoxError> {
    if tick.number() <= 2 {
        seen.send(Seen(tick.number())).await?;
        tracing::info!("sent");
    }
    Ok(())
}

#[hosted::queued]
async fn record(seen: Seen) {
    tracing::info!(number = seen.0, "recorded");
}

fn main() {
    hosted::run!();
}
