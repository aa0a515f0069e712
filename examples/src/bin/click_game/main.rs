//! Seed 001's click game: players register and log in, click a big button as often as they can
//! during a round, and every 30 s a timed service closes the round, finds the winner(s) and
//! tells every connected page through the hub.
//!
//! ```sh
//! cargo run -p hosted-examples --bin click_game
//! # then open http://127.0.0.1:8080 in two browser windows
//! ```
//!
//! Settings, all overridable like any other: `--web.bind=127.0.0.1:8080`,
//! `--game.database=click_game.db`, `--services.click_game.rounds.every=30s`.
//!
//! What the seed does by hand in .NET, and where it is here:
//!
//! * the round service is a singleton *and* hosted (`AddSingleton` + `AddHostedService`): the
//!   [`Rounds`] singleton holds the round's state and is injected wherever the time left is
//!   needed; the `#[timed]` function [`rounds`] drives it;
//! * the scoped `DbContext`: [`UnitOfWork`], one SQLite transaction per scope, committed when
//!   the request (or the round's scope) succeeds and rolled back when it fails;
//! * `IHubContext<GameHub>`: `Hub<ToClient>`, injected into the round service and the
//!   handlers.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::rand_core::{OsRng, RngCore as _};
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use hosted::di::InjectError;
use hosted::service::ServiceInfo;
use hosted::web::{Client, Hub, HubUpgrade, Injected, Routes};
use hosted::{Config, Dispose, ScopeExit, ScopeFactory, Section, Tick};
use rusqlite::{Connection, OptionalExtension as _, params};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

/// The `game` configuration section.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct GameSettings {
    /// The SQLite database file, created if missing.
    database: PathBuf,
}

impl Default for GameSettings {
    fn default() -> Self {
        Self {
            database: PathBuf::from("click_game.db"),
        }
    }
}

impl Section for GameSettings {
    const KEY: &'static str = "game";
}

/// The database file, with its tables, and an open round, created before any service starts.
#[derive(Debug)]
struct Database {
    path: PathBuf,
}

#[hosted::singleton]
fn database(settings: Config<GameSettings>) -> rusqlite::Result<Database> {
    let connection = Connection::open(&settings.database)?;
    connection.execute_batch(
        "PRAGMA journal_mode = WAL;
         CREATE TABLE IF NOT EXISTS players (
             id INTEGER PRIMARY KEY,
             name TEXT NOT NULL UNIQUE,
             hash TEXT
         );
         CREATE TABLE IF NOT EXISTS tokens (
             token TEXT PRIMARY KEY,
             player INTEGER NOT NULL REFERENCES players(id)
         );
         CREATE TABLE IF NOT EXISTS rounds (
             id INTEGER PRIMARY KEY,
             closed_at TEXT,
             winners TEXT,
             clicks INTEGER
         );
         CREATE TABLE IF NOT EXISTS scores (
             round INTEGER NOT NULL REFERENCES rounds(id),
             player INTEGER NOT NULL REFERENCES players(id),
             clicks INTEGER NOT NULL,
             PRIMARY KEY (round, player)
         );
         INSERT INTO rounds (closed_at)
             SELECT NULL WHERE NOT EXISTS (SELECT 1 FROM rounds WHERE closed_at IS NULL);",
    )?;
    tracing::info!(path = %settings.database.display(), "database ready");
    Ok(Database {
        path: settings.database.clone(),
    })
}

/// One SQLite transaction per scope: the seed's scoped `DbContext`. Every request, every client
/// message and every round gets its own.
struct UnitOfWork {
    connection: Mutex<Connection>,
}

#[hosted::scoped]
fn unit_of_work(database: Arc<Database>) -> rusqlite::Result<UnitOfWork> {
    let connection = Connection::open(&database.path)?;
    connection.busy_timeout(Duration::from_secs(5))?;
    // IMMEDIATE: writers queue up on the busy timeout instead of failing to upgrade a read.
    connection.execute_batch("BEGIN IMMEDIATE")?;
    Ok(UnitOfWork {
        connection: Mutex::new(connection),
    })
}

impl Dispose for UnitOfWork {
    async fn dispose(&self, exit: ScopeExit) {
        let connection = self.lock();
        let statement = match exit {
            ScopeExit::Succeeded => "COMMIT",
            ScopeExit::Failed => "ROLLBACK",
        };
        if let Err(error) = connection.execute_batch(statement) {
            tracing::error!(%error, statement, "the unit of work could not end");
        }
    }
}

/// The result of a closed round.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
struct RoundResult {
    round: i64,
    /// Empty when nobody clicked.
    winners: Vec<String>,
    clicks: i64,
}

#[derive(Debug)]
struct PlayerRow {
    id: i64,
    name: String,
}

impl UnitOfWork {
    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Claims a name; `None` when it is taken.
    fn claim_name(&self, name: &str) -> rusqlite::Result<Option<i64>> {
        let connection = self.lock();
        let inserted = connection.execute(
            "INSERT INTO players (name) VALUES (?1) ON CONFLICT (name) DO NOTHING",
            [name],
        )?;
        Ok((inserted == 1).then(|| connection.last_insert_rowid()))
    }

    fn set_hash(&self, player: i64, hash: &str) -> rusqlite::Result<()> {
        self.lock().execute(
            "UPDATE players SET hash = ?2 WHERE id = ?1",
            params![player, hash],
        )?;
        Ok(())
    }

    fn hash_of(&self, name: &str) -> rusqlite::Result<Option<(i64, Option<String>)>> {
        self.lock()
            .query_row(
                "SELECT id, hash FROM players WHERE name = ?1",
                [name],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()
    }

    fn add_token(&self, player: i64, token: &str) -> rusqlite::Result<()> {
        self.lock().execute(
            "INSERT INTO tokens (token, player) VALUES (?1, ?2)",
            params![token, player],
        )?;
        Ok(())
    }

    fn player_by_token(&self, token: &str) -> rusqlite::Result<Option<PlayerRow>> {
        self.lock()
            .query_row(
                "SELECT players.id, players.name FROM tokens JOIN players ON players.id = tokens.player
                 WHERE tokens.token = ?1",
                [token],
                |row| {
                    Ok(PlayerRow {
                        id: row.get(0)?,
                        name: row.get(1)?,
                    })
                },
            )
            .optional()
    }

    fn open_round(&self) -> rusqlite::Result<i64> {
        self.lock().query_row(
            "SELECT id FROM rounds WHERE closed_at IS NULL ORDER BY id DESC LIMIT 1",
            [],
            |row| row.get(0),
        )
    }

    /// Adds one click to the player's score in the open round; returns the new score.
    fn click(&self, player: i64) -> rusqlite::Result<(i64, i64)> {
        let round = self.open_round()?;
        let clicks = self.lock().query_row(
            "INSERT INTO scores (round, player, clicks) VALUES (?1, ?2, 1)
             ON CONFLICT (round, player) DO UPDATE SET clicks = clicks + 1
             RETURNING clicks",
            params![round, player],
            |row| row.get(0),
        )?;
        Ok((round, clicks))
    }

    fn score(&self, name: &str) -> rusqlite::Result<Option<i64>> {
        let round = self.open_round()?;
        self.lock()
            .query_row(
                "SELECT COALESCE((SELECT clicks FROM scores WHERE round = ?1 AND player = players.id), 0)
                 FROM players WHERE name = ?2",
                params![round, name],
                |row| row.get(0),
            )
            .optional()
    }

    /// Closes the open round with its winners (every player with the top score) and opens the
    /// next one.
    fn close_round(&self) -> rusqlite::Result<RoundResult> {
        let round = self.open_round()?;
        let connection = self.lock();
        let clicks: i64 = connection.query_row(
            "SELECT COALESCE(MAX(clicks), 0) FROM scores WHERE round = ?1",
            [round],
            |row| row.get(0),
        )?;
        let mut winners = Vec::new();
        if clicks > 0 {
            let mut statement = connection.prepare(
                "SELECT players.name FROM scores JOIN players ON players.id = scores.player
                 WHERE scores.round = ?1 AND scores.clicks = ?2 ORDER BY players.name",
            )?;
            for name in statement.query_map(params![round, clicks], |row| row.get(0))? {
                winners.push(name?);
            }
        }
        connection.execute(
            "UPDATE rounds SET closed_at = datetime('now'), winners = ?2, clicks = ?3 WHERE id = ?1",
            params![round, winners.join(","), clicks],
        )?;
        connection.execute("INSERT INTO rounds (closed_at) VALUES (NULL)", [])?;
        Ok(RoundResult {
            round,
            winners,
            clicks,
        })
    }
}

/// What the server tells the pages over the hub.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ToClient {
    /// The player's own score in the current round (to every tab of that player).
    Score { round: i64, clicks: i64 },
    /// A round ended; the next one runs for `ms_left`.
    RoundOver {
        result: RoundResult,
        next_round: i64,
        ms_left: u64,
    },
}

/// What a page may send over the hub: a click, as over HTTP.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum FromClient {
    Click,
}

/// The round service's state, injectable: the seed registers its `BackgroundService` as a
/// singleton too, so the hub can ask it for the time left.
#[hosted::singleton]
#[derive(Debug)]
struct Rounds {
    #[hosted(default)]
    state: Mutex<RoundState>,
}

#[derive(Debug, Default)]
struct RoundState {
    ends_at: Option<Instant>,
    last: Option<RoundResult>,
}

impl Rounds {
    /// The time left in the current round; `None` before the round service's first tick.
    fn time_left(&self) -> Option<Duration> {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state
            .ends_at
            .map(|ends_at| ends_at.saturating_duration_since(Instant::now()))
    }

    fn last(&self) -> Option<RoundResult> {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .last
            .clone()
    }

    fn begin(&self, ends_at: Instant, last: Option<RoundResult>) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.ends_at = Some(ends_at);
        if last.is_some() {
            state.last = last;
        }
    }
}

/// The round service: every period (30 s, as in the seed), it closes the round in a scope of
/// its own, then tells every page who won. Its first tick, at startup, only starts the clock.
#[hosted::timed(every = "30s", name = "click_game::rounds")]
async fn rounds(
    tick: Tick,
    info: ServiceInfo,
    rounds: Arc<Rounds>,
    scopes: ScopeFactory,
    hub: Hub<ToClient>,
) -> anyhow::Result<()> {
    let period = info
        .settings()
        .duration("every")
        .unwrap_or(Duration::from_secs(30));
    let ends_at = tick.scheduled() + period;
    if tick.number() == 1 {
        rounds.begin(ends_at, None);
        return Ok(());
    }
    // The seed's `using (var scope = _serviceScopeFactory.CreateScope())`: committed before the
    // pages hear about it.
    let scope = scopes.create_scope();
    let unit = scope.resolve::<Arc<UnitOfWork>>().await?;
    let closed = unit
        .close_round()
        .and_then(|result| Ok((result, unit.open_round()?)));
    drop(unit);
    let (result, next_round) = match closed {
        Ok(closed) => {
            scope.end(ScopeExit::Succeeded).await;
            closed
        }
        Err(error) => {
            scope.end(ScopeExit::Failed).await;
            return Err(error.into());
        }
    };
    match result.winners.as_slice() {
        [] => tracing::info!(round = result.round, "round over: no clicks, no winner"),
        winners => tracing::info!(
            round = result.round,
            winners = %winners.join(", "),
            clicks = result.clicks,
            "round over"
        ),
    }
    rounds.begin(ends_at, Some(result.clone()));
    let ms_left = u64::try_from(rounds.time_left().unwrap_or_default().as_millis()).unwrap_or(0);
    hub.send_all(&ToClient::RoundOver {
        result,
        next_round,
        ms_left,
    })?;
    Ok(())
}

// ----- the API -----

/// An error answered with its status and `{"error": message}`.
#[derive(Debug)]
struct ApiError(StatusCode, String);

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self(status, message.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

impl From<rusqlite::Error> for ApiError {
    fn from(error: rusqlite::Error) -> Self {
        tracing::error!(%error, "database error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "database error")
    }
}

impl From<InjectError> for ApiError {
    fn from(error: InjectError) -> Self {
        tracing::error!(%error, "injection failed");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, error.to_string())
    }
}

/// A JSON body whose every rejection is a 400 with the reason (axum answers 415 or 422 for
/// some).
struct Body<T>(T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(rejection @ JsonRejection::BytesRejection(_)) => {
                Err(ApiError::new(rejection.status(), rejection.body_text()))
            }
            Err(rejection) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                rejection.body_text(),
            )),
        }
    }
}

/// The authenticated player: from `Authorization: Bearer <token>`, or `?token=` on the hub's
/// upgrade (browsers cannot set headers on a WebSocket).
#[derive(Debug)]
struct Player {
    id: i64,
    name: String,
}

impl<S: Send + Sync> FromRequestParts<S> for Player {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let header_token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::to_owned);
        let query_token = parts.uri.query().and_then(|query| {
            query
                .split('&')
                .find_map(|pair| pair.strip_prefix("token="))
                .map(str::to_owned)
        });
        let Some(token) = header_token.or(query_token) else {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "missing token: log in, then send `Authorization: Bearer <token>`",
            ));
        };
        let Injected(unit) = Injected::<Arc<UnitOfWork>>::from_request_parts(parts, state)
            .await
            .map_err(|rejection| {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, rejection.to_string())
            })?;
        match unit.player_by_token(&token)? {
            Some(PlayerRow { id, name }) => Ok(Self { id, name }),
            None => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid token: log in again",
            )),
        }
    }
}

#[derive(Debug, Deserialize)]
struct Credentials {
    name: String,
    password: String,
}

fn hash_password(password: &str) -> Result<String, ApiError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|error| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()))
}

fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

fn new_token() -> String {
    let mut bytes = [0_u8; 32];
    OsRng.fill_bytes(&mut bytes);
    bytes
        .iter()
        .fold(String::with_capacity(64), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}

/// Registers a player. The name is claimed first, then the password checked and hashed: a
/// refused password rolls the claim back with the request's unit of work.
async fn register(
    Injected(unit): Injected<Arc<UnitOfWork>>,
    Body(credentials): Body<Credentials>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let name = credentials.name.trim().to_owned();
    if name.is_empty() || name.len() > 32 || name.contains(',') {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "`name` must be 1 to 32 characters, without commas",
        ));
    }
    let Some(player) = unit.claim_name(&name)? else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("`{name}` is taken"),
        ));
    };
    if credentials.password.chars().count() < 8 {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "`password` must be at least 8 characters",
        ));
    }
    let password = credentials.password;
    let hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|error| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()))??;
    unit.set_hash(player, &hash)?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({ "name": name })),
    ))
}

async fn login(
    Injected(unit): Injected<Arc<UnitOfWork>>,
    Body(credentials): Body<Credentials>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let refused = || ApiError::new(StatusCode::UNAUTHORIZED, "wrong name or password");
    let Some((player, Some(hash))) = unit.hash_of(credentials.name.trim())? else {
        return Err(refused());
    };
    let password = credentials.password;
    let valid = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
        .await
        .unwrap_or(false);
    if !valid {
        return Err(refused());
    }
    let token = new_token();
    unit.add_token(player, &token)?;
    Ok(Json(
        serde_json::json!({ "token": token, "name": credentials.name.trim() }),
    ))
}

/// One click, over HTTP.
async fn click(
    player: Player,
    Injected(unit): Injected<Arc<UnitOfWork>>,
    Injected(hub): Injected<Hub<ToClient>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let (round, clicks) = unit.click(player.id)?;
    let _ = hub.send_user(&player.name, &ToClient::Score { round, clicks });
    Ok(Json(
        serde_json::json!({ "round": round, "clicks": clicks }),
    ))
}

/// One click, over the hub: the same work in a run of its own.
async fn click_over_hub(message: FromClient, client: Client) -> anyhow::Result<()> {
    let FromClient::Click = message;
    let unit = client.resolve::<Arc<UnitOfWork>>().await?;
    let hub = client.resolve::<Hub<ToClient>>().await?;
    let name = client.user().unwrap_or_default();
    let Some((player, _)) = unit.hash_of(name)? else {
        anyhow::bail!("unknown player `{name}`");
    };
    let (round, clicks) = unit.click(player)?;
    hub.send_user(name, &ToClient::Score { round, clicks })?;
    Ok(())
}

/// The current round: its number, the time left, the player's score and the last result.
async fn round(
    player: Player,
    Injected(unit): Injected<Arc<UnitOfWork>>,
    Injected(rounds): Injected<Arc<Rounds>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let round = unit.open_round()?;
    let clicks = unit.score(&player.name)?.unwrap_or(0);
    let ms_left = rounds
        .time_left()
        .map(|left| u64::try_from(left.as_millis()).unwrap_or(u64::MAX));
    Ok(Json(serde_json::json!({
        "round": round,
        "ms_left": ms_left,
        "clicks": clicks,
        "last": rounds.last(),
    })))
}

/// A player's score in the current round.
async fn player_score(
    _player: Player,
    Injected(unit): Injected<Arc<UnitOfWork>>,
    Path(name): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    match unit.score(&name)? {
        Some(clicks) => Ok(Json(serde_json::json!({ "name": name, "clicks": clicks }))),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no player named `{name}`"),
        )),
    }
}

/// The hub: authenticated by the token in the query, the connection belongs to the player.
async fn hub(player: Player, upgrade: HubUpgrade) -> Response {
    upgrade
        .user(player.name)
        .on_message(click_over_hub)
        .accept()
}

async fn page() -> Html<&'static str> {
    Html(include_str!("index.html"))
}

#[hosted::routes]
fn game() -> Routes {
    Routes::new()
        .route("/", get(page))
        .route("/api/register", post(register))
        .route("/api/login", post(login))
        .route("/api/click", post(click))
        .route("/api/round", get(round))
        .route("/api/players/{name}", get(player_score))
        .route("/hub", get(hub))
        .needs::<Arc<UnitOfWork>>()
        .needs::<Arc<Rounds>>()
        .needs::<Hub<ToClient>>()
}

fn main() {
    hosted::run!();
}
