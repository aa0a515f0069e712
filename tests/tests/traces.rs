//! The run spans, exported over OTLP/HTTP to a collector inside this test: a real binary (the
//! `traced` timer and queue) runs two ticks that each send an item, and stops on SIGTERM. Every
//! span must reach the collector — the service spans only close at the stop, so they arrive only
//! if the host flushes the exporter as the last step of its stop — carrying its fields, and
//! each item's span must be linked to the tick that sent it.

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;

use hosted_tests::process::{HANG, Process};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;

/// What the collector received: each request's path and content type, and its body.
type Received = Mutex<Vec<(String, Vec<u8>)>>;

/// An OTLP/HTTP receiver: every `POST /v1/traces` body, as received.
struct Collector {
    port: u16,
    bodies: Arc<Received>,
}

impl Collector {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a local port");
        let port = listener.local_addr().expect("its address").port();
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&bodies);
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let kept = Arc::clone(&kept);
                thread::spawn(move || serve(stream, &kept));
            }
        });
        Self { port, bodies }
    }

    fn requests(&self) -> Vec<(String, Vec<u8>)> {
        self.bodies.lock().unwrap().clone()
    }
}

/// Answers every request of one keep-alive connection with an empty success.
fn serve(stream: TcpStream, kept: &Received) {
    let mut reader = BufReader::new(stream.try_clone().expect("a second handle"));
    let mut writer = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut length = 0;
        let mut content_type = String::new();
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            let (name, value) = header.split_once(':').unwrap_or((header, ""));
            match name.to_ascii_lowercase().as_str() {
                "content-length" => length = value.trim().parse().unwrap_or(0),
                "content-type" => value.trim().clone_into(&mut content_type),
                _ => {}
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let path = request_line.split_whitespace().nth(1).unwrap_or_default();
        kept.lock()
            .unwrap()
            .push((format!("{path} {content_type}"), body));
        let answer =
            "HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n";
        if writer.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

fn text(value: Option<&AnyValue>) -> String {
    match value.and_then(|value| value.value.as_ref()) {
        Some(any_value::Value::StringValue(text)) => text.clone(),
        Some(any_value::Value::IntValue(number)) => number.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn attributes(span: &Span) -> HashMap<String, String> {
    span.attributes
        .iter()
        .map(|kv| (kv.key.clone(), text(kv.value.as_ref())))
        .collect()
}

#[test]
fn run_spans_reach_the_collector_linked_to_their_sender() {
    let collector = Collector::start();
    let mut command = Process::command(env!("CARGO_BIN_EXE_traced"));
    command.arg(format!(
        "--host.otel_endpoint=http://127.0.0.1:{}",
        collector.port
    ));
    let mut app = Process::start(command);
    app.wait_for_line("number=2", HANG);
    app.signal("TERM");
    assert_eq!(app.wait_exit(HANG), 0, "{}", app.transcript());
    // Every item's log line names its sender, OpenTelemetry or not.
    app.assert_log_order(&[&[
        "item{service=traced::record seq=1 attempt=1 sent_from=tick{service=traced::watch tick=1}}",
        "recorded number=1",
    ]]);

    let requests = collector.requests();
    assert!(
        !requests.is_empty(),
        "no export reached the collector\n{}",
        app.transcript()
    );
    let mut spans = Vec::new();
    let mut service_names = Vec::new();
    for (what, body) in &requests {
        assert_eq!(what, "/v1/traces application/x-protobuf", "{what}");
        let request = ExportTraceServiceRequest::decode(body.as_slice()).expect("an OTLP request");
        for resource in request.resource_spans {
            if let Some(resource_attributes) = &resource.resource {
                for kv in &resource_attributes.attributes {
                    if kv.key == "service.name" {
                        service_names.push(text(kv.value.as_ref()));
                    }
                }
            }
            for scope in resource.scope_spans {
                spans.extend(scope.spans);
            }
        }
    }
    assert!(
        service_names.iter().all(|name| name == "traced"),
        "{service_names:?}"
    );
    let named =
        |name: &str| -> Vec<&Span> { spans.iter().filter(|span| span.name == name).collect() };
    let all_names: Vec<_> = spans.iter().map(|span| span.name.as_str()).collect();

    // The services' own spans end with the stop: here only if the last batch was flushed.
    let services: Vec<_> = named("service")
        .iter()
        .map(|span| attributes(span)["service"].clone())
        .collect();
    assert!(
        services.contains(&"traced::watch".to_owned())
            && services.contains(&"traced::record".to_owned()),
        "{services:?} in {all_names:?}"
    );
    // The timer's body is a run as well.
    assert!(
        named("run")
            .iter()
            .any(|span| attributes(span)["service"] == "traced::watch"),
        "{all_names:?}"
    );

    let ticks = named("tick");
    let tick = |number: &str| {
        *ticks
            .iter()
            .find(|span| attributes(span).get("tick").map(String::as_str) == Some(number))
            .unwrap_or_else(|| panic!("no span of tick {number} in {all_names:?}"))
    };
    let items = named("item");
    assert_eq!(items.len(), 2, "{all_names:?}");
    for (seq, sender) in [("1", tick("1")), ("2", tick("2"))] {
        let item = items
            .iter()
            .find(|span| attributes(span)["seq"] == seq)
            .unwrap_or_else(|| panic!("no span of item {seq}"));
        let fields = attributes(item);
        assert_eq!(fields["service"], "traced::record", "{fields:?}");
        assert_eq!(fields["attempt"], "1", "{fields:?}");
        assert_eq!(
            fields["sent_from"],
            format!("tick{{service=traced::watch tick={seq}}}"),
            "{fields:?}"
        );
        assert_eq!(attributes(sender)["service"], "traced::watch");
        // What the run logged is an event of its span.
        assert!(
            sender.events.iter().any(|event| event.name == "sent"),
            "tick {seq}: {:?}",
            sender.events
        );
        // A run is a root: a trace of its own, linked to the sender's.
        assert!(item.parent_span_id.is_empty(), "item {seq} has a parent");
        assert!(sender.parent_span_id.is_empty(), "tick {seq} has a parent");
        assert_ne!(
            item.trace_id, sender.trace_id,
            "item {seq} in its sender's trace"
        );
        assert_eq!(item.links.len(), 1, "item {seq}: {:?}", item.links);
        assert_eq!(item.links[0].trace_id, sender.trace_id, "item {seq}");
        assert_eq!(item.links[0].span_id, sender.span_id, "item {seq}");
    }
}
