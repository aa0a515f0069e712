//! `/livez` and `/readyz`, and the readiness checks services register.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use axum::http::StatusCode;

use crate::service::ApplicationLifetime;

type Check = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// The readiness checks `/readyz` runs beside its own (every service started, none stopping).
/// Injectable (`Arc<Readiness>`); a service registers a check when it starts:
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use hosted::web::Readiness;
///
/// #[hosted::hosted_service]
/// async fn cache_warmer(readiness: Arc<Readiness>, stop: hosted::CancellationToken) {
///     let warm = Arc::new(AtomicBool::new(false));
///     let seen = Arc::clone(&warm);
///     readiness.add_check("cache", move || {
///         if seen.load(Ordering::Relaxed) { Ok(()) } else { Err("still warming".into()) }
///     });
///     warm.store(true, Ordering::Relaxed);
///     stop.cancelled().await;
/// }
/// ```
#[derive(Default)]
pub struct Readiness {
    checks: Mutex<Vec<(String, Check)>>,
}

impl fmt::Debug for Readiness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let checks = self.checks.lock().unwrap_or_else(PoisonError::into_inner);
        f.debug_list()
            .entries(checks.iter().map(|(name, _)| name))
            .finish()
    }
}

impl Readiness {
    /// Adds a check: `Err(reason)` makes `/readyz` answer 503 with the name and reason. Checks
    /// run on every `/readyz` request: keep them cheap (read a flag a background task keeps).
    pub fn add_check(
        &self,
        name: impl Into<String>,
        check: impl Fn() -> Result<(), String> + Send + Sync + 'static,
    ) {
        self.checks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((name.into(), Arc::new(check)));
    }

    /// What `/readyz` answers.
    pub(crate) fn report(&self, lifetime: &ApplicationLifetime) -> (StatusCode, String) {
        if lifetime.stop_requested_token().is_cancelled() || lifetime.is_stopping() {
            return (StatusCode::SERVICE_UNAVAILABLE, "stopping\n".to_owned());
        }
        if !lifetime.is_started() {
            return (StatusCode::SERVICE_UNAVAILABLE, "starting\n".to_owned());
        }
        let checks: Vec<(String, Check)> = self
            .checks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let failing: Vec<String> = checks
            .iter()
            .filter_map(|(name, check)| check().err().map(|reason| format!("{name}: {reason}\n")))
            .collect();
        if failing.is_empty() {
            (StatusCode::OK, "ready\n".to_owned())
        } else {
            (StatusCode::SERVICE_UNAVAILABLE, failing.concat())
        }
    }
}
