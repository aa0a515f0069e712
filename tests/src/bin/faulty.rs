//! One service per place a panic can happen, each panicking once, the first time, when
//! `FAULT` names it: `start` (a `start`), `body` (a body, after every service started), `tick` (a
//! timed function), `item` (a queued function) and `dispose` (the `Dispose` of a value scoped to
//! a tick). Every service's failure policy comes from configuration. `ready` on stdout once
//! started.

use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use hosted::{
    ApplicationLifetime, BoxError, CancellationToken, Dispose, HostedService, Queue, ScopeExit,
    ServiceContext,
};

/// Whether `site` is the one to panic, and has not yet.
fn fault(site: &str) -> bool {
    static DONE: AtomicBool = AtomicBool::new(false);
    std::env::var("FAULT").is_ok_and(|fault| fault == site) && !DONE.swap(true, Ordering::SeqCst)
}

#[hosted::hosted_service]
struct Starter;

impl HostedService for Starter {
    async fn start(&self, _cx: &ServiceContext) -> Result<(), BoxError> {
        assert!(!fault("start"), "start panicked");
        Ok(())
    }
}

#[hosted::hosted_service]
async fn body(lifetime: ApplicationLifetime, stop: CancellationToken) {
    lifetime.started().await;
    assert!(!fault("body"), "body panicked");
    stop.cancelled().await;
}

#[hosted::timed(every = "20ms")]
async fn ticker(tick: hosted::Tick) {
    assert!(!fault("tick"), "tick panicked");
    tracing::info!(tick = tick.number(), "ticked");
}

#[derive(Debug, Clone)]
struct Job(u32);

#[hosted::queued(retries = 0)]
async fn worker(job: Job) {
    assert!(!fault("item"), "item {} panicked", job.0);
}

#[hosted::hosted_service(after = worker)]
async fn producer(jobs: Queue<Job>, lifetime: ApplicationLifetime) -> anyhow::Result<()> {
    lifetime.started().await;
    for number in 1..=3 {
        jobs.send(Job(number))
            .await
            .map_err(|error| anyhow::anyhow!("{error}"))?;
    }
    Ok(())
}

struct Connection;

#[hosted::scoped]
async fn connection() -> anyhow::Result<Connection> {
    Ok(Connection)
}

impl Dispose for Connection {
    async fn dispose(&self, _exit: ScopeExit) {
        assert!(!fault("dispose"), "dispose panicked");
    }
}

#[hosted::timed(every = "20ms")]
async fn user(connection: Arc<Connection>, tick: hosted::Tick) {
    let _ = connection;
    tracing::info!(tick = tick.number(), "ticked");
}

#[hosted::hosted_service]
async fn announcer(lifetime: ApplicationLifetime) {
    lifetime.started().await;
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "ready").and_then(|()| stdout.flush());
}

fn main() {
    hosted::run!();
}
