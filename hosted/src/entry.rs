//! What `hosted::run!()` does in `main`: read the command line, install logging, build the host
//! from the registry, run it on a multi-thread tokio runtime and exit with its code.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::Write as _;
use std::time::Duration;

use crate::host::{Host, HostBuilder};

/// Exit code for a command line the binary does not understand.
pub const EXIT_USAGE: i32 = 2;

/// How long the runtime waits for stray blocking work once the host has stopped.
const RUNTIME_SHUTDOWN_GRACE: Duration = Duration::from_millis(500);

/// Options of `run!()` itself. Not public API, used by generated code.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct MainOptions {
    /// Install a `tracing` subscriber unless one is installed already.
    pub logging: bool,
}

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
enum Command {
    Run,
    List,
    Check,
    Help,
}

fn parse_command_line(args: impl IntoIterator<Item = OsString>) -> Result<Command, String> {
    let mut command = Command::Run;
    for arg in args {
        let next = match arg.to_str() {
            Some("--list") => Command::List,
            Some("--check") => Command::Check,
            Some("--help" | "-h") => Command::Help,
            _ => return Err(format!("unexpected argument `{}`", arg.to_string_lossy())),
        };
        if command != Command::Run && command != next {
            return Err("`--list`, `--check` and `--help` cannot be combined".to_owned());
        }
        command = next;
    }
    Ok(command)
}

fn usage(program: &str) -> String {
    format!(
        "Usage: {program} [--list | --check | --help]\n\n\
         Runs the hosted services linked into this binary until SIGINT or SIGTERM (Ctrl+C).\n\n\
         Options:\n  \
         --list      print every service (name, kind, order, after, failure policy, source) and exit\n  \
         --check     check the registrations (names, order, dependencies, lifespans) without\n              \
         starting anything; exit 0 if they are sound, 1 with every problem otherwise\n  \
         -h, --help  print this help and exit\n\n\
         Logging follows RUST_LOG (default `info`)."
    )
}

/// Not public API, used by generated code: the body of `hosted::run!()`.
#[doc(hidden)]
pub fn run_main(options: MainOptions, configure: impl FnOnce(HostBuilder) -> HostBuilder) -> ! {
    let mut args = std::env::args_os();
    let program = args.next().map_or_else(
        || "app".to_owned(),
        |arg| arg.to_string_lossy().into_owned(),
    );
    let command = match parse_command_line(args) {
        Ok(command) => command,
        Err(message) => {
            eprintln!("error: {message}\n\n{}", usage(&program));
            std::process::exit(EXIT_USAGE);
        }
    };
    if command == Command::Help {
        println!("{}", usage(&program));
        std::process::exit(0);
    }
    if options.logging && command == Command::Run {
        install_subscriber();
    }
    let host = match configure(Host::builder().discover()).build() {
        Ok(host) => host,
        Err(error) => {
            // Printed rather than logged: it must show even with logging off or filtered.
            eprintln!("error: {error}");
            std::process::exit(1);
        }
    };
    if command == Command::Check {
        let services = host.services().len();
        let registrations = host.registrations();
        println!(
            "ok: {services} service{} and {registrations} registered type{} checked; nothing missing, captured or circular",
            if services == 1 { "" } else { "s" },
            if registrations == 1 { "" } else { "s" },
        );
        std::process::exit(0);
    }
    if command == Command::List {
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(service_table(&host).as_bytes());
        let _ = stdout.flush();
        std::process::exit(0);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!(%error, "cannot build the tokio runtime");
            std::process::exit(1);
        }
    };
    let outcome = runtime.block_on(host.run());
    // Abandoned services and stray blocking work must not keep the process alive.
    runtime.shutdown_timeout(RUNTIME_SHUTDOWN_GRACE);
    std::process::exit(i32::from(outcome.exit_code()));
}

#[cfg(feature = "subscriber")]
fn install_subscriber() {
    use tracing_subscriber::EnvFilter;
    let (filter, bad_filter) = match EnvFilter::try_from_default_env() {
        Ok(filter) => (filter, None),
        Err(error) => (
            EnvFilter::new("info"),
            std::env::var("RUST_LOG")
                .ok()
                .filter(|value| !value.is_empty())
                .map(|value| (value, error)),
        ),
    };
    // Colours only for a person at a terminal, and never when NO_COLOR is set (no-color.org).
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty());
    let installed = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .try_init()
        .is_ok();
    if let (true, Some((value, error))) = (installed, bad_filter) {
        tracing::warn!(%error, "ignoring RUST_LOG={value:?}; logging at `info`");
    }
}

#[cfg(not(feature = "subscriber"))]
fn install_subscriber() {}

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
    let mut widths = header.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let mut table = String::new();
    let mut line = |cells: &[&str]| {
        let mut text = String::new();
        for (index, (cell, width)) in cells.iter().zip(widths).enumerate() {
            if index + 1 == cells.len() {
                text.push_str(cell);
            } else {
                let _ = write!(text, "{cell:<width$}  ");
            }
        }
        table.push_str(text.trim_end());
        table.push('\n');
    };
    line(&header);
    for row in &rows {
        line(&row.each_ref().map(String::as_str));
    }
    if rows.is_empty() {
        table.push_str("(no services registered)\n");
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, String> {
        parse_command_line(args.iter().map(OsString::from))
    }

    #[test]
    fn the_command_line_is_read() {
        assert_eq!(parse(&[]), Ok(Command::Run));
        assert_eq!(parse(&["--list"]), Ok(Command::List));
        assert_eq!(parse(&["-h"]), Ok(Command::Help));
        assert_eq!(parse(&["--check"]), Ok(Command::Check));
        assert_eq!(parse(&["--list", "--list"]), Ok(Command::List));
        assert_eq!(
            parse(&["--lsit"]),
            Err("unexpected argument `--lsit`".to_owned())
        );
        assert!(parse(&["--list", "--help"]).is_err());
    }
}
