//! What the queue's and the timer's hooks do when nothing listens, and when something does: with
//! no subscriber (or one that leaves the run spans out), no span is built and no origin is
//! captured per item or tick; with one that wants them, each is; the `metrics` handles are taken
//! once per service when the host is built, never per item or tick.
//!
//! One test, in a process of its own: the span hooks read `tracing`'s global maximum level, which
//! a subscriber installed by another test on another thread would raise.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hosted::di::RunContext;
use hosted::queue::{DeadLetters, QueueOptions};
use hosted::registry::ServiceDescriptor;
use hosted::timer::TimerOptions;
use hosted::{Host, Queue};
use tracing::level_filters::LevelFilter;
use tracing::span;
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};

const TICKS: u64 = 10;
const SENT_FROM_OUTSIDE: u64 = 20;

/// What a subscriber saw.
#[derive(Default)]
struct Seen {
    spans: Mutex<HashMap<&'static str, u64>>,
    sent_from: AtomicU64,
    next_id: AtomicU64,
}

impl Seen {
    fn spans(&self, name: &str) -> u64 {
        self.spans
            .lock()
            .unwrap()
            .get(name)
            .copied()
            .unwrap_or_default()
    }
}

/// A subscriber that enables everything up to `level` and counts the spans it is given.
struct Counting {
    level: LevelFilter,
    seen: Arc<Seen>,
}

struct SentFrom<'a>(&'a AtomicU64);

impl tracing::field::Visit for SentFrom<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, _: &dyn std::fmt::Debug) {
        if field.name() == "sent_from" {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Subscriber for Counting {
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        if self.level >= *metadata.level() {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(self.level)
    }

    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.level >= *metadata.level()
    }

    fn new_span(&self, span: &span::Attributes<'_>) -> span::Id {
        *self
            .seen
            .spans
            .lock()
            .unwrap()
            .entry(span.metadata().name())
            .or_default() += 1;
        span.record(&mut SentFrom(&self.seen.sent_from));
        span::Id::from_u64(self.seen.next_id.fetch_add(1, Ordering::Relaxed) + 1)
    }

    fn record(&self, _: &span::Id, values: &span::Record<'_>) {
        values.record(&mut SentFrom(&self.seen.sent_from));
    }

    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}

    fn event(&self, _: &Event<'_>) {}

    fn enter(&self, _: &span::Id) {}

    fn exit(&self, _: &span::Id) {}
}

/// A `metrics` recorder that counts the handles taken and the values recorded, by name.
#[derive(Clone, Default)]
struct Recorder {
    registered: Arc<Mutex<HashMap<String, u64>>>,
    recorded: Arc<Mutex<HashMap<String, u64>>>,
}

struct Recording {
    name: String,
    recorded: Arc<Mutex<HashMap<String, u64>>>,
}

impl metrics::HistogramFn for Recording {
    fn record(&self, _: f64) {
        *self
            .recorded
            .lock()
            .unwrap()
            .entry(self.name.clone())
            .or_default() += 1;
    }
}

impl Recorder {
    fn count(map: &Mutex<HashMap<String, u64>>, name: &str) -> u64 {
        map.lock().unwrap().get(name).copied().unwrap_or_default()
    }
}

impl metrics::Recorder for Recorder {
    fn describe_counter(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_gauge(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_histogram(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }

    fn register_counter(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        metrics::Counter::noop()
    }

    fn register_gauge(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        metrics::Gauge::noop()
    }

    fn register_histogram(
        &self,
        key: &metrics::Key,
        _: &metrics::Metadata<'_>,
    ) -> metrics::Histogram {
        let name = key.name().to_owned();
        *self
            .registered
            .lock()
            .unwrap()
            .entry(name.clone())
            .or_default() += 1;
        metrics::Histogram::from_arc(Arc::new(Recording {
            name,
            recorded: Arc::clone(&self.recorded),
        }))
    }
}

/// A timer whose every tick sends an item to a queue, `TICKS` ticks on the paused clock, and
/// `SENT_FROM_OUTSIDE` items sent from outside any run; returns the items handled.
fn run_host() -> u64 {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    let handled = Arc::new(AtomicU64::new(0));
    let counted = Arc::clone(&handled);
    let host = Host::builder()
        .add_service(ServiceDescriptor::queued(
            "no_cost::queue",
            QueueOptions::new(100),
            move |_item: u64, _cx: RunContext| {
                counted.fetch_add(1, Ordering::Relaxed);
                async {}
            },
            DeadLetters::log(),
        ))
        .add_service(ServiceDescriptor::timed(
            "no_cost::timer",
            TimerOptions::every(Duration::from_millis(100)),
            |cx: RunContext| async move {
                let queue = cx.resolve::<Queue<u64>>().await?;
                queue.send(1).await?;
                Ok::<(), hosted::BoxError>(())
            },
        ))
        .build()
        .unwrap();
    runtime.block_on(async {
        let running = host.start().await.unwrap();
        let queue = running.get::<Queue<u64>>().await.unwrap();
        for item in 0..SENT_FROM_OUTSIDE {
            queue.send(item).await.unwrap();
        }
        // Ticks at 0, 100, …, 900 ms: `TICKS` of them.
        tokio::time::sleep(Duration::from_millis(950)).await;
        assert!(running.stop().await.is_success());
    });
    handled.load(Ordering::Relaxed)
}

/// What the hooks counted while `run` ran.
fn counted(run: impl FnOnce() -> u64) -> (u64, [u64; 3]) {
    let before = hosted::__private::hook_counts();
    let handled = run();
    let after = hosted::__private::hook_counts();
    (handled, [0, 1, 2].map(|index| after[index] - before[index]))
}

#[test]
fn the_hot_paths_hooks_cost_nothing_unless_something_listens() {
    let all = TICKS + SENT_FROM_OUTSIDE;

    // Nothing installed: no span built, no origin captured, per item or per tick.
    let (handled, [origins, item_spans, tick_spans]) = counted(run_host);
    assert_eq!(handled, all);
    assert_eq!(
        (origins, item_spans, tick_spans),
        (0, 0, 0),
        "with no subscriber: origins captured, item spans, tick spans"
    );

    // A subscriber that leaves the run spans out (`host.log = "warn"`): the same.
    let quiet = Arc::new(Seen::default());
    let (handled, [origins, item_spans, tick_spans]) = counted(|| {
        let subscriber = Counting {
            level: LevelFilter::WARN,
            seen: Arc::clone(&quiet),
        };
        tracing::subscriber::with_default(subscriber, run_host)
    });
    assert_eq!(handled, all);
    assert_eq!(
        (origins, item_spans, tick_spans),
        (0, 0, 0),
        "with a subscriber at WARN: origins captured, item spans, tick spans"
    );
    assert_eq!((quiet.spans("item"), quiet.spans("tick")), (0, 0));

    // One that wants them: every item and tick has its span, every send its origin, and the
    // items sent from a tick show it.
    let listening = Arc::new(Seen::default());
    let (handled, [origins, item_spans, tick_spans]) = counted(|| {
        let subscriber = Counting {
            level: LevelFilter::INFO,
            seen: Arc::clone(&listening),
        };
        tracing::subscriber::with_default(subscriber, run_host)
    });
    assert_eq!(handled, all);
    assert_eq!(
        (origins, item_spans, tick_spans),
        (all, all, TICKS),
        "with a subscriber at INFO: origins captured, item spans, tick spans"
    );
    assert_eq!(
        (listening.spans("item"), listening.spans("tick")),
        (all, TICKS)
    );
    assert_eq!(
        listening.sent_from.load(Ordering::Relaxed),
        TICKS,
        "the items sent from a tick name it in `sent_from`"
    );

    // A `metrics` recorder: one histogram handle per service (and the timer's lateness), taken
    // when the host is built, not per item or tick; a value per tick in each.
    let recorder = Recorder::default();
    let handled = metrics::with_local_recorder(&recorder, run_host);
    assert_eq!(handled, all);
    let taken = |name| Recorder::count(&recorder.registered, name);
    let values = |name| Recorder::count(&recorder.recorded, name);
    assert_eq!(taken("hosted_service_run_duration_seconds"), 2);
    assert_eq!(taken("hosted_timer_lateness_seconds"), 1);
    assert_eq!(values("hosted_timer_lateness_seconds"), TICKS);
    // The ticks' runs, and the items' (a handler registered by hand declares nothing, so its
    // items run in a scope, and their runs are timed).
    assert_eq!(values("hosted_service_run_duration_seconds"), TICKS + all);
}
