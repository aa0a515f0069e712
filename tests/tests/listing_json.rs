//! `--list --format=json` and `--check --format=json`: real binaries print one document, which
//! the tests parse with `serde_json` and read field by field (the schema is in `docs/run.md`).

use hosted_tests::process::{HANG, Process};
use serde_json::Value;

/// Runs `program` with `args`, expects `code`, parses stdout as one JSON document.
fn document(program: &str, args: &[&str], code: i32) -> Value {
    let mut app = Process::spawn(program, args);
    assert_eq!(app.wait_exit(HANG), code, "{args:?}\n{}", app.transcript());
    let stdout = app.stdout();
    assert_eq!(stdout.lines().count(), 1, "one line of JSON:\n{stdout}");
    serde_json::from_str(&stdout).unwrap_or_else(|error| panic!("{error}:\n{stdout}"))
}

fn service<'a>(document: &'a Value, name: &str) -> &'a Value {
    document["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|service| service["name"] == name)
        .unwrap_or_else(|| panic!("no service {name} in {document}"))
}

fn setting<'a>(document: &'a Value, key: &str) -> &'a Value {
    document["settings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|setting| setting["key"] == key)
        .unwrap_or_else(|| panic!("no setting {key} in {document}"))
}

#[test]
fn list_as_json_gives_each_service_its_kind_schedule_queue_and_settings() {
    let list = document(
        env!("CARGO_BIN_EXE_systemd_notify"),
        &[
            "--list",
            "--format=json",
            "--services.systemd_notify.work.capacity=32",
        ],
        0,
    );
    assert_eq!(list["schema"], "hosted.list/1");
    assert_eq!(list["ok"], true);
    let names: Vec<&str> = list["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|service| service["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "systemd_notify::feeder",
            "systemd_notify::report",
            "systemd_notify::work"
        ]
    );

    let report = service(&list, "systemd_notify::report");
    assert_eq!(report["kind"], "timed");
    assert_eq!(report["schedule"]["every"], "5s");
    assert_eq!(report["schedule"]["overlap"], "coalesce");
    assert_eq!(report["schedule"]["max_concurrent"], 4);
    assert_eq!(report["queue"], Value::Null);
    assert_eq!(report["enabled"], true);
    assert!(
        report["source"]
            .as_str()
            .unwrap()
            .starts_with("tests/src/bin/systemd_notify.rs:")
    );

    let work = service(&list, "systemd_notify::work");
    assert_eq!(work["kind"], "queued");
    assert_eq!(work["schedule"], Value::Null);
    assert_eq!(work["queue"]["capacity"], 32);
    assert_eq!(work["queue"]["workers"], 2);
    assert_eq!(work["queue"]["full_mode"], "wait");
    let capacity = work["settings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|setting| setting["key"] == "services.systemd_notify.work.capacity")
        .unwrap();
    assert_eq!(capacity["value"], 32);
    assert_eq!(capacity["source"]["kind"], "command_line");
    assert_eq!(
        capacity["source"]["argument"],
        "--services.systemd_notify.work.capacity=32"
    );

    let feeder = service(&list, "systemd_notify::feeder");
    assert_eq!(feeder["kind"], "background");
    assert_eq!(feeder["schedule"], Value::Null);
    assert_eq!(feeder["queue"], Value::Null);
    assert_eq!(feeder["on_failure"], "stop");
    // What it injects from the container, with the parameter that asks.
    let needs = feeder["dependencies"].as_array().unwrap();
    let queue = needs
        .iter()
        .find(|need| need["type"].as_str().unwrap().ends_with("Queue<u64>"))
        .unwrap_or_else(|| panic!("{feeder}"));
    assert_eq!(queue["parameter"], "queue");
    assert_eq!(queue["optional"], false);

    let drain = setting(&list, "host.drain_delay");
    assert_eq!(drain["value"], "0s");
    assert_eq!(drain["source"]["kind"], "default");
    assert_eq!(setting(&list, "host.worker_threads")["value"], 0);
    assert_eq!(setting(&list, "host.log")["value"], "info");
    assert_eq!(list["problems"], serde_json::json!([]));
}

#[test]
fn list_as_json_gives_order_after_and_failure_policy() {
    let list = document(
        env!("CARGO_BIN_EXE_listing"),
        &["--list", "--format=json"],
        0,
    );
    let importer = service(&list, "listing::importer");
    assert_eq!(
        importer["after"],
        serde_json::json!(["listing::Store", "mailer"])
    );
    assert_eq!(importer["on_failure"], "restart");
    assert_eq!(service(&list, "listing::Store")["order"], -5);
    assert_eq!(service(&list, "listing::Store")["kind"], "hosted");
    assert_eq!(service(&list, "listing::reporter")["order"], 7);
}

#[test]
fn list_as_json_includes_what_features_contribute() {
    let list = document(
        env!("CARGO_BIN_EXE_web_shutdown"),
        &["--list", "--format=json"],
        0,
    );
    let routes = list["contributed"]
        .as_array()
        .unwrap()
        .iter()
        .find(|contribution| contribution["key"] == "hosted::web::routes")
        .unwrap_or_else(|| panic!("no routes contributed: {list}"));
    let data = routes["data"].as_array().unwrap();
    assert_eq!(data.len(), 2, "{routes}");
    let slow = data.iter().find(|route| route["route"] == "/slow").unwrap();
    assert_eq!(slow["contributed_by"], "web_shutdown::api");
    assert!(
        slow["source"]
            .as_str()
            .unwrap()
            .starts_with("tests/src/bin/web_shutdown.rs:")
    );
    // The same table as the text listing, for a reader that wants it.
    assert!(routes["text"].as_str().unwrap().starts_with("ROUTE"));
}

#[test]
fn check_as_json_reports_success_and_each_problem_with_kind_key_and_source() {
    let passed = document(
        env!("CARGO_BIN_EXE_systemd_notify"),
        &["--check", "--format=json"],
        0,
    );
    assert_eq!(passed["schema"], "hosted.check/1");
    assert_eq!(passed["ok"], true);
    assert_eq!(passed["exit_code"], 0);
    assert_eq!(passed["services"], 3);
    assert_eq!(passed["problems"], serde_json::json!([]));

    let failed = document(
        env!("CARGO_BIN_EXE_systemd_notify"),
        &[
            "--check",
            "--format=json",
            "--services.systemd_notify.report.every=5 sec",
            "--host.shutdown_timeout=-1s",
        ],
        78,
    );
    assert_eq!(failed["ok"], false);
    assert_eq!(failed["exit_code"], 78);
    let problems = failed["problems"].as_array().unwrap();
    assert!(problems.len() >= 2, "{failed}");
    let every = problems
        .iter()
        .find(|problem| problem["key"] == "services.systemd_notify.report.every")
        .unwrap_or_else(|| panic!("{failed}"));
    assert_eq!(every["kind"], "config");
    assert_eq!(every["source"]["kind"], "command_line");
    assert_eq!(
        every["source"]["argument"],
        "--services.systemd_notify.report.every=5 sec"
    );
    assert!(
        every["message"].as_str().unwrap().contains("expected"),
        "{every}"
    );
    assert!(
        problems
            .iter()
            .any(|problem| problem["key"] == "host.shutdown_timeout")
    );

    let unreadable = document(
        env!("CARGO_BIN_EXE_systemd_notify"),
        &[
            "--check",
            "--format=json",
            "--config=/nonexistent/hosted.toml",
        ],
        78,
    );
    assert_eq!(unreadable["problems"][0]["kind"], "config_source");
    assert!(
        unreadable["problems"][0]["message"]
            .as_str()
            .unwrap()
            .contains("/nonexistent/hosted.toml"),
        "{unreadable}"
    );

    // A registration problem: a linked crate that contributed nothing.
    let missing = document(
        env!("CARGO_BIN_EXE_linked_empty"),
        &["--check", "--format=json"],
        1,
    );
    assert_eq!(missing["ok"], false);
    assert_eq!(missing["problems"][0]["kind"], "missing_crate");
}

#[test]
fn a_bad_format_is_a_usage_error() {
    for args in [
        &["--list", "--format=yaml"][..],
        &["--check", "--format="],
        &["--format=json"],
        &["--format"],
    ] {
        let mut app = Process::spawn(env!("CARGO_BIN_EXE_listing"), args);
        assert_eq!(app.wait_exit(HANG), 2, "{args:?}\n{}", app.transcript());
        assert!(app.stdout().is_empty(), "{args:?}: {}", app.stdout());
        assert!(app.stderr().starts_with("error: "), "{}", app.transcript());
    }
    let mut app = Process::spawn(env!("CARGO_BIN_EXE_listing"), &["--list", "--format=yaml"]);
    app.wait_exit(HANG);
    assert!(
        app.stderr()
            .contains("expected `--format=text` or `--format=json`"),
        "{}",
        app.transcript()
    );
}
