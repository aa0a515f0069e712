//! The web host in a real process: SIGTERM during an open WebSocket and an in-flight request
//! (readiness 503 at once, the request completes, the socket gets a close frame, exit 0 within
//! the budget), a WebSocket that ignores the close, and `--list` showing the routes.

use std::time::Duration;

use futures_util::StreamExt as _;
use hosted_tests::process::{HANG, Process};
use tokio_tungstenite::tungstenite::Message;

fn start(extra: &[&str]) -> (Process, String) {
    let mut args = vec!["--web.bind=127.0.0.1:0"];
    args.extend_from_slice(extra);
    let app = Process::spawn(env!("CARGO_BIN_EXE_web_shutdown"), &args);
    let line = app.wait_for_line("listening on http://", HANG);
    let address = line
        .split("listening on http://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_owned();
    app.wait_for_line("application started", HANG);
    (app, address)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_finishes_requests_closes_sockets_then_stops_the_rest() {
    let (mut app, address) = start(&["--host.drain_delay=800ms", "--host.shutdown_timeout=10s"]);
    let client = reqwest::Client::new();
    let (mut socket, _) = tokio_tungstenite::connect_async(format!("ws://{address}/hub?user=ada"))
        .await
        .unwrap();
    let in_flight = tokio::spawn({
        let client = client.clone();
        let url = format!("http://{address}/slow");
        async move {
            let response = client.get(url).send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    });
    let started = app.wait_for_line("slow request started", HANG);
    drop(started);
    app.signal("TERM");
    app.wait_for_line("received SIGTERM", HANG);
    // At once, and while the listener still accepts during the drain delay: not ready.
    let ready = reqwest::Client::new()
        .get(format!("http://{address}/readyz"))
        .send()
        .await
        .expect("the listener accepts during the drain delay");
    assert_eq!(ready.status(), 503);
    assert_eq!(ready.text().await.unwrap(), "stopping\n");

    let frame = tokio::time::timeout(HANG, async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Close(frame))) => return frame,
                Some(Ok(_)) => {}
                other => panic!("no close frame: {other:?}"),
            }
        }
    })
    .await
    .unwrap()
    .expect("a close frame with a code");
    assert_eq!(u16::from(frame.code), 1001);
    assert_eq!(in_flight.await.unwrap(), (200, "slow done".to_owned()));
    assert_eq!(app.wait_exit(HANG), 0, "{}", app.transcript());
    app.assert_log_order(&[
        &["received SIGTERM"],
        &["draining"],
        &["no longer accepting connections"],
        &["slow request finished"],
        &["service{service=hosted::web}", "stopped"],
        &["worker stopping"],
        &["service{service=web_shutdown::worker}", "stopped"],
        &["application stopped"],
    ]);
    app.assert_no_log_line(&["ERROR"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_that_ignores_the_close_does_not_hold_the_process() {
    let (mut app, address) = start(&["--host.shutdown_timeout=3s"]);
    // Connected, then never read again: the close frame is not answered.
    let (_deaf, _) = tokio_tungstenite::connect_async(format!("ws://{address}/hub?user=deaf"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    app.signal("TERM");
    assert_eq!(app.wait_exit(HANG), 0, "{}", app.transcript());
    app.assert_no_log_line(&["abandoned"]);
}

#[test]
fn list_shows_the_routes() {
    let mut app = Process::spawn(env!("CARGO_BIN_EXE_web_shutdown"), &["--list"]);
    assert_eq!(app.wait_exit(HANG), 0);
    let stdout = app.stdout();
    assert!(stdout.contains("hosted::web"), "{stdout}");
    let routes: Vec<&str> = stdout
        .lines()
        .skip_while(|line| !line.starts_with("ROUTE"))
        .collect();
    assert_eq!(routes.len(), 3, "{stdout}");
    assert!(routes[1].starts_with("/slow ") && routes[1].contains("web_shutdown::api"));
    assert!(routes[2].starts_with("/hub ") && routes[2].contains("tests/src/bin/web_shutdown.rs:"));
}

#[test]
fn a_bad_web_setting_stops_startup_with_the_key_and_exit_78() {
    let mut app = Process::spawn(
        env!("CARGO_BIN_EXE_web_shutdown"),
        &["--web.bind=localhost"],
    );
    assert_eq!(app.wait_exit(HANG), 78, "{}", app.transcript());
    let stderr = app.stderr();
    assert!(stderr.contains("web.bind"), "{stderr}");
    assert!(stderr.contains("--web.bind=localhost"), "{stderr}");

    let mut app = Process::spawn(
        env!("CARGO_BIN_EXE_web_shutdown"),
        &["--web.readyz_path=ready"],
    );
    assert_eq!(app.wait_exit(HANG), 78, "{}", app.transcript());
    assert!(
        app.stderr().contains("`readyz_path` must start with `/`"),
        "{}",
        app.stderr()
    );

    let mut app = Process::spawn(
        env!("CARGO_BIN_EXE_web_shutdown"),
        &["--web.request_timeout=5"],
    );
    assert_eq!(app.wait_exit(HANG), 78, "{}", app.transcript());
    assert!(
        app.stderr()
            .contains("got 5 without a unit (write \"5s\" or \"5ms\")"),
        "{}",
        app.stderr()
    );

    // The web host's durations and addresses read like every other configuration value.
    for (argument, expected) in [
        (
            "--web.request_timeout=5 sec",
            "unknown unit `sec` in `5 sec`; write `5s`",
        ),
        (
            "--web.bind=localhost:80",
            "expected an IP address and port such as \"127.0.0.1:8080\"",
        ),
    ] {
        let mut app = Process::spawn(env!("CARGO_BIN_EXE_web_shutdown"), &[argument]);
        assert_eq!(app.wait_exit(HANG), 78, "{}", app.transcript());
        let key = argument.trim_start_matches("--").split('=').next().unwrap();
        assert!(
            app.stderr()
                .contains(&format!("`{key}` (command-line argument {argument})"))
                && app.stderr().contains(expected),
            "{}",
            app.stderr()
        );
    }
}

#[test]
fn the_old_web_drain_delay_key_names_its_new_home() {
    let mut app = Process::spawn(
        env!("CARGO_BIN_EXE_web_shutdown"),
        &["--web.bind=127.0.0.1:0", "--web.drain_delay=5s"],
    );
    assert_eq!(app.wait_exit(HANG), 78, "{}", app.transcript());
    assert!(
        app.stderr()
            .contains("`web.drain_delay` is now `host.drain_delay`"),
        "{}",
        app.transcript()
    );
}
