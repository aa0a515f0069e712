//! Routes contributed to the one server: [`Routes`], and the link-time registrations of
//! `#[hosted::routes]` functions.

use std::fmt;

use axum::Router;

use crate::di::{Dependencies, Inject};
use axum::routing::MethodRouter;

/// One declared need: the type's name, and how it declares its registrations.
pub(crate) type Need = (&'static str, fn(&mut Dependencies));

/// Routes one function contributes to the web server: an axum [`Router`] that also remembers
/// its paths, so `--list` can show them. Build it like a `Router`; merge a plain `Router` with
/// [`merge`](Self::merge) (its paths are listed as `*`, axum does not expose them).
///
/// ```
/// use axum::routing::{get, post};
/// use hosted::web::Routes;
///
/// #[hosted::routes]
/// fn api() -> Routes {
///     Routes::new()
///         .route("/api/score", get(|| async { "0" }))
///         .route("/api/click", post(|| async { "counted" }))
/// }
/// ```
#[derive(Default)]
#[must_use]
pub struct Routes {
    pub(crate) router: Router,
    pub(crate) paths: Vec<String>,
    /// What the handlers inject, as declared with [`needs`](Self::needs).
    pub(crate) needs: Vec<Need>,
}

impl fmt::Debug for Routes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Routes")
            .field("paths", &self.paths)
            .finish_non_exhaustive()
    }
}

impl Routes {
    /// No routes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a route, as [`Router::route`] does.
    ///
    /// # Panics
    /// As [`Router::route`]: when the path is malformed or already routed, a mistake in the
    /// program's code, reported when the server is built (before any service starts).
    pub fn route(mut self, path: &str, method_router: MethodRouter) -> Self {
        self.router = self.router.route(path, method_router);
        self.paths.push(path.to_owned());
        self
    }

    /// Nests routes under a prefix, as [`Router::nest`] does.
    pub fn nest(mut self, prefix: &str, routes: impl Into<Self>) -> Self {
        let routes = routes.into();
        let prefix = prefix.trim_end_matches('/');
        self.paths
            .extend(routes.paths.iter().map(|path| format!("{prefix}{path}")));
        self.needs.extend(routes.needs);
        self.router = self.router.nest(prefix, routes.router);
        self
    }

    /// Adds other routes beside these, as [`Router::merge`] does.
    pub fn merge(mut self, routes: impl Into<Self>) -> Self {
        let routes = routes.into();
        self.paths.extend(routes.paths);
        self.needs.extend(routes.needs);
        self.router = self.router.merge(routes.router);
        self
    }

    /// Declares that the handlers inject `T`, so the server checks it is registered before
    /// any service starts (a handler's extractors are not visible to the host otherwise, and a
    /// missing registration would show only as a 500 on the first request).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use axum::routing::get;
    /// use hosted::web::{Injected, Routes};
    ///
    /// struct Database;
    /// async fn list(Injected(_db): Injected<Arc<Database>>) -> &'static str { "[]" }
    ///
    /// let routes = Routes::new()
    ///     .route("/items", get(list))
    ///     .needs::<Arc<Database>>();
    /// # drop(routes);
    /// ```
    pub fn needs<T: Inject>(mut self) -> Self {
        self.needs.push((std::any::type_name::<T>(), T::declare));
        self
    }

    /// The paths, as given (`*` for a plain `Router` merged in).
    #[must_use]
    pub fn paths(&self) -> &[String] {
        &self.paths
    }

    /// The axum router.
    pub fn into_router(self) -> Router {
        self.router
    }
}

impl From<Router> for Routes {
    fn from(router: Router) -> Self {
        Self {
            router,
            paths: vec!["*".to_owned()],
            needs: Vec::new(),
        }
    }
}

/// One `#[hosted::routes]` function, registered at link time. Not public API, used by
/// generated code.
#[doc(hidden)]
#[derive(Debug)]
pub struct RouteContribution {
    pub(crate) name: &'static str,
    pub(crate) file: &'static str,
    pub(crate) line: u32,
    pub(crate) make: fn() -> Routes,
}

impl RouteContribution {
    /// Not public API, used by generated code.
    #[doc(hidden)]
    #[must_use]
    pub const fn new(
        name: &'static str,
        file: &'static str,
        line: u32,
        make: fn() -> Routes,
    ) -> Self {
        Self {
            name,
            file,
            line,
            make,
        }
    }
}

inventory::collect!(RouteContribution);

/// Not public API, used by generated code: what a `#[hosted::routes]` function may return.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "a `#[hosted::routes]` function returns `hosted::web::Routes` or `axum::Router`, not `{Self}`",
    label = "not routes"
)]
pub trait IntoRoutes {
    /// The routes.
    fn into_routes(self) -> Routes;
}

impl IntoRoutes for Routes {
    fn into_routes(self) -> Routes {
        self
    }
}

impl IntoRoutes for Router {
    fn into_routes(self) -> Routes {
        self.into()
    }
}

/// Every contribution linked into the binary, sorted by name so the server and `--list` are the
/// same from run to run.
pub(crate) fn discovered() -> Vec<&'static RouteContribution> {
    let mut found: Vec<&'static RouteContribution> =
        inventory::iter::<RouteContribution>.into_iter().collect();
    found.sort_by_key(|contribution| contribution.name);
    found
}
