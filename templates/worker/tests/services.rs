//! The services on tokio's paused clock: a minute of ticks runs in milliseconds, and the counts
//! are exact.

use std::sync::atomic::Ordering;
use std::time::Duration;

use {{crate_name}}::PROCESSED;

#[tokio::test(start_paused = true)]
async fn a_minute_schedules_and_processes_twelve_jobs() {
    let mut host = hosted::testing::TestHost::start(hosted::Host::builder().discover())
        .await
        .expect("the host starts");
    host.run_for(Duration::from_secs(60)).await;
    // Due at 0 s, 5 s, ..., 55 s; the one due at 60 s is past the end.
    assert_eq!(host.ticks("{{crate_name}}::schedule").len(), 12);
    // The stop drains the queue: every job scheduled is processed.
    assert!(host.stop().await.is_success());
    assert_eq!(PROCESSED.load(Ordering::Relaxed), 12);
}
