//! Real binaries built with `hosted::run!()`, run as processes: signals, exit codes, the log, and
//! the command line. The binaries live in `tests/src/bin/`.
//!
//! Timeouts only detect hangs; nothing here asserts how long anything took.

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::ScopedJoinHandle;
use std::time::Instant;

use hosted_tests::process::{HANG, Process};

/// The log's span for one service, as the subscriber prints it.
fn service(name: &str) -> String {
    format!("service{{name={name}}}")
}

/// The parts of the host's log line for `event` (`started`, `stopped`) of the service `name`.
fn event(name: &str, event: &str) -> [String; 2] {
    [service(name), format!(": {event} ")]
}

fn parts(strings: &[String]) -> Vec<&str> {
    strings.iter().map(String::as_str).collect()
}

/// Runs `graceful` until `signal` and checks the whole clean start and stop.
fn stops_gracefully_on(signal: &str, signal_name: &str, reason: &str) {
    let mut app = Process::spawn(env!("CARGO_BIN_EXE_graceful"), &[]);
    app.wait_for_line("application started", HANG);
    app.signal(signal);
    assert_eq!(app.wait_exit(HANG), 0, "{}", app.transcript());

    let [database, cache, web] = ["graceful::Database", "graceful::cache", "graceful::web"];
    let started = [database, cache, web].map(|name| event(name, "started"));
    let stopped = [web, cache, database].map(|name| event(name, "stopped"));
    let received = format!("received {signal_name}");
    let shutting_down = format!("reason={reason}");
    let mut order: Vec<Vec<&str>> = started.iter().map(|event| parts(event)).collect();
    order.push(vec!["application started"]);
    order.push(vec![&received]);
    order.push(vec!["application is shutting down", &shutting_down]);
    order.extend(stopped.iter().map(|event| parts(event)));
    order.push(vec!["application stopped"]);
    app.assert_log_order(&order.iter().map(Vec::as_slice).collect::<Vec<_>>());

    // Each service finished its own stop before the host called it stopped.
    let web_stopped = parts(&stopped[0]);
    let database_stopped = parts(&stopped[2]);
    app.assert_log_order(&[&["web drained"], &web_stopped]);
    app.assert_log_order(&[&["database closed"], &database_stopped]);
    app.assert_no_log_line(&["application stopped after failures"]);
    app.assert_no_log_line(&["ERROR"]);
}

#[test]
fn sigterm_stops_every_service_in_reverse_order_and_exits_0() {
    stops_gracefully_on("TERM", "SIGTERM", "terminate signal");
}

#[test]
fn sigint_stops_every_service_in_reverse_order_and_exits_0() {
    stops_gracefully_on("INT", "SIGINT", "interrupt signal");
}

/// Sends `first`, waits until the stop is under way (and stuck), then sends `second`.
fn second_signal_exit_code(first: &str, second: &str) -> i32 {
    let mut app = Process::spawn(env!("CARGO_BIN_EXE_slow_stop"), &[]);
    app.wait_for_line("application started", HANG);
    app.signal(first);
    app.wait_for_line("application is shutting down", HANG);
    app.wait_for_line("finishing a long job first", HANG);
    app.signal(second);
    let code = app.wait_exit(HANG);
    app.wait_for_line("during shutdown; exiting at once", HANG);
    app.assert_no_log_line(&["application stopped"]);
    code
}

#[test]
fn a_second_sigterm_during_a_slow_stop_exits_at_once_with_143() {
    assert_eq!(second_signal_exit_code("TERM", "TERM"), 143);
}

#[test]
fn a_second_sigint_during_a_slow_stop_exits_at_once_with_130() {
    assert_eq!(second_signal_exit_code("INT", "INT"), 130);
}

#[test]
fn the_second_signal_decides_the_exit_code() {
    assert_eq!(second_signal_exit_code("TERM", "INT"), 130);
}

#[test]
fn a_service_returning_an_error_stops_the_host_with_exit_1() {
    let mut app = Process::spawn(env!("CARGO_BIN_EXE_failing"), &[]);
    assert_eq!(app.wait_exit(HANG), 1, "{}", app.transcript());
    let writer = service("failing::writer");
    app.assert_log_order(&[
        &[&writer, "failed", "cannot write the journal: disk full"],
        &[
            "application is shutting down",
            "reason=service `failing::writer` failed",
        ],
        &["bystander done"],
        &["application stopped after failures", "failing::writer"],
    ]);
    app.assert_no_log_line(&["bystander", "abandoned"]);
}

#[test]
fn a_panicking_service_stops_the_host_with_exit_1() {
    let mut app = Process::spawn(env!("CARGO_BIN_EXE_panicking"), &[]);
    assert_eq!(app.wait_exit(HANG), 1, "{}", app.transcript());
    let parser = service("panicking::parser");
    app.assert_log_order(&[
        &[&parser, "failed", "panicked: invariant broken at depth 3"],
        &[
            "application is shutting down",
            "reason=service `panicking::parser` failed",
        ],
        &["bystander done"],
        &["application stopped after failures", "panicking::parser"],
    ]);
}

#[test]
fn a_failing_start_stops_the_started_services_in_reverse_and_never_starts_the_rest() {
    let mut app = Process::spawn(env!("CARGO_BIN_EXE_start_fails"), &[]);
    assert_eq!(app.wait_exit(HANG), 1, "{}", app.transcript());
    let [first_started, second_started] =
        ["start_fails::First", "start_fails::second"].map(|name| event(name, "started"));
    let [second_stopped, first_stopped] =
        ["start_fails::second", "start_fails::First"].map(|name| event(name, "stopped"));
    let broken = service("start_fails::Broken");
    app.assert_log_order(&[
        &parts(&first_started),
        &parts(&second_started),
        &[
            &broken,
            "start failed: port 8080 is taken",
            "aborting startup",
        ],
        &["stopping the services already started", "services=2"],
        &[
            "application is shutting down",
            "reason=service `start_fails::Broken` failed to start",
        ],
        &["second done"],
        &parts(&second_stopped),
        &["first closed"],
        &parts(&first_stopped),
        &["application stopped after failures", "start_fails::Broken"],
    ]);
    app.assert_no_log_line(&["application started"]);
    // Neither the failed service nor the one after it ran anything, or was "stopped".
    for name in ["start_fails::Broken", "start_fails::Later"] {
        app.assert_no_log_line(&[&service(name), ": started "]);
        app.assert_no_log_line(&[&service(name), ": stopped "]);
    }
    for line in [
        "broken body ran",
        "broken stop ran",
        "later start ran",
        "later body ran",
        "later stop ran",
    ] {
        app.assert_no_log_line(&[line]);
    }
}

/// The 1-based line of `listing.rs` that contains `needle`.
fn listing_line(needle: &str) -> usize {
    include_str!("../src/bin/listing.rs")
        .lines()
        .position(|line| line.contains(needle))
        .unwrap_or_else(|| panic!("listing.rs has no line containing {needle:?}"))
        + 1
}

#[test]
fn list_prints_every_service_in_start_order_and_exits_0() {
    let mut app = Process::spawn(env!("CARGO_BIN_EXE_listing"), &["--list"]);
    assert_eq!(app.wait_exit(HANG), 0, "{}", app.transcript());
    let source = "tests/src/bin/listing.rs";
    let store = listing_line("struct Store;");
    let mailer = listing_line("async fn send_mail(");
    let importer = listing_line("async fn importer(");
    let reporter = listing_line("async fn reporter(");
    let expected = format!(
        "\
NAME               KIND        ORDER  AFTER                  ON FAILURE                         SOURCE
listing::Store     hosted      -5     -                      stop                               {source}:{store}
mailer             background  0      -                      ignore                             {source}:{mailer}
listing::importer  background  0      listing::Store,mailer  restart(max 3, backoff 250ms..4s)  {source}:{importer}
listing::reporter  background  7      -                      stop                               {source}:{reporter}
"
    );
    let stdout = app.stdout();
    let (services, settings) = stdout
        .split_once("\n\n")
        .unwrap_or_else(|| panic!("a services table, then a settings table:\n{stdout}"));
    assert_eq!(format!("{services}\n"), expected);
    let settings: Vec<&str> = settings.lines().collect();
    for line in [
        "SETTING                                 VALUE      FROM",
        "host.shutdown_timeout                   5s         default",
        "services.mailer.enabled                 true       default",
        "services.mailer.on_failure              \"ignore\"   default",
        "services.listing.importer.max_restarts  3          default",
        "services.listing.importer.backoff       250ms      default",
    ] {
        assert!(settings.contains(&line), "missing {line:?} in\n{stdout}");
    }
    // Nothing is logged; the one line on stderr is the warning every binary of this package
    // gets, since the package depends on `linked-services` and this binary never names it.
    let stderr = app.stderr();
    assert!(
        stderr
            .lines()
            .all(|line| line.starts_with("warning: `linked_services`")),
        "`--list` should not log:\n{stderr}"
    );
}

#[test]
fn help_mentions_list_and_exits_0() {
    for flag in ["--help", "-h"] {
        let mut app = Process::spawn(env!("CARGO_BIN_EXE_listing"), &[flag]);
        assert_eq!(app.wait_exit(HANG), 0, "{}", app.transcript());
        let help = app.stdout();
        assert!(help.starts_with("Usage: "), "{flag}:\n{help}");
        assert!(help.contains("--list"), "{flag}:\n{help}");
        assert_eq!(app.stderr(), "");
    }
}

#[test]
fn an_unknown_argument_is_a_usage_error_with_exit_2() {
    let mut app = Process::spawn(env!("CARGO_BIN_EXE_listing"), &["--lsit"]);
    assert_eq!(app.wait_exit(HANG), 2, "{}", app.transcript());
    let stderr = app.stderr();
    assert!(
        stderr.starts_with("error: unexpected argument `--lsit`\n"),
        "{stderr}"
    );
    assert!(stderr.contains("Usage: "), "{stderr}");
    assert_eq!(app.stdout(), "");

    let mut app = Process::spawn(env!("CARGO_BIN_EXE_listing"), &["--list", "--help"]);
    assert_eq!(app.wait_exit(HANG), 2, "{}", app.transcript());
    assert!(
        app.stderr().contains("cannot be combined"),
        "{}",
        app.transcript()
    );
}

#[test]
fn a_registration_mistake_exits_1_before_anything_starts() {
    for args in [&[][..], &["--list"], &["--check"]] {
        let mut app = Process::spawn(env!("CARGO_BIN_EXE_misconfigured"), args);
        assert_eq!(app.wait_exit(HANG), 1, "{args:?}\n{}", app.transcript());
        let stderr = app.stderr();
        assert!(
            stderr.contains(
                "service `misconfigured::api` starts after `databse`, but no service has that \
                 name; did you mean `database`?"
            ),
            "{args:?}\n{stderr}"
        );
        for problem in [
            "singleton `misconfigured::Cache` would keep scoped `misconfigured::Transaction` \
             beyond its scope",
            "registered types need each other in a circle, so none can be built first: \
             misconfigured::",
        ] {
            assert!(
                stderr.contains(problem),
                "{args:?} lacks {problem:?}\n{stderr}"
            );
        }
        assert!(!stderr.contains(": started "), "{args:?}\n{stderr}");
        assert_eq!(app.stdout(), "");
    }
}

#[test]
fn check_validates_without_starting_anything() {
    let mut app = Process::spawn(env!("CARGO_BIN_EXE_graceful"), &["--check"]);
    assert_eq!(app.wait_exit(HANG), 0, "{}", app.transcript());
    assert_eq!(
        app.stdout(),
        "ok: 3 services and 1 registered type checked; nothing missing, captured or circular\n"
    );
    assert!(!app.stderr().contains("started"), "{}", app.transcript());
}

#[test]
fn a_linked_crate_that_contributes_nothing_fails_check_and_is_warned_about() {
    const MISSING: &str = "crate `anyhow` is named in `hosted::run!(link = [...])` but contributed \
                           no service and no registered type";
    let mut check = Process::spawn(env!("CARGO_BIN_EXE_linked_empty"), &["--check"]);
    assert_eq!(check.wait_exit(HANG), 1, "{}", check.transcript());
    assert!(check.stderr().contains(MISSING), "{}", check.transcript());
    assert!(
        !check.stderr().contains("linked_services"),
        "{}",
        check.transcript()
    );

    let mut list = Process::spawn(env!("CARGO_BIN_EXE_linked_empty"), &["--list"]);
    assert_eq!(list.wait_exit(HANG), 0, "{}", list.transcript());
    assert!(
        list.stderr().contains(&format!("warning: {MISSING}")),
        "{}",
        list.transcript()
    );

    let mut app = Process::spawn(env!("CARGO_BIN_EXE_linked_empty"), &[]);
    // Not the greeting, which a body logs while the host may still be starting: a signal then
    // would end the start before `application started`.
    app.wait_for_line("application started", HANG);
    app.signal("TERM");
    assert_eq!(app.wait_exit(HANG), 0, "{}", app.transcript());
    app.assert_log_order(&[&["WARN", MISSING], &["application started"]]);

    // A crate that does contribute passes.
    let mut linked = Process::spawn(env!("CARGO_BIN_EXE_linked"), &["--check"]);
    assert_eq!(linked.wait_exit(HANG), 0, "{}", linked.transcript());
}

#[test]
fn a_library_crate_linked_through_run_contributes_its_services() {
    let mut list = Process::spawn(env!("CARGO_BIN_EXE_linked"), &["--list"]);
    assert_eq!(list.wait_exit(HANG), 0, "{}", list.transcript());
    assert!(
        list.stdout()
            .lines()
            .any(|row| row.starts_with("linked-services::greeter ")),
        "{}",
        list.transcript()
    );

    let mut app = Process::spawn(env!("CARGO_BIN_EXE_linked"), &[]);
    app.wait_for_line("greeting from a linked library crate", HANG);
    app.signal("TERM");
    assert_eq!(app.wait_exit(HANG), 0, "{}", app.transcript());
    let stopped = event("linked-services::greeter", "stopped");
    app.assert_log_order(&[&parts(&stopped), &["application stopped"]]);
}

#[test]
fn a_library_the_binary_never_names_is_reported_even_beside_services_of_its_own() {
    const SILENT: &str = "warning: `linked_services` depends on `hosted` but contributed no \
                          service and no registered type: if it declares services, the linker \
                          dropped them because this binary never names it; link it with \
                          `hosted::run!(link = [linked_services])`";
    // `graceful` has services of its own and depends on `linked-services` (through this
    // package) without naming it.
    for args in [&["--check"][..], &["--list"]] {
        let mut app = Process::spawn(env!("CARGO_BIN_EXE_graceful"), args);
        assert_eq!(app.wait_exit(HANG), 0, "{args:?}: {}", app.transcript());
        assert!(
            app.stderr().contains(SILENT),
            "{args:?}: {}",
            app.transcript()
        );
    }
    let mut linked = Process::spawn(env!("CARGO_BIN_EXE_linked"), &["--check"]);
    assert_eq!(linked.wait_exit(HANG), 0, "{}", linked.transcript());
    assert!(
        !linked.stderr().contains("warning"),
        "{}",
        linked.transcript()
    );
}

#[test]
fn a_library_crate_left_unlinked_is_reported_with_the_fix() {
    let mut list = Process::spawn(env!("CARGO_BIN_EXE_unlinked"), &["--list"]);
    assert_eq!(list.wait_exit(HANG), 0, "{}", list.transcript());
    assert!(
        list.stdout().contains("(no services registered)"),
        "{}",
        list.transcript()
    );

    // The signal race of this binary has its own test below.
    let app = Process::spawn(env!("CARGO_BIN_EXE_unlinked"), &[]);
    let warning = app.wait_for_line("no services are registered", HANG);
    assert!(warning.contains("WARN"), "{warning}");
    assert!(warning.contains("link = ["), "{warning}");
    app.wait_for_line("application started", HANG);
    app.assert_no_log_line(&["greeting from a linked library crate"]);
}

/// A SIGTERM sent the moment "application started; press Ctrl+C to shut down" appears must meet
/// the host's handler, not the default action (death by the signal, no graceful stop). It once
/// did not: the handlers were installed by the spawned watcher task, so with no services the line
/// could come before any worker had polled it. The window is narrow on an idle machine, so the
/// test widens it the way a busy machine does: many processes at once, and spinning threads.
#[test]
fn sigterm_right_after_application_started_stops_gracefully() {
    const ROUNDS: usize = 10;
    const PROCESSES: usize = 16;
    let mut runs = 0;
    let mut failed = Vec::new();
    for _ in 0..ROUNDS {
        let round = run_and_signal_at_once(PROCESSES);
        runs += round.len();
        failed.extend(
            round
                .into_iter()
                .filter(|(status, _)| status.code() != Some(0)),
        );
        if !failed.is_empty() {
            break;
        }
    }
    if let Some((status, transcript)) = failed.first() {
        panic!(
            "{} of {runs} runs did not stop gracefully; the first ended with {status}\n{transcript}",
            failed.len(),
        );
    }
}

/// Starts `unlinked` `count` times at once, each sent SIGTERM as soon as it logs "application
/// started", while two spinning threads per core keep the CPUs busy. Returns how each ended.
fn run_and_signal_at_once(count: usize) -> Vec<(ExitStatus, String)> {
    let spinning = AtomicBool::new(true);
    let spin_until = Instant::now() + HANG;
    std::thread::scope(|scope| {
        let cores = std::thread::available_parallelism().map_or(2, NonZeroUsize::get);
        for _ in 0..2 * cores {
            scope.spawn(|| {
                while spinning.load(Ordering::Relaxed) && Instant::now() < spin_until {
                    std::hint::spin_loop();
                }
            });
        }
        let runs: Vec<_> = (0..count)
            .map(|_| {
                scope.spawn(|| {
                    let mut app = Process::spawn(env!("CARGO_BIN_EXE_unlinked"), &[]);
                    app.wait_for_line("application started", HANG);
                    app.signal("TERM");
                    let status = app.wait_status(HANG);
                    (status, app.transcript())
                })
            })
            .collect();
        let ended = runs
            .into_iter()
            .map(ScopedJoinHandle::join)
            .collect::<Vec<_>>();
        spinning.store(false, Ordering::Relaxed);
        ended
            .into_iter()
            .map(|ended| ended.unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
            .collect()
    })
}

#[test]
fn a_service_blocking_its_thread_forever_is_abandoned_and_the_process_exits_1() {
    let mut app = Process::spawn(env!("CARGO_BIN_EXE_abandoned"), &[]);
    app.wait_for_line("application started", HANG);
    app.wait_for_line("blocking the worker thread for good", HANG);
    app.signal("TERM");
    assert_eq!(app.wait_exit(HANG), 1, "{}", app.transcript());
    let stuck = service("abandoned::stuck");
    let late_stopped = event("abandoned::late", "stopped");
    app.assert_log_order(&[
        &["application is shutting down"],
        // Stopped before the stuck service, in reverse start order: unaffected by it.
        &["late done"],
        &parts(&late_stopped),
        &[
            &stuck,
            "abandoned: still running when the shutdown budget of 1s ran out",
        ],
        // As documented, the services held up by it still stop, with their token already
        // cancelled, and the final line tells the offender from them.
        &["early closed"],
        &[&service("abandoned::Early"), "held_up_by=abandoned::stuck"],
        &[
            "application stopped after failures",
            "failed=abandoned::stuck held_up=abandoned::Early",
        ],
    ]);
}

/// A file the test creates to release the blocking service of `blocking_start`; removed at the
/// end of the test.
struct ReleaseFile(PathBuf);

impl ReleaseFile {
    fn new(label: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "hosted-process-test-{}-{label}",
            std::process::id()
        ));
        let _ = std::fs::remove_file(&path);
        Self(path)
    }

    fn create(&self) {
        std::fs::write(&self.0, b"go").expect("cannot create the release file");
    }
}

impl Drop for ReleaseFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Runs `blocking_start`, whose first service blocks its thread until released, and checks that
/// the rest of startup did not wait for it.
fn startup_does_not_wait_for_a_blocked_body(worker_threads: Option<&str>) -> Process {
    let release = ReleaseFile::new(worker_threads.unwrap_or("default"));
    let mut command = Process::command(env!("CARGO_BIN_EXE_blocking_start"));
    command.env("BLOCKING_START_RELEASE", &release.0);
    if let Some(threads) = worker_threads {
        command.env("TOKIO_WORKER_THREADS", threads);
    }
    let mut app = Process::start(command);
    app.wait_for_line("application started", HANG);
    // Nothing released the blocker yet, so all of this happened while it was blocked.
    app.assert_no_log_line(&["blocker released"]);
    app.assert_log_order(&[
        &parts(&event("blocking_start::blocker", "started")),
        &parts(&event("blocking_start::next", "started")),
        &["application started"],
    ]);
    release.create();
    app.wait_for_line("blocker released", HANG);
    app.signal("TERM");
    assert_eq!(app.wait_exit(HANG), 0, "{}", app.transcript());
    app
}

#[test]
fn a_body_blocking_before_its_first_await_does_not_delay_startup() {
    let app = startup_does_not_wait_for_a_blocked_body(None);
    app.wait_for_line("next is running", HANG);
}

/// `docs::lifecycle` promises that a body blocking its thread before its first `.await` delays
/// neither the next service nor the `started` event. That must hold with one worker thread too
/// (one CPU, a container limited to one CPU, `TOKIO_WORKER_THREADS=1`): it once did not, when
/// the host ran its own steps and the signal watcher as tasks on the workers.
#[test]
fn a_body_blocking_before_its_first_await_does_not_delay_startup_on_one_worker_thread() {
    startup_does_not_wait_for_a_blocked_body(Some("1"));
}

#[test]
fn a_service_can_stop_the_application_with_exit_0() {
    let mut app = Process::spawn(env!("CARGO_BIN_EXE_stops_itself"), &[]);
    assert_eq!(app.wait_exit(HANG), 0, "{}", app.transcript());
    app.assert_log_order(&[
        &["job done; asking the host to stop"],
        &["application is shutting down", "reason=stop requested"],
        &["server closed"],
        &["application stopped"],
    ]);
    app.assert_no_log_line(&["received SIG"]);
    app.assert_no_log_line(&["application stopped after failures"]);
}

#[test]
fn run_inside_a_tokio_runtime_is_a_clean_error_with_exit_70() {
    let mut app = Process::spawn(env!("CARGO_BIN_EXE_inside_runtime"), &[]);
    assert_eq!(app.wait_exit(HANG), 70, "{}", app.transcript());
    let stderr = app.stderr();
    assert!(
        stderr.starts_with("error: `hosted::run!()` starts its own tokio runtime"),
        "{stderr}"
    );
    assert!(stderr.contains("remove `#[tokio::main]`"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
