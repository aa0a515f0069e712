//! Prometheus exposition (feature `prometheus`): the host's status and every metric recorded
//! through the `metrics` facade, in the Prometheus text format — at `/metrics` on the
//! web host when it runs, or from a [`MetricsListener`] of its own for a plain worker.
//!
//! The metrics are listed in [`docs::metrics`](crate::docs::metrics).
//!
//! ```toml
//! [metrics]
//! path = "/metrics"          # on the web host; "" turns the route off
//! listen = "0.0.0.0:9464"    # the standalone listener's address; with `run!()`, setting it
//!                            # installs the listener (unset: none, the web host's route only)
//! ```

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use serde::Deserialize;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::di::RunContext;
use crate::host::HostBuilder;
use crate::registry::ServiceDescriptor;
use crate::service::{BoxError, ErasedService, HostedService, ServiceContext, ServiceKind};
use crate::status::HostStatus;

/// The `metrics` configuration section.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct MetricsOptions {
    /// The path of the exposition on the web host. Default `/metrics`; empty turns it off.
    pub path: String,
    /// The address a [`MetricsListener`] listens on; overrides the one given in code.
    #[serde(deserialize_with = "listen_address")]
    pub listen: Option<SocketAddr>,
}

impl Default for MetricsOptions {
    fn default() -> Self {
        Self {
            path: "/metrics".to_owned(),
            listen: None,
        }
    }
}

fn listen_address<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<SocketAddr>, D::Error> {
    crate::config::socket_address::deserialize(deserializer).map(Some)
}

impl crate::config::Section for MetricsOptions {
    const KEY: &'static str = "metrics";

    fn validate(&self) -> Result<(), String> {
        if !self.path.is_empty() && !self.path.starts_with('/') {
            return Err(format!(
                "`path` must start with `/` or be empty, got {:?}",
                self.path
            ));
        }
        Ok(())
    }
}

/// The exposition of a host's status, as `/metrics` answers it; `None` when another recorder
/// than this crate's Prometheus recorder was installed first.
#[must_use]
pub fn render(status: &HostStatus) -> Option<String> {
    crate::status::metrics::render(status)
}

/// A standalone HTTP listener answering every `GET` with the exposition, for a worker without
/// the web host. A hosted service named `hosted::metrics`; install it on a builder:
///
/// ```
/// use hosted::Host;
/// use hosted::prometheus::MetricsListener;
///
/// let host = MetricsListener::new("127.0.0.1:0".parse().unwrap())
///     .install(Host::builder())
///     .build()
///     .expect("a valid host");
/// # drop(host);
/// ```
///
/// The `metrics.listen` configuration key overrides the address. A binary whose `main` is
/// `hosted::run!()` needs no code: setting `metrics.listen` installs the listener.
#[derive(Debug)]
pub struct MetricsListener {
    address: SocketAddr,
}

impl MetricsListener {
    /// The service's name.
    pub const NAME: &'static str = "hosted::metrics";

    /// A listener on `address` (port 0 picks a free port; the bound one is logged).
    #[must_use]
    pub fn new(address: SocketAddr) -> Self {
        Self { address }
    }

    /// Adds the listener to a host builder.
    pub fn install(self, builder: HostBuilder) -> HostBuilder {
        let address = self.address;
        let descriptor = ServiceDescriptor::new(
            std::borrow::Cow::Borrowed(Self::NAME),
            ServiceKind::Hosted,
            Arc::new(move |cx: RunContext| {
                Box::pin(async move {
                    let configured = cx
                        .resolve::<Option<crate::config::Config<MetricsOptions>>>()
                        .await?
                        .and_then(|options| options.listen);
                    let status = cx.resolve::<Arc<HostStatus>>().await?;
                    Ok(Arc::new(Listening {
                        address: configured.unwrap_or(address),
                        status,
                        listener: Mutex::new(None),
                    }) as Arc<dyn ErasedService>)
                })
            }),
        )
        .needs(|needs| {
            <Option<crate::config::Config<MetricsOptions>> as crate::di::Inject>::declare(needs);
            needs.require::<HostStatus>();
        });
        builder.add_service(descriptor)
    }
}

/// What `hosted::run!()` adds with this feature: the standalone listener when the configuration
/// sets `metrics.listen` and the application did not install one itself, so a plain worker
/// exposes its metrics with one configuration key and no code.
pub(crate) fn install_configured(builder: HostBuilder) -> HostBuilder {
    if builder.is_configured("metrics.listen") && !builder.has_service(MetricsListener::NAME) {
        // The configured address replaces this one when the service is built.
        MetricsListener::new(SocketAddr::from(([0, 0, 0, 0], 9464))).install(builder)
    } else {
        builder
    }
}

struct Listening {
    address: SocketAddr,
    status: Arc<HostStatus>,
    listener: Mutex<Option<TcpListener>>,
}

impl HostedService for Listening {
    async fn start(&self, _cx: &ServiceContext) -> Result<(), BoxError> {
        let listener = TcpListener::bind(self.address)
            .await
            .map_err(|error| format!("cannot listen on {}: {error}", self.address))?;
        let local = listener.local_addr()?;
        tracing::info!(address = %local, "metrics on http://{local}/metrics");
        *self.listener.lock().unwrap_or_else(PoisonError::into_inner) = Some(listener);
        Ok(())
    }

    async fn execute(&self, stop: CancellationToken) -> Result<(), BoxError> {
        let listener = self
            .listener
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .ok_or("the metrics listener runs once per start")?;
        let connections = tokio_util::task::TaskTracker::new();
        loop {
            let accepted = tokio::select! {
                () = stop.cancelled() => break,
                accepted = listener.accept() => accepted,
            };
            let Ok((stream, _)) = accepted else { continue };
            let status = Arc::clone(&self.status);
            connections.spawn(answer(stream, status));
        }
        connections.close();
        connections.wait().await;
        Ok(())
    }
}

/// Reads one request head (bounded in size and time) and answers it.
async fn answer(mut stream: tokio::net::TcpStream, status: Arc<HostStatus>) {
    let mut head = Vec::with_capacity(512);
    let mut buffer = [0_u8; 512];
    let read = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        while !head.windows(4).any(|window| window == b"\r\n\r\n") && head.len() < 8192 {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => head.extend_from_slice(&buffer[..n]),
            }
        }
        true
    })
    .await;
    if read != Ok(true) {
        return;
    }
    let response = if head.starts_with(b"GET ") {
        match render(&status) {
            Some(body) => format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            ),
            None => unavailable(),
        }
    } else {
        "HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            .to_owned()
    };
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

fn unavailable() -> String {
    let body = "another metrics recorder is installed\n";
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}
