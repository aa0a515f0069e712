//! Logging for `hosted::run!()`: the subscriber it installs, the writer behind it, and the panic
//! hook. Nothing the environment does to standard error — a reader that goes away
//! (`./app 2>&1 | head`), a full disk (`2>/dev/full`), a closed descriptor (`2>&-`) — may stop,
//! wedge or kill the host.
//!
//! `tracing-subscriber`'s own writer reports a failed write with `eprintln!`, which panics when
//! standard error is what failed: the panic then ends whichever task logged — the signal watcher,
//! a supervisor, the host itself — and the process no longer stops on SIGTERM, or exits with 101.
//! [`LogSink`] never fails a write: a line that cannot be written is dropped and counted, and the
//! count is reported once, on the first line that can be written after them.
//!
//! Nor does it ever block the code that logs: lines go through a bounded queue to a thread of
//! their own that writes them, so a reader that stays connected but stops reading (a stalled
//! pipe, a log shipper that hangs) fills the queue, not the host's threads; lines that find the
//! queue full are dropped and counted the same way. At exit the queue is flushed for at most
//! [`FLUSH_TIMEOUT`].

use std::fmt::Write as _;
use std::io::{self, Write as _};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

/// How many lines may wait for standard error before new ones are dropped.
const QUEUE_LINES: usize = 4096;
/// How long the end of the process waits for the lines still queued.
pub(crate) const FLUSH_TIMEOUT: Duration = Duration::from_millis(500);

/// What the writer thread is handed.
enum Queued {
    Line(Vec<u8>),
    /// Answered once every line queued before it is written.
    Flush(SyncSender<()>),
}

/// The queue to the writer thread; `None` when the thread could not be started, and lines are
/// then written where they are logged.
static QUEUE: OnceLock<Option<SyncSender<Queued>>> = OnceLock::new();

fn queue() -> Option<&'static SyncSender<Queued>> {
    QUEUE
        .get_or_init(|| {
            let (sender, lines) = mpsc::sync_channel(QUEUE_LINES);
            std::thread::Builder::new()
                .name("hosted-log".to_owned())
                .spawn(move || {
                    for queued in lines {
                        match queued {
                            Queued::Line(line) => LogSink::write_line(&line),
                            Queued::Flush(done) => {
                                let _ = done.send(());
                            }
                        }
                    }
                })
                .ok()
                .map(|_| sender)
        })
        .as_ref()
}

/// Counts a line lost before it reached standard error.
fn count_dropped(error: &str) {
    let mut dropped = DROPPED.lock().unwrap_or_else(PoisonError::into_inner);
    dropped.unreported += 1;
    dropped.total += 1;
    dropped.error = Some(error.to_owned());
}

/// Waits, at most `timeout`, until every line queued so far is written (or dropped).
pub(crate) fn flush(timeout: Duration) {
    let Some(queue) = queue() else {
        return;
    };
    let deadline = Instant::now() + timeout;
    let (done, written) = mpsc::sync_channel(1);
    let mut flush = Queued::Flush(done);
    loop {
        match queue.try_send(flush) {
            Ok(()) => break,
            Err(TrySendError::Full(back)) if Instant::now() < deadline => {
                flush = back;
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(_) => return,
        }
    }
    let _ = written.recv_timeout(deadline.saturating_duration_since(Instant::now()));
}

/// Lines dropped since the last report, and the last error.
static DROPPED: Mutex<Dropped> = Mutex::new(Dropped {
    unreported: 0,
    total: 0,
    error: None,
});
/// Whether the notice is written as JSON.
static JSON: AtomicBool = AtomicBool::new(false);

#[derive(Debug)]
struct Dropped {
    unreported: u64,
    total: u64,
    error: Option<String>,
}

/// Writes each formatted line to standard error; never fails, never panics.
#[derive(Clone, Copy, Debug, Default)]
#[cfg_attr(
    not(feature = "subscriber"),
    allow(dead_code, reason = "the writer of the subscriber")
)]
pub(crate) struct LogSink;

#[cfg_attr(
    not(feature = "subscriber"),
    allow(dead_code, reason = "the writer of the subscriber")
)]
impl LogSink {
    /// Writes one line, dropping it (counted) when standard error refuses it; after drops, the
    /// first line that gets through is followed by a notice saying how many were lost.
    fn write_line(line: &[u8]) {
        let mut stderr = io::stderr().lock();
        match stderr.write_all(line) {
            Ok(()) => {
                let notice = {
                    let mut dropped = DROPPED.lock().unwrap_or_else(PoisonError::into_inner);
                    if dropped.unreported == 0 {
                        return;
                    }
                    let notice = notice(&dropped, JSON.load(Ordering::Relaxed));
                    dropped.unreported = 0;
                    notice
                };
                if stderr.write_all(notice.as_bytes()).is_err() {
                    // Lost as well: counted again, so it is retried with the next line.
                    let mut dropped = DROPPED.lock().unwrap_or_else(PoisonError::into_inner);
                    dropped.unreported += 1;
                    dropped.total += 1;
                }
            }
            Err(error) => {
                let mut dropped = DROPPED.lock().unwrap_or_else(PoisonError::into_inner);
                dropped.unreported += 1;
                dropped.total += 1;
                dropped.error = Some(error.to_string());
            }
        }
    }
}

impl io::Write for LogSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match queue() {
            Some(queue) => match queue.try_send(Queued::Line(buf.to_vec())) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => count_dropped(&format!(
                    "standard error is not being read: {QUEUE_LINES} lines are waiting"
                )),
                Err(TrySendError::Disconnected(_)) => Self::write_line(buf),
            },
            None => Self::write_line(buf),
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(feature = "subscriber")]
impl tracing_subscriber::fmt::MakeWriter<'_> for LogSink {
    type Writer = Self;

    fn make_writer(&self) -> Self::Writer {
        *self
    }
}

/// The notice for lines dropped, in the log's format (JSON when `json`).
fn notice(dropped: &Dropped, json: bool) -> String {
    let count = dropped.unreported;
    let message = format!(
        "{count} log line{} could not be written to standard error and {} dropped (last error: {})",
        if count == 1 { "" } else { "s" },
        if count == 1 { "was" } else { "were" },
        dropped.error.as_deref().unwrap_or("unknown"),
    );
    let time = humantime::format_rfc3339_micros(std::time::SystemTime::now());
    let target = module_path!();
    if json {
        format!(
            "{{\"timestamp\":\"{time}\",\"level\":\"WARN\",\"fields\":{{\"message\":{},\"dropped\":{count}}},\"target\":\"{target}\"}}\n",
            json_string(&message),
        )
    } else {
        format!("{time}  WARN {target}: {message} dropped={count}\n")
    }
}

/// `text` as a JSON string literal.
fn json_string(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            '\r' => quoted.push_str("\\r"),
            '\t' => quoted.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(quoted, "\\u{:04x}", u32::from(c));
            }
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// Writes what is still queued (for at most [`FLUSH_TIMEOUT`]), then tries once more to report
/// lines dropped and not yet reported, as the process ends; returns how many were dropped in all.
pub(crate) fn report_dropped_lines() -> u64 {
    let began = Instant::now();
    flush(FLUSH_TIMEOUT);
    let pending = {
        let mut dropped = DROPPED.lock().unwrap_or_else(PoisonError::into_inner);
        if dropped.unreported == 0 {
            return dropped.total;
        }
        let notice = notice(&dropped, JSON.load(Ordering::Relaxed));
        dropped.unreported = 0;
        (notice, dropped.total)
    };
    // Through the queue too: a stalled standard error must not hold the exit.
    let mut sink = LogSink;
    let _ = sink.write(pending.0.as_bytes());
    flush(FLUSH_TIMEOUT.saturating_sub(began.elapsed()));
    pending.1
}

/// Writes `text` to standard output or error without panicking when the stream is gone (unlike
/// `println!`), for the messages `run!()` prints itself.
pub(crate) fn print(to: Stream, text: &str) {
    let _ = match to {
        Stream::Out => {
            let mut out = io::stdout().lock();
            out.write_all(text.as_bytes()).and_then(|()| out.flush())
        }
        Stream::Err => io::stderr().lock().write_all(text.as_bytes()),
    };
}

/// A standard stream.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Stream {
    Out,
    Err,
}

/// Gives a closed standard descriptor (0, 1 or 2) `/dev/null`, before anything opens a file.
///
/// A process started with its standard error closed (`2>&-`) would otherwise hand descriptor 2 to
/// the first file or socket it opens — tokio's event queue or its signal pipe — and every log
/// line would be written into it.
#[cfg(unix)]
pub(crate) fn protect_standard_streams() {
    use std::os::fd::{AsRawFd as _, IntoRawFd as _};
    for _ in 0..3 {
        let Ok(null) = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")
        else {
            return;
        };
        // The lowest free descriptor: below 3, it fills a closed standard stream, kept open.
        if null.as_raw_fd() > 2 {
            return;
        }
        let _ = null.into_raw_fd();
    }
}

#[cfg(not(unix))]
pub(crate) fn protect_standard_streams() {}

/// Where spans are exported to (feature `otel`): the OTLP/HTTP endpoint and the service name.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(
    not(feature = "otel"),
    allow(dead_code, reason = "read by the exporter of the `otel` feature")
)]
pub(crate) struct Export<'a> {
    pub(crate) endpoint: &'a str,
    pub(crate) service_name: &'a str,
}

/// Installs a formatter writing to stderr through [`LogSink`], filtered by `RUST_LOG` when set,
/// else by `configured` (`host.log`), unless a subscriber is installed already; and, when it was
/// installed, the panic hook. With `export` (feature `otel`), spans are exported beside it.
/// Returns whether it was installed.
#[cfg(feature = "subscriber")]
pub(crate) fn install_subscriber(configured: &str, json: bool, export: Option<Export<'_>>) -> bool {
    use tracing_subscriber::EnvFilter;
    let (source, wanted) = match std::env::var("RUST_LOG") {
        Ok(value) if !value.is_empty() => ("RUST_LOG", value),
        _ => ("host.log", configured.to_owned()),
    };
    let (filter, bad_filter) = match EnvFilter::try_new(&wanted) {
        Ok(filter) => (filter, None),
        Err(error) => (EnvFilter::new("info"), Some((wanted, error))),
    };
    // Colours only for a person at a terminal, and never when NO_COLOR is set (no-color.org).
    let ansi = io::IsTerminal::is_terminal(&io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty());
    JSON.store(json, Ordering::Relaxed);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(LogSink)
        // Its report of a failed write is an `eprintln!`, which panics; the sink never fails.
        .log_internal_errors(false);
    let (installed, export_failed) = if json {
        install(builder.json().finish(), export)
    } else {
        install(builder.with_ansi(ansi).finish(), export)
    };
    if installed {
        install_panic_hook();
        if let Some((value, error)) = bad_filter {
            tracing::warn!(%error, "ignoring {source}={value:?}; logging at `info`");
        }
        if let Some(error) = export_failed {
            tracing::warn!(%error, "cannot export spans over OTLP; running without");
        }
    }
    installed
}

/// Installs `subscriber` as the global default, with the exporter's layer when there is one to
/// install; returns whether it was installed, and why the exporter could not be built.
#[cfg(feature = "subscriber")]
fn install<S>(subscriber: S, export: Option<Export<'_>>) -> (bool, Option<String>)
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
    S: Send + Sync + 'static,
{
    #[cfg(feature = "otel")]
    if let Some(export) = export {
        use tracing_subscriber::layer::SubscriberExt as _;
        match crate::telemetry::otel::layer(export.endpoint, export.service_name) {
            Ok(layer) => {
                let installed = tracing::subscriber::set_global_default(subscriber.with(layer));
                return (installed.is_ok(), None);
            }
            Err(error) => {
                let installed = tracing::subscriber::set_global_default(subscriber);
                return (installed.is_ok(), Some(error));
            }
        }
    }
    #[cfg(not(feature = "otel"))]
    let _ = export;
    (
        tracing::subscriber::set_global_default(subscriber).is_ok(),
        None,
    )
}

#[cfg(not(feature = "subscriber"))]
pub(crate) fn install_subscriber(
    _configured: &str,
    _json: bool,
    _export: Option<Export<'_>>,
) -> bool {
    false
}

/// Replaces Rust's default panic hook, which prints plain text beside the log: a panic the host
/// catches is reported once, by the host's own log line (which this hook completes with where the
/// panic happened); any other panic becomes one `ERROR` event in the log's format.
#[cfg_attr(
    not(feature = "subscriber"),
    allow(dead_code, reason = "installed with the subscriber")
)]
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|location| format!(" (at {location})"))
            .unwrap_or_default();
        let backtrace = std::backtrace::Backtrace::capture();
        let backtrace = (backtrace.status() == std::backtrace::BacktraceStatus::Captured)
            .then(|| backtrace.to_string());
        if crate::util::panic_is_caught() {
            let mut place = location;
            if let Some(backtrace) = backtrace {
                let _ = write!(place, "\nstack backtrace:\n{backtrace}");
            }
            crate::util::record_caught_panic(place);
            return;
        }
        let message = info
            .payload_as_str()
            .unwrap_or("a panic with a non-string payload");
        let thread = std::thread::current();
        let thread = thread.name().unwrap_or("<unnamed>");
        if let Some(backtrace) = backtrace {
            tracing::error!(
                thread,
                backtrace,
                "thread `{thread}` panicked: {message}{location}"
            );
        } else {
            tracing::error!(thread, "thread `{thread}` panicked: {message}{location}");
        }
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(
            json_string("a \"b\" \\ c\nd\u{1}"),
            "\"a \\\"b\\\" \\\\ c\\nd\\u0001\""
        );
    }

    #[test]
    fn the_notice_counts_the_lines_dropped() {
        let dropped = Dropped {
            unreported: 3,
            total: 5,
            error: Some("Broken pipe (os error 32)".to_owned()),
        };
        let text = notice(&dropped, false);
        assert!(
            text.ends_with(
                "  WARN hosted::host::logging: 3 log lines could not be written to standard \
                 error and were dropped (last error: Broken pipe (os error 32)) dropped=3\n"
            ),
            "{text}"
        );
        let json = notice(&dropped, true);
        assert!(
            json.starts_with("{\"timestamp\":\"")
                && json.ends_with(
                    "\",\"level\":\"WARN\",\"fields\":{\"message\":\"3 log lines could not be \
                 written to standard error and were dropped (last error: Broken pipe (os error \
                 32))\",\"dropped\":3},\"target\":\"hosted::host::logging\"}\n"
                ),
            "{json}"
        );
    }
}
