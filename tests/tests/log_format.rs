//! The log as a machine reads it: with `host.log_format = "json"` every line is one JSON object
//! that keeps the service's name, and a panic — caught by the host or not — is one event, in
//! either format. Runs the `noisy` binary (see `tests/src/bin/noisy.rs`).

use hosted_tests::process::{HANG, Process};
use serde_json::Value;

/// Runs `noisy` with `args`, makes a spawned task panic, then the `control` service (its policy
/// stops the host); returns the process once it has exited with 1.
fn panicking_run(args: &[&str], backtrace: bool) -> Process {
    let mut command = Process::command(env!("CARGO_BIN_EXE_noisy"));
    command.args(args);
    if backtrace {
        command.env("RUST_BACKTRACE", "1");
    }
    let mut app = Process::start_with_stdin(command);
    app.wait_for_line("ready", HANG);
    app.write_line("spawn-panic");
    app.wait_for_line("a spawned task panicked", HANG);
    app.write_line("panic");
    assert_eq!(app.wait_exit(HANG), 1, "{}", app.transcript());
    app
}

fn lines_containing(text: &str, needle: &str) -> usize {
    text.lines().filter(|line| line.contains(needle)).count()
}

fn json_lines(app: &Process) -> Vec<Value> {
    app.stderr()
        .lines()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|error| panic!("not JSON ({error}): {line}\n{}", app.transcript()))
        })
        .collect()
}

fn check_json_run(backtrace: bool) {
    let app = panicking_run(&["--host.log_format=json"], backtrace);
    let lines = json_lines(&app);
    // Inside a service's span, its name survives parsing.
    let started = lines
        .iter()
        .find(|line| {
            line["fields"]["message"]
                .as_str()
                .is_some_and(|message| message.starts_with("started"))
                && line["span"]["service"] == "noisy::control"
        })
        .unwrap_or_else(|| panic!("no `started` line for noisy::control\n{}", app.transcript()));
    assert_eq!(started["span"]["name"], "service", "{started}");

    let stderr = app.stderr();
    for needle in ["asked to panic", "a spawned task panicked"] {
        assert_eq!(lines_containing(&stderr, needle), 1, "{needle}:\n{stderr}");
    }
    let caught = lines
        .iter()
        .find(|line| line.to_string().contains("asked to panic"))
        .expect("the panic's line");
    assert_eq!(caught["level"], "ERROR", "{caught}");
    assert_eq!(caught["span"]["service"], "noisy::control", "{caught}");
    let error = caught["fields"]["error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("panicked: asked to panic (at tests/src/bin/noisy.rs:"),
        "{caught}"
    );
    assert_eq!(error.contains("stack backtrace"), backtrace, "{caught}");
    let spawned = lines
        .iter()
        .find(|line| line.to_string().contains("a spawned task panicked"))
        .expect("the spawned task's line");
    assert_eq!(spawned["level"], "ERROR", "{spawned}");
    assert_eq!(
        spawned["fields"].get("backtrace").is_some(),
        backtrace,
        "{spawned}"
    );
}

#[test]
fn every_json_line_parses_keeps_the_service_name_and_a_panic_is_one_event() {
    check_json_run(false);
}

#[test]
fn with_rust_backtrace_a_panic_is_still_one_json_event() {
    check_json_run(true);
}

#[test]
fn in_text_a_panic_is_one_line_and_says_where() {
    let app = panicking_run(&[], false);
    let stderr = app.stderr();
    assert_eq!(lines_containing(&stderr, "asked to panic"), 1, "{stderr}");
    assert_eq!(
        lines_containing(&stderr, "a spawned task panicked"),
        1,
        "{stderr}"
    );
    app.assert_log_order(&[
        &[
            "ERROR hosted::host::logging: thread `",
            "` panicked: a spawned task panicked (at tests/src/bin/noisy.rs:",
        ],
        &[
            "ERROR service{service=noisy::control}",
            "panicked: asked to panic (at tests/src/bin/noisy.rs:",
        ],
        &["application stopped after failures", "noisy::control"],
    ]);
    // Nothing of Rust's default hook.
    app.assert_no_log_line(&["note: run with `RUST_BACKTRACE=1`"]);
    app.assert_no_log_line(&["thread '"]);
}
