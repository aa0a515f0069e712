//! Traces: one span per run, with one set of names and fields, and the link from a queued item's
//! run to the run that sent it.
//!
//! Every run — a background body, a tick, an attempt at a queue item or a durable job, a web
//! request — runs inside a span of its own. A run span is a *root*: it carries the service's
//! name itself instead of nesting inside the service's span, so each run is a trace of its own
//! in an OpenTelemetry backend (a span that lived as long as the process would hold every run of
//! the service in one trace, exported only at the stop), and a log line of a run reads alone.
//!
//! | span | when | fields |
//! |---|---|---|
//! | `service` | building, starting and stopping a service; what its supervisor says between runs | `service` |
//! | `run` | one run of a background body (`#[hosted_service]`, a `HostedService`'s `execute`); the first is 1, a restart is the next | `service`, `run` |
//! | `tick` | one tick of a timed service | `service`, `tick` (its number, from 1) |
//! | `item` | one attempt at an item of an in-memory queue | `service`, `seq` (the queue's sequence number, from 1), `attempt` (from 1), `sent_from` |
//! | `job` | one attempt at a job of a durable queue | `service`, `job` (its id in the store), `attempt`, `sent_from` |
//! | `request` | one request to the web host | `service`, `method`, `path` |
//!
//! Run spans are at the `INFO` level; when a filter leaves them out (`host.log = "warn"`), a run
//! costs one check for its span and is not entered on each poll. On the hot paths — a queue's
//! item, a timer's tick, an in-memory queue's `send` — the check is one relaxed load of
//! `tracing`'s maximum level, made before anything else: with no subscriber, or one that leaves
//! `INFO` out, no span is built and no origin is captured (what each costs is measured in
//! `BENCHMARKS.md`, and listed with the other hooks in `hosted::docs::metrics`). A subscriber
//! installed, or a filter changed, after the host was built is seen from the next item or tick.
//!
//! # The link from an item to its sender
//!
//! A queue's `send` records where it was called: the run it was called from, and, with the
//! `otel` feature, the OpenTelemetry context of the current span. The record travels with the
//! item, in memory and in a durable store (the `origin` column), and the item's run shows it:
//!
//! * in the logs, as the field `sent_from`, written the way the sender's run span is written in
//!   the text format, so searching the log for it finds the sender's lines:
//!   `item{service=app::mailer seq=3 attempt=1 sent_from=tick{service=app::digest tick=42}}`;
//! * in OpenTelemetry, as a span *link* from the item's span to the span that called `send` (a
//!   link, not a parent: the item runs later, in a trace of its own).
//!
//! A send from outside any run (from `main`, from a task the application spawned without its
//! span) has no `sent_from`; under OpenTelemetry it is still linked when it happens inside a span.
//!
//! # OpenTelemetry (feature `otel`)
//!
//! With the feature, `hosted::run!()` exports every span over OTLP/HTTP (protobuf) once
//! `host.otel_endpoint` is set:
//!
//! ```toml
//! [host]
//! otel_endpoint = "http://127.0.0.1:4318"   # `/v1/traces` is added when the URL has no path
//! otel_service_name = "billing-worker"      # the resource's `service.name`; default: the program's name
//! ```
//!
//! (or `HOSTED_HOST__OTEL_ENDPOINT=…`). Spans leave in batches from a thread of their own; the
//! host flushes the last batch and shuts the exporter down as the very last step of its stop,
//! after every service has stopped and the runtime is gone, so no span of the stop is lost
//! (open-telemetry/opentelemetry-rust#1961), and waits at most [`EXPORT_SHUTDOWN_TIMEOUT`] for
//! the collector. A run span's attributes are its fields; what is logged inside it (a failure, a
//! retry) is an event of the span.

mod origin;
#[cfg(feature = "otel")]
pub(crate) mod otel;
mod run;
mod service_span;

pub(crate) use self::origin::Origin;
pub(crate) use self::run::{RunSpan, in_run};
pub(crate) use self::service_span::{ServiceSpan, in_service_span};

/// The span of whatever has none (a run no subscriber sees, a service whose span is disabled),
/// lent where a `&Span` is asked for.
pub(crate) static NO_SPAN: tracing::Span = tracing::Span::none();

/// Whether the run spans and the senders' origins of the queues and timers built from now on are
/// left out, for the benchmarks that measure what they cost: see [`bypass_spans`].
static SPANS_BYPASSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Leaves out, for the queues and timers built from now on, their run spans and the origin a
/// `send` records. Not for applications: the benchmarks compare a host with and without them, in
/// one process, to show what they cost when nothing listens.
pub(crate) fn bypass_spans(bypass: bool) {
    SPANS_BYPASSED.store(bypass, std::sync::atomic::Ordering::Relaxed);
}

/// Whether a queue or timer traces its runs at all: read once, when it is built.
pub(crate) fn spans_wanted() -> bool {
    !SPANS_BYPASSED.load(std::sync::atomic::Ordering::Relaxed)
}

/// Whether a run span could be seen now: whether any subscriber (global, or scoped to a thread)
/// enables `INFO`, the run spans' level. With no subscriber ever installed, one relaxed load of a
/// flag; with one, a second of the maximum level `tracing` keeps up to date as subscribers come
/// and their filters change. A hot path (a queue's item, a timer's tick, an in-memory `send`)
/// asks it before it builds a span or records where an item was sent from.
#[inline]
pub(crate) fn runs_traced() -> bool {
    tracing::level_filters::STATIC_MAX_LEVEL >= tracing::Level::INFO
        && tracing::dispatcher::has_been_set()
        && tracing::level_filters::LevelFilter::current() >= tracing::Level::INFO
}

/// How often the hot paths took their listening branch, in debug builds only (release builds
/// count nothing): the test that catches a hot path building a span or capturing an origin that
/// no subscriber would see reads them through `hosted::__private::hook_counts`.
#[cfg(debug_assertions)]
pub(crate) mod counts {
    use std::sync::atomic::{AtomicU64, Ordering};

    /// Origins captured at a `send` (the thread-local and trace context looked up).
    pub(crate) static ORIGINS: AtomicU64 = AtomicU64::new(0);
    /// Spans built for a queue item's attempt.
    pub(crate) static ITEM_SPANS: AtomicU64 = AtomicU64::new(0);
    /// Spans built for a tick.
    pub(crate) static TICK_SPANS: AtomicU64 = AtomicU64::new(0);

    pub(crate) fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn read() -> [u64; 3] {
        [&ORIGINS, &ITEM_SPANS, &TICK_SPANS].map(|counter| counter.load(Ordering::Relaxed))
    }
}

/// How long the host waits for the collector when it shuts the exporter down at the end of its
/// stop (feature `otel`).
pub const EXPORT_SHUTDOWN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);
