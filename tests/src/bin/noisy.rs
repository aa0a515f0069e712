//! A host that logs all the time, driven through its standard input, for the tests of what a
//! broken standard error must not do: `ready` on stdout once started, then one command a line —
//! `panic` (the `control` service panics; its policy stops the host), `spawn-panic` (a task it
//! spawned panics, which no service catches), `stop` (a stop request from inside). With
//! `NOISY_LINGER` set, `lingerer` takes a minute to stop and says `lingering` on stdout first, so
//! a second signal meets a stop under way. With `NOISY_FLOOD` set, `flood` logs kilobyte lines
//! as fast as it can, filling a pipe nobody reads within milliseconds.

use std::io::{BufRead as _, Write as _};

use hosted::{ApplicationLifetime, CancellationToken};

#[hosted::timed(every = "10ms")]
async fn chatter(tick: hosted::Tick) {
    tracing::info!(tick = tick.number(), "chatter");
}

#[hosted::hosted_service]
async fn control(lifetime: ApplicationLifetime, stop: CancellationToken) {
    let (commands, mut received) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if commands.send(line).is_err() {
                break;
            }
        }
    });
    lifetime.started().await;
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "ready").and_then(|()| stdout.flush());
    loop {
        let command = tokio::select! {
            () = stop.cancelled() => return,
            command = received.recv() => command,
        };
        match command.as_deref() {
            Some("panic") => panic!("asked to panic"),
            Some("spawn-panic") => {
                tokio::spawn(async { panic!("a spawned task panicked") });
            }
            Some("stop") => lifetime.stop_application(),
            Some(other) => tracing::warn!("unknown command {other:?}"),
            None => {
                stop.cancelled().await;
                return;
            }
        }
    }
}

#[hosted::hosted_service]
async fn lingerer(stop: CancellationToken) {
    stop.cancelled().await;
    if std::env::var_os("NOISY_LINGER").is_some() {
        let mut stdout = std::io::stdout();
        let _ = writeln!(stdout, "lingering").and_then(|()| stdout.flush());
        tokio::time::sleep(std::time::Duration::from_mins(1)).await;
    }
}

fn main() {
    hosted::run!(|host| host.shutdown_timeout(std::time::Duration::from_mins(2)));
}

#[hosted::hosted_service]
async fn flood(stop: CancellationToken) {
    if std::env::var_os("NOISY_FLOOD").is_none() {
        stop.cancelled().await;
        return;
    }
    let line = "x".repeat(1024);
    while !stop.is_cancelled() {
        tracing::info!(%line, "flood");
        tokio::task::yield_now().await;
    }
}
