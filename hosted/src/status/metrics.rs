//! The status through the `metrics` facade (feature `metrics`).
//!
//! Two histograms are recorded as runs happen — each run's duration, each tick's lateness —
//! through handles taken when the host is built: with no recorder installed then, they are
//! no-ops. Everything else (states, counts, depths) is published from a
//! [`snapshot`](super::HostStatus::snapshot) by [`publish`]: the Prometheus exporter does it at
//! each scrape, and [`HostStatus::publish_every`](super::HostStatus::publish_every) on a period,
//! for other recorders. The names are listed in [`docs::metrics`](crate::docs::metrics).

use ::metrics::{Histogram, counter, gauge, histogram};

use super::{ServiceState, StatusSnapshot};

/// Nanoseconds, recorded as seconds: converted only inside a handle that records (with no
/// recorder installed, the handle is a no-op and the value is never converted).
struct Seconds(u64);

impl ::metrics::IntoF64 for Seconds {
    #[allow(
        clippy::cast_precision_loss,
        reason = "seconds as `f64`, as every recorder takes them"
    )]
    fn into_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }
}

/// A service's run durations.
pub(crate) struct ServiceMetrics {
    run_duration: Histogram,
}

impl ServiceMetrics {
    pub(crate) fn new(service: &str) -> Self {
        Self {
            run_duration: histogram!("hosted_service_run_duration_seconds", "service" => service.to_owned()),
        }
    }

    pub(crate) fn run_ended(&self, nanos: u64, _succeeded: bool) {
        self.run_duration.record(Seconds(nanos));
    }
}

/// A timer's lateness.
pub(crate) struct TimerMetrics {
    lateness: Histogram,
}

impl TimerMetrics {
    pub(crate) fn new(service: &str) -> Self {
        Self {
            lateness: histogram!("hosted_timer_lateness_seconds", "service" => service.to_owned()),
        }
    }

    pub(crate) fn tick_started(&self, lateness_nanos: u64, _missed: u64) {
        self.lateness.record(Seconds(lateness_nanos));
    }
}

fn unix_seconds(at: Option<std::time::SystemTime>) -> f64 {
    at.and_then(|at| at.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0.0, |since| since.as_secs_f64())
}

#[allow(
    clippy::cast_precision_loss,
    reason = "gauges are `f64`; counts past 2^53 lose their last digits, as in every recorder"
)]
fn float(value: u64) -> f64 {
    value as f64
}

/// Publishes a snapshot through the installed recorder: counters as absolute values, the rest as
/// gauges. Cheap enough for every scrape; a no-op without a recorder.
pub fn publish(snapshot: &StatusSnapshot) {
    gauge!("hosted_uptime_seconds").set(snapshot.uptime.as_secs_f64());
    for service in &snapshot.services {
        let name = service.name.clone();
        for state in ServiceState::all() {
            gauge!("hosted_service_state", "service" => name.clone(), "state" => state.as_str())
                .set(if *state == service.state { 1.0 } else { 0.0 });
        }
        counter!("hosted_service_runs_total", "service" => name.clone()).absolute(service.runs);
        counter!("hosted_service_failures_total", "service" => name.clone())
            .absolute(service.failures);
        counter!("hosted_service_restarts_total", "service" => name.clone())
            .absolute(service.restarts);
        if let Some(timer) = &service.timer {
            counter!("hosted_timer_ticks_total", "service" => name.clone()).absolute(timer.ticks);
            counter!("hosted_timer_missed_ticks_total", "service" => name.clone())
                .absolute(timer.missed);
            counter!("hosted_timer_skipped_ticks_total", "service" => name.clone())
                .absolute(timer.skipped);
            gauge!("hosted_timer_last_tick_timestamp_seconds", "service" => name.clone())
                .set(unix_seconds(timer.last_tick));
            gauge!("hosted_timer_next_tick_timestamp_seconds", "service" => name.clone())
                .set(unix_seconds(timer.next_tick));
        }
        if let Some(queue) = &service.queue {
            gauge!("hosted_queue_depth", "service" => name.clone()).set(float(queue.depth));
            gauge!("hosted_queue_capacity", "service" => name.clone()).set(float(queue.capacity));
            gauge!("hosted_queue_in_flight", "service" => name.clone()).set(float(queue.in_flight));
            gauge!("hosted_queue_oldest_waiting_seconds", "service" => name.clone())
                .set(queue.oldest_waiting.map_or(0.0, |age| age.as_secs_f64()));
            for (metric, value) in [
                ("hosted_queue_accepted_total", queue.accepted),
                ("hosted_queue_processed_total", queue.processed),
                ("hosted_queue_failed_attempts_total", queue.failed),
                ("hosted_queue_retried_total", queue.retried),
                ("hosted_queue_dead_lettered_total", queue.dead_lettered),
                ("hosted_queue_dropped_total", queue.dropped),
                ("hosted_queue_handed_back_total", queue.handed_back),
                ("hosted_queue_left_undone_total", queue.left_undone),
                ("hosted_queue_lease_lost_total", queue.lease_lost),
                (
                    "hosted_queue_stale_results_rejected_total",
                    queue.stale_results_rejected,
                ),
            ] {
                counter!(metric, "service" => name.clone()).absolute(value);
            }
        }
    }
    for hub in &snapshot.hubs {
        let name = hub.name.clone();
        gauge!("hosted_hub_connections", "hub" => name.clone()).set(float(hub.connections));
        gauge!("hosted_hub_groups", "hub" => name.clone()).set(float(hub.groups));
        counter!("hosted_hub_dropped_messages_total", "hub" => name.clone()).absolute(hub.dropped);
        counter!("hosted_hub_overflow_disconnects_total", "hub" => name).absolute(hub.disconnected);
    }
}

/// The process's Prometheus recorder (feature `prometheus`): installed as the global recorder
/// the first time a host that exposes it (a web host, a
/// [`MetricsListener`](crate::prometheus::MetricsListener)) is built, before the histograms'
/// handles are taken; shared by every host of the process. `None` when another recorder was
/// installed first.
#[cfg(feature = "prometheus")]
pub fn prometheus() -> Option<&'static metrics_exporter_prometheus::PrometheusHandle> {
    use std::sync::OnceLock;

    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};

    static HANDLE: OnceLock<Option<metrics_exporter_prometheus::PrometheusHandle>> =
        OnceLock::new();
    HANDLE
        .get_or_init(|| {
            const BUCKETS: &[f64] = &[
                0.000_1, 0.000_5, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                30.0, 60.0,
            ];
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), BUCKETS)
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            if ::metrics::set_global_recorder(recorder).is_ok() {
                Some(handle)
            } else {
                tracing::warn!(
                    "another metrics recorder is installed: the Prometheus exposition is off"
                );
                None
            }
        })
        .as_ref()
}

/// The Prometheus text exposition of a host's status and of every other metric recorded through
/// the facade (feature `prometheus`). `None` when another recorder was installed first.
#[cfg(feature = "prometheus")]
#[must_use]
pub fn render(status: &super::HostStatus) -> Option<String> {
    let handle = prometheus()?;
    publish(&status.snapshot());
    Some(handle.render())
}
