#![deny(warnings)]

use hosted::{CancellationToken, Tick};

#[hosted::timed(every = "250ms")]
async fn fast() {}

#[hosted::timed(delay = "1m30s", initial_delay = "0s", name = "slow", order = 3)]
async fn slow(tick: Tick, stop: CancellationToken) -> anyhow::Result<()> {
    let _ = (tick.missed(), stop.is_cancelled());
    Ok(())
}

#[hosted::timed(
    cron = "@hourly",
    overlap = "concurrent",
    max_concurrent = 2,
    after = [fast, "slow"],
    on_failure = "restart",
    backoff = "1s",
)]
async fn hourly() {}

#[hosted::timed(cron = "0 0 9 ? JAN-DEC MON#1", overlap = "skip", jitter = "5m")]
async fn first_monday() {}

#[hosted::timed(every = "1h", missed = "burst", overlap = "coalesce", jitter = "59m")]
async fn catch_up() {}

fn main() {}
