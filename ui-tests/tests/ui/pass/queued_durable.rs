//! A durable queue: its item needs `serde` only (no `Clone`, no `Debug`), and its handler takes
//! its job and transaction like any injected value.

#[derive(serde::Serialize, serde::Deserialize)]
struct Reply(u32);

#[hosted::queued(durable, workers = 4, retries = 3, retry_backoff = "1s", timeout = "30s")]
async fn handle(reply: Reply, job: hosted::durable::Job, _tx: hosted::durable::JobTransaction) {
    let _ = (reply.0, job.id(), job.attempt());
}

#[hosted::queued(durable = true)]
async fn other(reply: (u32, String)) -> anyhow::Result<()> {
    let _ = reply;
    Ok(())
}

#[hosted::queued(durable = false)]
async fn in_memory(reply: u64) {
    let _ = reply;
}

fn main() {}
