//! Runs seed 002's timed hosted service with its period shortened from the command line, lets it
//! count, and stops it with SIGTERM: the count goes up by one per tick, each line is logged
//! inside the tick's span, and the stop is clean.

use hosted_tests::process::{HANG, Process};

#[test]
fn the_timed_service_counts_its_executions_and_stops_cleanly() {
    let mut service = Process::spawn(
        env!("CARGO_BIN_EXE_timed_hosted_service"),
        &["--services.TimedHostedService.every=100ms"],
    );
    service.wait_for_line("Timed Hosted Service is working. Count: 5", HANG);
    service.signal("TERM");
    assert_eq!(service.wait_exit(HANG), 0, "{}", service.transcript());
    // The first tick is due when the service starts, so it may log before the host says that
    // every service has started.
    service.assert_log_order(&[
        &["tick{service=TimedHostedService tick=1}", "Count: 1"],
        &["tick{service=TimedHostedService tick=2}", "Count: 2"],
        &["tick{service=TimedHostedService tick=3}", "Count: 3"],
        &["tick{service=TimedHostedService tick=4}", "Count: 4"],
        &["tick{service=TimedHostedService tick=5}", "Count: 5"],
        &["received SIGTERM"],
        &["service{service=TimedHostedService}", ": stopped "],
        &["application stopped"],
    ]);
    assert!(service.log_line(&["application started"]).is_some());
    service.assert_no_log_line(&["application stopped after failures"]);
    // One line per tick, counted without gaps, and none after the stop began.
    let log = service.stderr();
    let counts: Vec<u64> = log
        .lines()
        .filter_map(|line| line.split("Count: ").nth(1))
        .map(|rest| rest.split_whitespace().next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(counts, (1..).take(counts.len()).collect::<Vec<u64>>());
    let stopping = service
        .log_line(&["received SIGTERM"])
        .expect("the stop is logged");
    assert!(
        log.lines()
            .skip(stopping)
            .all(|line| !line.contains("is working")),
        "no tick after the stop began\n{log}"
    );
}

#[test]
fn the_timed_service_is_listed_with_its_kind_and_policy() {
    let mut listing = Process::spawn(env!("CARGO_BIN_EXE_timed_hosted_service"), &["--list"]);
    assert_eq!(listing.wait_exit(HANG), 0);
    let line = listing
        .stdout()
        .lines()
        .find(|line| line.starts_with("TimedHostedService"))
        .map(str::to_owned)
        .expect("the timer is listed");
    assert!(line.contains("timed") && line.contains("ignore"), "{line}");
}
