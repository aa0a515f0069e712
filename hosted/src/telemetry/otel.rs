//! OpenTelemetry export (feature `otel`): the OTLP/HTTP exporter behind a `tracing` layer, the
//! context a `send` records, and the shutdown that ends the host's stop.

use std::sync::OnceLock;

use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState, TracerProvider as _,
};
use opentelemetry_otlp::{Protocol, WithExportConfig as _};
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use super::EXPORT_SHUTDOWN_TIMEOUT;

/// The provider once installed: what the stop shuts down, and whether a `send` records contexts.
static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Checks `host.otel_endpoint`: empty (no export) or an `http://` or `https://` URL.
///
/// # Errors
/// What is expected, when the value is not that.
pub(crate) fn check_endpoint(endpoint: &str) -> Result<(), String> {
    if endpoint.is_empty() {
        return Ok(());
    }
    let rest = endpoint
        .strip_prefix("http://")
        .or_else(|| endpoint.strip_prefix("https://"))
        .ok_or_else(|| {
            "expected an OTLP/HTTP URL like `http://127.0.0.1:4318`, or empty for no export"
                .to_owned()
        })?;
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() || authority.contains(char::is_whitespace) {
        return Err(
            "expected an OTLP/HTTP URL like `http://127.0.0.1:4318` (no host in it)".into(),
        );
    }
    Ok(())
}

/// The URL spans are posted to: `endpoint` itself when it names a path, else its `/v1/traces`.
fn traces_url(endpoint: &str) -> String {
    let rest = endpoint
        .split_once("://")
        .map_or(endpoint, |(_, rest)| rest);
    match rest.find('/') {
        Some(at) if rest.len() > at + 1 => endpoint.to_owned(),
        Some(_) => format!("{endpoint}v1/traces"),
        None => format!("{endpoint}/v1/traces"),
    }
}

/// The layer that turns spans into OpenTelemetry spans exported to `endpoint`, batched on a
/// thread of the exporter's own; installs the provider for [`shutdown`].
///
/// # Errors
/// When the exporter cannot be built (its HTTP client), or a layer was installed already.
pub(crate) fn layer<S>(
    endpoint: &str,
    service_name: &str,
) -> Result<tracing_opentelemetry::OpenTelemetryLayer<S, SdkTracer>, String>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(traces_url(endpoint))
        .with_timeout(EXPORT_SHUTDOWN_TIMEOUT)
        .build()
        .map_err(|error| error.to_string())?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(service_name.to_owned())
        .build();
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build();
    let tracer = provider.tracer("hosted");
    PROVIDER
        .set(provider)
        .map_err(|_| "an OpenTelemetry exporter is installed already".to_owned())?;
    Ok(tracing_opentelemetry::layer()
        .with_tracer(tracer)
        // The run spans carry what matters; where in the source they were opened does not.
        .with_location(false)
        .with_threads(false))
}

/// Flushes the spans still batched and shuts the exporter down, waiting at most
/// [`EXPORT_SHUTDOWN_TIMEOUT`] for the collector. The last step of the host's stop: nothing
/// logged after it is exported. Does nothing when no exporter was installed.
pub(crate) fn shutdown() {
    let Some(provider) = PROVIDER.get() else {
        return;
    };
    if let Err(error) = provider.shutdown_with_timeout(EXPORT_SHUTDOWN_TIMEOUT) {
        tracing::warn!(%error, "the OpenTelemetry exporter did not shut down cleanly; spans may be lost");
    }
}

/// The context of the current span, when an exporter is installed and there is one.
pub(super) fn current_context() -> Option<SpanContext> {
    PROVIDER.get()?;
    let span = Span::current();
    if span.is_none() {
        return None;
    }
    let context = span.context().span().span_context().clone();
    context.is_valid().then_some(context)
}

/// Links `span` to the span whose context is `to`.
pub(super) fn link(span: &Span, to: &SpanContext) {
    span.add_link(to.clone());
}

/// The W3C `traceparent` of a span context.
#[cfg_attr(
    not(feature = "postgres"),
    expect(dead_code, reason = "the durable store's column")
)]
pub(super) fn traceparent(context: &SpanContext) -> String {
    format!(
        "00-{}-{}-{:02x}",
        context.trace_id(),
        context.span_id(),
        context.trace_flags().to_u8()
    )
}

/// Reads a W3C `traceparent` (version `00`); `None` when it is not one.
#[cfg_attr(
    not(feature = "postgres"),
    expect(dead_code, reason = "the durable store's column")
)]
pub(super) fn parse_traceparent(text: &str) -> Option<SpanContext> {
    let mut parts = text.split('-');
    let (version, trace, span, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if version != "00" || parts.next().is_some() || trace.len() != 32 || span.len() != 16 {
        return None;
    }
    let context = SpanContext::new(
        TraceId::from_hex(trace).ok()?,
        SpanId::from_hex(span).ok()?,
        TraceFlags::new(u8::from_str_radix(flags, 16).ok()?),
        true,
        TraceState::default(),
    );
    context.is_valid().then_some(context)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_checked() {
        assert!(check_endpoint("").is_ok());
        assert!(check_endpoint("http://127.0.0.1:4318").is_ok());
        assert!(check_endpoint("https://collector.example/otlp/v1/traces").is_ok());
        assert!(check_endpoint("127.0.0.1:4318").is_err());
        assert!(check_endpoint("http://").is_err());
    }

    #[test]
    fn the_traces_path_is_added_to_a_bare_endpoint() {
        assert_eq!(traces_url("http://c:4318"), "http://c:4318/v1/traces");
        assert_eq!(traces_url("http://c:4318/"), "http://c:4318/v1/traces");
        assert_eq!(
            traces_url("http://c/otlp/v1/traces"),
            "http://c/otlp/v1/traces"
        );
    }

    #[test]
    fn a_traceparent_round_trips() {
        let text = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let context = parse_traceparent(text).unwrap();
        assert_eq!(traceparent(&context), text);
        assert!(
            parse_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").is_none()
        );
        assert!(
            parse_traceparent("00-00000000000000000000000000000000-00f067aa0ba902b7-01").is_none()
        );
        assert!(parse_traceparent("garbage").is_none());
    }
}
