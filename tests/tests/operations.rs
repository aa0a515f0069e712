//! What an operator sees: the live status after known work, the Prometheus exposition on the web
//! host and on the standalone listener, and the dashboard refused without credentials.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hosted::di::RunContext;
use hosted::host::{HostBuilder, RunningHost};
use hosted::prometheus::MetricsListener;
use hosted::queue::{DeadLetters, QueueOptions};
use hosted::registry::ServiceDescriptor;
use hosted::status::{HostStatus, ServiceState};
use hosted::timer::TimerOptions;
use hosted::web::{Authorizer, BasicAuth, ServerAddress, WebOptions, WebServer};
use hosted::{BoxError, Host, Queue};

/// A queue whose odd items fail once each (one retry allowed), and whose item 0 always fails.
fn flaky_queue(name: &'static str) -> ServiceDescriptor {
    let seen = Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
    ServiceDescriptor::queued(
        name,
        QueueOptions::new(100).with_retries(1),
        move |item: u64, _cx: RunContext| {
            let first = seen.lock().unwrap().insert(item);
            async move {
                if item == 0 || (item % 2 == 1 && first) {
                    return Err::<(), BoxError>(format!("item {item} refused").into());
                }
                Ok(())
            }
        },
        DeadLetters::log(),
    )
}

fn ticker(name: &'static str) -> ServiceDescriptor {
    ServiceDescriptor::timed(
        name,
        TimerOptions::every(Duration::from_millis(50)),
        |_cx: RunContext| async {},
    )
}

async fn send_items(running: &RunningHost, queue: &str, items: u64) {
    let _ = queue;
    let handle = running.get::<Queue<u64>>().await.unwrap();
    for item in 0..items {
        handle.send(item).await.unwrap();
    }
    let began = std::time::Instant::now();
    while handle.stats().processed + handle.stats().dead_lettered < items {
        assert!(
            began.elapsed() < Duration::from_secs(10),
            "the items were never handled"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn get(url: &str, auth: Option<(&str, &str)>) -> (u16, String) {
    let mut request = reqwest::Client::new().get(url);
    if let Some((user, password)) = auth {
        request = request.basic_auth(user, Some(password));
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

/// The value of one sample of the exposition, by its exact name and labels.
fn sample(exposition: &str, series: &str) -> Option<f64> {
    exposition.lines().find_map(|line| {
        let (name, value) = line.rsplit_once(' ')?;
        (name == series).then(|| value.parse().ok())?
    })
}

fn web_options() -> WebOptions {
    let mut options = WebOptions::default();
    options.bind = SocketAddr::from(([127, 0, 0, 1], 0));
    options.dashboard.enabled = true;
    options
}

async fn start_web(builder: HostBuilder) -> (RunningHost, String) {
    let running = WebServer::new()
        .options(web_options())
        .install(builder)
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let address = running.get::<ServerAddress>().await.unwrap().get().unwrap();
    (running, format!("http://{address}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(
    clippy::too_many_lines,
    reason = "one host, its known work, and everything an operator reads of it"
)]
async fn the_status_and_metrics_count_known_work() {
    let builder = Host::builder()
        .add_service(flaky_queue("ops-queue"))
        .add_service(ticker("ops-ticker"))
        .add_instance::<dyn Authorizer>(Arc::new(BasicAuth::new("ops", "pw")));
    let (running, base) = start_web(builder).await;
    // Items 0..10: 0 dead after 2 attempts, 1 3 5 7 9 succeed on their retry, the rest at once.
    send_items(&running, "ops-queue", 10).await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    let status = running.get::<HostStatus>().await.unwrap();
    let snapshot = status.snapshot();
    let queue = snapshot
        .services
        .iter()
        .find(|service| service.name == "ops-queue")
        .unwrap();
    assert_eq!(queue.state, ServiceState::Running);
    assert_eq!(queue.runs, 16, "10 first attempts and 6 retries");
    assert_eq!(queue.failures, 7, "item 0 twice, the odd ones once");
    assert!(
        queue
            .last_error
            .as_ref()
            .unwrap()
            .message
            .contains("refused")
    );
    let counts = queue.queue.as_ref().unwrap();
    assert_eq!(
        (
            counts.processed,
            counts.dead_lettered,
            counts.retried,
            counts.failed
        ),
        (9, 1, 6, 7)
    );
    let timer = snapshot
        .services
        .iter()
        .find(|service| service.name == "ops-ticker")
        .unwrap();
    let ticks = timer.timer.as_ref().unwrap();
    assert!(ticks.ticks >= 3, "ticked: {ticks:?}");
    assert_eq!(ticks.schedule, "every 50ms");
    assert!(ticks.next_tick.unwrap() > ticks.last_tick.unwrap());
    assert_eq!(snapshot.hubs.len(), 1);

    let (code, exposition) = get(&format!("{base}/metrics"), None).await;
    assert_eq!(code, 200);
    let of = |series: &str| sample(&exposition, series);
    assert_eq!(
        of(r#"hosted_queue_processed_total{service="ops-queue"}"#),
        Some(9.0)
    );
    assert_eq!(
        of(r#"hosted_queue_dead_lettered_total{service="ops-queue"}"#),
        Some(1.0)
    );
    assert_eq!(
        of(r#"hosted_queue_retried_total{service="ops-queue"}"#),
        Some(6.0)
    );
    assert_eq!(
        of(r#"hosted_service_runs_total{service="ops-queue"}"#),
        Some(16.0)
    );
    assert_eq!(
        of(r#"hosted_service_failures_total{service="ops-queue"}"#),
        Some(7.0)
    );
    assert_eq!(
        of(r#"hosted_service_state{service="ops-queue",state="running"}"#),
        Some(1.0)
    );
    assert_eq!(of(r#"hosted_queue_depth{service="ops-queue"}"#), Some(0.0));
    let ticks = of(r#"hosted_timer_ticks_total{service="ops-ticker"}"#).unwrap();
    assert!(ticks >= 3.0);
    // Every tick that ended was timed. One exposition is not one instant: its series are read
    // one after the other while the ticker goes on, so the ticks it timed are compared with
    // the ticks a later exposition counts as started.
    let durations =
        of(r#"hosted_service_run_duration_seconds_count{service="ops-ticker"}"#).unwrap();
    let (_, later) = get(&format!("{base}/metrics"), None).await;
    let started_later =
        sample(&later, r#"hosted_timer_ticks_total{service="ops-ticker"}"#).unwrap();
    assert!(
        durations >= 3.0 && durations <= started_later,
        "{durations} timed, {started_later} started by the next read: {exposition}"
    );
    assert!(of(r#"hosted_timer_lateness_seconds_count{service="ops-ticker"}"#).unwrap() >= 3.0);
    assert_eq!(of(r#"hosted_hub_connections{hub="hub"}"#), Some(0.0));

    // The dashboard: refused without the credentials, or with wrong ones; served with them.
    for (path, auth) in [
        ("/hosted", None),
        ("/hosted/events", None),
        ("/hosted/status", None),
        ("/hosted", Some(("ops", "wrong"))),
        ("/hosted/events", Some(("someone", "pw"))),
    ] {
        let (code, body) = get(&format!("{base}{path}"), auth).await;
        assert_eq!(code, 401, "{path} with {auth:?}: {body}");
    }
    let (code, page) = get(&format!("{base}/hosted"), Some(("ops", "pw"))).await;
    assert_eq!(code, 200);
    assert!(page.contains("EventSource"));
    let (code, json) = get(&format!("{base}/hosted/status"), Some(("ops", "pw"))).await;
    assert_eq!(code, 200);
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    let queue = json["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|service| service["name"] == "ops-queue")
        .unwrap();
    assert_eq!(queue["queue"]["processed"], 9);
    // The event stream sends a snapshot at once.
    let mut events = reqwest::Client::new()
        .get(format!("{base}/hosted/events"))
        .basic_auth("ops", Some("pw"))
        .send()
        .await
        .unwrap();
    assert_eq!(events.status().as_u16(), 200);
    let first = tokio::time::timeout(Duration::from_secs(5), events.chunk())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let first = String::from_utf8_lossy(&first);
    assert!(first.starts_with("event: status\ndata: {"), "{first}");
    // Actions on dead letters need the page's header, and an in-memory queue keeps none.
    let response = reqwest::Client::new()
        .post(format!("{base}/hosted/queues/ops-queue/dead/1/retry"))
        .basic_auth("ops", Some("pw"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 403);
    let response = reqwest::Client::new()
        .post(format!("{base}/hosted/queues/ops-queue/dead/1/retry"))
        .basic_auth("ops", Some("pw"))
        .header("x-hosted-dashboard", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 404);
    drop(events);
    let outcome = running.stop().await;
    assert!(outcome.is_success(), "{outcome:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dashboard_without_an_authorizer_does_not_start() {
    let outcome = WebServer::new()
        .options(web_options())
        .install(Host::builder())
        .build()
        .unwrap()
        .start()
        .await
        .unwrap_err();
    let incident = &outcome.incidents()[0];
    assert!(
        incident.what.contains("no authoriser is registered"),
        "{incident:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_worker_serves_metrics_on_its_own_listener() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let running = MetricsListener::new(SocketAddr::from(([127, 0, 0, 1], port)))
        .install(Host::builder().add_service(flaky_queue("plain-queue")))
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    send_items(&running, "plain-queue", 4).await;
    let (code, exposition) = get(&format!("http://127.0.0.1:{port}/metrics"), None).await;
    assert_eq!(code, 200);
    let of = |series: &str| sample(&exposition, series);
    // 0 dead, 1 on its retry, 2 and 3 at once.
    assert_eq!(
        of(r#"hosted_queue_processed_total{service="plain-queue"}"#),
        Some(3.0)
    );
    assert_eq!(
        of(r#"hosted_queue_dead_lettered_total{service="plain-queue"}"#),
        Some(1.0)
    );
    assert_eq!(
        of(r#"hosted_queue_accepted_total{service="plain-queue"}"#),
        Some(4.0)
    );
    assert_eq!(
        of(r#"hosted_service_state{service="hosted::metrics",state="running"}"#),
        Some(1.0)
    );
    let outcome = running.stop().await;
    assert!(outcome.is_success(), "{outcome:?}");
}

/// `hosted::run!()` installs the standalone listener when `metrics.listen` is configured, and
/// none when it is not; a malformed address stops startup with the key and its source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_installs_the_standalone_listener_when_its_address_is_configured() {
    use hosted_tests::process::{HANG, Process};

    let program = env!("CARGO_BIN_EXE_graceful");
    let mut listing = Process::spawn(program, &["--list"]);
    assert_eq!(listing.wait_exit(HANG), 0, "{}", listing.transcript());
    assert!(
        !listing.stdout().contains(MetricsListener::NAME),
        "no listener unless configured: {}",
        listing.transcript()
    );

    let mut malformed = Process::spawn(program, &["--check", "--metrics.listen=port 80"]);
    assert_eq!(malformed.wait_exit(HANG), 78, "{}", malformed.transcript());
    assert!(
        malformed.stderr().contains("metrics.listen")
            && malformed.stderr().contains("command-line argument"),
        "{}",
        malformed.transcript()
    );

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut app = Process::spawn(program, &[&format!("--metrics.listen=127.0.0.1:{port}")]);
    app.wait_for_line(&format!("metrics on http://127.0.0.1:{port}/metrics"), HANG);
    app.wait_for_line("graceful::web", HANG);
    let (code, exposition) = get(&format!("http://127.0.0.1:{port}/metrics"), None).await;
    assert_eq!(code, 200, "{exposition}");
    for service in [MetricsListener::NAME, "graceful::web", "graceful::Database"] {
        assert_eq!(
            sample(
                &exposition,
                &format!(r#"hosted_service_state{{service="{service}",state="running"}}"#)
            ),
            Some(1.0),
            "{service} in {exposition}"
        );
    }
    app.signal("TERM");
    assert_eq!(app.wait_exit(HANG), 0, "{}", app.transcript());
}
