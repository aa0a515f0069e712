//! A panic at each place one can happen — a `start`, a body, a tick, a queue item, the `Dispose`
//! of a value scoped to a tick — under each failure policy: the exit code the lifecycle guide
//! gives, no hang, and the panic in exactly one log line. Runs the `faulty` binary (see
//! `tests/src/bin/faulty.rs`), every service's policy set on its command line.

use hosted_tests::process::{HANG, Process};

/// A place a panic can happen: `FAULT` for it, the service it happens in, the panic's message.
struct Site {
    fault: &'static str,
    service: &'static str,
    message: &'static str,
}

const SITES: [Site; 5] = [
    Site {
        fault: "start",
        service: "faulty.Starter",
        message: "start panicked",
    },
    Site {
        fault: "body",
        service: "faulty.body",
        message: "body panicked",
    },
    Site {
        fault: "tick",
        service: "faulty.ticker",
        message: "tick panicked",
    },
    Site {
        fault: "item",
        service: "faulty.worker",
        message: "item 1 panicked",
    },
    Site {
        fault: "dispose",
        service: "faulty.user",
        message: "dispose panicked",
    },
];

/// The exit code the lifecycle guide promises, or `None` where the host keeps running (and
/// exits 0 on SIGTERM): a failed start always fails the run; a failure under `stop` stops the
/// host; `ignore` keeps it running, and so does `restart` here, since each site panics only
/// once; a queue item's failure never stops the host.
fn expected(site: &Site, policy: &str) -> Option<i32> {
    match (site.fault, policy) {
        ("start", _) => Some(1),
        ("item", _) | (_, "ignore" | "restart") => None,
        _ => Some(1),
    }
}

fn run(site: &Site, policy: &str) -> (i32, Process) {
    let mut command = Process::command(env!("CARGO_BIN_EXE_faulty"));
    command.env("FAULT", site.fault).args([
        format!("--services.{}.on_failure={policy}", site.service),
        format!("--services.{}.backoff=10ms", site.service),
    ]);
    let mut app = Process::start(command);
    if expected(site, policy).is_none() {
        app.wait_for_line("ready", HANG);
        app.wait_for_line(site.message, HANG);
        if matches!(site.fault, "tick" | "dispose") {
            // The timer goes on: a failed tick fails that tick, not the timer.
            let span = format!("tick{{service={} tick=", site.service.replace('.', "::"));
            wait_for_a_line_after(&app, site.message, &[&span, "ticked"]);
        }
        app.signal("TERM");
    }
    let code = app.wait_exit(HANG);
    (code, app)
}

/// Waits until a log line containing every one of `parts` follows the first line containing
/// `after`.
fn wait_for_a_line_after(app: &Process, after: &str, parts: &[&str]) {
    let deadline = std::time::Instant::now() + HANG;
    loop {
        let stderr = app.stderr();
        let mut lines = stderr.lines().skip_while(|line| !line.contains(after));
        if lines.any(|line| parts.iter().all(|part| line.contains(part))) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no line with {parts:?} after {after:?}\n{}",
            app.transcript()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn a_panic_anywhere_under_any_policy_exits_as_documented_and_is_reported_once() {
    let mut failures = Vec::new();
    for site in &SITES {
        for policy in ["stop", "ignore", "restart"] {
            let (code, app) = run(site, policy);
            let want = expected(site, policy).unwrap_or(0);
            let stderr = app.stderr();
            let reports = stderr
                .lines()
                .filter(|line| line.contains(site.message))
                .count();
            if code != want || reports != 1 {
                failures.push(format!(
                    "{} under {policy}: exit {code} (expected {want}), the panic in {reports} \
                     lines (expected 1)\n{}",
                    site.fault,
                    app.transcript()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
