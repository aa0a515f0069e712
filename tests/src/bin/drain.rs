//! A producer pushing items through a `#[queued]` service until SIGTERM, for the drain
//! invariant: every item the queue accepted ends processed, dead-lettered, dropped or left
//! undone, and the final "queue stopped" line says so alone.
//!
//! Besides the log, the binary keeps its own count in the file `DRAIN_JOURNAL` names, one line
//! per event: `accepted N` when a send returned `Ok`, `handed_back N` when it returned the item,
//! `processed N` as the handler's last act, `dead N` from the dead-letter hook. Item `N` takes
//! `(N × 7919 + DRAIN_SEED) mod DRAIN_MAX_MS` milliseconds; one in 17 fails for good and one in
//! 23 takes 3 s, longer than any budget the test gives, so it is left undone. Workers, capacity,
//! full mode and budget come from configuration arguments.

use std::io::Write as _;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use hosted::queue::DeadLetter;
use hosted::{CancellationToken, Queue};

fn journal(line: &str) {
    static FILE: OnceLock<Mutex<std::fs::File>> = OnceLock::new();
    let file = FILE.get_or_init(|| {
        let path = std::env::var("DRAIN_JOURNAL").expect("DRAIN_JOURNAL names the journal file");
        Mutex::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .expect("the journal opens"),
        )
    });
    let mut file = file
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    file.write_all(format!("{line}\n").as_bytes())
        .expect("the journal is writable");
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

#[hosted::queued(capacity = 16, workers = 2, dead_letter = dead)]
async fn work(item: u64) -> Result<(), String> {
    let max = env_u64("DRAIN_MAX_MS", 20).max(1);
    let millis = if item.is_multiple_of(23) {
        3_000
    } else {
        (item * 7919 + env_u64("DRAIN_SEED", 0)) % max
    };
    tokio::time::sleep(Duration::from_millis(millis)).await;
    if item.is_multiple_of(17) {
        return Err(format!("item {item} fails for good"));
    }
    journal(&format!("processed {item}"));
    Ok(())
}

async fn dead(letter: DeadLetter<u64>) -> Result<(), String> {
    journal(&format!("dead {}", letter.item()));
    Ok(())
}

/// Sends items as fast as the queue takes them, until its stop token fires.
#[hosted::hosted_service(after = work)]
async fn producer(queue: Queue<u64>, stop: CancellationToken) {
    tracing::info!("producing");
    for item in 1_u64.. {
        tokio::select! {
            biased;
            () = stop.cancelled() => break,
            sent = queue.send(item) => match sent {
                Ok(()) => journal(&format!("accepted {item}")),
                Err(error) => journal(&format!("handed_back {}", error.into_item())),
            },
        }
        if item.is_multiple_of(64) {
            // Paced, so a drop mode does not flood the journal.
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

fn main() {
    hosted::run!();
}
