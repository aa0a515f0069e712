//! Runs seed 002's queued background tasks with 1-second delays: a `w` typed on the terminal
//! runs a work item to completion; at Ctrl+C the queue stops accepting items, lets the running
//! item finish within the shutdown budget, cancels the next one when the budget runs short, and
//! counts both.

use hosted_tests::process::{HANG, Process};

#[test]
fn typing_w_enqueues_work_that_completes_or_is_cancelled_at_the_stop() {
    let mut command = Process::command(env!("CARGO_BIN_EXE_queued_work"));
    command
        .env("QUEUED_WORK_STEP_MS", "1000")
        .env("HOSTED_QUEUECAPACITY", "10");
    let mut work = Process::start_with_stdin(command);
    work.wait_for_line("application started", HANG);
    // The seed's `QueueCapacity`, from the environment through the alias.
    work.wait_for_line("accepting items capacity=10 ", HANG);
    work.wait_for_line("MonitorAsync Loop is starting", HANG);

    work.write_line("w");
    work.wait_for_line("Queued Background Task 1 is starting.", HANG);
    work.write_line("w");
    work.wait_for_line("work item 2 queued", HANG);
    work.signal("INT");

    assert_eq!(work.wait_exit(HANG), 0, "{}", work.transcript());
    // The shutdown budget is 5 s and the drain gets four fifths of it: item 1 (less than 3 s
    // left) finishes during the drain, item 2 starts, and is cancelled at 4 s, a second or more
    // before it could finish.
    work.assert_log_order(&[
        &["Queued Background Task 1 is starting."],
        &["received SIGINT"],
        &[
            "run{service=QueuedHostedService run=1}",
            "stopping: no longer accepting items",
        ],
        &["Queued Background Task 1 is complete."],
        &["Queued Background Task 2 is starting."],
        &["Queued Background Task 2 is running. 1/3"],
        &["Queued Background Task 2 was cancelled."],
        &[
            "item{service=QueuedHostedService seq=2 attempt=1",
            "left undone: cancelled by the stop",
        ],
        &["queue stopped", "processed=1", "left_undone=1"],
        &["application stopped"],
    ]);
    work.assert_no_log_line(&["Queued Background Task 2 is complete."]);
}
