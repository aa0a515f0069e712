//! Every form of `#[timed]` expands to code that compiles clean under the strictest lints a user
//! may set (the forms of the other attributes are in `lints.rs`). `cargo clippy --all-targets
//! -- -D warnings` in CI checks the Clippy part.
#![deny(
    warnings,
    unused_qualifications,
    clippy::pedantic,
    missing_docs,
    unreachable_pub,
    rust_2018_idioms
)]

use hosted::service::ServiceInfo;
use hosted::{ApplicationLifetime, BoxError, CancellationToken, Tick};

/// A public timer with every argument of a fixed rate.
///
/// # Errors
/// Never; the signature shows an `anyhow` result is accepted.
#[hosted::timed(
    every = "1m30s",
    initial_delay = "250ms",
    jitter = "1s",
    overlap = "concurrent",
    max_concurrent = 8,
    missed = "burst",
    name = "lints::everything",
    order = -3,
    after = [quiet, "lints::delayed"],
    on_failure = "restart",
    max_restarts = 10,
    backoff = "250ms",
    max_backoff = "1m30s",
    crate = "::hosted"
)]
pub async fn everything(
    tick: Tick,
    stop: CancellationToken,
    lifetime: ApplicationLifetime,
    info: ServiceInfo,
) -> anyhow::Result<()> {
    let _ = (tick.number(), stop, lifetime, info);
    Ok(())
}

/// No parameters, no return type.
#[hosted::timed(
    every = "5s",
    overlap = "skip",
    missed = "delay",
    on_failure = "ignore"
)]
async fn quiet() {}

/// A fixed delay, and pattern parameters.
#[hosted::timed(delay = "500ms", name = "lints::delayed", on_failure = "stop")]
pub(crate) async fn delayed(_: Tick, mut stop: CancellationToken) -> Result<(), BoxError> {
    stop = stop.child_token();
    let _ = stop.is_cancelled();
    Ok(())
}

/// A cron schedule in a time zone.
#[hosted::timed(cron = "0 0 9 * * MON-FRI", time_zone = "Europe/Paris", jitter = "30s")]
async fn weekday_mornings(tick: Tick) {
    let _ = tick.lateness();
}

#[test]
fn the_expansions_compile_under_strict_lints() {
    let host = hosted::Host::builder()
        .discover()
        .build()
        .expect("a valid host");
    assert_eq!(host.services().count(), 4);
}
