//! Configuration as an operator meets it: a real binary reading `hosted.toml` from its working
//! directory, `HOSTED_` variables and `--key=value` arguments; `--list` shows each value's
//! origin and masks secrets; bad values stop it with 78 before anything starts.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use hosted_tests::process::{HANG, Process};

/// A working directory of the test's own, removed at the end.
struct WorkDir(PathBuf);

impl WorkDir {
    fn with_config(name: &str, text: &str) -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir =
            std::env::temp_dir().join(format!("hosted-{name}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("hosted.toml"), text).unwrap();
        Self(dir)
    }

    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Process {
        let mut command = Process::command(env!("CARGO_BIN_EXE_configured"));
        command.current_dir(&self.0).args(args);
        for (name, value) in env {
            command.env(name, value);
        }
        Process::start(command)
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const CONFIG: &str = "[greeting]\ntext = \"hello from the file\"\ntoken = \"s3cr3t\"\n\n[services.configured.greeter]\nmax_restarts = 4\n";

#[test]
fn list_shows_every_value_with_its_origin_and_masks_secrets() {
    let dir = WorkDir::with_config("config-list", CONFIG);
    let mut app = dir.run(
        &["--list", "--services.configured.greeter.backoff=250ms"],
        &[("HOSTED_HOST__SHUTDOWN_TIMEOUT", "9s")],
    );
    assert_eq!(app.wait_exit(HANG), 0, "{}", app.transcript());
    let stdout = app.stdout();
    let settings: Vec<Vec<&str>> = stdout
        .lines()
        .map(|line| line.split_whitespace().collect())
        .collect();
    for expected in [
        vec![
            "host.shutdown_timeout",
            "9s",
            "environment",
            "variable",
            "HOSTED_HOST__SHUTDOWN_TIMEOUT",
        ],
        vec![
            "services.configured.greeter.max_restarts",
            "4",
            "hosted.toml:6",
        ],
        vec![
            "services.configured.greeter.backoff",
            "250ms",
            "command-line",
            "argument",
            "--services.configured.greeter.backoff=250ms",
        ],
        vec![
            "services.configured.greeter.on_failure",
            "\"restart\"",
            "default",
        ],
        vec![
            "greeting.text",
            "\"hello",
            "from",
            "the",
            "file\"",
            "hosted.toml:2",
        ],
        vec!["greeting.token", "***", "hosted.toml:3"],
    ] {
        assert!(
            settings.contains(&expected),
            "missing {expected:?} in\n{stdout}"
        );
    }
    assert!(
        !stdout.contains("s3cr3t"),
        "a secret was printed:\n{stdout}"
    );
}

#[test]
fn configuration_turns_a_service_off_and_feeds_a_section() {
    let dir = WorkDir::with_config("config-run", CONFIG);
    let mut app = dir.run(
        &["--services.configured.optional.enabled=false"],
        &[("HOSTED_GREETING__TEXT", "hello from the environment")],
    );
    app.wait_for_line("application started", HANG);
    app.wait_for_line("greeting: hello from the environment", HANG);
    app.signal("TERM");
    assert_eq!(app.wait_exit(HANG), 0, "{}", app.transcript());
    app.assert_no_log_line(&["optional runs"]);
    assert!(app.stderr().contains("token=***"), "{}", app.transcript());
    assert!(
        !app.stderr().contains("s3cr3t"),
        "a secret was logged:\n{}",
        app.transcript()
    );
}

#[test]
fn a_bad_value_stops_startup_with_78_naming_the_key_and_its_source() {
    let dir = WorkDir::with_config(
        "config-bad",
        "[greeting]\ntext = \"hi\"\n\n[services.configured.greeter]\nmax_restarts = -1\nbackof = \"1s\"\n\n[services.configured.gretter]\nenabled = false\n",
    );
    for args in [&[][..], &["--check"], &["--list"]] {
        let mut app = dir.run(args, &[("HOSTED_HOST__SHUTDOWN_TIMEOUT", "soon")]);
        assert_eq!(app.wait_exit(HANG), 78, "{args:?}: {}", app.transcript());
        let stderr = app.stderr();
        for expected in [
            "the host cannot start: 4 problems found",
            "`host.shutdown_timeout` (environment variable HOSTED_HOST__SHUTDOWN_TIMEOUT): expected a duration like \"250ms\", \"5s\" or \"1m30s\"; `soon` is not a duration",
            "`services.configured.greeter.max_restarts` (hosted.toml:5): expected a whole number from 0 to 4294967295; -1 is out of range",
            "`services.configured.greeter.backof` (hosted.toml:6): service `configured::greeter` has no setting `backof`",
            "did you mean `backoff`?",
            "`services.configured.gretter` (hosted.toml:8): no service is named `configured::gretter`; did you mean `configured::greeter`",
        ] {
            assert!(
                stderr.contains(expected),
                "{args:?}: missing {expected:?} in\n{stderr}"
            );
        }
        app.assert_no_log_line(&["started"]);
    }
}

#[test]
fn the_runtime_gets_the_configured_worker_threads() {
    let dir = WorkDir::with_config("config-workers", CONFIG);
    let mut app = dir.run(&["--host.worker_threads=3"], &[]);
    app.wait_for_line("optional runs workers=3", HANG);
    app.signal("TERM");
    assert_eq!(app.wait_exit(HANG), 0, "{}", app.transcript());
}

#[test]
fn logs_can_be_json_lines() {
    let dir = WorkDir::with_config("config-json", CONFIG);
    let mut app = dir.run(&["--host.log_format=json", "--host.log=debug"], &[]);
    let line = app.wait_for_line("application started", HANG);
    assert!(
        line.starts_with('{') && line.contains("\"level\":\"INFO\""),
        "{line}"
    );
    app.signal("TERM");
    assert_eq!(app.wait_exit(HANG), 0, "{}", app.transcript());
}

#[test]
fn a_bad_combination_of_timer_or_queue_options_is_a_configuration_error_for_check_and_start() {
    let cases: &[(&[&str], &[&str])] = &[
        (
            &[
                "--services.combinations.pulse.every=100ms",
                "--services.combinations.pulse.jitter=200ms",
            ],
            &[
                "`services.combinations.pulse.jitter` (command-line argument --services.combinations.pulse.jitter=200ms) with `services.combinations.pulse.every` (command-line argument --services.combinations.pulse.every=100ms): `jitter` (200ms) must be shorter than the period `every` (100ms)",
            ],
        ),
        (
            &["--services.combinations.pulse.max_concurrent=2"],
            &[
                "`services.combinations.pulse.max_concurrent` (command-line argument --services.combinations.pulse.max_concurrent=2) with `services.combinations.pulse.overlap` (default): `max_concurrent` applies only to `overlap = \"concurrent\"`",
            ],
        ),
        (
            // Equal to the default limit, but named: still refused, as the attribute would.
            &["--services.combinations.pulse.max_concurrent=4"],
            &[
                "`services.combinations.pulse.max_concurrent` (command-line argument --services.combinations.pulse.max_concurrent=4) with `services.combinations.pulse.overlap` (default): `max_concurrent` applies only to `overlap = \"concurrent\"`",
            ],
        ),
        (
            &["--services.combinations.mail.retry_max_backoff=50ms"],
            &[
                "`services.combinations.mail.retry_backoff` (default) with `services.combinations.mail.retry_max_backoff` (command-line argument --services.combinations.mail.retry_max_backoff=50ms): `retry_backoff` (100ms) is longer than `retry_max_backoff` (50ms)",
            ],
        ),
        (
            &["--services.combinations.audit.retry_backoff=1s"],
            &[
                "`services.combinations.audit.retry_backoff` (command-line argument --services.combinations.audit.retry_backoff=1s) with `services.combinations.audit.retries` (default): `retry_backoff` applies only to retried items",
            ],
        ),
    ];
    for (settings, expected) in cases {
        for mode in [&[][..], &["--check"]] {
            let args: Vec<&str> = mode.iter().chain(settings.iter()).copied().collect();
            let mut app = Process::spawn(env!("CARGO_BIN_EXE_combinations"), &args);
            assert_eq!(app.wait_exit(HANG), 78, "{args:?}: {}", app.transcript());
            let stderr = app.stderr();
            for line in *expected {
                assert!(
                    stderr.contains(line),
                    "{args:?}: missing {line:?} in\n{stderr}"
                );
            }
            app.assert_no_log_line(&["started"]);
        }
    }
    // The same options, combined well, pass the check.
    let mut app = Process::spawn(
        env!("CARGO_BIN_EXE_combinations"),
        &[
            "--check",
            "--services.combinations.pulse.every=300ms",
            "--services.combinations.pulse.jitter=200ms",
            "--services.combinations.mail.retry_max_backoff=5s",
        ],
    );
    assert_eq!(app.wait_exit(HANG), 0, "{}", app.transcript());
}

#[test]
fn list_as_json_masks_secrets_and_names_each_source() {
    let dir = WorkDir::with_config("config-json", CONFIG);
    let mut app = dir.run(
        &["--list", "--format=json"],
        &[("HOSTED_HOST__SHUTDOWN_TIMEOUT", "9s")],
    );
    assert_eq!(app.wait_exit(HANG), 0, "{}", app.transcript());
    let stdout = app.stdout();
    assert!(!stdout.contains("s3cr3t"), "{stdout}");
    let list: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let find = |key: &str| {
        list["settings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|setting| setting["key"] == key)
            .unwrap_or_else(|| panic!("no {key}: {list}"))
            .clone()
    };
    let token = find("greeting.token");
    assert_eq!(token["value"], "***");
    assert_eq!(token["secret"], true);
    assert_eq!(token["source"]["kind"], "file");
    assert!(
        token["source"]["path"]
            .as_str()
            .unwrap()
            .ends_with("hosted.toml"),
        "{token}"
    );
    assert_eq!(find("greeting.text")["secret"], false);
    let budget = find("host.shutdown_timeout");
    assert_eq!(budget["value"], "9s");
    assert_eq!(budget["source"]["kind"], "environment");
    assert_eq!(
        budget["source"]["variable"],
        "HOSTED_HOST__SHUTDOWN_TIMEOUT"
    );
    let restarts = find("services.configured.greeter.max_restarts");
    assert_eq!(restarts["value"], 4);
    assert_eq!(restarts["source"]["line"], 6);
}
