//! The durable store in the web host's readiness: `/readyz` answers 503 while the store cannot
//! be reached, and 200 again once a statement reaches it.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::PgBackend;
use crate::di::RunContext;
use crate::web::Readiness;

/// Adds the store's condition to the web host's readiness, once per store; nothing without a
/// web host.
pub(crate) async fn report(cx: &RunContext, backend: &Arc<PgBackend>) {
    let Ok(Some(readiness)) = cx.resolve::<Option<Arc<Readiness>>>().await else {
        return;
    };
    if backend.in_readiness.swap(true, Ordering::AcqRel) {
        return;
    }
    let backend = Arc::downgrade(backend);
    readiness.add_check("durable store", move || {
        backend
            .upgrade()
            .map_or(Ok(()), |backend| backend.reachable())
    });
}
