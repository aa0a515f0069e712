//! Where an item was sent from, recorded at `send` and shown by the item's run.

use std::sync::Arc;

use tracing::Span;

/// Where an item was sent from: the run that called `send`, and with the `otel` feature the
/// OpenTelemetry context of the span that called it. Empty when neither was there to record;
/// without a subscriber, all a send costs is one atomic load.
///
/// One pointer, null when empty: every queued item carries an origin, and an empty one is what
/// a host without a subscriber moves and drops for each of them.
#[derive(Clone, Debug, Default)]
pub(crate) struct Origin {
    recorded: Option<Box<Recorded>>,
}

/// What an origin holds when there was something to record.
#[derive(Clone, Debug, Default)]
struct Recorded {
    /// The sender's run span, as the text format writes it.
    run: Option<Arc<str>>,
    #[cfg(feature = "otel")]
    context: Option<opentelemetry::trace::SpanContext>,
}

impl Origin {
    /// Where the caller is now.
    pub(crate) fn capture() -> Self {
        // Without any subscriber no span is enabled: no run is marked, no context exists.
        if !tracing::dispatcher::has_been_set() {
            return Self::default();
        }
        #[cfg(debug_assertions)]
        super::counts::add(&super::counts::ORIGINS);
        Self::of(Recorded {
            run: super::run::current_run(),
            #[cfg(feature = "otel")]
            context: super::otel::current_context(),
        })
    }

    /// An origin of what was recorded; empty when that is nothing.
    fn of(recorded: Recorded) -> Self {
        #[cfg(feature = "otel")]
        let nothing = recorded.run.is_none() && recorded.context.is_none();
        #[cfg(not(feature = "otel"))]
        let nothing = recorded.run.is_none();
        Self {
            recorded: (!nothing).then(|| Box::new(recorded)),
        }
    }

    /// The sender's run span, if recorded.
    fn run(&self) -> Option<&Arc<str>> {
        self.recorded.as_ref()?.run.as_ref()
    }

    /// The sending span's trace context, if recorded.
    #[cfg(feature = "otel")]
    fn context(&self) -> Option<&opentelemetry::trace::SpanContext> {
        self.recorded.as_ref()?.context.as_ref()
    }

    /// Whether there is nothing recorded.
    #[cfg_attr(
        not(feature = "postgres"),
        expect(dead_code, reason = "the durable store's column")
    )]
    pub(crate) fn is_empty(&self) -> bool {
        self.recorded.is_none()
    }

    /// Shows the origin on the span of the item's run: its `sent_from` field, and its link.
    pub(super) fn mark(&self, span: &Span) {
        if let Some(run) = self.run() {
            span.record("sent_from", tracing::field::display(run));
        }
        #[cfg(feature = "otel")]
        if let Some(context) = self.context() {
            super::otel::link(span, context);
        }
    }

    /// The origin as a durable store keeps it: a JSON object with `run` (the sender's run span)
    /// and `traceparent` (the W3C trace context of the sending span), either one absent when not
    /// recorded. `None` when there is nothing to keep.
    #[cfg(feature = "postgres")]
    pub(crate) fn to_stored(&self) -> Option<String> {
        if self.is_empty() {
            return None;
        }
        let mut stored = serde_json::Map::new();
        if let Some(run) = self.run() {
            stored.insert("run".to_owned(), serde_json::Value::from(&**run));
        }
        #[cfg(feature = "otel")]
        if let Some(context) = self.context() {
            stored.insert(
                "traceparent".to_owned(),
                serde_json::Value::from(super::otel::traceparent(context)),
            );
        }
        Some(serde_json::Value::Object(stored).to_string())
    }

    /// Reads what [`to_stored`](Self::to_stored) wrote; what it cannot read is left out, never an
    /// error: an origin is for reading, not for running the job.
    #[cfg(feature = "postgres")]
    pub(crate) fn from_stored(stored: Option<&str>) -> Self {
        let Some(value) =
            stored.and_then(|text| serde_json::from_str::<serde_json::Value>(text).ok())
        else {
            return Self::default();
        };
        Self::of(Recorded {
            run: value.get("run").and_then(|run| run.as_str()).map(Arc::from),
            #[cfg(feature = "otel")]
            context: value
                .get("traceparent")
                .and_then(|parent| parent.as_str())
                .and_then(super::otel::parse_traceparent),
        })
    }
}

#[cfg(all(test, feature = "postgres"))]
mod tests {
    use super::*;

    #[test]
    fn nothing_recorded_is_nothing_stored() {
        assert!(Origin::default().is_empty());
        assert_eq!(Origin::default().to_stored(), None);
    }

    #[test]
    #[cfg_attr(
        not(feature = "otel"),
        allow(
            clippy::needless_update,
            reason = "the trace context is a field with `otel` only"
        )
    )]
    fn a_run_is_stored_as_json() {
        let origin = Origin::of(Recorded {
            run: Some(Arc::from("tick{service=a\"b tick=1}")),
            ..Recorded::default()
        });
        let stored = origin.to_stored().unwrap();
        assert_eq!(stored, r#"{"run":"tick{service=a\"b tick=1}"}"#);
        let back = Origin::from_stored(Some(&stored));
        assert_eq!(
            back.run().map(|run| &**run),
            Some("tick{service=a\"b tick=1}")
        );
        assert!(Origin::from_stored(Some("not json")).is_empty());
        assert!(Origin::from_stored(None).is_empty());
    }
}

#[cfg(test)]
mod size {
    use super::*;

    /// Every queued item carries one.
    #[test]
    fn an_origin_is_one_pointer() {
        assert_eq!(size_of::<Origin>(), size_of::<usize>());
        assert!(Origin::of(Recorded::default()).recorded.is_none());
    }
}
