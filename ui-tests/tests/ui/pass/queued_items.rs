//! Item types that need no `Clone` or `Debug` with the right dead letter, handles injected
//! into fields and parameters, and the generic work-item queue through the attribute.

use hosted::{BoxError, CancellationToken, HostedService, Queue};
use hosted::queue::{DeadLetter, WorkItem};

/// Not `Debug`: a hook receives failed items.
#[derive(Clone)]
struct Secret(String);

#[hosted::queued(capacity = 1, retries = 2, dead_letter = park)]
async fn reveal(secret: Secret) -> Result<(), BoxError> {
    let _ = secret.0;
    Ok(())
}

async fn park(letter: DeadLetter<Secret>) -> anyhow::Result<()> {
    let _ = (letter.seq(), letter.attempts(), letter.error().to_string());
    let _ = letter.into_item().0;
    Ok(())
}

/// Neither `Clone` nor `Debug`: failures are logged without the item.
struct Reply(Box<dyn FnOnce(u32) + Send + Sync>);

#[hosted::queued(dead_letter = "log_without_item", workers = 4)]
async fn answer(reply: Reply) {
    (reply.0)(42);
}

#[hosted::queued(capacity = 100, dead_letter = "log_without_item")]
async fn background_tasks(work: WorkItem, stop: CancellationToken) -> Result<(), BoxError> {
    work.run(stop).await
}

/// A service holding handles.
#[hosted::hosted_service(after = reveal)]
struct Front {
    secrets: Queue<Secret>,
    replies: Queue<Reply>,
}

impl HostedService for Front {}

#[hosted::hosted_service]
async fn monitor(tasks: Queue<WorkItem>, front: std::sync::Arc<Front>) -> anyhow::Result<()> {
    tasks.enqueue(|_stop| async {}).await?;
    front
        .secrets
        .try_send(Secret(String::new()))
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    front
        .replies
        .send(Reply(Box::new(|_| {})))
        .await
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    Ok(())
}

fn main() {}
