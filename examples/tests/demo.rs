//! Runs the demo as a user would: it starts, the flaky service connects after two failures, and
//! Ctrl+C stops everything cleanly.

use hosted_tests::process::{HANG, Process};

#[test]
fn the_demo_runs_and_stops_cleanly_on_ctrl_c() {
    let mut demo = Process::spawn(env!("CARGO_BIN_EXE_demo"), &[]);
    demo.wait_for_line("application started", HANG);
    demo.wait_for_line("connected attempt=3", HANG);
    demo.signal("INT");
    assert_eq!(demo.wait_exit(HANG), 0, "{}", demo.transcript());
    demo.assert_log_order(&[
        &["connection lost (attempt 1)", "restarting after a backoff"],
        &["connection lost (attempt 2)", "restarting after a backoff"],
        &["connected attempt=3"],
        &["received SIGINT"],
        &["application is shutting down", "reason=interrupt signal"],
        &["service{service=demo::heartbeat}", ": stopped "],
        &["counter closed"],
        &["application stopped"],
    ]);
    demo.assert_no_log_line(&["application stopped after failures"]);
}
