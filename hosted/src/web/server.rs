//! The web server as a hosted service: built from the contributed routes, started last and so
//! stopped first, with the stop in order — not ready, drain, stop accepting, close the sockets,
//! finish in-flight requests within the budget.

use std::borrow::Cow;
use std::fmt;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{Method, StatusCode, Uri};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::extract::request_scope;
use super::health::Readiness;
use super::hub::{Backplane, HubCore};
use super::options::WebOptions;
use super::routes::{self, Routes};
use crate::di::{InjectError, Provider, RunContext};
use crate::registry::{Registry, ServiceDescriptor};
use crate::service::{ApplicationLifetime, BoxError, HostedService, ServiceContext, ServiceKind};

/// How long before the end of the shutdown budget the server gives up on what is still open,
/// so the services after it still get their turn.
const BUDGET_MARGIN: Duration = Duration::from_millis(100);

/// The address the server listens on, once it has started: injectable (`Arc<ServerAddress>`),
/// for a test or a service that must tell others where to connect.
#[derive(Debug, Default)]
pub struct ServerAddress(OnceLock<SocketAddr>);

impl ServerAddress {
    /// The bound address; `None` before the server has started.
    #[must_use]
    pub fn get(&self) -> Option<SocketAddr> {
        self.0.get().copied()
    }
}

/// One contribution of routes: who made it, and the routes.
struct Contributed {
    name: Cow<'static, str>,
    source: Option<(&'static str, u32)>,
    routes: Routes,
}

/// The web host: the routes contributed to it, merged into one axum server that runs as a
/// hosted service of the host.
///
/// `#[hosted::routes]` functions register it by themselves; build it by hand for a host built
/// by hand (a test, say), then [`install`](Self::install) it:
///
/// ```
/// use axum::routing::get;
/// use hosted::Host;
/// use hosted::web::{Routes, WebOptions, WebServer};
///
/// let mut options = WebOptions::default();
/// options.bind = "127.0.0.1:0".parse().unwrap();
/// let host = WebServer::new()
///     .routes("hello", Routes::new().route("/", get(|| async { "hello" })))
///     .options(options)
///     .install(Host::builder())
///     .build()
///     .expect("a valid host");
/// # drop(host);
/// ```
#[must_use]
pub struct WebServer {
    contributed: Vec<Contributed>,
    options: Option<WebOptions>,
    backplane: Option<Arc<dyn Backplane>>,
}

impl fmt::Debug for WebServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebServer")
            .field(
                "routes",
                &self
                    .contributed
                    .iter()
                    .map(|contributed| &contributed.name)
                    .collect::<Vec<_>>(),
            )
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Default for WebServer {
    fn default() -> Self {
        Self::new()
    }
}

impl WebServer {
    /// The service's name, in logs, `--list` and configuration (`services.hosted.web`).
    pub const NAME: &'static str = "hosted::web";

    /// The server's start order: after every service of a lower order (the default is 0), so
    /// that it takes requests once the services handlers rely on run, and stops taking them
    /// before those stop.
    pub const ORDER: i32 = 1_000_000;

    /// A server without routes (beside the health endpoints).
    pub fn new() -> Self {
        Self {
            contributed: Vec::new(),
            options: None,
            backplane: None,
        }
    }

    /// A server with every `#[hosted::routes]` function linked into the binary.
    pub fn discovered() -> Self {
        let mut server = Self::new();
        for contribution in routes::discovered() {
            server.contributed.push(Contributed {
                name: Cow::Borrowed(contribution.name),
                source: Some((contribution.file, contribution.line)),
                routes: (contribution.make)(),
            });
        }
        server
    }

    /// Adds routes, under a name for `--list`.
    pub fn routes(mut self, name: impl Into<Cow<'static, str>>, routes: impl Into<Routes>) -> Self {
        self.contributed.push(Contributed {
            name: name.into(),
            source: None,
            routes: routes.into(),
        });
        self
    }

    /// The settings for a host built without configuration. With configuration, the `web`
    /// section applies instead (its defaults where a key is not given).
    pub fn options(mut self, options: WebOptions) -> Self {
        self.options = Some(options);
        self
    }

    /// The hub's backplane; [`InProcess`](super::hub::InProcess) by default.
    pub fn backplane(mut self, backplane: Arc<dyn Backplane>) -> Self {
        self.backplane = Some(backplane);
        self
    }

    /// Adds the server, its hub, its readiness checks and its address to a host builder.
    pub fn install(self, builder: crate::host::HostBuilder) -> crate::host::HostBuilder {
        let mut registry = Registry::default();
        self.register(&mut registry);
        let Registry {
            services,
            providers,
            ..
        } = registry;
        let builder = providers
            .into_iter()
            .fold(builder, crate::host::HostBuilder::provide);
        services
            .into_iter()
            .fold(builder, crate::host::HostBuilder::add_service)
    }

    pub(crate) fn register(self, registry: &mut Registry) {
        let Self {
            contributed,
            options,
            backplane,
        } = self;
        let code_options = options.clone();
        registry.add_provider(
            Provider::singleton(move |cx: RunContext| {
                let options = code_options.clone();
                let backplane = backplane.clone();
                async move {
                    let options = effective_options(&cx, options).await?;
                    let backplane = cx
                        .resolve::<Option<Arc<dyn Backplane>>>()
                        .await?
                        .or(backplane);
                    let hub = HubCore::new(options.hub, options.body_limit, backplane);
                    let status = cx.resolve::<Arc<crate::status::HostStatus>>().await?;
                    let probe = Arc::downgrade(&hub);
                    status.add_hub(Box::new(move || {
                        let counts = probe.upgrade().map(|hub| hub.stats()).unwrap_or_default();
                        crate::status::HubSnapshot::new(
                            "hub".to_owned(),
                            counts.connections as u64,
                            counts.groups as u64,
                            counts.dropped,
                            counts.disconnected,
                        )
                    }));
                    Ok::<_, InjectError>(hub)
                }
            })
            .needs(declare_options),
        );
        registry.add_provider(Provider::instance(Arc::new(Readiness::default())));
        registry.add_provider(Provider::instance(Arc::new(ServerAddress::default())));
        let contributed = Arc::new(Mutex::new(Some(contributed)));
        let descriptor = ServiceDescriptor::new(
            Cow::Borrowed(Self::NAME),
            ServiceKind::Hosted,
            Arc::new(move |cx: RunContext| {
                let contributed = Arc::clone(&contributed);
                let options = options.clone();
                Box::pin(async move {
                    let contributed = contributed
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .take()
                        .unwrap_or_default();
                    let server = Server::build(cx, contributed, options).await?;
                    Ok(Arc::new(server) as Arc<dyn crate::service::ErasedService>)
                })
            }),
        )
        .order(Self::ORDER)
        .needs(declare_server);
        registry.add_service(descriptor);
    }
}

fn declare_options(needs: &mut crate::di::Dependencies) {
    <Option<crate::config::Config<WebOptions>> as crate::di::Inject>::declare(needs);
    needs.require::<crate::status::HostStatus>();
    <Option<Arc<dyn super::Authorizer>> as crate::di::Inject>::declare(needs);
    #[cfg(feature = "prometheus")]
    <Option<crate::config::Config<crate::prometheus::MetricsOptions>> as crate::di::Inject>::declare(
        needs,
    );
    <Option<Arc<dyn Backplane>> as crate::di::Inject>::declare(needs);
}

fn declare_server(needs: &mut crate::di::Dependencies) {
    declare_options(needs);
    needs.require::<HubCore>();
    needs.require::<Readiness>();
    needs.require::<ServerAddress>();
}

async fn effective_options(
    cx: &RunContext,
    code: Option<WebOptions>,
) -> Result<WebOptions, InjectError> {
    let options = match cx
        .resolve::<Option<crate::config::Config<WebOptions>>>()
        .await?
    {
        Some(configured) => (*configured).clone(),
        None => code.unwrap_or_default(),
    };
    options
        .check()
        .map_err(|message| InjectError::Custom(format!("web options: {message}")))?;
    Ok(options)
}

/// The `--list` lines of the routes: path, contribution, source.
pub(crate) fn listing() -> Option<String> {
    let contributions = routes::discovered();
    if contributions.is_empty() {
        return None;
    }
    let mut rows = Vec::new();
    for contribution in contributions {
        let routes = (contribution.make)();
        for path in routes.paths() {
            rows.push([
                path.clone(),
                contribution.name.to_owned(),
                format!("{}:{}", contribution.file, contribution.line),
            ]);
        }
    }
    let mut widths = [5, 14, 6];
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let [path, by, _] = widths;
    let mut text = format!("{:<path$}  {:<by$}  SOURCE\n", "ROUTE", "CONTRIBUTED BY");
    for [route, name, source] in rows {
        let _ = writeln!(text, "{route:<path$}  {name:<by$}  {source}");
    }
    Some(text)
}

/// The routes as JSON for `--list --format=json`: `[{"route", "contributed_by", "source"}]`.
pub(crate) fn listing_json() -> Option<String> {
    let contributions = routes::discovered();
    if contributions.is_empty() {
        return None;
    }
    let mut rows = Vec::new();
    for contribution in contributions {
        let routes = (contribution.make)();
        for path in routes.paths() {
            rows.push(serde_json::json!({
                "route": path,
                "contributed_by": contribution.name,
                "source": format!("{}:{}", contribution.file, contribution.line),
            }));
        }
    }
    Some(serde_json::Value::Array(rows).to_string())
}

/// The running server.
struct Server {
    options: WebOptions,
    app: Mutex<Option<Router>>,
    listener: Mutex<Option<TcpListener>>,
    address: Arc<ServerAddress>,
    hub: Arc<HubCore>,
    lifetime: ApplicationLifetime,
}

impl Server {
    async fn build(
        cx: RunContext,
        contributed: Vec<Contributed>,
        code_options: Option<WebOptions>,
    ) -> Result<Self, InjectError> {
        let options = effective_options(&cx, code_options).await?;
        let hub = cx.resolve::<Arc<HubCore>>().await?;
        let readiness = cx.resolve::<Arc<Readiness>>().await?;
        let address = cx.resolve::<Arc<ServerAddress>>().await?;
        let lifetime = cx.lifetime().clone();
        let missing = missing_needs(&cx, &contributed);
        if !missing.is_empty() {
            return Err(InjectError::Custom(missing.join("; ")));
        }
        let mut user = Router::new();
        if options.dashboard.enabled {
            if !cx
                .container()
                .provides(std::any::TypeId::of::<dyn super::Authorizer>())
            {
                return Err(InjectError::Custom(
                    "the dashboard is enabled (`web.dashboard.enabled`) but no authoriser is \
                     registered: register an `Arc<dyn hosted::web::Authorizer>` (for example \
                     `HostBuilder::add_instance::<dyn Authorizer>(Arc::new(BasicAuth::new(..)))`)"
                        .to_owned(),
                ));
            }
            tracing::info!(path = %options.dashboard.path, "the dashboard is served");
            user = user.merge(super::dashboard::routes(&options.dashboard.path));
        }
        for contribution in contributed {
            tracing::debug!(
                routes = ?contribution.routes.paths(),
                by = %contribution.name,
                source = ?contribution.source,
                "routes contributed"
            );
            user = user.merge(contribution.routes.router);
        }
        let app = user
            .fallback(not_found)
            .layer(tower_http::limit::RequestBodyLimitLayer::new(
                options.body_limit,
            ))
            .layer(DefaultBodyLimit::max(options.body_limit))
            .layer(tower_http::catch_panic::CatchPanicLayer::new())
            .layer(tower_http::timeout::TimeoutLayer::with_status_code(
                StatusCode::REQUEST_TIMEOUT,
                options.request_timeout,
            ))
            // Inside the request's run span, which `request_scope` opens: its events land there.
            .layer(
                tower_http::trace::TraceLayer::new_for_http()
                    .make_span_with(|_: &axum::extract::Request| tracing::Span::current()),
            )
            .layer(axum::middleware::from_fn_with_state(
                cx.clone(),
                request_scope,
            ));
        let ready_lifetime = lifetime.clone();
        let health = Router::new()
            .route(&options.livez_path, get(|| async { "alive\n" }))
            .route(
                &options.readyz_path,
                get(move || {
                    let readiness = Arc::clone(&readiness);
                    let lifetime = ready_lifetime.clone();
                    async move { readiness.report(&lifetime) }
                }),
            );
        #[cfg(feature = "prometheus")]
        let health = metrics_route(&cx, health).await?;
        // Probes and scrapes are not traced: an orchestrator polls them every few seconds, and a
        // 503 while draining is expected, not an error.
        let app = health.merge(app);
        Ok(Self {
            options,
            app: Mutex::new(Some(app)),
            listener: Mutex::new(None),
            address,
            hub,
            lifetime,
        })
    }

    /// When the server must have let go of everything: shortly before the end of the shutdown
    /// budget.
    fn give_up_at(&self) -> Instant {
        let deadline = self
            .lifetime
            .shutdown_deadline()
            .unwrap_or_else(|| Instant::now() + crate::host::DEFAULT_SHUTDOWN_TIMEOUT);
        deadline
            .checked_sub(BUDGET_MARGIN)
            .unwrap_or(deadline)
            .max(Instant::now())
    }
}

/// `/metrics` (or the configured `metrics.path`) beside the probes.
#[cfg(feature = "prometheus")]
async fn metrics_route(cx: &RunContext, health: Router) -> Result<Router, InjectError> {
    use axum::response::IntoResponse as _;

    let path = cx
        .resolve::<Option<crate::config::Config<crate::prometheus::MetricsOptions>>>()
        .await?
        .map_or_else(|| "/metrics".to_owned(), |options| options.path.clone());
    if path.is_empty() {
        return Ok(health);
    }
    let status = cx.resolve::<Arc<crate::status::HostStatus>>().await?;
    Ok(health.route(
        &path,
        get(move || {
            let status = Arc::clone(&status);
            async move {
                match crate::prometheus::render(&status) {
                    Some(body) => (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8",
                        )],
                        body,
                    )
                        .into_response(),
                    None => (
                        StatusCode::SERVICE_UNAVAILABLE,
                        "another metrics recorder is installed\n",
                    )
                        .into_response(),
                }
            }
        }),
    ))
}

/// What the contributions declared with [`Routes::needs`] that nothing registers.
fn missing_needs(cx: &RunContext, contributed: &[Contributed]) -> Vec<String> {
    let mut missing = Vec::new();
    for contribution in contributed {
        for (declared, declare) in &contribution.routes.needs {
            let mut needs = crate::di::Dependencies::new(contribution.name.to_string());
            declare(&mut needs);
            for requirement in needs.into_requirements() {
                if !requirement.optional && !cx.container().provides(requirement.type_id) {
                    missing.push(format!(
                        "the routes `{}` need `{declared}`, but nothing registers `{}`",
                        contribution.name, requirement.type_name
                    ));
                }
            }
        }
    }
    missing
}

async fn not_found(method: Method, uri: Uri) -> (StatusCode, String) {
    (
        StatusCode::NOT_FOUND,
        format!("no route for {method} {}\n", uri.path()),
    )
}

impl HostedService for Server {
    async fn start(&self, _cx: &ServiceContext) -> Result<(), BoxError> {
        let bind = self.options.bind;
        let listener = TcpListener::bind(bind)
            .await
            .map_err(|error| format!("cannot listen on {bind}: {error}"))?;
        let local = listener.local_addr()?;
        let _ = self.address.0.set(local);
        tracing::info!(address = %local, "listening on http://{local}");
        *self.listener.lock().unwrap_or_else(PoisonError::into_inner) = Some(listener);
        Ok(())
    }

    async fn execute(&self, stop: CancellationToken) -> Result<(), BoxError> {
        let listener = self
            .listener
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .ok_or("the web server runs once per start")?;
        let app = self
            .app
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .ok_or("the web server runs once per start")?;
        let stop_accepting = CancellationToken::new();
        let serve = axum::serve(listener, app)
            .with_graceful_shutdown(stop_accepting.clone().cancelled_owned());
        let mut server = tokio::spawn(async move { serve.await });
        tokio::select! {
            () = stop.cancelled() => {}
            ended = &mut server => {
                return match ended {
                    Ok(Ok(())) => Err("the web server stopped by itself".into()),
                    Ok(Err(error)) => Err(format!("the web server failed: {error}").into()),
                    Err(error) => Err(format!("the web server failed: {error}").into()),
                };
            }
        }
        // The drain delay (`host.drain_delay`) has passed already: the host waits it out, the
        // listener open and readiness failing, before it stops any service.
        let give_up = self.give_up_at();
        let sockets = self.hub.stats().connections;
        tracing::info!(
            websockets = sockets,
            "no longer accepting connections; finishing in-flight requests and closing WebSockets"
        );
        stop_accepting.cancel();
        self.hub.close_all();
        self.hub.sockets.tracker.close();
        let finished = tokio::time::timeout_at(give_up, async {
            let _ = (&mut server).await;
            self.hub.sockets.tracker.wait().await;
        })
        .await;
        if finished.is_err() {
            let left = self.hub.sockets.tracker.len();
            tracing::warn!(
                websockets = left,
                "the shutdown budget ran out: dropping the requests and WebSockets still open"
            );
            server.abort();
            self.hub.sockets.abort.cancel();
            let _ = tokio::time::timeout(BUDGET_MARGIN / 2, self.hub.sockets.tracker.wait()).await;
        }
        Ok(())
    }
}
