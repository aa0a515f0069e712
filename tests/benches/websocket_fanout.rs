//! The hub against a hand-written axum + `tokio::sync::broadcast` server, side by side: 1,000
//! WebSocket connections on loopback, a broadcast every 100 ms, for 5 s per server.
//!
//! Each server runs in a child process of its own (this binary, re-run with `FANOUT_SERVE`), so
//! its resident memory can be read alone: memory per connection is the growth of the server's
//! RSS from before the clients connect to after they all receive broadcasts, divided by their
//! number. Delivery latency is from the server stamping the message (wall clock, nanoseconds)
//! to a client reading it, over every message every client receives in the measured window.
//!
//! ```sh
//! cargo bench -p hosted-tests --bench websocket_fanout
//! ```

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::ws::{Message, Utf8Bytes, WebSocketUpgrade};
use axum::response::Response;
use axum::routing::get;
use futures_util::StreamExt as _;
use hosted::Host;
use hosted::registry::ServiceDescriptor;
use hosted::web::{Hub, HubUpgrade, Routes, ServerAddress, WebOptions, WebServer};
use std::io::BufRead as _;

const CONNECTIONS: usize = 1000;
const PERIOD: Duration = Duration::from_millis(100);
const MEASURE: Duration = Duration::from_secs(5);

fn now_nanos() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    )
    .unwrap()
}

fn stamp() -> String {
    format!("{{\"sent\":{}}}", now_nanos())
}

// ----- the servers, in the child process -----

async fn hub_socket(upgrade: HubUpgrade) -> Response {
    upgrade.accept()
}

async fn serve_hosted() {
    let mut options = WebOptions::default();
    options.bind = SocketAddr::from(([127, 0, 0, 1], 0));
    let running = WebServer::new()
        .routes("bench", Routes::new().route("/ws", get(hub_socket)))
        .options(options)
        .install(Host::builder())
        .add_service(ServiceDescriptor::background(
            "broadcaster",
            |cx: hosted::di::RunContext| async move {
                let hub = cx.resolve::<Hub<serde_json::Value>>().await?;
                let mut ticks = tokio::time::interval(PERIOD);
                while !cx.stop_token().is_cancelled() {
                    ticks.tick().await;
                    hub.send_all(&serde_json::json!({ "sent": now_nanos() }))?;
                }
                Ok::<(), hosted::BoxError>(())
            },
        ))
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let address = running.get::<ServerAddress>().await.unwrap().get().unwrap();
    println!("{address}");
    std::future::pending::<()>().await;
}

async fn serve_broadcast() {
    let (sender, _) = tokio::sync::broadcast::channel::<Utf8Bytes>(64);
    let ticker = sender.clone();
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(PERIOD);
        loop {
            ticks.tick().await;
            let _ = ticker.send(Utf8Bytes::from(stamp()));
        }
    });
    let app = axum::Router::new().route(
        "/ws",
        get(move |upgrade: WebSocketUpgrade| {
            let mut receiver = sender.subscribe();
            async move {
                // Reads too, as a real server must (close frames, pings, client messages).
                upgrade.on_upgrade(|mut socket| async move {
                    loop {
                        tokio::select! {
                            sent = receiver.recv() => match sent {
                                Ok(text) => {
                                    if socket.send(Message::Text(text)).await.is_err() {
                                        return;
                                    }
                                }
                                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                            },
                            read = socket.recv() => match read {
                                Some(Ok(_)) => {}
                                _ => return,
                            },
                        }
                    }
                })
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!("{}", listener.local_addr().unwrap());
    axum::serve(listener, app).await.unwrap();
}

// ----- the clients, in this process -----

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap()
}

struct Report {
    p50: Duration,
    p99: Duration,
    received: usize,
    expected: usize,
    per_connection_kib: f64,
}

async fn measure(kind: &str) -> Report {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env("FANOUT_SERVE", kind)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let address = line.trim().to_owned();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = rss_kib(child.id());

    let measuring = Arc::new(AtomicBool::new(false));
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(CONNECTIONS * 60)));
    let connected = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        let url = format!("ws://{address}/ws");
        let measuring = Arc::clone(&measuring);
        let latencies = Arc::clone(&latencies);
        let connected = Arc::clone(&connected);
        tasks.push(tokio::spawn(async move {
            let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
            connected.fetch_add(1, Ordering::Relaxed);
            while let Some(Ok(message)) = socket.next().await {
                if let tokio_tungstenite::tungstenite::Message::Text(text) = message {
                    let received = now_nanos();
                    if measuring.load(Ordering::Relaxed) {
                        let value: serde_json::Value = serde_json::from_str(text.as_str()).unwrap();
                        let sent = value["sent"].as_u64().unwrap();
                        latencies
                            .lock()
                            .unwrap()
                            .push(received.saturating_sub(sent));
                    }
                }
            }
        }));
    }
    while connected.load(Ordering::Relaxed) < CONNECTIONS as u64 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    measuring.store(true, Ordering::Relaxed);
    tokio::time::sleep(MEASURE).await;
    measuring.store(false, Ordering::Relaxed);
    let after = rss_kib(child.id());
    tokio::time::sleep(Duration::from_millis(200)).await;
    for task in &tasks {
        task.abort();
    }
    let _ = child.kill();
    let _ = child.wait();
    let mut latencies = std::mem::take(&mut *latencies.lock().unwrap());
    latencies.sort_unstable();
    let at = |quantile: f64| {
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss,
            reason = "an index into a few thousand samples"
        )]
        let index = ((latencies.len() as f64 - 1.0) * quantile) as usize;
        Duration::from_nanos(latencies[index])
    };
    #[allow(
        clippy::cast_precision_loss,
        reason = "kibibytes over a thousand connections"
    )]
    let per_connection_kib = after.saturating_sub(before) as f64 / CONNECTIONS as f64;
    Report {
        p50: at(0.5),
        p99: at(0.99),
        received: latencies.len(),
        #[allow(
            clippy::cast_possible_truncation,
            reason = "broadcasts in a few seconds"
        )]
        expected: CONNECTIONS * (MEASURE.as_millis() / PERIOD.as_millis()) as usize,
        per_connection_kib,
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    if let Ok(kind) = std::env::var("FANOUT_SERVE") {
        match kind.as_str() {
            "hosted" => runtime.block_on(serve_hosted()),
            _ => runtime.block_on(serve_broadcast()),
        }
        return;
    }
    println!(
        "{CONNECTIONS} connections, a broadcast every {PERIOD:?}, measured over {MEASURE:?} per server"
    );
    println!(
        "{:<34} {:>10} {:>10} {:>18} {:>14}",
        "server", "p50", "p99", "received/expected", "KiB/connection"
    );
    for (label, kind) in [
        ("hosted Hub (drop_oldest, 64)", "hosted"),
        ("axum + tokio::sync::broadcast", "broadcast"),
    ] {
        let report = runtime.block_on(measure(kind));
        println!(
            "{label:<34} {:>10.2?} {:>10.2?} {:>18} {:>14.1}",
            report.p50,
            report.p99,
            format!("{}/{}", report.received, report.expected),
            report.per_connection_kib
        );
    }
}
