//! The durable queues' conformance suite, and what it runs on.
//!
//! The contract (`hosted::docs::durable`, lines 1 to 10) is tested in [`suite`], written once
//! against a [`Store`]: a fixture a backend provides, giving a fresh isolated store, its
//! [`Backend`](hosted::durable::Backend), the configuration a host or a child process needs, a
//! view of its rows, and the faults it can inject (a stalled connection, a server restart).
//! [`conformance!`] instantiates the whole suite for one store, and says in one place which
//! lines of the contract each test covers. [`postgres::Postgres`] is the one store today; a
//! NATS or SQLite backend would implement [`Store`] and call `conformance!` the same way.

pub mod postgres;
pub mod relay;
pub mod store;
#[allow(
    clippy::missing_panics_doc,
    reason = "each test panics where the contract is broken, and says so"
)]
pub mod suite;
pub mod worker;

use std::time::Duration;

pub use self::postgres::{config, toml};
pub use self::store::{Effect, JobRow, JobState, Pause, Settings, Store, Tuning, Unreachable};

/// Polls `check` every 20 ms until it holds, for at most `limit`.
pub async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let until = tokio::time::Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= until {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The conformance suite for one [`Store`], as `#[tokio::test]` functions; each test's doc
/// names the lines of the contract (`hosted::docs::durable`) it covers.
///
/// ```ignore
/// hosted_durable_tests::conformance!(hosted_durable_tests::postgres::Postgres);
/// ```
#[macro_export]
macro_rules! conformance {
    ($store:ty) => {
        $crate::__conformance_tests! { $store;
            /// Contract 1, 3, 4: one lease per job; a second result is stale.
            single engine::a_claimed_job_completes_once_and_a_second_result_is_stale;
            /// Contract 4: batched completions are fenced one by one.
            multi engine::completions_sent_together_are_fenced_one_by_one;
            /// Contract 4, 5, 8: the elected replica rescues an expired lease; the stale attempt
            /// is rejected.
            single engine::an_expired_lease_is_rescued_by_the_leader_and_the_stale_attempt_rejected;
            /// Contract 3: the heartbeat keeps a lease alive.
            single engine::a_heartbeat_keeps_the_lease_alive;
            /// Contract 5, 6: out of attempts, a rescued job is dead with the reason.
            single engine::out_of_attempts_a_rescued_job_is_dead_with_the_reason;
            /// Contract 6 and the operations: persisted run-after time, dead with the last
            /// error, retry and discard of a dead job.
            single engine::retries_wait_for_their_persisted_time_then_the_job_is_dead_with_the_last_error;
            /// Contract 7: a released job goes back at once, the attempt not counted.
            single engine::a_released_job_goes_back_at_once_without_counting_an_attempt;
            /// Contract 8: one replica leads maintenance, with a term.
            single engine::one_replica_leads_maintenance_with_a_term;
            /// Operations: completed jobs are pruned after `retention`.
            single engine::completed_jobs_are_pruned_after_the_retention;
            /// Operations: dead jobs are pruned after `dead_retention`, or kept with `never`.
            single engine::dead_jobs_are_pruned_after_their_own_retention_or_kept;
            /// Contract 9: a notification wakes an idle worker long before its poll.
            single engine::a_notification_wakes_an_idle_worker_long_before_its_poll;
            /// Contract 9: without notifications, the poll finds the job.
            single engine::with_listen_off_an_idle_worker_waits_for_its_poll;
            /// Contract 3: concurrent claimers never share a job.
            single engine::concurrent_claimers_never_share_a_job;
            /// Contract 8: a tick is claimed once among racing replicas, on the store's clock.
            multi engine::a_tick_is_claimed_once_however_many_replicas_race_for_it;
            /// Issue 15: a job keeps where it was sent from.
            single engine::a_job_keeps_where_it_was_sent_from_and_a_plain_enqueue_keeps_nothing;

            /// Contract 1: `send` returns once durable; each item handled once, with its job.
            single queue::sent_items_are_handled_once_each_with_their_job;
            /// Contract 6: a failed attempt is retried with the next attempt number.
            single queue::a_failed_attempt_is_retried_with_the_next_attempt_number;
            /// Contract 6: a timed-out attempt is dead with its error.
            single queue::a_timed_out_attempt_goes_to_the_dead_letters_with_its_error;
            /// Contract 6 (bad input): a payload that no longer deserialises is dead at once.
            single queue::a_payload_that_no_longer_deserialises_is_dead_lettered_and_the_queue_goes_on;
            /// Contract 1: a transactional send rolled back leaves no job.
            single queue::a_transactional_send_exists_only_if_its_transaction_commits;
            /// Contract 4 (exactly once): a transactional completion commits the effect with the
            /// job, and a failure rolls it back.
            single queue::a_transactional_completion_commits_the_effect_with_the_job_and_rolls_back_a_failure;
            /// Contract 7: the stop releases unfinished jobs at once.
            single queue::the_stop_releases_unfinished_jobs_at_once_without_counting_an_attempt;
            /// Operations: the elected replica prunes dead jobs after `dead_retention`.
            single queue::the_maintenance_replica_prunes_dead_jobs_after_their_retention;
            /// Contract 3, 4 and issue 15: a stalled attempt counts a lost lease and a rejected
            /// stale result in the metrics, in its job's span.
            current queue::a_stalled_attempt_is_counted_as_lease_lost_and_stale_in_its_job_span;

            /// Contract 8: two replicas share each tick, numbered alike.
            single timer::two_hosts_share_each_tick_and_number_them_alike;
            /// Contract 8: missed ticks are skipped by default.
            single timer::missed_ticks_are_skipped_by_default;
            /// Contract 8: missed ticks within the `backfill` window run at start, each once.
            single timer::missed_ticks_within_the_backfill_window_run_at_start;

            /// Bad input: `--check` on an unreachable store: exit 69, the key, its source, the
            /// secret masked.
            single commands::check_reports_an_unreachable_store_with_its_key_its_source_and_the_secret_masked;
            /// Bad input: `--check` on a schema behind (manual) or ahead: exit 65, the keys, the
            /// fix.
            single commands::check_reports_a_schema_at_another_version_with_its_keys_and_the_fix;

            /// Contract 2, 4, 5 (exactly once with a transactional completion): `kill -9` of one
            /// of three workers, 20 trials.
            multi process::kill_9_of_one_of_three_workers_mid_job_loses_nothing_and_records_each_effect_once;
            /// Contract 7: SIGTERM drains within budget and releases unfinished leases at once.
            multi process::sigterm_drains_within_budget_and_releases_unfinished_leases_at_once;
            /// Contract 3, 4, 5: a stalled worker past its lease has its completion rejected.
            multi process::a_stalled_worker_past_its_lease_has_its_stale_completion_rejected;
            /// Contract 10: a server restart mid-run loses nothing, completes nothing twice.
            multi process::a_server_restart_mid_run_loses_nothing_and_completes_nothing_twice;
            /// Contract 8: three replicas, 60 ticks, one skewed by 5 s: each tick once.
            multi process::three_replicas_run_each_tick_of_a_once_per_cluster_schedule_exactly_once;
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_tests {
    ($store:ty; $( $(#[$doc:meta])* $flavor:ident $group:ident :: $name:ident; )*) => {
        $( $crate::__conformance_test!($flavor, $store, $group, $name, $(#[$doc])*); )*
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_test {
    (single, $store:ty, $group:ident, $name:ident, $(#[$doc:meta])*) => {
        $(#[$doc])*
        #[tokio::test]
        async fn $name() {
            $crate::suite::$group::$name::<$store>().await;
        }
    };
    (current, $store:ty, $group:ident, $name:ident, $(#[$doc:meta])*) => {
        $(#[$doc])*
        #[tokio::test(flavor = "current_thread")]
        async fn $name() {
            $crate::suite::$group::$name::<$store>().await;
        }
    };
    (multi, $store:ty, $group:ident, $name:ident, $(#[$doc:meta])*) => {
        $(#[$doc])*
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            $crate::suite::$group::$name::<$store>().await;
        }
    };
}
