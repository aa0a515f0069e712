//! The worker template (`templates/worker`, for `cargo generate`): a project generated from it
//! builds against this checkout, passes its own tests, starts, and stops on SIGTERM with exit 0;
//! its systemd unit and container files give the stop more time than its shutdown budget.
//!
//! cargo-generate is not needed: the test substitutes the two placeholders the template uses,
//! and fails if the template uses any other template syntax. The project builds offline with
//! this workspace's `Cargo.lock`, into `target/tests/template`, which later runs reuse.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hosted_tests::process::{HANG, Process};

const NAME: &str = "hello-worker";
const CRATE: &str = "hello_worker";
/// A cold build of the generated project's dependencies on two loaded cores; warm, seconds.
const BUILD_BUDGET: Duration = Duration::from_mins(15);

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .to_path_buf()
}

/// Copies the template into `to`, placeholders substituted, as `cargo generate` would.
fn generate(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            generate(&path, &to.join(&name));
            continue;
        }
        if name == "cargo-generate.toml" {
            continue;
        }
        let text = fs::read_to_string(&path).unwrap();
        let text = text
            .replace("{{project-name}}", NAME)
            .replace("{{crate_name}}", CRATE);
        for syntax in ["{{", "{%", "}}", "%}"] {
            assert!(
                !text.contains(syntax),
                "{} uses template syntax beyond `{{{{project-name}}}}` and `{{{{crate_name}}}}`: \
                 teach this test to substitute it",
                path.display()
            );
        }
        fs::write(to.join(&name), text).unwrap();
    }
}

/// Runs `command` to its end within `budget`; panics with its output otherwise.
fn run(mut command: Command, budget: Duration) {
    let what = format!("{command:?}");
    let out = std::env::temp_dir().join(format!("hosted-template-{}.log", std::process::id()));
    let log = fs::File::create(&out).unwrap();
    command.stdout(log.try_clone().unwrap()).stderr(log);
    let mut child = command.spawn().expect("cargo starts");
    let deadline = Instant::now() + budget;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let output = fs::read_to_string(&out).unwrap_or_default();
    let _ = fs::remove_file(&out);
    match status {
        Some(status) if status.success() => {}
        Some(status) => panic!("{what} failed ({status}):\n{output}"),
        None => panic!("{what} took more than {budget:?}:\n{output}"),
    }
}

/// The value of `key = …` in a line of `text` (a unit file, TOML, YAML), unquoted.
fn value<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find_map(|line| {
            let (k, v) = line.split_once(['=', ':'])?;
            (k.trim() == key).then(|| v.trim().trim_matches('"'))
        })
        .unwrap_or_else(|| panic!("no `{key}` in\n{text}"))
}

fn seconds(text: &str) -> u64 {
    text.trim_end_matches('s')
        .parse()
        .unwrap_or_else(|_| panic!("{text:?} is not N or Ns"))
}

#[test]
fn a_generated_worker_builds_passes_its_tests_and_stops_on_sigterm() {
    let root = workspace();
    let project = std::env::temp_dir().join(format!("hosted-template-{}", std::process::id()));
    let _ = fs::remove_dir_all(&project);
    generate(&root.join("templates/worker"), &project);

    // Against this checkout, with the versions this workspace has locked.
    let manifest = project.join("Cargo.toml");
    let text = fs::read_to_string(&manifest).unwrap();
    let hosted = root.join("hosted");
    assert!(text.contains("hosted = \"0.1\"\n"), "{text}");
    let text = text.replace(
        "hosted = \"0.1\"\n",
        &format!("hosted = {{ path = {:?} }}\n", hosted.display().to_string()),
    );
    fs::write(&manifest, text).unwrap();
    fs::copy(root.join("Cargo.lock"), project.join("Cargo.lock")).unwrap();

    let target = root.join("target/tests/template");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut cargo_test = Command::new(&cargo);
    cargo_test
        .args(["test", "--offline", "--quiet"])
        .current_dir(&project)
        .env("CARGO_TARGET_DIR", &target)
        // As this workspace builds: line tables only, so the cached build stays small.
        .env("CARGO_PROFILE_DEV_DEBUG", "line-tables-only")
        .stdin(Stdio::null());
    run(cargo_test, BUILD_BUDGET);

    // `cargo test` built the binary too, with the same features: no second build.
    let binary = target.join("debug").join(NAME);
    let mut command = Process::command(binary.to_str().unwrap());
    command.current_dir(&project);
    let mut worker = Process::start(command);
    // The first tick is due at start: its job may be processed before startup ends.
    worker.wait_for_line("application started", HANG);
    worker.wait_for_line("processed job=1", HANG);
    worker.signal("TERM");
    assert_eq!(worker.wait_exit(HANG), 0, "{}", worker.transcript());
    worker.assert_log_order(&[
        &["received SIGTERM"],
        &["worker stopping"],
        &["queue stopped", "unaccounted=0"],
        &["application stopped"],
    ]);

    // The supervisors wait longer than the host's budget.
    let hosted_toml = fs::read_to_string(project.join("hosted.toml")).unwrap();
    let budget = seconds(value(&hosted_toml, "shutdown_timeout"));
    let unit = fs::read_to_string(project.join("deploy/worker.service")).unwrap();
    assert_eq!(value(&unit, "KillSignal"), "SIGTERM");
    assert!(seconds(value(&unit, "TimeoutStopSec")) > budget, "{unit}");
    assert_eq!(
        value(&unit, "Type"),
        "exec",
        "`Type=notify` needs a binary that sends READY=1"
    );
    let containerfile = fs::read_to_string(project.join("deploy/Containerfile")).unwrap();
    assert!(
        containerfile.contains("\nSTOPSIGNAL SIGTERM\n"),
        "{containerfile}"
    );
    assert!(
        containerfile.contains(&format!("--stop-timeout {}", budget + 5)),
        "{containerfile}"
    );
    let compose = fs::read_to_string(project.join("deploy/compose.yaml")).unwrap();
    assert_eq!(value(&compose, "stop_signal"), "SIGTERM");
    assert!(
        seconds(value(&compose, "stop_grace_period")) > budget,
        "{compose}"
    );

    let _ = fs::remove_dir_all(&project);
}
