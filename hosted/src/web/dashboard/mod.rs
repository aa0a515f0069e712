//! The operator's dashboard: one page on the web host showing the host's status live over
//! server-sent events, behind the application's [`Authorizer`](super::Authorizer). Its guide is
//! [`docs::dashboard`](crate::docs::dashboard).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Authorized;
use super::extract::Injected;
use crate::service::ApplicationLifetime;
use crate::status::{HostStatus, StatusSnapshot};

const PAGE: &str = include_str!("page.html");

/// How often the event stream sends a snapshot.
const PERIOD: Duration = Duration::from_secs(1);

/// The `web.dashboard` configuration section.
///
/// ```toml
/// [web.dashboard]
/// enabled = true          # off by default
/// path = "/hosted"        # where the page is served
/// ```
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct DashboardOptions {
    /// Whether the page is served. Default `false`; when `true`, an
    /// [`Authorizer`](super::Authorizer) must be registered or the server does not start.
    pub enabled: bool,
    /// The page's path; its event stream is `{path}/events`. Default `/hosted`.
    pub path: String,
}

impl Default for DashboardOptions {
    fn default() -> Self {
        Self {
            enabled: false,
            path: "/hosted".to_owned(),
        }
    }
}

impl DashboardOptions {
    pub(crate) fn check(&self) -> Result<(), String> {
        if !self.path.starts_with('/') || self.path.len() < 2 || self.path.ends_with('/') {
            return Err(format!(
                "`dashboard.path` must start with `/` and not end with one, like \"/hosted\", got {:?}",
                self.path
            ));
        }
        Ok(())
    }
}

/// The dashboard's routes under `path`.
pub(crate) fn routes(path: &str) -> axum::Router {
    axum::Router::new()
        .route(path, get(page))
        .route(&format!("{path}/events"), get(events))
        .route(&format!("{path}/status"), get(status))
        .route(&format!("{path}/queues/{{queue}}/dead"), get(dead_letters))
        .route(
            &format!("{path}/queues/{{queue}}/dead/{{id}}/{{action}}"),
            post(act_on_dead),
        )
}

async fn page(_: Authorized) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:",
            ),
        ],
        PAGE,
    )
        .into_response()
}

async fn status(_: Authorized, Injected(status): Injected<Arc<HostStatus>>) -> Json<Value> {
    Json(to_json(&status.snapshot()))
}

async fn events(
    _: Authorized,
    Injected(status): Injected<Arc<HostStatus>>,
    Injected(lifetime): Injected<ApplicationLifetime>,
) -> Sse<impl futures_util::Stream<Item = Result<Event, Infallible>>> {
    let stopping = lifetime.stop_requested_token().clone();
    let stream = futures_util::stream::unfold(
        (status, stopping, true),
        |(status, stopping, first)| async move {
            if !first {
                // The stream ends with the host's stop, so it never holds the server's drain.
                tokio::select! {
                    () = stopping.cancelled() => return None,
                    () = tokio::time::sleep(PERIOD) => {}
                }
            }
            let event = Event::default()
                .event("status")
                .data(to_json(&status.snapshot()).to_string());
            Some((Ok(event), (status, stopping, false)))
        },
    );
    Sse::new(stream).keep_alive(KeepAlive::default())
}

async fn dead_letters(
    _: Authorized,
    Injected(status): Injected<Arc<HostStatus>>,
    Path(queue): Path<String>,
) -> Response {
    let Some(store) = status.dead_letters(&queue) else {
        return (StatusCode::NOT_FOUND, "this queue keeps no dead letters\n").into_response();
    };
    match store.list(50).await {
        Ok(jobs) => Json(
            jobs.iter()
                .map(|job| {
                    json!({
                        "id": job.id,
                        "attempts": job.attempts,
                        "error": job.error,
                        "payload": job.payload.chars().take(200).collect::<String>(),
                    })
                })
                .collect::<Vec<_>>(),
        )
        .into_response(),
        Err(error) => unavailable(&*error),
    }
}

async fn act_on_dead(
    _: Authorized,
    Injected(status): Injected<Arc<HostStatus>>,
    headers: HeaderMap,
    Path((queue, id, action)): Path<(String, i64, String)>,
) -> Response {
    // A cross-site form cannot set a header: with it, a page elsewhere cannot make an operator's
    // browser retry or discard (the credentials of Basic authentication are sent by the browser).
    if !headers.contains_key("x-hosted-dashboard") {
        return (
            StatusCode::FORBIDDEN,
            "send the `x-hosted-dashboard` header\n",
        )
            .into_response();
    }
    let Some(store) = status.dead_letters(&queue) else {
        return (StatusCode::NOT_FOUND, "this queue keeps no dead letters\n").into_response();
    };
    let done = match action.as_str() {
        "retry" => store.retry(id).await,
        "discard" => store.discard(id).await,
        _ => {
            return (
                StatusCode::NOT_FOUND,
                "the actions are `retry` and `discard`\n",
            )
                .into_response();
        }
    };
    match done {
        Ok(true) => {
            tracing::info!(
                queue,
                job = id,
                action,
                "dead letter handled from the dashboard"
            );
            (StatusCode::OK, "done\n").into_response()
        }
        Ok(false) => (StatusCode::NOT_FOUND, "no dead job has that id\n").into_response(),
        Err(error) => unavailable(&*error),
    }
}

fn unavailable(error: &(dyn std::error::Error + Send + Sync)) -> Response {
    tracing::warn!(%error, "the dead letters are not reachable");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        format!("the store is not reachable: {error}\n"),
    )
        .into_response()
}

fn millis(at: Option<SystemTime>) -> Value {
    at.and_then(|at| at.duration_since(UNIX_EPOCH).ok())
        .map_or(Value::Null, |since| {
            json!(u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
        })
}

fn seconds(duration: Option<Duration>) -> Value {
    duration.map_or(Value::Null, |duration| json!(duration.as_secs_f64()))
}

/// The snapshot as the page reads it.
pub(crate) fn to_json(snapshot: &StatusSnapshot) -> Value {
    let services: Vec<Value> = snapshot
        .services
        .iter()
        .map(|service| {
            json!({
                "name": service.name,
                "kind": service.kind.to_string(),
                "state": service.state.as_str(),
                "runs": service.runs,
                "failures": service.failures,
                "restarts": service.restarts,
                "last_error": service.last_error.as_ref().map(|error| json!({
                    "message": error.message,
                    "at": millis(Some(error.at)),
                })),
                "last_run_seconds": seconds(service.last_run_duration),
                "timer": service.timer.as_ref().map(|timer| json!({
                    "schedule": timer.schedule,
                    "ticks": timer.ticks,
                    "missed": timer.missed,
                    "skipped": timer.skipped,
                    "last_tick": millis(timer.last_tick),
                    "next_tick": millis(timer.next_tick),
                    "lateness_seconds": timer.last_lateness.as_secs_f64(),
                    "max_lateness_seconds": timer.max_lateness.as_secs_f64(),
                })),
                "queue": service.queue.as_ref().map(|queue| json!({
                    "depth": queue.depth,
                    "capacity": queue.capacity,
                    "oldest_waiting_seconds": seconds(queue.oldest_waiting),
                    "in_flight": queue.in_flight,
                    "accepted": queue.accepted,
                    "processed": queue.processed,
                    "failed": queue.failed,
                    "retried": queue.retried,
                    "dead_lettered": queue.dead_lettered,
                    "dropped": queue.dropped,
                    "handed_back": queue.handed_back,
                    "lease_lost": queue.lease_lost,
                    "stale_results_rejected": queue.stale_results_rejected,
                })),
                "dead_letters": service.dead_letters,
            })
        })
        .collect();
    let hubs: Vec<Value> = snapshot
        .hubs
        .iter()
        .map(|hub| {
            json!({
                "name": hub.name,
                "connections": hub.connections,
                "groups": hub.groups,
                "dropped": hub.dropped,
                "disconnected": hub.disconnected,
            })
        })
        .collect();
    json!({
        "taken_at": millis(Some(snapshot.taken_at)),
        "uptime_seconds": snapshot.uptime.as_secs_f64(),
        "services": services,
        "hubs": hubs,
    })
}
