//! The durable store beside the web host, in real processes (`durable-web`): `/readyz` reflects
//! a database outage (`pg_ctl stop`, then start) while `/livez` stays up; and the hub's
//! PostgreSQL backplane carries a broadcast from one replica to the WebSocket clients of another,
//! a message past `NOTIFY`'s 8000 bytes included.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt as _;
use hosted::durable::DurableConfig;
use hosted_durable_tests::eventually;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;

struct Replica {
    child: Child,
    address: String,
    log: Arc<Mutex<String>>,
}

impl Replica {
    async fn start(url: &str, config: &DurableConfig, env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_durable-web"))
            .arg("--web.bind=127.0.0.1:0")
            .env("HOSTED_DURABLE__URL", url)
            .env("HOSTED_DURABLE__SCHEMA", &config.schema)
            .env("HOSTED_DURABLE__POOL_SIZE", "2")
            .env("HOSTED_DURABLE__POLL_INTERVAL", "200ms")
            .env("HOSTED_DURABLE__CONNECT_TIMEOUT", "1s")
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the replica starts");
        let log = Arc::new(Mutex::new(String::new()));
        let mut lines = BufReader::new(child.stderr.take().expect("piped")).lines();
        let (found, address) = tokio::sync::oneshot::channel();
        let kept = Arc::clone(&log);
        tokio::spawn(async move {
            let mut found = Some(found);
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(rest) = line.split("listening on http://").nth(1)
                    && let Some(found) = found.take()
                {
                    let _ = found.send(rest.split_whitespace().next().unwrap_or("").to_owned());
                }
                let mut log = kept.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let address = tokio::time::timeout(Duration::from_secs(30), address)
            .await
            .unwrap_or_else(|_| panic!("the replica listens: {}", log.lock().unwrap()))
            .expect("an address");
        Self {
            child,
            address,
            log,
        }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    async fn get(&self, path: &str) -> (u16, String) {
        match reqwest::get(format!("http://{}{path}", self.address)).await {
            Ok(response) => (
                response.status().as_u16(),
                response.text().await.unwrap_or_default(),
            ),
            Err(error) => (0, error.to_string()),
        }
    }

    async fn terminate(mut self) -> Option<i32> {
        let pid = self.child.id().expect("running").to_string();
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status();
        tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .expect("the replica stops")
            .ok()
            .and_then(|status| status.code())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_reflects_a_database_outage_and_recovers_with_it() {
    if hosted_pg_harness::server().is_none() {
        return;
    }
    let server = hosted_pg_harness::Server::own().expect("a cluster of this test's own");
    let cluster = server.cluster().expect("started here");
    let mut config = DurableConfig::new(server.url()).unwrap();
    config.schema = server.schema("readiness");
    let replica = Replica::start(server.url(), &config, &[]).await;
    assert!(
        eventually(Duration::from_secs(20), || async {
            replica.get("/readyz").await.0 == 200
        })
        .await,
        "ready: {}",
        replica.log()
    );
    cluster.stop().expect("pg_ctl stop");
    assert!(
        eventually(Duration::from_secs(20), || async {
            replica.get("/readyz").await.0 == 503
        })
        .await,
        "not ready while the database is down: {}",
        replica.log()
    );
    let (_, reason) = replica.get("/readyz").await;
    assert!(reason.contains("durable store"), "{reason}");
    assert!(reason.contains("unreachable"), "{reason}");
    assert_eq!(replica.get("/livez").await.0, 200, "alive all the same");
    cluster.start_again().expect("pg_ctl start");
    assert!(
        eventually(Duration::from_secs(30), || async {
            replica.get("/readyz").await.0 == 200
        })
        .await,
        "ready again once the database is back: {}",
        replica.log()
    );
    assert_eq!(replica.terminate().await, Some(0));
}

/// The next text message a WebSocket receives, within 10 s.
async fn next_text(
    socket: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) -> String {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Text(text))) => return text.to_string(),
                Some(Ok(_)) => {}
                other => panic!("the socket ended: {other:?}"),
            }
        }
    })
    .await
    .expect("a message within 10 s")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_from_one_replica_reaches_the_clients_of_another() {
    let Some(config) = hosted_durable_tests::config("hub") else {
        return;
    };
    let url = config.url.expose().to_owned();
    let on = [("HOSTED_DURABLE__HUB_BACKPLANE", "true")];
    let a = Replica::start(&url, &config, &on).await;
    let b = Replica::start(&url, &config, &on).await;
    for replica in [&a, &b] {
        assert!(
            eventually(Duration::from_secs(20), || async {
                replica.get("/readyz").await.0 == 200
            })
            .await,
            "{}",
            replica.log()
        );
    }
    let (mut on_a, _) = tokio_tungstenite::connect_async(format!("ws://{}/hub", a.address))
        .await
        .expect("a socket on a");
    let (mut on_b, _) = tokio_tungstenite::connect_async(format!("ws://{}/hub", b.address))
        .await
        .expect("a socket on b");
    // The listeners may still be subscribing: send until the first one comes through.
    let client = reqwest::Client::new();
    let send = |replica: &Replica, text: String| {
        let request = client
            .post(format!("http://{}/broadcast", replica.address))
            .body(text);
        async move {
            let response = request.send().await.expect("a response");
            assert_eq!(response.status(), 200);
        }
    };
    let mut through = false;
    for attempt in 0..50 {
        send(&a, format!("hello {attempt}")).await;
        assert_eq!(
            next_text(&mut on_a).await,
            format!(r#"{{"text":"hello {attempt}"}}"#),
            "the sender's own clients at once"
        );
        if let Ok(text) =
            tokio::time::timeout(Duration::from_millis(200), next_text(&mut on_b)).await
        {
            assert!(text.starts_with(r#"{"text":"hello "#), "{text}");
            through = true;
            break;
        }
    }
    assert!(
        through,
        "a's broadcast reached b's client: {}{}",
        a.log(),
        b.log()
    );
    // Drain what b got late from the warm-up.
    while let Ok(text) =
        tokio::time::timeout(Duration::from_millis(300), next_text(&mut on_b)).await
    {
        assert!(text.starts_with(r#"{"text":"hello "#), "{text}");
    }

    // Past NOTIFY's 8000 bytes: cut into chunks, put back together on the other side.
    let long: String = (0..30_000_u32)
        .map(|i| char::from(b'a' + u8::try_from(i % 26).unwrap()))
        .collect::<String>()
        + "é€";
    send(&b, long.clone()).await;
    let expected = serde_json::json!({ "text": long }).to_string();
    assert_eq!(next_text(&mut on_b).await, expected);
    let received = next_text(&mut on_a).await;
    assert_eq!(received.len(), expected.len());
    assert_eq!(received, expected, "the long message arrived whole");

    // Each once: nothing more comes on either.
    send(&a, "last".to_owned()).await;
    assert_eq!(next_text(&mut on_a).await, r#"{"text":"last"}"#);
    assert_eq!(next_text(&mut on_b).await, r#"{"text":"last"}"#);
    assert!(
        tokio::time::timeout(Duration::from_millis(500), next_text(&mut on_a))
            .await
            .is_err(),
        "no echo of a's own message back from the database"
    );
    drop((on_a, on_b));
    assert_eq!(a.terminate().await, Some(0));
    assert_eq!(b.terminate().await, Some(0));
}
