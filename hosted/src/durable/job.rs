//! What a durable queue's handler can learn about its job: [`Job`], and the [`JobTransaction`]
//! that commits together with the job's completion.

use std::sync::Arc;

use sqlx_core::transaction::Transaction;
use sqlx_postgres::{PgConnection, PgPool, Postgres};
use tokio::sync::{MappedMutexGuard, Mutex, MutexGuard};

use super::{DurableError, JobId};
use crate::di::{Inject, InjectError, RunContext};

/// The job a durable queue's handler runs for; take it as a parameter, for idempotency keys.
///
/// ```
/// # #[derive(serde::Serialize, serde::Deserialize)] struct Email;
/// #[hosted::queued(durable)]
/// async fn send_email(email: Email, job: hosted::durable::Job) {
///     let key = format!("email-{}", job.id()); // the same on every attempt
///     tracing::info!(%key, attempt = job.attempt(), "sending");
/// }
/// ```
///
/// Only durable queues have jobs: in any other service the parameter fails to inject.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Job {
    pub(crate) id: JobId,
    pub(crate) attempt: u32,
    pub(crate) max_attempts: u32,
}

impl Job {
    /// The job's id in the store: the same on every attempt.
    #[must_use]
    pub fn id(&self) -> JobId {
        self.id
    }

    /// The attempt running now, from 1. A graceful release (the host stopping) does not count
    /// one; a crash does.
    #[must_use]
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// How many attempts the job may have in all (`retries + 1`).
    #[must_use]
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }
}

#[diagnostic::do_not_recommend]
impl Inject for Job {
    async fn inject(cx: &RunContext) -> Result<Self, InjectError> {
        cx.extension::<JobRun>().map(|run| run.job).ok_or_else(|| {
            InjectError::Custom(format!(
                "`Job` is only available to durable queues (`#[queued(durable)]`), and `{}` is \
                 not one",
                cx.info().name()
            ))
        })
    }
}

/// What a durable queue attaches to each attempt's context.
#[derive(Clone, Debug)]
pub(crate) struct JobRun {
    pub(crate) job: Job,
    /// The attempt's transaction; `None` on a store without transactions of its own.
    pub(crate) transaction: Option<Arc<TransactionSlot>>,
}

/// The transaction of one attempt, begun when the handler first asks for it.
#[derive(Debug)]
pub(crate) struct TransactionSlot {
    pool: PgPool,
    open: Mutex<Option<Transaction<'static, Postgres>>>,
}

impl TransactionSlot {
    pub(crate) fn new(pool: PgPool) -> Self {
        Self {
            pool,
            open: Mutex::new(None),
        }
    }

    /// The transaction, if the handler began one.
    pub(crate) async fn take(&self) -> Option<Transaction<'static, Postgres>> {
        self.open.lock().await.take()
    }
}

/// A transaction that commits together with the job's completion: the handler's writes through
/// it exist if and only if the job is completed, so each job's effect is recorded exactly once,
/// even when an attempt is cut off or its result arrives after its lease was lost (then the
/// transaction rolls back).
///
/// ```no_run
/// # #[derive(serde::Serialize, serde::Deserialize)] struct Payment { id: i64 }
/// use hosted::durable::JobTransaction;
///
/// #[hosted::queued(durable)]
/// async fn record(payment: Payment, tx: JobTransaction) -> anyhow::Result<()> {
///     let mut conn = tx.connection().await?;
///     sqlx_core::query::query("INSERT INTO ledger (payment) VALUES ($1)")
///         .bind(payment.id)
///         .execute(&mut *conn)
///         .await?;
///     Ok(())
/// }
/// ```
///
/// A failed attempt rolls it back. Only durable queues have one.
#[derive(Clone, Debug)]
pub struct JobTransaction {
    slot: Arc<TransactionSlot>,
}

impl JobTransaction {
    /// The transaction's connection, begun on first use.
    ///
    /// # Errors
    /// When no connection can be had.
    pub async fn connection(&self) -> Result<MappedMutexGuard<'_, PgConnection>, DurableError> {
        let mut open = self.slot.open.lock().await;
        if open.is_none() {
            let begun = self
                .slot
                .pool
                .begin()
                .await
                .map_err(|error| DurableError::Database(error.to_string()))?;
            *open = Some(begun);
        }
        Ok(MutexGuard::map(open, |open| {
            let Some(transaction) = open.as_mut() else {
                unreachable!("begun above")
            };
            &mut **transaction
        }))
    }
}

#[diagnostic::do_not_recommend]
impl Inject for JobTransaction {
    async fn inject(cx: &RunContext) -> Result<Self, InjectError> {
        let Some(run) = cx.extension::<JobRun>() else {
            return Err(InjectError::Custom(format!(
                "`JobTransaction` is only available to durable queues \
                 (`#[queued(durable)]`), and `{}` is not one",
                cx.info().name()
            )));
        };
        run.transaction
            .as_ref()
            .map(|slot| Self {
                slot: Arc::clone(slot),
            })
            .ok_or_else(|| {
                InjectError::Custom(format!(
                    "`JobTransaction` is a PostgreSQL transaction, and the store of `{}` is \
                     not PostgreSQL",
                    cx.info().name()
                ))
            })
    }
}
