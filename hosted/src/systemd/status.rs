//! The `STATUS=` line: what the host knows of its services now.

use std::fmt::Write as _;
use std::time::Duration;

use tokio::time::Instant;

use crate::host::LifetimeContext;

/// `3/3 services running; 2 queue items in flight; next tick in 4s (app::report)`, and
/// `stopping: ...` once the host stops.
pub(super) fn line(cx: &LifetimeContext) -> String {
    let services = cx.services();
    let running = services
        .iter()
        .filter(|service| service.activity().is_running())
        .count();
    let mut line = String::new();
    // The stop request comes first: the stopping event may fire a moment after it.
    if cx.lifetime().stop_requested_token().is_cancelled() {
        line.push_str("stopping: ");
    }
    let _ = write!(line, "{running}/{} services running", services.len());
    let in_flight: Option<u64> = services
        .iter()
        .filter_map(|service| service.activity().in_flight())
        .reduce(|total, count| total + count);
    if let Some(in_flight) = in_flight {
        let _ = write!(
            line,
            "; {in_flight} queue item{} in flight",
            if in_flight == 1 { "" } else { "s" }
        );
    }
    let now = Instant::now();
    let next = services
        .iter()
        .filter(|service| service.activity().is_running())
        .filter_map(|service| Some((service.activity().next_due()?, service.name())))
        .min();
    if let Some((due, name)) = next {
        let wait = due.saturating_duration_since(now);
        let _ = write!(line, "; next tick in {} ({name})", whole_seconds(wait));
    }
    let stuck: Vec<&str> = services
        .iter()
        .filter(|service| service.activity().stuck().is_some())
        .map(crate::service::ServiceInfo::name)
        .collect();
    if !stuck.is_empty() {
        let _ = write!(line, "; stuck: {}", stuck.join(", "));
    }
    line
}

/// A wait rounded up to whole seconds, so the line changes once a second at most.
fn whole_seconds(wait: Duration) -> String {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    format!("{seconds}s")
}
