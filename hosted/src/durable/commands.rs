//! What the durable store adds to the command line: its queues' depths in `--list`, the store
//! reachable and its schema current in `--check`, and `--migrate`.

use std::fmt::Write as _;
use std::future::Future;
use std::time::Duration;

use super::{DurableConfig, DurableError, PgBackend, STORE};
use crate::host::Host;
use crate::host::entry::{HookFailure, ListingHook};
use crate::service::ServiceKind;

/// `EX_UNAVAILABLE` from `sysexits.h`: `--check` or `--migrate` could not reach the store.
pub const EXIT_UNREACHABLE: i32 = 69;

/// `EX_DATAERR` from `sysexits.h`: the store's schema is at a version this build cannot run on
/// (behind it with `migrate = "manual"`, or ahead of it).
pub const EXIT_SCHEMA_VERSION: i32 = 65;

/// The hook the crate's `postgres` feature contributes.
pub(crate) const COMMAND_HOOK: ListingHook = ListingHook::new("hosted::durable", list)
    .with_check(check)
    .with_migrate(migrate);

/// The configuration of the host's durable services; `None` when it has none.
fn configured(host: &Host) -> Option<Result<DurableConfig, HookFailure>> {
    host.services_in(STORE).next()?;
    Some(match host.section::<DurableConfig>()? {
        Ok(config) => Ok(config),
        // The build reports these first; reached only if it did not.
        Err(problems) => Err(HookFailure {
            code: i32::from(crate::host::EXIT_CONFIG),
            message: problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n  "),
        }),
    })
}

/// Where a `durable.*` key's value came from, as `--list` names it, any copy of the URL masked.
fn origin(host: &Host, config: &DurableConfig, key: &str) -> String {
    let key = format!("durable.{key}");
    host.settings()
        .into_iter()
        .find(|line| line.key == key)
        .map_or_else(|| "default".to_owned(), |line| line.origin.to_string())
        .replace(config.url.expose(), &config.url.masked())
}

fn block_on<F: Future>(future: F) -> Result<F::Output, HookFailure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map(|runtime| runtime.block_on(future))
        .map_err(|error| HookFailure {
            code: 1,
            message: format!("cannot build a tokio runtime: {error}"),
        })
}

/// The failure of a step that met `error`, naming the keys at fault and their sources.
fn failure(host: &Host, config: &DurableConfig, error: &DurableError) -> HookFailure {
    match error {
        DurableError::SchemaVersion { .. } => HookFailure {
            code: EXIT_SCHEMA_VERSION,
            message: format!(
                "`durable.schema` = `{}` (from {}), `durable.migrate` = `{}` (from {}): {error}",
                config.schema,
                origin(host, config, "schema"),
                match config.migrate {
                    super::Migrate::Auto => "auto",
                    super::Migrate::Manual => "manual",
                },
                origin(host, config, "migrate"),
            ),
        },
        DurableError::Unreachable { .. } => HookFailure {
            code: EXIT_UNREACHABLE,
            message: format!(
                "`durable.url` (from {}): {error}",
                origin(host, config, "url")
            ),
        },
        _ => HookFailure {
            code: 1,
            message: format!(
                "`durable.url` (from {}): {error}",
                origin(host, config, "url")
            ),
        },
    }
}

fn check(host: &Host) -> Result<Option<String>, HookFailure> {
    let Some(config) = configured(host) else {
        return Ok(None);
    };
    let config = config?;
    let found =
        block_on(PgBackend::check(&config))?.map_err(|error| failure(host, &config, &error))?;
    let latest = PgBackend::schema_version();
    Ok(Some(if found == latest {
        format!(
            "the durable store at {} is reachable; schema `{}` at version {found}",
            config.url, config.schema
        )
    } else {
        format!(
            "the durable store at {} is reachable; schema `{}` at version {found}, migrated to \
             {latest} at start (`durable.migrate = \"auto\"`)",
            config.url, config.schema
        )
    }))
}

fn migrate(host: &Host) -> Result<Option<String>, HookFailure> {
    let Some(config) = configured(host) else {
        return Ok(None);
    };
    let config = config?;
    let migrated =
        block_on(PgBackend::migrate(&config))?.map_err(|error| failure(host, &config, &error))?;
    Ok(Some(if migrated.from == migrated.to {
        format!(
            "the durable store's schema `{}` at {} is at version {} already",
            config.schema, config.url, migrated.to
        )
    } else {
        format!(
            "migrated the durable store's schema `{}` at {} from version {} to {}",
            config.schema, config.url, migrated.from, migrated.to
        )
    }))
}

/// The durable queues' depths: waiting, running, dead, and the age of the oldest job waiting.
fn list(host: &Host) -> Option<String> {
    let config = configured(host)?;
    let queues: Vec<&str> = host
        .services_in(STORE)
        .filter(|service| service.kind() == ServiceKind::Queued)
        .map(crate::service::ServiceInfo::name)
        .collect();
    if queues.is_empty() {
        return None;
    }
    let config = match config {
        Ok(config) => config,
        Err(failure) => return Some(format!("DURABLE QUEUE\n({})\n", failure.message)),
    };
    let inspected = block_on(PgBackend::inspect(&config, &queues))
        .map_err(|failure| DurableError::Database(failure.message))
        .and_then(|inspected| inspected);
    let mut text = String::new();
    match inspected {
        Ok((version, counts)) => {
            let rows: Vec<[String; 5]> = queues
                .iter()
                .zip(counts)
                .map(|(queue, counts)| {
                    [
                        (*queue).to_owned(),
                        counts.waiting.to_string(),
                        counts.running.to_string(),
                        counts.dead.to_string(),
                        counts.oldest_waiting.map_or_else(|| "-".to_owned(), age),
                    ]
                })
                .collect();
            let header = [
                "DURABLE QUEUE",
                "WAITING",
                "RUNNING",
                "DEAD",
                "OLDEST WAITING",
            ];
            let mut widths = header.map(str::len);
            for row in &rows {
                for (width, cell) in widths.iter_mut().zip(row) {
                    *width = (*width).max(cell.len());
                }
            }
            let [queue, waiting, running, dead, _] = widths;
            let _ = writeln!(
                text,
                "{:<queue$}  {:<waiting$}  {:<running$}  {:<dead$}  {}",
                header[0], header[1], header[2], header[3], header[4]
            );
            for [name, w, r, d, oldest] in rows {
                let _ = writeln!(
                    text,
                    "{name:<queue$}  {w:<waiting$}  {r:<running$}  {d:<dead$}  {oldest}"
                );
            }
            let _ = writeln!(
                text,
                "(store {}, schema `{}` at version {version})",
                config.url, config.schema
            );
        }
        Err(error) => {
            let _ = writeln!(text, "DURABLE QUEUE");
            for queue in queues {
                let _ = writeln!(text, "{queue}");
            }
            let _ = writeln!(text, "(counts unavailable: {error})");
        }
    }
    Some(text)
}

/// An age as `--list` shows it: whole seconds past a minute, milliseconds below.
fn age(age: Duration) -> String {
    if age >= Duration::from_mins(1) {
        humantime::format_duration(Duration::from_secs(age.as_secs())).to_string()
    } else {
        humantime::format_duration(Duration::from_millis(
            u64::try_from(age.as_millis()).unwrap_or(u64::MAX),
        ))
        .to_string()
    }
}
