//! Once-per-cluster timers: `every` or `cron`, with or without a back-fill window.

#[hosted::timed(every = "5s", once_per_cluster)]
async fn confirm(tick: hosted::Tick) {
    let _ = tick.number();
}

#[hosted::timed(cron = "0 */5 * * * *", once_per_cluster = true, backfill = "1h")]
async fn report() -> anyhow::Result<()> {
    Ok(())
}

fn main() {}
