//! The hub: WebSocket connections that any code — a request handler, a timed service, a queued
//! item — sends typed messages to through an injected [`Hub<M>`], the counterpart of `SignalR`'s
//! `IHubContext`.
//!
//! Each connection has an outbox of `web.hub.buffer` messages. Sending serializes the message
//! once and queues it in the outbox of each connection it is for, without waiting: a client that
//! reads slowly (or not at all) fills only its own outbox, and its overflow policy decides what
//! happens — drop the oldest waiting message (the default), or disconnect it with a close code.
//! Both are counted, per connection and for the whole hub ([`HubStats`]).

mod backplane;
mod connection;
mod outbox;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::ws::Utf8Bytes;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::di::{Dependencies, Inject, InjectError, RunContext};

pub use self::backplane::{Backplane, Envelope, InProcess, LocalConnections, Target};
pub use self::connection::{Client, HubUpgrade};
use self::outbox::{Close, Outbox};

/// What happens when a connection's outbox is full and another message comes for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Overflow {
    /// The oldest waiting message is dropped to make room (counted as dropped). The client
    /// stays connected and gets the newest messages: right for state that supersedes itself,
    /// like a score or a countdown.
    DropOldest,
    /// The connection is closed with this close code (counted as disconnected); the client may
    /// reconnect and catch up. Right when every message matters.
    Disconnect {
        /// The WebSocket close code sent, such as 1008 (policy violation) or 1013 (try again
        /// later).
        code: u16,
    },
}

/// The overflow policy as configuration writes it (`web.hub.overflow`).
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OverflowMode {
    /// [`Overflow::DropOldest`].
    #[default]
    DropOldest,
    /// [`Overflow::Disconnect`] with `web.hub.close_code`.
    Disconnect,
}

/// The hub's settings: the `web.hub` section.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct HubOptions {
    /// Messages that may wait in one connection's outbox. Default 64.
    pub buffer: usize,
    /// What a full outbox does. Default `drop_oldest`.
    pub overflow: OverflowMode,
    /// The close code of an overflow disconnect. Default 1008 (policy violation).
    pub close_code: u16,
}

impl Default for HubOptions {
    fn default() -> Self {
        Self {
            buffer: 64,
            overflow: OverflowMode::DropOldest,
            close_code: 1008,
        }
    }
}

impl HubOptions {
    /// The policy these settings declare.
    #[must_use]
    pub fn overflow(&self) -> Overflow {
        match self.overflow {
            OverflowMode::DropOldest => Overflow::DropOldest,
            OverflowMode::Disconnect => Overflow::Disconnect {
                code: self.close_code,
            },
        }
    }
}

/// Identifies one connection of this replica.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ConnectionId(pub u64);

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c{}", self.0)
    }
}

/// The hub's counts since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HubStats {
    /// Connections open now.
    pub connections: usize,
    /// Groups with at least one connection.
    pub groups: usize,
    /// Messages queued in an outbox, summed over connections.
    pub queued: u64,
    /// Messages dropped by [`Overflow::DropOldest`].
    pub dropped: u64,
    /// Connections closed by [`Overflow::Disconnect`].
    pub disconnected: u64,
}

/// One connection's counts.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionStats {
    /// The connection.
    pub id: ConnectionId,
    /// Its user, when the upgrade request named one.
    pub user: Option<String>,
    /// Messages queued for it.
    pub queued: u64,
    /// Messages dropped from its outbox.
    pub dropped: u64,
    /// Messages waiting in its outbox now.
    pub waiting: usize,
}

#[derive(Debug, Default)]
pub(crate) struct HubCounters {
    queued: AtomicU64,
    dropped: AtomicU64,
    disconnected: AtomicU64,
}

struct Connection {
    user: Option<Arc<str>>,
    outbox: Arc<Outbox>,
    groups: HashSet<String>,
}

#[derive(Default)]
struct Connections {
    by_id: HashMap<ConnectionId, Connection>,
    groups: HashMap<String, HashSet<ConnectionId>>,
    users: HashMap<Arc<str>, HashSet<ConnectionId>>,
}

/// The WebSocket tasks of the server, tracked so the stop can close them and wait for them
/// (axum's graceful shutdown does not: tokio-rs/axum#3003).
#[derive(Debug, Default)]
pub(crate) struct Sockets {
    pub(crate) tracker: TaskTracker,
    /// Fires when the server stops: every connection is sent a close frame (1001).
    pub(crate) closing: CancellationToken,
    /// Fires when the stop budget is spent: the remaining connections are dropped.
    pub(crate) abort: CancellationToken,
}

/// The hub shared by every [`Hub<M>`] handle: the connections, their groups and users.
/// Registered in the container by the web server.
pub struct HubCore {
    options: HubOptions,
    body_limit: usize,
    connections: Mutex<Connections>,
    counters: HubCounters,
    next_id: AtomicU64,
    backplane: Arc<dyn Backplane>,
    pub(crate) sockets: Sockets,
}

impl fmt::Debug for HubCore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HubCore")
            .field("options", &self.options)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl HubCore {
    pub(crate) fn new(
        options: HubOptions,
        body_limit: usize,
        backplane: Option<Arc<dyn Backplane>>,
    ) -> Arc<Self> {
        let hub = Arc::new(Self {
            options,
            body_limit,
            connections: Mutex::new(Connections::default()),
            counters: HubCounters::default(),
            next_id: AtomicU64::new(1),
            backplane: backplane.unwrap_or_else(backplane::in_process),
            sockets: Sockets::default(),
        });
        hub.backplane.attach(LocalConnections(Arc::downgrade(&hub)));
        hub
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connections> {
        self.connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn publish(&self, target: Target, payload: Utf8Bytes) {
        self.backplane.publish(Envelope { target, payload });
    }

    fn deliver_local(&self, envelope: &Envelope) {
        let outboxes: Vec<Arc<Outbox>> = {
            let connections = self.lock();
            let outbox = |id: &ConnectionId| {
                connections
                    .by_id
                    .get(id)
                    .map(|connection| Arc::clone(&connection.outbox))
            };
            match &envelope.target {
                Target::All => connections
                    .by_id
                    .values()
                    .map(|connection| Arc::clone(&connection.outbox))
                    .collect(),
                Target::Group(group) => connections
                    .groups
                    .get(group.as_str())
                    .into_iter()
                    .flatten()
                    .filter_map(outbox)
                    .collect(),
                Target::User(user) => connections
                    .users
                    .get(user.as_str())
                    .into_iter()
                    .flatten()
                    .filter_map(outbox)
                    .collect(),
                Target::Connection(id) => outbox(id).into_iter().collect(),
            }
        };
        for outbox in outboxes {
            outbox.push(envelope.payload.clone(), &self.counters);
        }
    }

    fn connect(&self, user: Option<Arc<str>>, groups: Vec<String>) -> (ConnectionId, Arc<Outbox>) {
        let id = ConnectionId(self.next_id.fetch_add(1, Ordering::Relaxed));
        let outbox = Arc::new(Outbox::new(self.options.buffer, self.options.overflow()));
        let mut connections = self.lock();
        if let Some(user) = &user {
            connections
                .users
                .entry(Arc::clone(user))
                .or_default()
                .insert(id);
        }
        for group in &groups {
            connections
                .groups
                .entry(group.clone())
                .or_default()
                .insert(id);
        }
        connections.by_id.insert(
            id,
            Connection {
                user,
                outbox: Arc::clone(&outbox),
                groups: groups.into_iter().collect(),
            },
        );
        (id, outbox)
    }

    fn disconnect(&self, id: ConnectionId) {
        let mut connections = self.lock();
        let Some(connection) = connections.by_id.remove(&id) else {
            return;
        };
        for group in &connection.groups {
            if let Some(members) = connections.groups.get_mut(group) {
                members.remove(&id);
                if members.is_empty() {
                    connections.groups.remove(group);
                }
            }
        }
        if let Some(user) = &connection.user
            && let Some(own) = connections.users.get_mut(user)
        {
            own.remove(&id);
            if own.is_empty() {
                connections.users.remove(user);
            }
        }
    }

    fn join(&self, id: ConnectionId, group: &str) -> bool {
        let mut connections = self.lock();
        let Some(connection) = connections.by_id.get_mut(&id) else {
            return false;
        };
        connection.groups.insert(group.to_owned());
        connections
            .groups
            .entry(group.to_owned())
            .or_default()
            .insert(id);
        true
    }

    fn leave(&self, id: ConnectionId, group: &str) -> bool {
        let mut connections = self.lock();
        let Some(connection) = connections.by_id.get_mut(&id) else {
            return false;
        };
        let was_member = connection.groups.remove(group);
        if let Some(members) = connections.groups.get_mut(group) {
            members.remove(&id);
            if members.is_empty() {
                connections.groups.remove(group);
            }
        }
        was_member
    }

    /// The hub's counts since it started.
    #[must_use]
    pub fn stats(&self) -> HubStats {
        let (connections, groups) = {
            let open = self.lock();
            (open.by_id.len(), open.groups.len())
        };
        HubStats {
            connections,
            groups,
            queued: self.counters.queued.load(Ordering::Relaxed),
            dropped: self.counters.dropped.load(Ordering::Relaxed),
            disconnected: self.counters.disconnected.load(Ordering::Relaxed),
        }
    }

    /// Every open connection's counts, by id.
    #[must_use]
    pub fn connection_stats(&self) -> Vec<ConnectionStats> {
        let connections = self.lock();
        let mut stats: Vec<ConnectionStats> = connections
            .by_id
            .iter()
            .map(|(id, connection)| {
                let (queued, dropped, waiting) = connection.outbox.stats();
                ConnectionStats {
                    id: *id,
                    user: connection.user.as_deref().map(str::to_owned),
                    queued,
                    dropped,
                    waiting,
                }
            })
            .collect();
        stats.sort_by_key(|stats| stats.id);
        stats
    }

    /// Asks every connection to close (1001, going away), as the server's stop does.
    pub(crate) fn close_all(&self) {
        self.sockets.closing.cancel();
        let connections = self.lock();
        for connection in connections.by_id.values() {
            connection.outbox.close(GOING_AWAY);
        }
    }
}

pub(crate) const GOING_AWAY: Close = Close {
    code: 1001,
    reason: "the server is shutting down",
};

/// Why a message could not be sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HubError {
    /// The message does not serialize to JSON.
    #[error("the message does not serialize to JSON")]
    Serialize(#[from] serde_json::Error),
}

/// The typed handle on the hub that any code injects to send `M` (serialized as JSON) to
/// connected clients: all of them, a group, or every connection of one user; and to move
/// connections between groups. Sending never waits for a client. Cheap to clone.
///
/// ```
/// use hosted::web::Hub;
///
/// #[derive(serde::Serialize)]
/// #[serde(tag = "type", rename_all = "snake_case")]
/// enum ToClient { RoundOver { winners: Vec<String>, clicks: u32 } }
///
/// #[hosted::timed(every = "30s")]
/// async fn end_round(hub: Hub<ToClient>) -> Result<(), hosted::web::HubError> {
///     hub.send_all(&ToClient::RoundOver { winners: vec!["ada".into()], clicks: 12 })
/// }
/// ```
pub struct Hub<M> {
    core: Arc<HubCore>,
    message: PhantomData<fn(M)>,
}

impl<M> Clone for Hub<M> {
    fn clone(&self) -> Self {
        Self {
            core: Arc::clone(&self.core),
            message: PhantomData,
        }
    }
}

impl<M> fmt::Debug for Hub<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hub")
            .field("message", &std::any::type_name::<M>())
            .field("stats", &self.core.stats())
            .finish()
    }
}

impl<M: Serialize> Hub<M> {
    /// A typed handle on a hub.
    #[must_use]
    pub fn new(core: Arc<HubCore>) -> Self {
        Self {
            core,
            message: PhantomData,
        }
    }

    fn send(&self, target: Target, message: &M) -> Result<(), HubError> {
        let payload = Utf8Bytes::from(serde_json::to_string(message)?);
        self.core.publish(target, payload);
        Ok(())
    }

    /// Sends `message` to every connection.
    ///
    /// # Errors
    /// When the message does not serialize.
    pub fn send_all(&self, message: &M) -> Result<(), HubError> {
        self.send(Target::All, message)
    }

    /// Sends `message` to every connection in `group`.
    ///
    /// # Errors
    /// When the message does not serialize.
    pub fn send_group(&self, group: &str, message: &M) -> Result<(), HubError> {
        self.send(Target::Group(group.to_owned()), message)
    }

    /// Sends `message` to every connection of `user` (a user with two tabs open gets it twice,
    /// once per tab).
    ///
    /// # Errors
    /// When the message does not serialize.
    pub fn send_user(&self, user: &str, message: &M) -> Result<(), HubError> {
        self.send(Target::User(user.to_owned()), message)
    }

    /// Sends `message` to one connection.
    ///
    /// # Errors
    /// When the message does not serialize.
    pub fn send_connection(&self, id: ConnectionId, message: &M) -> Result<(), HubError> {
        self.send(Target::Connection(id), message)
    }
}

impl<M> Hub<M> {
    /// Adds a connection to a group; `false` when it is not connected.
    #[allow(
        clippy::must_use_candidate,
        reason = "joining is the point; the answer is extra"
    )]
    pub fn add_to_group(&self, id: ConnectionId, group: &str) -> bool {
        self.core.join(id, group)
    }

    /// Removes a connection from a group; `false` when it was not in it.
    #[allow(
        clippy::must_use_candidate,
        reason = "leaving is the point; the answer is extra"
    )]
    pub fn remove_from_group(&self, id: ConnectionId, group: &str) -> bool {
        self.core.leave(id, group)
    }

    /// The hub's counts since it started.
    #[must_use]
    pub fn stats(&self) -> HubStats {
        self.core.stats()
    }

    /// Every open connection's counts.
    #[must_use]
    pub fn connection_stats(&self) -> Vec<ConnectionStats> {
        self.core.connection_stats()
    }

    /// The same hub, to send another message type.
    #[must_use]
    pub fn typed<N>(&self) -> Hub<N> {
        Hub {
            core: Arc::clone(&self.core),
            message: PhantomData,
        }
    }
}

#[diagnostic::do_not_recommend]
impl<M: Send + 'static> Inject for Hub<M> {
    fn declare(needs: &mut Dependencies) {
        needs.require::<HubCore>();
    }

    async fn inject(cx: &RunContext) -> Result<Self, InjectError> {
        let core = cx.resolve::<Arc<HubCore>>().await?;
        Ok(Self {
            core,
            message: PhantomData,
        })
    }
}
