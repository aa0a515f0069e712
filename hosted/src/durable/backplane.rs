//! A PostgreSQL backplane for the web host's hub: what one replica broadcasts reaches the
//! WebSocket clients of every replica, through `NOTIFY` on the durable store's database and a
//! dedicated `LISTEN`ing connection in each replica.
//!
//! A notification carries at most 8000 bytes, so a message is cut into chunks at character
//! boundaries, each sent with a header naming the sender, the message and the chunk; a message
//! of several chunks goes out in one transaction, so its chunks are delivered together. A message
//! over [`MAX_MESSAGE`] is refused, with an error logged: it still reaches this replica's
//! clients.

use std::any::TypeId;
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx_core::query::query;
use sqlx_postgres::{PgListener, PgPool, Postgres};
use tokio::sync::mpsc;

use super::DurableConfig;
use crate::config::Config;
use crate::di::{Inject, Provider, RunContext};
use crate::registry::Registry;
use crate::service::BoxError;
use crate::web::hub::{Backplane, Envelope, InProcess, LocalConnections, Target};

/// The largest message the backplane carries to other replicas, in bytes of its JSON.
pub const MAX_MESSAGE: usize = 1 << 20;

/// A chunk's text: under PostgreSQL's 8000-byte limit on a notification, with room for the header.
const CHUNK: usize = 7800;

/// Messages waiting to be sent to the other replicas; past it, the newest are not sent (and
/// counted).
const WAITING: usize = 4096;

/// Partly received messages kept while their other chunks come.
const PARTIAL: usize = 64;

/// The hub's backplane on PostgreSQL. Enabled with `durable.hub_backplane = true` in a binary
/// with the web host and durable services; or built in code with [`PgBackplane::start`] and
/// given to [`WebServer::backplane`](crate::web::WebServer::backplane).
///
/// Delivery to other replicas is at most once, as with SignalR's Redis backplane: a message
/// published while the database is unreachable reaches only this replica's clients.
pub struct PgBackplane {
    origin: u64,
    local: Arc<OnceLock<LocalConnections>>,
    outgoing: mpsc::Sender<Envelope>,
    counters: Arc<Counters>,
    tasks: [tokio::task::JoinHandle<()>; 2],
}

#[derive(Debug, Default)]
struct Counters {
    sent: AtomicU64,
    received: AtomicU64,
    refused: AtomicU64,
    lost: AtomicU64,
}

/// What a [`PgBackplane`] has done since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackplaneStats {
    /// Messages sent to the other replicas.
    pub sent: u64,
    /// Messages received from other replicas.
    pub received: u64,
    /// Messages over [`MAX_MESSAGE`], delivered on this replica only.
    pub refused: u64,
    /// Messages that could not be sent (the database unreachable, or too many waiting).
    pub lost: u64,
}

impl fmt::Debug for PgBackplane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgBackplane")
            .field("origin", &self.origin)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Drop for PgBackplane {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// A message as it travels: its target and its JSON.
#[derive(Serialize, Deserialize)]
struct Message {
    #[serde(rename = "t")]
    target: WireTarget,
    #[serde(rename = "p")]
    payload: String,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum WireTarget {
    All,
    Group(String),
    User(String),
}

/// The notification channel of a schema's hub.
fn channel(schema: &str) -> String {
    format!("hosted_hub_{schema}")
}

impl PgBackplane {
    /// Starts the backplane on `pool`, on the channel of `schema`: a task sending what this
    /// replica publishes, and one listening for the others' on a dedicated connection
    /// (reconnected with backoff). Must be called inside a tokio runtime.
    #[must_use]
    pub fn start(pool: PgPool, schema: &str) -> Arc<Self> {
        let origin = fastrand::u64(1..);
        let channel = channel(schema);
        let counters = Arc::new(Counters::default());
        let local = Arc::new(OnceLock::new());
        let (outgoing, waiting) = mpsc::channel(WAITING);
        let sender = tokio::spawn(send(
            pool.clone(),
            channel.clone(),
            origin,
            waiting,
            Arc::clone(&counters),
        ));
        let listener = tokio::spawn(listen(
            pool,
            channel,
            origin,
            Arc::clone(&local),
            Arc::clone(&counters),
        ));
        Arc::new(Self {
            origin,
            local,
            outgoing,
            counters,
            tasks: [sender, listener],
        })
    }

    /// The counts since the start.
    #[must_use]
    pub fn stats(&self) -> BackplaneStats {
        BackplaneStats {
            sent: self.counters.sent.load(Ordering::Relaxed),
            received: self.counters.received.load(Ordering::Relaxed),
            refused: self.counters.refused.load(Ordering::Relaxed),
            lost: self.counters.lost.load(Ordering::Relaxed),
        }
    }
}

impl Backplane for PgBackplane {
    fn attach(&self, local: LocalConnections) {
        let _ = self.local.set(local);
    }

    fn publish(&self, envelope: Envelope) {
        // This replica's clients at once, whatever becomes of the others'.
        if let Some(local) = self.local.get() {
            local.deliver(&envelope);
        }
        // A connection id names a connection of this replica only.
        if matches!(envelope.target, Target::Connection(_)) {
            return;
        }
        if self.outgoing.try_send(envelope).is_err()
            && self
                .counters
                .lost
                .fetch_add(1, Ordering::Relaxed)
                .is_multiple_of(1000)
        {
            tracing::warn!(
                waiting = WAITING,
                "the hub's PostgreSQL backplane is behind: a message reaches this replica's \
                 clients only"
            );
        }
    }
}

/// The chunks of `text`, each at most [`CHUNK`] bytes, cut at character boundaries.
fn chunks(text: &str) -> Vec<&str> {
    let mut chunks = Vec::with_capacity(text.len() / CHUNK + 1);
    let mut rest = text;
    while rest.len() > CHUNK {
        let mut end = CHUNK;
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        let (chunk, tail) = rest.split_at(end);
        chunks.push(chunk);
        rest = tail;
    }
    chunks.push(rest);
    chunks
}

/// Sends what this replica publishes, in order, one notification per chunk.
async fn send(
    pool: PgPool,
    channel: String,
    origin: u64,
    mut waiting: mpsc::Receiver<Envelope>,
    counters: Arc<Counters>,
) {
    let mut next = 0_u64;
    let mut failing = false;
    while let Some(envelope) = waiting.recv().await {
        let target = match envelope.target {
            Target::All => WireTarget::All,
            Target::Group(group) => WireTarget::Group(group),
            Target::User(user) => WireTarget::User(user),
            _ => continue,
        };
        let Ok(text) = serde_json::to_string(&Message {
            target,
            payload: envelope.payload.as_str().to_owned(),
        }) else {
            continue;
        };
        if text.len() > MAX_MESSAGE {
            counters.refused.fetch_add(1, Ordering::Relaxed);
            tracing::error!(
                bytes = text.len(),
                limit = MAX_MESSAGE,
                "a hub message is over the PostgreSQL backplane's limit: refused, it reaches \
                 this replica's clients only"
            );
            continue;
        }
        next += 1;
        let parts = chunks(&text);
        let count = parts.len();
        let notifications: Vec<String> = parts
            .iter()
            .enumerate()
            .map(|(index, part)| format!("{origin:x} {next:x} {index} {count} {part}"))
            .collect();
        match notify(&pool, &channel, &notifications).await {
            Ok(()) => {
                counters.sent.fetch_add(1, Ordering::Relaxed);
                if failing {
                    tracing::info!("the hub's PostgreSQL backplane reaches the database again");
                    failing = false;
                }
            }
            Err(error) => {
                counters.lost.fetch_add(1, Ordering::Relaxed);
                if !failing {
                    tracing::warn!(
                        %error,
                        "the hub's PostgreSQL backplane cannot reach the database: messages \
                         reach this replica's clients only"
                    );
                    failing = true;
                }
            }
        }
    }
}

/// One notification, or the chunks of one message in one transaction (delivered together).
async fn notify(pool: &PgPool, channel: &str, notifications: &[String]) -> Result<(), BoxError> {
    let statement = "SELECT pg_notify($1, $2)";
    if let [single] = notifications {
        query::<Postgres>(statement)
            .bind(channel)
            .bind(single)
            .execute(pool)
            .await?;
        return Ok(());
    }
    let mut tx = pool.begin().await?;
    for notification in notifications {
        query::<Postgres>(statement)
            .bind(channel)
            .bind(notification)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Messages being put back together from their chunks, by sender and message.
#[derive(Default)]
struct Partial {
    by_message: HashMap<(u64, u64), Vec<Option<String>>>,
    order: std::collections::VecDeque<(u64, u64)>,
}

impl Partial {
    /// Takes one notification; returns the whole message once its last chunk came.
    fn take(
        &mut self,
        sender: u64,
        message: u64,
        index: usize,
        count: usize,
        part: &str,
    ) -> Option<String> {
        if count <= 1 {
            return Some(part.to_owned());
        }
        let key = (sender, message);
        if !self.by_message.contains_key(&key) {
            if self.order.len() >= PARTIAL
                && let Some(oldest) = self.order.pop_front()
            {
                self.by_message.remove(&oldest);
                tracing::warn!("the hub's PostgreSQL backplane dropped a message missing chunks");
            }
            self.order.push_back(key);
        }
        let parts = self
            .by_message
            .entry(key)
            .or_insert_with(|| vec![None; count]);
        if let Some(slot) = parts.get_mut(index) {
            *slot = Some(part.to_owned());
        }
        if parts.iter().all(Option::is_some) {
            let whole = self
                .by_message
                .remove(&key)?
                .into_iter()
                .flatten()
                .collect();
            self.order.retain(|pending| *pending != key);
            return Some(whole);
        }
        None
    }
}

/// Delivers what the other replicas publish to this replica's connections.
async fn listen(
    pool: PgPool,
    channel: String,
    origin: u64,
    local: Arc<OnceLock<LocalConnections>>,
    counters: Arc<Counters>,
) {
    let mut backoff = Duration::from_millis(100);
    let mut partial = Partial::default();
    loop {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(listener) => listener,
            Err(error) => {
                tracing::debug!(%error, "the hub's backplane cannot connect; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        if let Err(error) = listener.listen(&channel).await {
            tracing::debug!(%error, "the hub's backplane cannot LISTEN; retrying");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
            continue;
        }
        backoff = Duration::from_millis(100);
        loop {
            match listener.try_recv().await {
                Ok(Some(notification)) => {
                    let Some(text) = received(&mut partial, origin, notification.payload()) else {
                        continue;
                    };
                    let Ok(message) = serde_json::from_str::<Message>(&text) else {
                        tracing::warn!("the hub's backplane received a message it cannot read");
                        continue;
                    };
                    counters.received.fetch_add(1, Ordering::Relaxed);
                    if let Some(local) = local.get() {
                        local.deliver(&Envelope {
                            target: match message.target {
                                WireTarget::All => Target::All,
                                WireTarget::Group(group) => Target::Group(group),
                                WireTarget::User(user) => Target::User(user),
                            },
                            payload: message.payload.into(),
                        });
                    }
                }
                // The connection dropped; `try_recv` reconnects on the next call.
                Ok(None) => {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
                Err(error) => {
                    tracing::debug!(%error, "the hub's backplane lost its connection");
                    tokio::time::sleep(backoff).await;
                    break;
                }
            }
        }
    }
}

/// The message a notification completes, unless it is this replica's own or incomplete.
fn received(partial: &mut Partial, origin: u64, payload: &str) -> Option<String> {
    let mut fields = payload.splitn(5, ' ');
    let sender = u64::from_str_radix(fields.next()?, 16).ok()?;
    let message = u64::from_str_radix(fields.next()?, 16).ok()?;
    let index: usize = fields.next()?.parse().ok()?;
    let count: usize = fields.next()?.parse().ok()?;
    let part = fields.next()?;
    if sender == origin {
        return None;
    }
    partial.take(sender, message, index, count, part)
}

/// Registers the hub's backplane: PostgreSQL's with `durable.hub_backplane = true` (in a binary
/// with durable services, whose store it uses), the in-process one otherwise. Called with the
/// web host's registration; once.
pub(crate) fn register(registry: &mut Registry) {
    let registered = registry
        .providers
        .iter()
        .any(|provider| provider.type_id == TypeId::of::<dyn Backplane>());
    if registered {
        return;
    }
    let mut provider = Provider::singleton(|cx: RunContext| async move {
        let config = cx.resolve::<Option<Config<DurableConfig>>>().await?;
        let backplane: Arc<dyn Backplane> = match config {
            Some(config) if config.hub_backplane => {
                let backend = config.backend().await?;
                tracing::info!(
                    store = %config.url,
                    channel = %channel(&config.schema),
                    "the hub broadcasts to every replica through PostgreSQL"
                );
                PgBackplane::start(backend.pool().clone(), &config.schema)
            }
            _ => Arc::new(InProcess::default()),
        };
        Ok::<_, BoxError>(backplane)
    })
    // Declared, so that a web application with `[durable]` but no durable service has the
    // section loaded (and known) all the same.
    .needs(<Option<Config<DurableConfig>> as Inject>::declare);
    "the hub's backplane".clone_into(&mut provider.owner);
    registry.add_provider(provider);
}

#[cfg(test)]
mod tests {
    use super::{CHUNK, Partial, chunks, received};

    #[test]
    fn long_messages_are_cut_at_character_boundaries_and_put_back_together() {
        let text = "é".repeat(CHUNK) + "end";
        let parts = chunks(&text);
        assert_eq!(parts.len(), 3);
        assert!(parts.iter().all(|part| part.len() <= CHUNK));
        assert_eq!(parts.concat(), text);
        let mut partial = Partial::default();
        let count = parts.len();
        // Out of order, with another sender's message in between.
        assert_eq!(
            received(&mut partial, 1, &format!("2 7 2 {count} {}", parts[2])),
            None
        );
        assert_eq!(
            received(&mut partial, 1, "3 1 0 1 {\"t\":\"all\"}").as_deref(),
            Some("{\"t\":\"all\"}")
        );
        assert_eq!(
            received(&mut partial, 1, &format!("2 7 0 {count} {}", parts[0])),
            None
        );
        assert_eq!(
            received(&mut partial, 1, &format!("2 7 1 {count} {}", parts[1])),
            Some(text)
        );
        // Its own messages are not delivered twice.
        assert_eq!(received(&mut partial, 1, "1 1 0 1 x"), None);
        assert!(partial.by_message.is_empty() && partial.order.is_empty());
    }
}
