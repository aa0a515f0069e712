//! Timed services on tokio's paused clock: tick counts and times for each schedule, drift over
//! 10,000 ticks, each overlap and missed-tick policy with a slow body, initial delay, jitter,
//! cron fire times, failures under each policy, and stopping in the middle of a tick.
//!
//! Services are registered by hand (`ServiceDescriptor::timed`, what `#[timed]` expands to), so
//! each test's host holds exactly its own timers; the attribute's own tests are in
//! `timed_attribute.rs`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime};

use hosted::di::RunContext;
use hosted::registry::ServiceDescriptor;
use hosted::service::{RestartPolicy, StopReason};
use hosted::testing::{TestHost, TickLog, TickRecord};
use hosted::timer::{Missed, Overlap, TimerOptions};
use hosted::{BoxError, CancellationToken, FailurePolicy, Host, Tick};

const NAME: &str = "timer";

fn secs(seconds: u64) -> Duration {
    Duration::from_secs(seconds)
}

/// A timer whose ticks each take `work` of virtual time.
fn working(options: TimerOptions, work: Duration) -> ServiceDescriptor {
    ServiceDescriptor::timed(NAME, options, move |_: RunContext| async move {
        tokio::time::sleep(work).await;
    })
}

async fn start(service: ServiceDescriptor) -> TestHost {
    TestHost::start(Host::builder().add_service(service))
        .await
        .expect("the host starts")
}

/// Each tick's start, in whole milliseconds of virtual time since the host started.
fn started_ms(host: &TestHost, records: &[TickRecord]) -> Vec<u128> {
    records
        .iter()
        .map(|record| (record.tick.started() - host.origin()).as_millis())
        .collect()
}

fn numbers(records: &[TickRecord]) -> Vec<u64> {
    records.iter().map(|record| record.tick.number()).collect()
}

fn missed(records: &[TickRecord]) -> Vec<u64> {
    records.iter().map(|record| record.tick.missed()).collect()
}

fn ms(seconds: &[u64]) -> Vec<u128> {
    seconds.iter().map(|s| u128::from(*s) * 1000).collect()
}

#[tokio::test(start_paused = true)]
async fn a_fixed_rate_ticks_at_start_plus_n_periods() {
    let mut host = start(working(TimerOptions::every(secs(5)), Duration::ZERO)).await;
    host.run_for(secs(60)).await;
    let ticks = host.ticks(NAME);
    assert_eq!(
        started_ms(&host, &ticks),
        ms(&[0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55])
    );
    assert_eq!(numbers(&ticks), (1..=12).collect::<Vec<_>>());
    assert!(ticks.iter().all(|record| record.tick.lateness().is_zero()));
    assert!(host.stop().await.is_success());
}

#[tokio::test(start_paused = true)]
async fn a_fixed_rate_does_not_count_the_time_ticks_take() {
    let mut host = start(working(TimerOptions::every(secs(5)), secs(2))).await;
    host.run_for(secs(60)).await;
    assert_eq!(host.ticks(NAME).len(), 12);
    assert!(host.stop().await.is_success());
}

#[tokio::test(start_paused = true)]
async fn a_fixed_delay_waits_after_each_tick_ends() {
    let mut host = start(working(TimerOptions::delay(secs(5)), secs(2))).await;
    host.run_for(secs(60)).await;
    let ticks = host.ticks(NAME);
    assert_eq!(
        started_ms(&host, &ticks),
        ms(&[0, 7, 14, 21, 28, 35, 42, 49, 56])
    );
    assert_eq!(numbers(&ticks), (1..=9).collect::<Vec<_>>());
    assert!(host.stop().await.is_success());
}

#[tokio::test(start_paused = true)]
async fn ten_thousand_ticks_do_not_drift() {
    // A period that is no whole number of milliseconds, and ticks of varying length: the n-th
    // tick is still due at exactly start + (n - 1) × period.
    let period = Duration::from_nanos(100_000_001);
    let lengths = Arc::new(AtomicU32::new(0));
    let service = ServiceDescriptor::timed(NAME, TimerOptions::every(period), {
        let lengths = Arc::clone(&lengths);
        move |_: RunContext| {
            let length = lengths.fetch_add(7, Ordering::Relaxed) % 60;
            async move { tokio::time::sleep(Duration::from_millis(u64::from(length))).await }
        }
    });
    let mut host = start(service).await;
    host.run_for(period * 10_000).await;
    let ticks = host.ticks(NAME);
    assert_eq!(ticks.len(), 10_000);
    for (n, record) in (0_u32..).zip(&ticks) {
        assert_eq!(
            record.tick.scheduled() - host.origin(),
            period * n,
            "tick {}",
            n + 1
        );
        // tokio's timers have a resolution of 1 ms.
        assert!(
            record.tick.lateness() < Duration::from_millis(1),
            "tick {} late by {:?}",
            n + 1,
            record.tick.lateness()
        );
    }
    assert!(host.stop().await.is_success());
}

#[tokio::test(start_paused = true)]
async fn overlap_skip_drops_the_ticks_due_while_one_runs() {
    let options = TimerOptions::every(secs(5)).with_overlap(Overlap::Skip);
    let mut host = start(working(options, secs(7))).await;
    host.run_for(secs(60)).await;
    let ticks = host.ticks(NAME);
    assert_eq!(started_ms(&host, &ticks), ms(&[0, 10, 20, 30, 40, 50]));
    assert_eq!(numbers(&ticks), [1, 3, 5, 7, 9, 11]);
    assert!(missed(&ticks).iter().all(|&m| m == 0));
    assert!(host.stop().await.is_success());
}

#[tokio::test(start_paused = true)]
async fn overlap_coalesce_runs_once_for_the_ticks_due_meanwhile() {
    let mut host = start(working(TimerOptions::every(secs(5)), secs(7))).await;
    host.run_for(secs(60)).await;
    let ticks = host.ticks(NAME);
    assert_eq!(
        started_ms(&host, &ticks),
        ms(&[0, 7, 14, 21, 28, 35, 42, 49, 56])
    );
    // The tick that ends at 35 s, when tick 8 is due, stands for tick 7 as well.
    assert_eq!(numbers(&ticks), [1, 2, 3, 5, 6, 8, 9, 10, 12]);
    assert_eq!(missed(&ticks), [0, 0, 0, 1, 0, 1, 0, 0, 1]);
    // Each coalesced tick reports the latest of the ticks it stands for.
    let fourth = &ticks[3];
    assert_eq!(fourth.tick.scheduled() - host.origin(), secs(20));
    assert_eq!(fourth.tick.lateness(), secs(1));
    assert!(host.stop().await.is_success());
}

#[tokio::test(start_paused = true)]
async fn overlap_concurrent_starts_every_tick_on_time_up_to_the_limit() {
    let options = TimerOptions::every(secs(5)).with_overlap(Overlap::Concurrent);
    let mut host = start(working(options, secs(7))).await;
    host.run_for(secs(60)).await;
    assert_eq!(
        started_ms(&host, &host.ticks(NAME)),
        ms(&[0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55])
    );
    // The ticks started at 50 and 55 still run; the stop waits for both.
    let (outcome, ticks) = stop_and_record(host).await;
    assert!(outcome.is_success());
    assert_eq!(ticks.len(), 12, "no tick starts once the stop began");
    assert!(ticks.iter().all(|record| record.succeeded == Some(true)));
}

#[tokio::test(start_paused = true)]
async fn overlap_concurrent_coalesces_past_the_limit() {
    let options = TimerOptions::every(secs(5))
        .with_overlap(Overlap::Concurrent)
        .with_max_concurrent(2);
    let service = working(options, secs(22));
    let builder = Host::builder()
        .add_service(service)
        .shutdown_timeout(secs(30));
    let mut host = TestHost::start(builder).await.expect("the host starts");
    host.run_for(secs(40)).await;
    let ticks = host.ticks(NAME);
    // Two slots: 0 and 5 start at once; 10, 15 and 20 come due while both are taken, and run as
    // one when the first ends at 22; 25 waits for the second, which ends at 27.
    assert_eq!(started_ms(&host, &ticks), ms(&[0, 5, 22, 27]));
    assert_eq!(numbers(&ticks), [1, 2, 5, 6]);
    assert_eq!(missed(&ticks), [0, 0, 2, 0]);
    let most_at_once = ticks
        .iter()
        .map(|record| {
            ticks
                .iter()
                .filter(|other| {
                    other.tick.started() <= record.tick.started()
                        && other.finished.is_none_or(|end| end > record.tick.started())
                })
                .count()
        })
        .max();
    assert_eq!(most_at_once, Some(2));
    assert!(host.stop().await.is_success());
}

#[tokio::test(start_paused = true)]
async fn run_for_one_millisecond_runs_the_tick_due_at_0() {
    let mut host = start(working(TimerOptions::every(secs(5)), Duration::ZERO)).await;
    host.run_for(Duration::from_millis(1)).await;
    assert_eq!(numbers(&host.ticks(NAME)), [1]);
    host.run_for(Duration::from_millis(4_998)).await;
    assert_eq!(
        numbers(&host.ticks(NAME)),
        [1],
        "the tick due at 5 s is not due yet"
    );
    host.run_for(Duration::from_millis(1)).await;
    assert_eq!(
        numbers(&host.ticks(NAME)),
        [1],
        "due exactly at the end: the next call"
    );
    host.run_for(Duration::from_millis(1)).await;
    assert_eq!(numbers(&host.ticks(NAME)), [1, 2]);
    assert_eq!(started_ms(&host, &host.ticks(NAME)), [0, 5_000]);
    assert!(host.stop().await.is_success());
}

#[tokio::test(start_paused = true)]
async fn a_jump_after_run_for_wakes_the_timers_where_the_host_time_stands() {
    let options = TimerOptions::every(secs(5)).with_missed(Missed::Skip);
    let mut host = start(working(options, Duration::ZERO)).await;
    host.run_for(Duration::from_millis(100)).await;
    host.jump(Duration::from_millis(16_900)).await;
    host.run_for(Duration::from_millis(1)).await;
    assert_eq!(host.elapsed(), Duration::from_millis(17_001));
    assert_eq!(started_ms(&host, &host.ticks(NAME)), [0, 17_000]);
    assert!(host.stop().await.is_success());
}

/// Runs the timer to tick 1 at 0 s, then sleeps through 16 s at once, as a suspended process:
/// ticks 2, 3 and 4 (due at 5, 10 and 15 s) are missed.
async fn woken_late(missed: Missed) -> (TestHost, Vec<TickRecord>) {
    let options = TimerOptions::every(secs(5)).with_missed(missed);
    let mut host = start(working(options, Duration::ZERO)).await;
    host.run_for(secs(1)).await;
    host.jump(secs(16)).await;
    host.run_for(secs(9)).await;
    let ticks = host.ticks(NAME);
    (host, ticks)
}

#[tokio::test(start_paused = true)]
async fn missed_burst_runs_every_missed_tick() {
    let (host, ticks) = woken_late(Missed::Burst).await;
    assert_eq!(numbers(&ticks), [1, 2, 3, 4, 5, 6]);
    assert_eq!(
        started_ms(&host, &ticks),
        [0, 17_000, 17_000, 17_000, 20_000, 25_000]
    );
    assert!(host.stop().await.is_success());
}

#[tokio::test(start_paused = true)]
async fn missed_skip_runs_once_and_keeps_the_schedule() {
    let (host, ticks) = woken_late(Missed::Skip).await;
    assert_eq!(numbers(&ticks), [1, 4, 5, 6]);
    assert_eq!(missed(&ticks), [0, 2, 0, 0]);
    assert_eq!(started_ms(&host, &ticks), [0, 17_000, 20_000, 25_000]);
    assert!(host.stop().await.is_success());
}

#[tokio::test(start_paused = true)]
async fn missed_delay_runs_once_and_moves_the_schedule() {
    let (host, ticks) = woken_late(Missed::Delay).await;
    assert_eq!(numbers(&ticks), [1, 4, 5]);
    assert_eq!(missed(&ticks), [0, 2, 0]);
    assert_eq!(started_ms(&host, &ticks), [0, 17_000, 22_000]);
    assert!(host.stop().await.is_success());
}

#[tokio::test(start_paused = true)]
async fn the_initial_delay_postpones_the_first_tick() {
    let options = TimerOptions::every(secs(5)).with_initial_delay(secs(2));
    let mut host = start(working(options, Duration::ZERO)).await;
    host.run_for(secs(20)).await;
    assert_eq!(started_ms(&host, &host.ticks(NAME)), ms(&[2, 7, 12, 17]));
    assert!(host.stop().await.is_success());
}

#[tokio::test(start_paused = true)]
async fn jitter_delays_each_tick_within_its_bound() {
    let jitter = Duration::from_millis(300);
    let options = TimerOptions::every(secs(1)).with_jitter(jitter);
    let mut host = start(working(options, Duration::ZERO)).await;
    host.run_for(secs(200)).await;
    let ticks = host.ticks(NAME);
    assert_eq!(ticks.len(), 200);
    let mut offsets = Vec::new();
    for (n, record) in (0_u32..).zip(&ticks) {
        let due = host.origin() + secs(1) * n;
        let offset = record.tick.started() - due;
        // tokio's timers round up to the next millisecond.
        assert!(
            offset <= jitter + Duration::from_millis(1),
            "tick {n}: {offset:?}"
        );
        offsets.push(offset.as_millis());
    }
    offsets.sort_unstable();
    offsets.dedup();
    assert!(
        offsets.len() > 50,
        "the jitter should spread ticks: {offsets:?}"
    );
    assert!(host.stop().await.is_success());
}

fn wall(text: &str) -> SystemTime {
    let seconds = match text {
        "2025-01-01T00:00:00.500Z" => 1_735_689_600,
        _ => unreachable!(),
    };
    SystemTime::UNIX_EPOCH + secs(seconds) + Duration::from_millis(500)
}

#[tokio::test(start_paused = true)]
async fn cron_ticks_fire_at_the_next_fire_times_on_the_virtual_wall_clock() {
    let start_wall = wall("2025-01-01T00:00:00.500Z");
    let service = working(TimerOptions::cron("*/15 * * * * *"), Duration::ZERO);
    let mut host = TestHost::start_at(Host::builder().add_service(service), start_wall)
        .await
        .expect("the host starts");
    host.run_for(secs(61)).await;
    let ticks = host.ticks(NAME);
    let fire_times: Vec<u64> = ticks
        .iter()
        .map(|record| {
            record
                .tick
                .scheduled_at()
                .duration_since(start_wall - Duration::from_millis(500))
                .unwrap()
                .as_secs()
        })
        .collect();
    assert_eq!(fire_times, [15, 30, 45, 60]);
    assert!(ticks.iter().all(|record| record.tick.lateness().is_zero()));
    assert_eq!(started_ms(&host, &ticks), [14_500, 29_500, 44_500, 59_500]);
    assert!(host.stop().await.is_success());
}

/// On the system clock, not a virtual one: each tick's `scheduled_at` is the fire time itself,
/// to the nanosecond. The first one once read a microsecond early (`…:55.999999`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cron_ticks_on_the_system_clock_are_scheduled_at_whole_seconds() {
    let log = Arc::new(TickLog::default());
    let service = working(TimerOptions::cron("* * * * * *"), Duration::ZERO);
    let host = Host::builder()
        .add_service(service)
        .add_instance(Arc::clone(&log))
        .build()
        .expect("a valid host");
    let running = host.start().await.expect("the host starts");
    let give_up = std::time::Instant::now() + Duration::from_secs(30);
    while log.of(NAME).len() < 3 && std::time::Instant::now() < give_up {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(running.stop().await.is_success());
    let ticks = log.of(NAME);
    assert!(ticks.len() >= 3, "{} ticks in 30 s", ticks.len());
    for record in &ticks {
        let since_epoch = record
            .tick
            .scheduled_at()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap();
        assert_eq!(
            since_epoch.subsec_nanos(),
            0,
            "tick {} scheduled at {since_epoch:?}",
            record.tick.number()
        );
    }
}

#[tokio::test(start_paused = true)]
async fn cron_reads_its_time_zone() {
    // 08:00 in Paris is 07:00 UTC in winter; the host starts at 00:00:00.5 UTC.
    let start_wall = wall("2025-01-01T00:00:00.500Z");
    let service = working(
        TimerOptions::cron("0 0 8 * * *").with_time_zone("Europe/Paris"),
        Duration::ZERO,
    );
    let mut host = TestHost::start_at(Host::builder().add_service(service), start_wall)
        .await
        .expect("the host starts");
    host.run_for(secs(8 * 3600)).await;
    let ticks = host.ticks(NAME);
    assert_eq!(ticks.len(), 1);
    assert_eq!(
        ticks[0].tick.scheduled_at(),
        start_wall - Duration::from_millis(500) + secs(7 * 3600)
    );
    assert!(host.stop().await.is_success());
}

#[tokio::test(start_paused = true)]
async fn an_unknown_time_zone_stops_startup_with_the_service_named() {
    let service = working(
        TimerOptions::cron("0 0 8 * * *").with_time_zone("Mars/Olympus"),
        Duration::ZERO,
    );
    let error = Host::builder()
        .add_service(service)
        .build()
        .expect_err("the host is not built");
    let text = error.to_string();
    assert!(
        text.contains(&format!("`services.{}.time_zone`", NAME.replace("::", "."))),
        "{text}"
    );
    assert!(text.contains("unknown time zone `Mars/Olympus`"), "{text}");
    assert_eq!(error.exit_code(), hosted::host::EXIT_CONFIG);
}

/// A timer whose third tick fails (or panics).
fn failing_third(panics: bool) -> ServiceDescriptor {
    let count = Arc::new(AtomicU32::new(0));
    ServiceDescriptor::timed(NAME, TimerOptions::every(secs(5)), move |_: RunContext| {
        let tick = count.fetch_add(1, Ordering::Relaxed) + 1;
        async move {
            if tick == 3 {
                assert!(!panics, "tick three panicked");
                return Err::<(), BoxError>("tick three failed".into());
            }
            Ok(())
        }
    })
}

/// A timer whose body panics at its third call, before it returns the tick's future.
fn panicking_third_call() -> ServiceDescriptor {
    let count = Arc::new(AtomicU32::new(0));
    ServiceDescriptor::timed(NAME, TimerOptions::every(secs(5)), move |_: RunContext| {
        let tick = count.fetch_add(1, Ordering::Relaxed) + 1;
        assert!(tick != 3, "call three panicked");
        async {}
    })
}

#[tokio::test(start_paused = true)]
async fn by_default_a_failing_or_panicking_tick_is_logged_and_the_timer_keeps_going() {
    let timers = [
        ("fails", failing_third(false)),
        ("panics", failing_third(true)),
        ("panics before its future", panicking_third_call()),
    ];
    for (panics, timer) in timers {
        let mut host = start(timer).await;
        host.run_for(secs(30)).await;
        let ticks = host.ticks(NAME);
        assert_eq!(ticks.len(), 6);
        let outcomes: Vec<_> = ticks.iter().map(|record| record.succeeded).collect();
        assert_eq!(
            outcomes,
            [true, true, false, true, true, true].map(Some),
            "panics: {panics}"
        );
        assert!(
            !host.host().lifetime().is_stopping(),
            "the host keeps running"
        );
        assert!(host.stop().await.is_success());
    }
}

#[tokio::test(start_paused = true)]
async fn on_failure_stop_stops_the_host_at_the_failing_tick() {
    let mut host = start(failing_third(false).on_failure(FailurePolicy::StopHost)).await;
    host.run_for(secs(30)).await;
    assert_eq!(host.ticks(NAME).len(), 3, "no tick after the failing one");
    let outcome = host.stop().await;
    assert_eq!(
        outcome.reason(),
        Some(&StopReason::ServiceFailed {
            service: NAME.to_owned()
        })
    );
    assert!(
        outcome.incidents()[0]
            .what
            .contains("tick 3 failed: tick three failed")
    );
}

#[tokio::test(start_paused = true)]
async fn on_failure_restart_restarts_the_schedule_after_a_backoff() {
    let restart = RestartPolicy::new()
        .with_backoff(secs(2))
        .with_max_backoff(secs(2));
    let mut host = start(failing_third(true).on_failure(FailurePolicy::Restart(restart))).await;
    host.run_for(secs(30)).await;
    let ticks = host.ticks(NAME);
    // Ticks 1-3 at 0, 5, 10; tick 3 panics; the timer restarts after 1-2 s (jittered backoff)
    // with a fresh schedule, its numbers going on.
    assert_eq!(numbers(&ticks[..4]), [1, 2, 3, 4]);
    let restarted = (ticks[3].tick.started() - host.origin()).as_millis();
    assert!((11_000..=12_000).contains(&restarted), "{restarted}");
    assert_eq!(ticks[4].tick.started() - ticks[3].tick.started(), secs(5));
    assert!(host.stop().await.is_success());
}

#[tokio::test(start_paused = true)]
async fn a_stop_in_the_middle_of_a_tick_is_seen_and_awaited() {
    let service = ServiceDescriptor::timed(
        NAME,
        TimerOptions::every(secs(5)),
        |cx: RunContext| async move {
            let stop = cx.resolve::<CancellationToken>().await?;
            // Finishes its work in 8 s, or 1 s after the stop.
            tokio::select! {
                () = tokio::time::sleep(secs(8)) => {}
                () = async { stop.cancelled().await; tokio::time::sleep(secs(1)).await } => {}
            }
            Ok::<(), BoxError>(())
        },
    );
    let mut host = start(service).await;
    host.run_for(secs(3)).await;
    let origin = host.origin();
    let running = host.ticks(NAME);
    assert_eq!(running.len(), 1);
    assert!(
        running[0].finished.is_none(),
        "the tick runs when the stop begins"
    );
    let (outcome, ticks) = stop_and_record(host).await;
    assert!(outcome.is_success());
    assert_eq!(ticks.len(), 1, "no tick starts once the stop began");
    let finished = ticks[0].finished.expect("the tick was awaited");
    assert_eq!((finished - origin).as_millis(), 3_999);
}

/// Stops the host, and returns its outcome and every tick it ran.
async fn stop_and_record(host: TestHost) -> (hosted::host::Outcome, Vec<TickRecord>) {
    let log: Arc<TickLog> = host
        .host()
        .get::<TickLog>()
        .await
        .expect("the test host registers its log");
    let outcome = host.stop().await;
    (outcome, log.records())
}

#[tokio::test(start_paused = true)]
async fn a_tick_that_outlasts_the_shutdown_budget_is_abandoned() {
    let service = working(TimerOptions::every(secs(5)), secs(60));
    let mut host = TestHost::start(
        Host::builder()
            .add_service(service)
            .shutdown_timeout(secs(2)),
    )
    .await
    .expect("the host starts");
    host.run_for(secs(3)).await;
    let outcome = host.stop().await;
    assert!(!outcome.is_success());
    assert!(outcome.incidents()[0].what.contains("abandoned"));
}

#[tokio::test(start_paused = true)]
async fn tick_is_only_injected_into_timers() {
    let seen = Arc::new(std::sync::Mutex::new(None));
    let service = ServiceDescriptor::background("background", {
        let seen = Arc::clone(&seen);
        move |cx: RunContext| {
            let seen = Arc::clone(&seen);
            async move {
                *seen.lock().unwrap() = Some(
                    cx.resolve::<Tick>()
                        .await
                        .map(|_| ())
                        .unwrap_err()
                        .to_string(),
                );
            }
        }
    });
    let mut host = start(service).await;
    host.run_for(secs(1)).await;
    assert_eq!(
        seen.lock().unwrap().as_deref(),
        Some(
            "`Tick` is only available to `#[timed]` services, and `background` is a background service"
        )
    );
    assert!(host.stop().await.is_success());
}

#[tokio::test(start_paused = true)]
async fn configuration_overrides_the_timer_arguments_at_startup() {
    let configuration = hosted::config::ConfigSources::new()
        .toml(
            "test.toml",
            "[services.timer]\nevery = \"2s\"\ninitial_delay = \"1s\"\noverlap = \"skip\"\n",
        )
        .load()
        .expect("readable configuration");
    let builder = Host::builder()
        .add_service(working(TimerOptions::every(secs(5)), secs(3)))
        .configuration(configuration);
    let mut host = TestHost::start(builder).await.expect("the host starts");
    host.run_for(secs(10)).await;
    // Every 2 s from 1 s; ticks take 3 s, so every other one is skipped.
    assert_eq!(started_ms(&host, &host.ticks(NAME)), ms(&[1, 5, 9]));
    assert!(host.stop().await.is_success());
}

#[tokio::test(start_paused = true)]
async fn a_configured_combination_the_attribute_would_refuse_stops_startup() {
    let configuration = hosted::config::ConfigSources::new()
        .toml("test.toml", "[services.timer]\njitter = \"10s\"\n")
        .load()
        .expect("readable configuration");
    // Refused as the host is built, like a bad value: the keys with their sources, exit 78.
    let error = Host::builder()
        .add_service(working(TimerOptions::every(secs(5)), Duration::ZERO))
        .configuration(configuration)
        .build()
        .expect_err("the combination is refused before anything starts");
    assert_eq!(error.exit_code(), hosted::host::EXIT_CONFIG);
    assert!(
        error.to_string().contains(
            "`services.timer.jitter` (test.toml:2) with `services.timer.every` (default): \
             `jitter` (10s) must be shorter than the period `every` (5s)"
        ),
        "{error}"
    );
}

#[tokio::test(start_paused = true)]
async fn timer_overrides_replace_the_options_of_named_timers() {
    let overrides = hosted::timer::TimerOverrides::new()
        .set(NAME, TimerOptions::delay(secs(4)))
        .set("another", TimerOptions::every(secs(1)));
    let builder = Host::builder()
        .add_service(working(TimerOptions::every(secs(5)), secs(1)))
        .add_instance(Arc::new(overrides));
    let mut host = TestHost::start(builder).await.expect("the host starts");
    host.run_for(secs(12)).await;
    assert_eq!(started_ms(&host, &host.ticks(NAME)), ms(&[0, 5, 10]));
    assert!(host.stop().await.is_success());
}
