//! Seed 001's click game as a real process: the API (accounts, every auth failure, bad input,
//! clicks, the per-request unit of work) and the rounds (winners, ties, an empty round) told
//! over the hub.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt as _, StreamExt as _};
use hosted_tests::process::{HANG, Process};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// A database path of the test's own, removed at the end.
struct TempDatabase(PathBuf);

impl TempDatabase {
    fn new(name: &str) -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        Self(std::env::temp_dir().join(format!("hosted-{name}-{}-{nanos}.db", std::process::id())))
    }
}

impl Drop for TempDatabase {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.0.display()));
        }
    }
}

struct Game {
    process: Process,
    base: String,
    http: reqwest::Client,
    _database: TempDatabase,
}

impl Game {
    fn start(name: &str, round: &str) -> Self {
        let database = TempDatabase::new(name);
        let process = Process::spawn(
            env!("CARGO_BIN_EXE_click_game"),
            &[
                "--web.bind=127.0.0.1:0",
                &format!("--game.database={}", database.0.display()),
                &format!("--services.click_game.rounds.every={round}"),
            ],
        );
        let line = process.wait_for_line("listening on http://", HANG);
        let address = line
            .split("listening on http://")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap()
            .to_owned();
        process.wait_for_line("application started", HANG);
        Self {
            process,
            base: format!("http://{address}"),
            http: reqwest::Client::new(),
            _database: database,
        }
    }

    async fn post(&self, path: &str, token: Option<&str>, body: &str) -> (u16, Value) {
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut request = self.http.get(format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Registers and logs in; returns the token.
    async fn player(&self, name: &str) -> String {
        let credentials = json!({ "name": name, "password": "correct horse" }).to_string();
        let (status, _) = self.post("/api/register", None, &credentials).await;
        assert_eq!(status, 201);
        let (status, session) = self.post("/api/login", None, &credentials).await;
        assert_eq!(status, 200, "{session}");
        session["token"].as_str().unwrap().to_owned()
    }

    async fn click(&self, token: &str, times: usize) {
        for _ in 0..times {
            let (status, body) = self.post("/api/click", Some(token), "").await;
            assert_eq!(status, 200, "{body}");
        }
    }

    async fn hub(&self, token: &str) -> Socket {
        let url = format!(
            "{}/hub?token={token}",
            self.base.replace("http://", "ws://")
        );
        tokio_tungstenite::connect_async(url).await.unwrap().0
    }

    fn stop(mut self) {
        self.process.signal("TERM");
        assert_eq!(
            self.process.wait_exit(HANG),
            0,
            "{}",
            self.process.transcript()
        );
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next hub message of type `kind`.
async fn next_of(socket: &mut Socket, kind: &str) -> Value {
    tokio::time::timeout(HANG, async {
        loop {
            let Some(Ok(Message::Text(text))) = socket.next().await else {
                panic!("the hub closed");
            };
            let message: Value = serde_json::from_str(text.as_str()).unwrap();
            if message["type"] == kind {
                return message;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no `{kind}` message"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(
    clippy::too_many_lines,
    reason = "one scenario, step by step against one process"
)]
async fn accounts_tokens_and_clicks() {
    let game = Game::start("click-api", "1h");

    let page = game.http.get(&game.base).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("id=\"click\""));

    let ada = json!({ "name": "ada", "password": "correct horse" }).to_string();
    assert_eq!(game.post("/api/register", None, &ada).await.0, 201);
    let (status, body) = game.post("/api/register", None, &ada).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("`ada` is taken"))
    );

    // Bad input: a 400 with the reason, nothing stored.
    let (status, body) = game.post("/api/register", None, "{\"name\":").await;
    assert_eq!(status, 400);
    assert!(!body["error"].as_str().unwrap().is_empty(), "{body}");
    let (status, body) = game.post("/api/register", None, r#"{"name":"bob"}"#).await;
    assert_eq!(status, 400);
    assert!(
        body["error"].as_str().unwrap().contains("password"),
        "{body}"
    );
    let (status, _) = game
        .post(
            "/api/register",
            None,
            r#"{"name":"","password":"correct horse"}"#,
        )
        .await;
    assert_eq!(status, 400);

    // The name is claimed, then the short password refused: the request fails and its unit of
    // work rolls the claim back, so the name is still free.
    let (status, body) = game
        .post(
            "/api/register",
            None,
            r#"{"name":"eve","password":"short"}"#,
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("`password` must be at least 8 characters"))
    );
    assert_eq!(
        game.post(
            "/api/register",
            None,
            r#"{"name":"eve","password":"long enough"}"#
        )
        .await
        .0,
        201,
        "the failed request's claim was rolled back"
    );

    // Logging in.
    let (status, _) = game
        .post(
            "/api/login",
            None,
            r#"{"name":"ada","password":"wrong password"}"#,
        )
        .await;
    assert_eq!(status, 401);
    let (status, _) = game
        .post(
            "/api/login",
            None,
            r#"{"name":"nobody","password":"correct horse"}"#,
        )
        .await;
    assert_eq!(status, 401);
    let (status, session) = game.post("/api/login", None, &ada).await;
    assert_eq!(status, 200);
    let token = session["token"].as_str().unwrap().to_owned();

    // Every game call needs the token.
    let (status, body) = game.post("/api/click", None, "").await;
    assert_eq!(status, 401);
    assert!(body["error"].as_str().unwrap().contains("missing token"));
    let (status, body) = game.post("/api/click", Some("not-a-token"), "").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid token: log in again"))
    );
    assert_eq!(game.get("/api/round", None).await.0, 401);
    assert_eq!(game.get("/api/players/ada", None).await.0, 401);
    let hub = format!("{}/hub", game.base.replace("http://", "ws://"));
    assert!(
        tokio_tungstenite::connect_async(hub).await.is_err(),
        "the hub needs the token too"
    );

    // Clicks count in the current round, committed per request.
    let (status, first) = game.post("/api/click", Some(&token), "").await;
    assert_eq!((status, first["clicks"].as_i64()), (200, Some(1)));
    let (_, second) = game.post("/api/click", Some(&token), "").await;
    assert_eq!(second["clicks"].as_i64(), Some(2));
    let (status, score) = game.get("/api/players/ada", Some(&token)).await;
    assert_eq!((status, score["clicks"].as_i64()), (200, Some(2)));
    let (status, body) = game.get("/api/players/nobody", Some(&token)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("no player named `nobody`"))
    );

    // The round service is injectable: the time left in the round.
    let (status, round) = game.get("/api/round", Some(&token)).await;
    assert_eq!(status, 200);
    assert_eq!(round["clicks"].as_i64(), Some(2));
    let left = round["ms_left"].as_u64().expect("the round clock runs");
    assert!(left > 0 && left <= 3_600_000, "{round}");
    assert!(round["last"].is_null());
    game.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rounds_end_with_their_winners_ties_included_and_say_when_nobody_clicked() {
    let game = Game::start("click-rounds", "2s");
    let ada = game.player("ada").await;
    let bob = game.player("bob").await;
    let cy = game.player("cy").await;
    let mut ada_page = game.hub(&ada).await;
    let mut bob_page = game.hub(&bob).await;

    // Line up with a round's start, then play a whole round.
    next_of(&mut ada_page, "round_over").await;
    next_of(&mut bob_page, "round_over").await;
    game.click(&ada, 3).await;
    game.click(&bob, 3).await;
    game.click(&cy, 1).await;
    let score = next_of(&mut bob_page, "score").await;
    assert_eq!(
        score["clicks"].as_i64(),
        Some(1),
        "scores reach the player's page"
    );
    let tie = next_of(&mut ada_page, "round_over").await;
    assert_eq!(tie["result"]["winners"], json!(["ada", "bob"]), "{tie}");
    assert_eq!(tie["result"]["clicks"], 3);
    let on_bob = next_of(&mut bob_page, "round_over").await;
    assert_eq!(on_bob["result"], tie["result"]);
    assert!(tie["ms_left"].as_u64().unwrap() <= 2000);

    // Nobody clicks: no winner, and it says so.
    let empty = next_of(&mut ada_page, "round_over").await;
    assert_eq!(empty["result"]["winners"], json!([]), "{empty}");
    assert_eq!(empty["result"]["clicks"], 0);
    assert_eq!(
        next_of(&mut bob_page, "round_over").await["result"],
        empty["result"]
    );
    assert_eq!(
        empty["result"]["round"].as_i64(),
        tie["result"]["round"].as_i64().map(|round| round + 1)
    );

    // Clicks over the socket count like clicks over HTTP.
    for _ in 0..2 {
        ada_page
            .send(Message::Text(r#"{"type":"click"}"#.into()))
            .await
            .unwrap();
    }
    game.click(&bob, 1).await;
    let won = next_of(&mut bob_page, "round_over").await;
    assert_eq!(won["result"]["winners"], json!(["ada"]), "{won}");
    assert_eq!(won["result"]["clicks"], 2);
    let (_, round) = game.get("/api/round", Some(&cy)).await;
    assert_eq!(round["last"]["winners"], json!(["ada"]), "{round}");
    game.process
        .wait_for_line("winners=ada, bob clicks=3", HANG);
    game.process
        .wait_for_line("round over: no clicks, no winner", HANG);
    game.stop();
}
