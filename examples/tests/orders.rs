//! Seed 003: the same grace-period manager, compiled from one source file, in a plain worker
//! (no server at all) and in a web host (an API beside it), each run as a real process.

use hosted_tests::process::{HANG, Process};

#[test]
fn the_plain_worker_runs_the_service_without_a_server() {
    let mut list = Process::spawn(env!("CARGO_BIN_EXE_order_worker"), &["--list"]);
    assert_eq!(list.wait_exit(HANG), 0);
    let table = list.stdout();
    assert!(table.contains("orders::grace_period"), "{table}");
    assert!(
        !table.contains("hosted::web"),
        "no web server in a binary without routes: {table}"
    );
    assert!(!table.contains("ROUTE"), "{table}");

    let mut worker = Process::spawn(
        env!("CARGO_BIN_EXE_order_worker"),
        &["--orders.grace_ms=300"],
    );
    worker.wait_for_line(
        "order confirmed: grace period over, event published order=1",
        HANG,
    );
    worker.wait_for_line(
        "order confirmed: grace period over, event published order=2",
        HANG,
    );
    worker.signal("TERM");
    assert_eq!(worker.wait_exit(HANG), 0, "{}", worker.transcript());
    worker.assert_no_log_line(&["listening on"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_host_runs_the_same_service_beside_its_api() {
    let mut web = Process::spawn(
        env!("CARGO_BIN_EXE_order_web"),
        &["--web.bind=127.0.0.1:0", "--orders.grace_ms=300"],
    );
    let line = web.wait_for_line("listening on http://", HANG);
    let address = line
        .split("listening on http://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_owned();
    web.wait_for_line("application started", HANG);
    let client = reqwest::Client::new();
    let placed = client
        .post(format!("http://{address}/orders"))
        .send()
        .await
        .unwrap();
    assert_eq!(placed.status(), 201);
    web.wait_for_line(
        "order confirmed: grace period over, event published order=1",
        HANG,
    );
    let orders: serde_json::Value = client
        .get(format!("http://{address}/orders"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(orders, serde_json::json!([{ "id": 1, "confirmed": true }]));
    web.signal("TERM");
    assert_eq!(web.wait_exit(HANG), 0, "{}", web.transcript());
}
