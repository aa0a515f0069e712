//! What `hosted::run!()` does in `main`: read the command line, install logging, build the host
//! from the registry, run it on a multi-thread tokio runtime and exit with its code.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::time::Duration;

use crate::host::logging::{self, Stream, print};
use crate::host::report;
use crate::host::{Host, HostBuilder};

/// Exit code for a command line the binary does not understand.
pub const EXIT_USAGE: i32 = 2;

/// The exit code of `hosted::run!()` called inside a tokio runtime: `EX_SOFTWARE` from
/// `sysexits.h`, a mistake in the program rather than in how it was run.
pub const EXIT_INSIDE_RUNTIME: i32 = 70;

/// How long the runtime waits for stray blocking work once the host has stopped.
const RUNTIME_SHUTDOWN_GRACE: Duration = Duration::from_millis(500);

/// Options of `run!()` itself. Not public API, used by generated code.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct MainOptions {
    /// Install a `tracing` subscriber unless one is installed already.
    pub logging: bool,
    /// The crates of `link = [...]`, which must contribute registrations.
    pub links: &'static [&'static str],
    /// The libraries the binary depends on (per `Cargo.lock`) that use `hosted` and are not in
    /// `link`.
    pub unnamed: &'static [&'static str],
}

/// Not public API, used by generated code: what a feature contributes to the command line —
/// a table `--list` prints after the settings (the web host's routes, the durable queues'
/// depths), a check `--check` runs after its own (the durable store reachable, its schema at the
/// right version), a step `--migrate` runs. Each is given the built host, nothing started.
/// Hooks come from generated code (through `inventory`) and from the crate's features; hooks
/// with the same key run once.
#[doc(hidden)]
#[derive(Debug)]
pub struct ListingHook {
    key: &'static str,
    table: fn(&Host) -> Option<String>,
    /// The same as JSON, for `--list --format=json`.
    json: Option<fn() -> Option<String>>,
    check: Option<HookStep>,
    migrate: Option<HookStep>,
}

/// Not public API: a hook's `--check` or `--migrate` step. `Ok(Some(line))` is reported as done,
/// `Ok(None)` when the step had nothing to do.
#[doc(hidden)]
pub type HookStep = fn(&Host) -> Result<Option<String>, HookFailure>;

/// Not public API: what a hook's step found wrong, and the exit code it calls for.
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookFailure {
    /// The process's exit code.
    pub code: i32,
    /// What went wrong and what to do, printed after `error: `.
    pub message: String,
}

impl ListingHook {
    /// Not public API, used by generated code.
    #[must_use]
    pub const fn new(key: &'static str, table: fn(&Host) -> Option<String>) -> Self {
        Self {
            key,
            table,
            json: None,
            check: None,
            migrate: None,
        }
    }

    /// Not public API, used by generated code: a hook with a text table and the same as a JSON
    /// value (valid JSON text), under `contributed[].data` in `--list --format=json`.
    #[must_use]
    pub const fn with_json(
        key: &'static str,
        table: fn(&Host) -> Option<String>,
        json: fn() -> Option<String>,
    ) -> Self {
        Self {
            key,
            table,
            json: Some(json),
            check: None,
            migrate: None,
        }
    }

    /// Not public API: adds a `--check` step.
    #[must_use]
    pub const fn with_check(mut self, check: HookStep) -> Self {
        self.check = Some(check);
        self
    }

    /// Not public API: adds a `--migrate` step.
    #[must_use]
    pub const fn with_migrate(mut self, migrate: HookStep) -> Self {
        self.migrate = Some(migrate);
        self
    }
}

inventory::collect!(ListingHook);

/// The hooks of the crate's features and of generated code, each key once.
fn hooks(features: &'static [ListingHook]) -> Vec<&'static ListingHook> {
    let mut seen = Vec::new();
    let mut hooks = Vec::new();
    for hook in features.iter().chain(inventory::iter::<ListingHook>) {
        if !seen.contains(&hook.key) {
            seen.push(hook.key);
            hooks.push(hook);
        }
    }
    hooks
}

/// What the listing hooks contribute, as text and as JSON.
fn contributions(hooks: &[&ListingHook], host: &Host) -> Vec<report::Contribution> {
    hooks
        .iter()
        .filter_map(|hook| {
            let text = (hook.table)(host);
            let json = hook.json.and_then(|json| json());
            (text.is_some() || json.is_some()).then_some(report::Contribution {
                key: hook.key,
                text,
                json,
            })
        })
        .collect()
}

/// The tables of the listing hooks.
fn hooked_tables(hooks: &[&ListingHook], host: &Host) -> String {
    let mut text = String::new();
    for table in contributions(hooks, host)
        .into_iter()
        .filter_map(|it| it.text)
    {
        text.push('\n');
        text.push_str(&table);
    }
    text
}

/// How `--list` and `--check` print.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Format {
    #[default]
    Text,
    Json,
}

/// Runs one step of every hook that has it: what each did, or every failure (the first one's
/// code is the exit code).
fn run_steps(
    hooks: &[&ListingHook],
    host: &Host,
    step: impl Fn(&ListingHook) -> Option<HookStep>,
) -> Result<Vec<String>, Vec<HookFailure>> {
    let mut done = Vec::new();
    let mut failures = Vec::new();
    for step in hooks.iter().filter_map(|hook| step(hook)) {
        match step(host) {
            Ok(Some(line)) => done.push(line),
            Ok(None) => {}
            Err(failure) => failures.push(failure),
        }
    }
    if failures.is_empty() {
        Ok(done)
    } else {
        Err(failures)
    }
}

/// Prints each failure after `error: ` and exits with the first one's code.
fn exit_with(failures: &[HookFailure]) -> ! {
    for failure in failures {
        print(Stream::Err, &format!("error: {}\n", failure.message));
    }
    std::process::exit(failures.first().map_or(1, |failure| failure.code));
}

/// What the command line asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Command {
    Run,
    List,
    Check,
    Migrate,
    Help,
}

/// The command line, read.
#[derive(Debug, Default)]
struct CommandLine {
    command: Option<Command>,
    /// `--config=PATH`.
    config_file: Option<String>,
    /// `--environment=NAME`.
    environment: Option<String>,
    /// `--key=value` settings, as written.
    settings: Vec<String>,
    /// `--format=text|json`.
    format: Option<Format>,
}

fn parse_command_line(args: impl IntoIterator<Item = OsString>) -> Result<CommandLine, String> {
    let mut line = CommandLine::default();
    for arg in args {
        let Some(text) = arg.to_str() else {
            return Err(format!("unexpected argument `{}`", arg.to_string_lossy()));
        };
        let next = match text {
            "--list" => Command::List,
            "--check" => Command::Check,
            "--migrate" => Command::Migrate,
            "--help" | "-h" => Command::Help,
            _ => {
                match text
                    .strip_prefix("--")
                    .and_then(|pair| pair.split_once('='))
                {
                    Some(("format", "text")) => line.format = Some(Format::Text),
                    Some(("format", "json")) => line.format = Some(Format::Json),
                    Some(("format", other)) => {
                        return Err(format!(
                            "unknown format `{other}` in `{text}`: expected `--format=text` or \
                             `--format=json`"
                        ));
                    }
                    Some(("config", path)) => line.config_file = Some(path.to_owned()),
                    Some(("environment", name)) => line.environment = Some(name.to_owned()),
                    Some((key, _)) if !key.is_empty() => line.settings.push(text.to_owned()),
                    _ => return Err(format!("unexpected argument `{text}`")),
                }
                continue;
            }
        };
        if line
            .command
            .as_ref()
            .is_some_and(|command| *command != next)
        {
            return Err(
                "`--list`, `--check`, `--migrate` and `--help` cannot be combined".to_owned(),
            );
        }
        line.command = Some(next);
    }
    if line.format.is_some() && !matches!(line.command, Some(Command::List | Command::Check)) {
        return Err("`--format` applies to `--list` and `--check` only".to_owned());
    }
    Ok(line)
}

fn usage(program: &str) -> String {
    format!(
        "Usage: {program} [--list | --check | --migrate | --help] [--format=text|json] [--config=PATH] [--environment=NAME] [--KEY=VALUE ...]\n\n\
         Runs the hosted services linked into this binary until SIGINT, SIGTERM or SIGQUIT (Ctrl+C).\n\n\
         Options:\n  \
         --list              print every service (name, kind, order, after, failure policy,\n                      \
         source) and every setting (value and origin), then exit\n  \
         --check             check the registrations and the configuration without starting\n                      \
         anything, and what the features need (the durable store reachable,\n                      \
         its schema current); exit 0 if sound, 78 for configuration, 69 for\n                      \
         an unreachable store, 65 for a schema at another version, 1 otherwise\n  \
         --migrate           bring what the features keep (the durable store's schema) to this\n                      \
         build's version, then exit\n  \
         --format=json       with --list or --check: print one JSON document (schema\n                      \
         hosted.list/1, hosted.check/1) for scripts; default text\n  \
         --config=PATH       read PATH instead of hosted.toml\n  \
         --environment=NAME  also read hosted.NAME.toml (default: $HOSTED_ENVIRONMENT, or production)\n  \
         --KEY=VALUE         set a configuration key, like --host.shutdown_timeout=10s or\n                      \
         --services.my_app.heartbeat.enabled=false\n  \
         -h, --help          print this help and exit\n\n\
         Configuration, lowest to highest precedence: attribute literals, hosted.toml,\n\
         hosted.ENVIRONMENT.toml, HOSTED_* environment variables (`__` between sections),\n\
         --KEY=VALUE arguments. Logging follows RUST_LOG, else `host.log` (default `info`)."
    )
}

/// Exits with [`EXIT_INSIDE_RUNTIME`] when called inside a tokio runtime.
fn refuse_inside_a_runtime() {
    if tokio::runtime::Handle::try_current().is_ok() {
        // tokio would panic with "Cannot start a runtime from within a runtime" (exit 101).
        print(
            Stream::Err,
            "error: `hosted::run!()` starts its own tokio runtime, but it was called inside one \
             (is `main` annotated with `#[tokio::main]`?)\n  \
             - remove `#[tokio::main]` and call `hosted::run!()` from a plain `fn main()`, or\n  \
             - inside your own runtime, run the host yourself: \
             `hosted::Host::builder().discover().build()?.run().await`\n",
        );
        std::process::exit(EXIT_INSIDE_RUNTIME);
    }
}

/// The body of `hosted::run!()`, with the hooks of the crate's features.
pub(crate) fn run_main(
    options: MainOptions,
    features: &'static [ListingHook],
    configure: impl FnOnce(HostBuilder) -> HostBuilder,
) -> ! {
    logging::protect_standard_streams();
    refuse_inside_a_runtime();
    let mut args = std::env::args_os();
    let program = args.next().map_or_else(
        || "app".to_owned(),
        |arg| arg.to_string_lossy().into_owned(),
    );
    let line = match parse_command_line(args) {
        Ok(line) => line,
        Err(message) => {
            print(
                Stream::Err,
                &format!("error: {message}\n\n{}\n", usage(&program)),
            );
            std::process::exit(EXIT_USAGE);
        }
    };
    let command = line.command.unwrap_or(Command::Run);
    if command == Command::Help {
        print(Stream::Out, &format!("{}\n", usage(&program)));
        std::process::exit(0);
    }
    let builder = with_configuration(
        Host::builder()
            .discover()
            .expect_crates(options.links.iter().copied())
            .suspect_crates(options.unnamed.iter().copied()),
        &line,
    );
    let format = line.format.unwrap_or_default();
    let schema = if command == Command::List {
        report::LIST_SCHEMA
    } else {
        report::CHECK_SCHEMA
    };
    let host = match configure(builder).build() {
        Ok(host) => host,
        Err(error) => {
            if format == Format::Json {
                print(Stream::Out, &report::failed(schema, &error));
            }
            // Printed rather than logged: it must show even with logging off or filtered.
            print(Stream::Err, &format!("error: {error}\n"));
            std::process::exit(i32::from(error.exit_code()));
        }
    };
    let missing = missing_crates_message(&host);
    let silent = silent_crates_message(&host);
    if command != Command::Run {
        one_off(
            command,
            format,
            &host,
            &hooks(features),
            missing.as_ref(),
            silent.as_ref(),
        );
    }
    if options.logging {
        install_logging(&host, &program);
    }
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = host.worker_threads() {
        runtime.worker_threads(threads);
    }
    let runtime = match runtime.enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!(%error, "cannot build the tokio runtime");
            std::process::exit(1);
        }
    };
    for message in [&missing, &silent].into_iter().flatten() {
        tracing::warn!("{message}");
    }
    let outcome = runtime.block_on(host.run());
    // Abandoned services and stray blocking work must not keep the process alive. When the
    // budget was overrun something may be stuck on a worker thread: waiting for it would only
    // hold the process past the budget, so the runtime is left behind at once.
    if outcome.overran_budget() {
        runtime.shutdown_background();
    } else {
        runtime.shutdown_timeout(RUNTIME_SHUTDOWN_GRACE);
    }
    // The very last step of the stop: every span has ended (open-telemetry/opentelemetry-rust#1961).
    #[cfg(feature = "otel")]
    crate::telemetry::otel::shutdown();
    logging::report_dropped_lines();
    std::process::exit(i32::from(outcome.exit_code()));
}

/// `--list`, `--check` and `--migrate`, in `format`: what they print, and the exit.
fn one_off(
    command: Command,
    format: Format,
    host: &Host,
    hooks: &[&ListingHook],
    missing: Option<&String>,
    silent: Option<&String>,
) -> ! {
    if command == Command::Migrate {
        match run_steps(hooks, host, |hook| hook.migrate) {
            Ok(done) if done.is_empty() => print(
                Stream::Out,
                "ok: nothing to migrate: nothing in this binary keeps a schema\n",
            ),
            Ok(done) => {
                for line in done {
                    print(Stream::Out, &format!("ok: {line}\n"));
                }
            }
            Err(failures) => exit_with(&failures),
        }
        std::process::exit(0);
    }
    if format == Format::Json {
        let warnings: Vec<String> = silent.into_iter().cloned().collect();
        if command == Command::Check {
            let mut problems: Vec<(&'static str, String)> = missing
                .into_iter()
                .map(|message| ("missing_crate", message.clone()))
                .collect();
            let mut code = i32::from(!problems.is_empty());
            if let Err(failures) = run_steps(hooks, host, |hook| hook.check) {
                code = failures.first().map_or(code, |failure| failure.code);
                problems.extend(
                    failures
                        .into_iter()
                        .map(|failure| ("feature_check", failure.message)),
                );
            }
            print(
                Stream::Out,
                &report::check_passed(host, &warnings, &problems, code),
            );
            std::process::exit(code);
        }
        let warnings: Vec<String> = missing.into_iter().chain(silent).cloned().collect();
        print(
            Stream::Out,
            &report::list(host, &warnings, contributions(hooks, host)),
        );
        std::process::exit(0);
    }
    if command == Command::Check {
        if let Some(message) = silent {
            print(Stream::Err, &format!("warning: {message}\n"));
        }
        if let Some(message) = missing {
            print(Stream::Err, &format!("error: {message}\n"));
            std::process::exit(1);
        }
        let done = match run_steps(hooks, host, |hook| hook.check) {
            Ok(done) => done,
            Err(failures) => exit_with(&failures),
        };
        let services = host.services().len();
        let registrations = host.registrations();
        print(
            Stream::Out,
            &format!(
                "ok: {services} service{} and {registrations} registered type{} checked; nothing missing, captured or circular\n",
                if services == 1 { "" } else { "s" },
                if registrations == 1 { "" } else { "s" },
            ),
        );
        for line in done {
            print(Stream::Out, &format!("ok: {line}\n"));
        }
        std::process::exit(0);
    }
    for message in [missing, silent].into_iter().flatten() {
        print(Stream::Err, &format!("warning: {message}\n"));
    }
    print(
        Stream::Out,
        &format!(
            "{}\n{}{}",
            service_table(host),
            settings_table(host),
            hooked_tables(hooks, host)
        ),
    );
    std::process::exit(0);
}

/// Installs the log formatter, and with the `otel` feature the span exporter when configured.
fn install_logging(host: &Host, program: &str) {
    let (filter, json) = host.log_options();
    #[cfg(feature = "otel")]
    let export = host.otel_options().map(|(endpoint, name)| logging::Export {
        endpoint,
        service_name: if name.is_empty() {
            program_name(program)
        } else {
            name
        },
    });
    #[cfg(not(feature = "otel"))]
    let export = {
        let _ = program;
        None
    };
    logging::install_subscriber(filter, json, export);
}

/// The program's file name, the default `service.name` of the exported spans.
#[cfg(feature = "otel")]
fn program_name(program: &str) -> &str {
    std::path::Path::new(program)
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or(program)
}

/// What to say of libraries using `hosted` that `link` does not name and that contributed
/// nothing: the linker keeps a crate's registrations only when the binary names the crate.
fn silent_crates_message(host: &Host) -> Option<String> {
    let silent = host.silent_crates();
    if silent.is_empty() {
        return None;
    }
    let names: Vec<String> = silent.iter().map(|name| format!("`{name}`")).collect();
    Some(format!(
        "{} {} on `hosted` but contributed no service and no registered type: if {} \
         services, the linker dropped them because this binary never names {}; link {} with \
         `hosted::run!(link = [{}])`",
        names.join(", "),
        if silent.len() == 1 {
            "depends"
        } else {
            "depend"
        },
        if silent.len() == 1 {
            "it declares"
        } else {
            "they declare"
        },
        if silent.len() == 1 { "it" } else { "them" },
        if silent.len() == 1 { "it" } else { "them" },
        silent.join(", "),
    ))
}

/// What to say of crates `run!(link = [...])` names that contributed nothing.
fn missing_crates_message(host: &Host) -> Option<String> {
    let missing = host.missing_crates();
    if missing.is_empty() {
        return None;
    }
    let names: Vec<String> = missing.iter().map(|name| format!("`{name}`")).collect();
    Some(format!(
        "{} {} named in `hosted::run!(link = [...])` but contributed no service and no registered \
         type: the linker dropped {} or {} registers nothing; check that its services are \
         annotated and that the binary depends on it",
        if missing.len() == 1 {
            "crate"
        } else {
            "crates"
        },
        if missing.len() == 1 {
            format!("{} is", names[0])
        } else {
            format!("{} are", names.join(", "))
        },
        if missing.len() == 1 { "it" } else { "them" },
        if missing.len() == 1 { "it" } else { "each" },
    ))
}

/// Reads the configuration the command line and the environment name, and hands it to the
/// builder; a source that cannot be read stops the process with 78.
#[cfg(feature = "config")]
fn with_configuration(builder: HostBuilder, line: &CommandLine) -> HostBuilder {
    let mut sources = crate::config::ConfigSources::new();
    let file = line
        .config_file
        .clone()
        .or_else(|| std::env::var(format!("{}CONFIG", crate::config::DEFAULT_ENV_PREFIX)).ok());
    if let Some(file) = file {
        sources = sources.file(file);
    }
    if let Some(environment) = &line.environment {
        sources = sources.environment(environment.clone());
    }
    for setting in &line.settings {
        sources = match sources.argument(setting) {
            Ok(sources) => sources,
            Err(message) => {
                print(Stream::Err, &format!("error: {message}\n"));
                std::process::exit(EXIT_USAGE);
            }
        };
    }
    match sources.load() {
        Ok(configuration) => builder.configuration(configuration),
        Err(error) => {
            if line.format == Some(Format::Json) {
                let schema = if line.command == Some(Command::List) {
                    report::LIST_SCHEMA
                } else {
                    report::CHECK_SCHEMA
                };
                print(Stream::Out, &report::unreadable(schema, &error.to_string()));
            }
            print(Stream::Err, &format!("error: {error}\n"));
            std::process::exit(i32::from(super::EXIT_CONFIG));
        }
    }
}

#[cfg(not(feature = "config"))]
fn with_configuration(builder: HostBuilder, line: &CommandLine) -> HostBuilder {
    if line.config_file.is_some() || line.environment.is_some() || !line.settings.is_empty() {
        print(
            Stream::Err,
            "error: this binary was built without the `config` feature of `hosted`\n",
        );
        std::process::exit(EXIT_USAGE);
    }
    builder
}

/// The settings part of `--list`: every setting's effective value and origin.
fn settings_table(host: &Host) -> String {
    let rows: Vec<[String; 3]> = host
        .settings()
        .into_iter()
        .map(|line| [line.key, line.value, line.origin.to_string()])
        .collect();
    table(["SETTING", "VALUE", "FROM"], &rows)
}

/// Aligned columns, the last one left ragged.
fn table<const N: usize>(header: [&str; N], rows: &[[String; N]]) -> String {
    let mut widths = header.map(str::len);
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    let mut line = |cells: &[&str]| {
        let mut row = String::new();
        for (index, (cell, width)) in cells.iter().zip(widths).enumerate() {
            if index + 1 == cells.len() {
                row.push_str(cell);
            } else {
                let _ = write!(row, "{cell:<width$}  ");
            }
        }
        text.push_str(row.trim_end());
        text.push('\n');
    };
    line(&header);
    for row in rows {
        line(&row.each_ref().map(String::as_str));
    }
    text
}

/// The `--list` table: every service in start order.
fn service_table(host: &Host) -> String {
    let header = ["NAME", "KIND", "ORDER", "AFTER", "ON FAILURE", "SOURCE"];
    let rows: Vec<[String; 6]> = host
        .services()
        .map(|service| {
            let after: Vec<&str> = service.after().collect();
            [
                service.name().to_owned(),
                service.kind().to_string(),
                service.order().to_string(),
                if after.is_empty() {
                    "-".to_owned()
                } else {
                    after.join(",")
                },
                service.policy().to_string(),
                service
                    .source()
                    .map_or_else(|| "-".to_owned(), |source| source.to_string()),
            ]
        })
        .collect();
    let mut table = table(header, &rows);
    if rows.is_empty() {
        table.push_str("(no services registered)\n");
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<CommandLine, String> {
        parse_command_line(args.iter().map(OsString::from))
    }

    fn command(args: &[&str]) -> Result<Command, String> {
        parse(args).map(|line| line.command.unwrap_or(Command::Run))
    }

    #[test]
    fn the_command_line_is_read() {
        assert_eq!(command(&[]), Ok(Command::Run));
        assert_eq!(command(&["--list"]), Ok(Command::List));
        assert_eq!(command(&["-h"]), Ok(Command::Help));
        assert_eq!(command(&["--check"]), Ok(Command::Check));
        assert_eq!(command(&["--migrate"]), Ok(Command::Migrate));
        assert!(command(&["--migrate", "--check"]).is_err());
        assert_eq!(command(&["--list", "--list"]), Ok(Command::List));
        assert_eq!(
            command(&["--lsit"]).unwrap_err(),
            "unexpected argument `--lsit`".to_owned()
        );
        assert!(command(&["--list", "--help"]).is_err());
        assert!(command(&["stray"]).is_err());
    }

    #[test]
    fn configuration_arguments_are_kept() {
        let line = parse(&[
            "--config=conf/app.toml",
            "--environment=staging",
            "--host.shutdown_timeout=10s",
            "--list",
        ])
        .unwrap();
        assert_eq!(line.command, Some(Command::List));
        assert_eq!(line.config_file.as_deref(), Some("conf/app.toml"));
        assert_eq!(line.environment.as_deref(), Some("staging"));
        assert_eq!(line.settings, ["--host.shutdown_timeout=10s"]);
        assert!(parse(&["--=value"]).is_err());
    }
}
