//! The seam between a hub and the other replicas of the application: a [`Backplane`] carries
//! each [`Envelope`] to every replica's connections.

use std::fmt;
use std::sync::{Arc, OnceLock, Weak};

use axum::extract::ws::Utf8Bytes;

use super::{ConnectionId, HubCore};

/// Who a message is for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Target {
    /// Every connection.
    All,
    /// Every connection in the group.
    Group(String),
    /// Every connection of the user.
    User(String),
    /// One connection of this replica.
    Connection(ConnectionId),
}

/// A message on its way to connections: its target and its JSON text, serialized once.
#[derive(Clone, Debug)]
pub struct Envelope {
    /// Who it is for.
    pub target: Target,
    /// The message, as JSON text.
    pub payload: Utf8Bytes,
}

/// Carries envelopes to the connections of every replica of the application, this one included.
///
/// The hub publishes every message through its backplane; the backplane hands what it receives
/// (its own publications included) to [`LocalConnections::deliver`]. The in-process backplane,
/// [`InProcess`], delivers at once; a shared one (a PostgreSQL `LISTEN`/`NOTIFY` backplane, say)
/// would send the envelope to the others as well.
///
/// `publish` is called by whoever sends, a request handler or a background service: it must not
/// wait. Buffer, and drop or count what does not fit.
pub trait Backplane: Send + Sync + 'static {
    /// Called once, when the hub is built, with this replica's connections.
    fn attach(&self, local: LocalConnections);
    /// Sends an envelope to every replica's connections.
    fn publish(&self, envelope: Envelope);
}

/// This replica's connections, as a backplane delivers to them. Cheap to clone; does not keep
/// the hub alive.
#[derive(Clone)]
pub struct LocalConnections(pub(super) Weak<HubCore>);

impl LocalConnections {
    /// Queues the envelope for its target's connections on this replica, without waiting: each
    /// connection's buffer applies its overflow policy.
    pub fn deliver(&self, envelope: &Envelope) {
        if let Some(hub) = self.0.upgrade() {
            hub.deliver_local(envelope);
        }
    }
}

impl fmt::Debug for LocalConnections {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalConnections").finish_non_exhaustive()
    }
}

/// The backplane of an application running as one replica: publishing delivers at once to this
/// process's connections. The default.
#[derive(Debug, Default)]
pub struct InProcess {
    local: OnceLock<LocalConnections>,
}

impl Backplane for InProcess {
    fn attach(&self, local: LocalConnections) {
        let _ = self.local.set(local);
    }

    fn publish(&self, envelope: Envelope) {
        if let Some(local) = self.local.get() {
            local.deliver(&envelope);
        }
    }
}

pub(super) fn in_process() -> Arc<dyn Backplane> {
    Arc::new(InProcess::default())
}
