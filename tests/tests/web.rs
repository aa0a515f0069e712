//! The web host on a real socket: routes, handlers injected per request with a scope that
//! commits or rolls back with the response, the health endpoints, bad input, and the stop in
//! order (readiness first, in-flight requests finished).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use axum::routing::{get, post};
use hosted::di::{Provider, RunContext};
use hosted::host::{HostBuilder, RunningHost};
use hosted::web::{Injected, Routes, ServerAddress, WebOptions, WebServer};
use hosted::{Dispose, Host, ScopeExit};

/// Every scope's end, in order.
#[derive(Default)]
struct Journal(Mutex<Vec<(usize, ScopeExit)>>);

/// A scoped value: one per request, numbered.
struct UnitOfWork {
    number: usize,
    journal: Arc<Journal>,
}

impl Dispose for UnitOfWork {
    async fn dispose(&self, exit: ScopeExit) {
        self.journal.0.lock().unwrap().push((self.number, exit));
    }
}

static NEXT_UNIT: AtomicUsize = AtomicUsize::new(1);

fn options() -> WebOptions {
    let mut options = WebOptions::default();
    options.bind = SocketAddr::from(([127, 0, 0, 1], 0));
    options
}

async fn same_unit_twice(
    Injected(first): Injected<Arc<UnitOfWork>>,
    Injected(second): Injected<Arc<UnitOfWork>>,
) -> String {
    assert!(Arc::ptr_eq(&first, &second), "one scope per request");
    first.number.to_string()
}

async fn failing(Injected(unit): Injected<Arc<UnitOfWork>>) -> (StatusCode, String) {
    (
        StatusCode::CONFLICT,
        format!("unit {} refused", unit.number),
    )
}

async fn slow(Injected(unit): Injected<Arc<UnitOfWork>>) -> String {
    tokio::time::sleep(Duration::from_millis(1500)).await;
    format!("slow {} done", unit.number)
}

#[derive(serde::Deserialize)]
struct Echo {
    text: String,
}

async fn echo(axum::Json(echo): axum::Json<Echo>) -> String {
    echo.text
}

fn host(drain: Duration) -> HostBuilder {
    let mut options = options();
    options.request_timeout = Duration::from_secs(10);
    options.body_limit = 1024;
    host_with(options).drain_delay(drain)
}

fn host_with(options: WebOptions) -> HostBuilder {
    let routes = Routes::new()
        .route("/unit", get(same_unit_twice))
        .route("/fail", get(failing))
        .route("/slow", get(slow))
        .route("/echo", post(echo));
    with_unit_of_work(
        WebServer::new()
            .routes("tests::web", routes)
            .options(options)
            .install(Host::builder()),
    )
}

/// The journal and the scoped unit of work.
fn with_unit_of_work(builder: HostBuilder) -> HostBuilder {
    builder.add_instance(Arc::new(Journal::default())).provide(
        Provider::scoped(|cx: RunContext| async move {
            let journal = cx.resolve::<Arc<Journal>>().await?;
            Ok::<_, hosted::di::InjectError>(Arc::new(UnitOfWork {
                number: NEXT_UNIT.fetch_add(1, Ordering::SeqCst),
                journal,
            }))
        })
        .disposing::<UnitOfWork>()
        .needs(<Arc<Journal> as hosted::di::Inject>::declare),
    )
}

async fn start(builder: HostBuilder) -> (RunningHost, String) {
    let running = builder
        .build()
        .expect("a valid host")
        .start()
        .await
        .expect("started");
    let address = running.get::<ServerAddress>().await.unwrap().get().unwrap();
    (running, format!("http://{address}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_request_gets_a_scope_released_with_the_response_status() {
    let (running, base) = start(host(Duration::ZERO)).await;
    let journal = running.get::<Journal>().await.unwrap();
    let client = reqwest::Client::new();

    let ok = client.get(format!("{base}/unit")).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    let number: usize = ok.text().await.unwrap().parse().unwrap();
    assert_eq!(
        journal.0.lock().unwrap().last(),
        Some(&(number, ScopeExit::Succeeded)),
        "disposed as succeeded before the response was sent"
    );

    let refused = client.get(format!("{base}/fail")).send().await.unwrap();
    assert_eq!(refused.status(), 409);
    let text = refused.text().await.unwrap();
    let failed: usize = text
        .trim_start_matches("unit ")
        .trim_end_matches(" refused")
        .parse()
        .unwrap();
    assert_ne!(failed, number, "a fresh scope per request");
    assert_eq!(
        journal.0.lock().unwrap().last(),
        Some(&(failed, ScopeExit::Failed))
    );
    assert!(running.stop().await.is_success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_a_4xx_with_a_message() {
    let (running, base) = start(host(Duration::ZERO)).await;
    let client = reqwest::Client::new();

    let missing = client.get(format!("{base}/nowhere")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.text().await.unwrap(), "no route for GET /nowhere\n");

    let malformed = client
        .post(format!("{base}/echo"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    assert!(!malformed.text().await.unwrap().is_empty());

    let too_big = client
        .post(format!("{base}/echo"))
        .header("content-type", "application/json")
        .body(format!("{{\"text\":\"{}\"}}", "x".repeat(4096)))
        .send()
        .await
        .unwrap();
    assert_eq!(too_big.status(), 413);

    let wrong_method = client.delete(format!("{base}/echo")).send().await.unwrap();
    assert_eq!(wrong_method.status(), 405);

    let fine = client
        .post(format!("{base}/echo"))
        .json(&serde_json::json!({ "text": "hello" }))
        .send()
        .await
        .unwrap();
    assert_eq!(fine.text().await.unwrap(), "hello");
    assert!(running.stop().await.is_success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_past_its_timeout_gets_408_and_its_scope_fails() {
    let mut options = options();
    options.request_timeout = Duration::from_millis(200);
    let (running, base) = start(host_with(options)).await;
    let journal = running.get::<Journal>().await.unwrap();
    let response = reqwest::get(format!("{base}/slow")).await.unwrap();
    assert_eq!(response.status(), 408);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        journal.0.lock().unwrap().last().map(|(_, exit)| *exit),
        Some(ScopeExit::Failed)
    );
    assert!(running.stop().await.is_success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_endpoints_follow_the_lifecycle() {
    let (running, base) = start(host(Duration::from_millis(600))).await;
    let client = reqwest::Client::new();
    let live = client.get(format!("{base}/livez")).send().await.unwrap();
    assert_eq!(live.status(), 200);
    let ready = client.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.text().await.unwrap(), "ready\n");

    let readiness = running.get::<hosted::web::Readiness>().await.unwrap();
    readiness.add_check("database", || Err("connection refused".to_owned()));
    let not_ready = client.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(not_ready.status(), 503);
    assert_eq!(
        not_ready.text().await.unwrap(),
        "database: connection refused\n"
    );
    assert!(running.stop().await.is_success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stop_turns_readiness_off_drains_then_finishes_in_flight_requests() {
    let (running, base) = start(host(Duration::from_millis(500))).await;
    let client = reqwest::Client::new();
    let in_flight = tokio::spawn({
        let client = client.clone();
        let url = format!("{base}/slow");
        async move { client.get(url).send().await.unwrap().text().await.unwrap() }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let lifetime = running.lifetime().clone();
    let stopping = tokio::spawn(running.stop());
    tokio::time::sleep(Duration::from_millis(100)).await;
    // During the drain delay: still accepting, but not ready.
    let fresh = reqwest::Client::new();
    let ready = fresh.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    assert_eq!(ready.text().await.unwrap(), "stopping\n");
    assert!(
        in_flight.await.unwrap().ends_with("done"),
        "the in-flight request completed"
    );
    let outcome = stopping.await.unwrap();
    assert!(outcome.is_success(), "{outcome:?}");
    assert!(lifetime.is_stopped());
    // Closed now.
    assert!(fresh.get(format!("{base}/livez")).send().await.is_err());
}

struct NeverRegistered;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_handlers_declare_is_checked_before_anything_starts() {
    let routes = Routes::new()
        .route("/unit", get(same_unit_twice))
        .needs::<Arc<UnitOfWork>>()
        .needs::<Arc<NeverRegistered>>();
    let host = with_unit_of_work(
        WebServer::new()
            .routes("tests::declared", routes)
            .options(options())
            .install(Host::builder()),
    )
    .build()
    .unwrap();
    let outcome = host.start().await.expect_err("startup fails");
    let incidents = format!("{:?}", outcome.incidents());
    assert!(
        incidents
            .contains("the routes `tests::declared` need `alloc::sync::Arc<web::NeverRegistered>`"),
        "{incidents}"
    );
    assert!(!incidents.contains("UnitOfWork"), "{incidents}");
}
