//! The durable store beside the web host, in real processes (`durable-web`): `/readyz` reflects
//! a database outage (`pg_ctl stop`, then start) while `/livez` stays up; the hub's PostgreSQL
//! backplane carries a broadcast from one replica to the WebSocket clients of another (one of
//! them a web application with `[durable]` but no durable queue), a message past `NOTIFY`'s 8000
//! bytes included; and the dashboard lists, retries and discards a durable queue's dead jobs.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt as _;
use hosted_durable_tests::postgres::Postgres;
use hosted_durable_tests::{JobState, Settings, Store, Tuning, eventually};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;

struct Replica {
    child: Child,
    address: String,
    log: Arc<Mutex<String>>,
}

impl Replica {
    async fn start(settings: &Settings, env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_durable-web"))
            .arg("--web.bind=127.0.0.1:0")
            .envs(settings.env())
            .env("HOSTED_DURABLE__POOL_SIZE", "2")
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
    let settings = Settings::default()
        .with("durable.url", server.url())
        .with("durable.schema", server.schema("readiness"))
        .with("durable.poll_interval", "200ms");
    let replica = Replica::start(&settings, &[]).await;
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
    let Some(store) = Postgres::fresh("hub", Tuning::default()).await else {
        return;
    };
    let settings = store.settings();
    let on = [("HOSTED_DURABLE__HUB_BACKPLANE", "true")];
    let a = Replica::start(&settings, &on).await;
    // A web application with `[durable]` and no durable queue has the backplane too.
    let b = Replica::start(
        &settings,
        &[
            ("HOSTED_DURABLE__HUB_BACKPLANE", "true"),
            ("HOSTED_SERVICES__PINGS__ENABLED", "false"),
        ],
    )
    .await;
    assert!(
        b.log()
            .contains("the hub broadcasts to every replica through PostgreSQL")
            && !b.log().contains("durable queue: claiming jobs"),
        "the backplane without a durable queue: {}",
        b.log()
    );
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

/// The dashboard's dead letters of the queue `pings`, with the operators' credentials.
struct Dashboard {
    client: reqwest::Client,
    dead: String,
}

impl Dashboard {
    fn of(replica: &Replica) -> Self {
        Self {
            client: reqwest::Client::new(),
            dead: format!("http://{}/hosted/queues/pings/dead", replica.address),
        }
    }

    async fn dead_letters(&self) -> Vec<serde_json::Value> {
        let response = self
            .client
            .get(&self.dead)
            .basic_auth("ops", Some("secret"))
            .send()
            .await
            .expect("a response");
        assert_eq!(response.status(), 200);
        response.json().await.expect("JSON")
    }

    /// Retries or discards a dead job; the answer's status.
    async fn act(&self, id: i64, action: &str, header: bool) -> u16 {
        let mut request = self
            .client
            .post(format!("{}/{id}/{action}", self.dead))
            .basic_auth("ops", Some("secret"));
        if header {
            request = request.header("x-hosted-dashboard", "1");
        }
        request.send().await.expect("a response").status().as_u16()
    }
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_lists_retries_and_discards_dead_jobs_in_the_store() {
    let Some(store) = Postgres::fresh("dashboard", Tuning::default()).await else {
        return;
    };
    let replica = Replica::start(
        &store.settings(),
        &[("HOSTED_WEB__DASHBOARD__ENABLED", "true")],
    )
    .await;
    let backend = store.backend().await;
    // Dead at once: a payload that is not a `Ping`; dead after its one attempt: one that fails
    // for two more seconds.
    let broken = backend
        .enqueue("pings", r#""not a ping""#, 1)
        .await
        .unwrap();
    let until = now_ms() + 2000;
    let failing = backend
        .enqueue("pings", &format!(r#"{{"fail_until_ms":{until}}}"#), 1)
        .await
        .unwrap();
    let dashboard = Dashboard::of(&replica);
    let list = || dashboard.dead_letters();
    assert!(
        eventually(Duration::from_secs(20), || async {
            list().await.len() == 2
        })
        .await,
        "both dead: {}",
        replica.log()
    );
    let listed = list().await;
    let by_id = |id: i64| {
        listed
            .iter()
            .find(|job| job["id"] == id)
            .unwrap_or_else(|| panic!("job {id} in {listed:?}"))
    };
    assert!(
        by_id(broken)["error"]
            .as_str()
            .is_some_and(|error| error.contains("no longer deserialises")),
        "{listed:?}"
    );
    assert_eq!(by_id(failing)["error"], "not yet");
    assert_eq!(by_id(failing)["attempts"], 1);
    assert_eq!(by_id(broken)["payload"], r#""not a ping""#);

    // Without the credentials, or without the header a cross-site form cannot send: refused.
    let (client, dead) = (&dashboard.client, &dashboard.dead);
    assert_eq!(client.get(dead).send().await.unwrap().status(), 401);
    let act = |id: i64, action: &'static str, header: bool| dashboard.act(id, action, header);
    assert_eq!(act(broken, "discard", false).await, 403);
    assert_eq!(
        client
            .post(format!("{dead}/{broken}/discard"))
            .header("x-hosted-dashboard", "1")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(store.jobs().await.len(), 2, "nothing done when refused");

    assert_eq!(act(broken, "discard", true).await, 200);
    let rows = store.jobs().await;
    assert_eq!(rows.len(), 1, "the discarded job's row is gone");
    assert_eq!((rows[0].id, rows[0].state), (failing, JobState::Dead));
    assert_eq!(act(broken, "discard", true).await, 404, "no longer there");
    assert_eq!(act(broken, "retry", true).await, 404);

    // Once the cause is gone, a retry runs it again, with a fresh count of attempts.
    let wait = until.saturating_sub(now_ms());
    tokio::time::sleep(Duration::from_millis(u64::try_from(wait).unwrap() + 100)).await;
    assert_eq!(act(failing, "retry", true).await, 200);
    assert!(
        eventually(Duration::from_secs(20), || async {
            store.jobs().await[0].state == JobState::Completed
        })
        .await,
        "retried and completed: {}",
        replica.log()
    );
    assert_eq!(
        store.jobs().await[0].attempt,
        1,
        "a fresh count of attempts"
    );
    assert_eq!(act(failing, "retry", true).await, 404, "no longer dead");
    assert!(list().await.is_empty());
    assert!(
        replica
            .log()
            .contains("dead letter handled from the dashboard"),
        "{}",
        replica.log()
    );
    assert_eq!(replica.terminate().await, Some(0));
}
