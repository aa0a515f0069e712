//! Accepting a connection ([`HubUpgrade`]) and serving it: its writer drains the outbox, its
//! reader hands each client message to the application's handler in a run of its own.

use std::fmt;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt as _, StreamExt as _};
use serde::de::DeserializeOwned;

use super::outbox::{Close, Next, Outbox};
use super::{ConnectionId, GOING_AWAY, HubCore};
use crate::di::{Inject, InjectError, RunContext, ScopeExit};
use crate::service::{BoxError, IntoOutcome};
use crate::util::{BoxFuture, CatchUnwind, error_chain};
use crate::web::extract::{Rejection, request_context};

/// How long a closed connection waits for the client's close frame in reply.
const CLOSE_REPLY_WAIT: Duration = Duration::from_secs(1);

type Handler =
    Arc<dyn Fn(String, Client) -> BoxFuture<'static, Result<(), BoxError>> + Send + Sync>;

/// An extractor that accepts a WebSocket connection into the hub. Name the connection's user
/// (from the authenticated request), the groups it starts in, and the handler of the messages
/// the client sends; the response it becomes completes the upgrade.
///
/// ```
/// use hosted::web::{Client, HubUpgrade, Routes};
/// use axum::routing::get;
///
/// #[derive(serde::Deserialize)]
/// struct Click;
///
/// async fn on_click(_click: Click, client: Client) {
///     tracing::info!(user = ?client.user(), "clicked over the socket");
/// }
///
/// async fn hub(upgrade: HubUpgrade) -> axum::response::Response {
///     upgrade.user("ada").group("players").on_message(on_click).accept()
/// }
///
/// # fn routes() -> Routes {
/// Routes::new().route("/hub", get(hub))
/// # }
/// ```
pub struct HubUpgrade {
    upgrade: WebSocketUpgrade,
    core: Arc<HubCore>,
    cx: RunContext,
    user: Option<Arc<str>>,
    groups: Vec<String>,
    handler: Option<Handler>,
}

impl fmt::Debug for HubUpgrade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HubUpgrade")
            .field("user", &self.user)
            .field("groups", &self.groups)
            .finish_non_exhaustive()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for HubUpgrade {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let upgrade = WebSocketUpgrade::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let cx = request_context(parts).map_err(IntoResponse::into_response)?;
        let core = cx
            .resolve::<Arc<HubCore>>()
            .await
            .map_err(|error| Rejection::Inject(error).into_response())?;
        Ok(Self {
            upgrade,
            core,
            cx,
            user: None,
            groups: Vec::new(),
            handler: None,
        })
    }
}

impl HubUpgrade {
    /// The user the connection belongs to: [`Hub::send_user`](super::Hub::send_user) reaches it.
    #[must_use]
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(Arc::from(user.into()));
        self
    }

    /// A group the connection joins as it opens.
    #[must_use]
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.groups.push(group.into());
        self
    }

    /// The handler of the messages the client sends: each is parsed from JSON as `C` and
    /// handled in a run of its own, with a fresh scope released when the handler returns
    /// (told whether it succeeded). Messages of one connection are handled in order. A message
    /// that is not valid JSON for `C` is logged and skipped.
    #[must_use]
    pub fn on_message<C, F, Fut>(mut self, handler: F) -> Self
    where
        C: DeserializeOwned + Send + 'static,
        F: Fn(C, Client) -> Fut + Send + Sync + 'static,
        Fut: Future<Output: IntoOutcome> + Send + 'static,
    {
        self.handler = Some(Arc::new(move |text: String, client: Client| {
            let parsed = serde_json::from_str::<C>(&text);
            let run = parsed.map(|message| handler(message, client));
            Box::pin(async move {
                match run {
                    Ok(run) => run.await.into_outcome(),
                    Err(error) => Err(format!(
                        "a client message is not a valid `{}`: {error}",
                        std::any::type_name::<C>()
                    )
                    .into()),
                }
            })
        }));
        self
    }

    /// Completes the upgrade: the response switches protocols and the connection joins the hub.
    #[must_use]
    pub fn accept(self) -> Response {
        let Self {
            upgrade,
            core,
            cx,
            user,
            groups,
            handler,
        } = self;
        // Counted from the response on, so a stop between the upgrade and the first frame
        // still waits for this connection.
        let token = core.sockets.tracker.token();
        let limit = core.body_limit;
        upgrade
            .max_message_size(limit)
            .on_upgrade(move |socket| async move {
                let _token = token;
                serve(socket, core, cx, user, groups, handler).await;
            })
    }
}

impl IntoResponse for HubUpgrade {
    fn into_response(self) -> Response {
        self.accept()
    }
}

/// One connection, as a client-message handler sees it.
#[derive(Clone)]
pub struct Client {
    id: ConnectionId,
    user: Option<Arc<str>>,
    core: Arc<HubCore>,
    cx: RunContext,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("id", &self.id)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// The connection.
    #[must_use]
    pub fn id(&self) -> ConnectionId {
        self.id
    }

    /// The connection's user, when the upgrade named one.
    #[must_use]
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// Joins a group.
    pub fn join(&self, group: &str) {
        self.core.join(self.id, group);
    }

    /// Leaves a group.
    pub fn leave(&self, group: &str) {
        self.core.leave(self.id, group);
    }

    /// Resolves any injectable value in this message's run, as a parameter would receive it:
    /// a scoped value is built once for the message and released when the handler returns.
    ///
    /// # Errors
    /// As [`Inject::inject`] for `T`.
    pub fn resolve<T: Inject>(&self) -> impl Future<Output = Result<T, InjectError>> + Send + '_ {
        self.cx.resolve::<T>()
    }

    /// The message's run context.
    #[must_use]
    pub fn context(&self) -> &RunContext {
        &self.cx
    }
}

async fn serve(
    socket: WebSocket,
    core: Arc<HubCore>,
    base: RunContext,
    user: Option<Arc<str>>,
    groups: Vec<String>,
    handler: Option<Handler>,
) {
    let (id, outbox) = core.connect(user.clone(), groups);
    if core.sockets.closing.is_cancelled() {
        outbox.close(GOING_AWAY);
    }
    let span = tracing::debug_span!("hub_connection", id = %id, user = user.as_deref());
    let _entered = span.clone();
    tracing::debug!(parent: &span, "connected");
    let (sink, stream) = socket.split();
    let mut writer = pin!(write(sink, Arc::clone(&outbox)));
    let reader = read(stream, &core, &base, id, user.as_ref(), handler.as_ref());
    let mut reader = pin!(reader);
    let closing = async {
        core.sockets.closing.cancelled().await;
        outbox.close(GOING_AWAY);
        std::future::pending::<()>().await;
    };
    let abort = core.sockets.abort.cancelled();
    let overflowed = async {
        outbox.overflowed.cancelled().await;
        // The close frame goes out if the client reads again soon; otherwise the connection
        // is dropped.
        tokio::time::sleep(CLOSE_REPLY_WAIT).await;
    };
    tokio::select! {
        () = &mut writer => {
            // The close frame is sent (or the socket failed): let the client answer it.
            let _ = tokio::time::timeout(CLOSE_REPLY_WAIT, &mut reader).await;
        }
        () = &mut reader => {}
        () = closing => {}
        () = abort => {}
        () = overflowed => {}
    }
    core.disconnect(id);
    tracing::debug!(parent: &span, "disconnected");
}

async fn write(mut sink: futures_util::stream::SplitSink<WebSocket, Message>, outbox: Arc<Outbox>) {
    loop {
        match outbox.next().await {
            Next::Message(text) => {
                if sink.send(Message::Text(text)).await.is_err() {
                    return;
                }
            }
            Next::Close(Close { code, reason }) => {
                let frame = CloseFrame {
                    code,
                    reason: reason.into(),
                };
                // A client that does not read cannot take the frame: bounded, like its reply.
                let _ =
                    tokio::time::timeout(CLOSE_REPLY_WAIT, sink.send(Message::Close(Some(frame))))
                        .await;
                return;
            }
        }
    }
}

async fn read(
    mut stream: futures_util::stream::SplitStream<WebSocket>,
    core: &Arc<HubCore>,
    base: &RunContext,
    id: ConnectionId,
    user: Option<&Arc<str>>,
    handler: Option<&Handler>,
) {
    while let Some(Ok(message)) = stream.next().await {
        let text = match message {
            Message::Text(text) => text.as_str().to_owned(),
            Message::Close(_) => return,
            _ => continue,
        };
        let Some(handler) = handler else {
            continue;
        };
        let (cx, end) = base.begin_run_scoped(true);
        let client = Client {
            id,
            user: user.cloned(),
            core: Arc::clone(core),
            cx,
        };
        let result = CatchUnwind::new(|| handler(text, client)).await;
        let exit = match &result {
            Ok(Ok(())) => ScopeExit::Succeeded,
            Ok(Err(error)) => {
                tracing::warn!(connection = %id, error = %error_chain(&**error), "a client message failed");
                ScopeExit::Failed
            }
            Err(panic) => {
                tracing::error!(connection = %id, %panic, "a client message handler panicked");
                ScopeExit::Failed
            }
        };
        if let Err(failure) = end.finish(exit, base.status()).await {
            tracing::error!(connection = %id, error = %failure, "closing a client message's scope failed");
        }
    }
}
