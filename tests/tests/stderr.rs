//! What a broken standard error must not do to a host: stop it from stopping, or change its exit
//! code. The `noisy` binary logs every 10 ms; each test breaks its standard error a different
//! way — closed (`2>&-`), `/dev/full`, a pipe whose reader goes away (`2>&1 | head -n 5`), a
//! named pipe whose reader comes back (a log shipper that restarts) — then signals it or makes a
//! service panic, and checks the exit code. `ready` on stdout tells the test the host started.
//!
//! Timeouts only detect hangs; nothing here asserts how long anything took.

#![cfg(unix)]

use std::fs::File;
use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use hosted_tests::process::{HANG, Process};

const NOISY: &str = env!("CARGO_BIN_EXE_noisy");

/// Long enough for the chatter to hit the broken stream many times (it logs every 10 ms).
const SOME_CHATTER: Duration = Duration::from_millis(300);

/// `noisy` with its standard error closed, as `2>&-` leaves it.
fn with_stderr_closed() -> Process {
    let mut command = Process::command("sh");
    command.args(["-c", "exec \"$0\" 2>&-", NOISY]);
    Process::start_with_stderr(command, Stdio::null())
}

fn with_stderr_full() -> Process {
    let full = File::options()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full exists on Linux");
    Process::start_with_stderr(Process::command(NOISY), Stdio::from(full))
}

/// `noisy` writing its log into a pipe of which the test reads five lines and closes its end.
fn with_stderr_reader_gone() -> Process {
    let (reader, writer) = std::io::pipe().expect("a pipe");
    let app = Process::start_with_stderr(Process::command(NOISY), Stdio::from(writer));
    let mut lines = BufReader::new(reader).lines();
    for _ in 0..5 {
        lines
            .next()
            .expect("five lines of log")
            .expect("a readable log");
    }
    drop(lines);
    app
}

/// Waits until started, lets the chatter fail for a while, sends `signal`, returns the code.
fn exit_code_after(mut app: Process, signal: &str) -> i32 {
    app.wait_for_line("ready", HANG);
    std::thread::sleep(SOME_CHATTER);
    app.signal(signal);
    app.wait_exit(HANG)
}

/// Waits until started, lets the chatter fail for a while, makes `control` panic.
fn exit_code_after_a_panic(mut app: Process) -> i32 {
    app.wait_for_line("ready", HANG);
    std::thread::sleep(SOME_CHATTER);
    app.write_line("panic");
    app.wait_exit(HANG)
}

#[test]
fn with_stderr_closed_signals_stop_the_host_with_exit_0() {
    for signal in ["TERM", "INT", "QUIT"] {
        assert_eq!(exit_code_after(with_stderr_closed(), signal), 0, "{signal}");
    }
}

#[test]
fn with_stderr_closed_a_panic_under_the_stop_policy_exits_1() {
    assert_eq!(exit_code_after_a_panic(with_stderr_closed()), 1);
}

#[test]
fn with_stderr_full_signals_stop_the_host_with_exit_0() {
    for signal in ["TERM", "INT", "QUIT"] {
        assert_eq!(exit_code_after(with_stderr_full(), signal), 0, "{signal}");
    }
}

#[test]
fn with_stderr_full_a_panic_under_the_stop_policy_exits_1() {
    assert_eq!(exit_code_after_a_panic(with_stderr_full()), 1);
}

#[test]
fn with_stderr_full_a_stop_request_from_inside_exits_0() {
    let mut app = with_stderr_full();
    app.wait_for_line("ready", HANG);
    std::thread::sleep(SOME_CHATTER);
    app.write_line("stop");
    assert_eq!(app.wait_exit(HANG), 0);
}

#[test]
fn once_the_stderr_reader_is_gone_signals_stop_the_host_with_exit_0() {
    for signal in ["TERM", "INT", "QUIT"] {
        assert_eq!(
            exit_code_after(with_stderr_reader_gone(), signal),
            0,
            "{signal}"
        );
    }
}

#[test]
fn once_the_stderr_reader_is_gone_a_panic_under_the_stop_policy_exits_1() {
    assert_eq!(exit_code_after_a_panic(with_stderr_reader_gone()), 1);
}

#[test]
fn once_the_stderr_reader_is_gone_a_second_signal_during_a_slow_stop_exits_at_once() {
    for (signal, code) in [("TERM", 143), ("INT", 130), ("QUIT", 131)] {
        let (reader, writer) = std::io::pipe().expect("a pipe");
        let mut command = Process::command(NOISY);
        command.env("NOISY_LINGER", "1");
        let mut app = Process::start_with_stderr(command, Stdio::from(writer));
        drop(reader);
        app.wait_for_line("ready", HANG);
        std::thread::sleep(SOME_CHATTER);
        app.signal(signal);
        app.wait_for_line("lingering", HANG);
        app.signal(signal);
        assert_eq!(app.wait_exit(HANG), code, "{signal}");
    }
}

/// A named pipe in the temporary directory, removed at the end of the test.
struct Fifo(PathBuf);

impl Fifo {
    fn new() -> Self {
        let path = std::env::temp_dir().join(format!("hosted-stderr-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let made = Command::new("mkfifo")
            .arg(&path)
            .status()
            .expect("mkfifo runs");
        assert!(made.success(), "mkfifo {}", path.display());
        Self(path)
    }

    /// Opens the reading end; blocks until a writer has it open.
    fn reader(&self) -> BufReader<File> {
        BufReader::new(File::open(&self.0).expect("the fifo opens for reading"))
    }
}

impl Drop for Fifo {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The lines of `reader`, read on a thread of their own so that no wait can hang the test.
fn lines_of(reader: BufReader<File>) -> mpsc::Receiver<String> {
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in reader.lines() {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    received
}

/// Receives lines until one contains `needle`; returns everything received.
fn read_until(lines: &mpsc::Receiver<String>, needle: &str) -> String {
    let mut text = String::new();
    loop {
        let Ok(line) = lines.recv_timeout(HANG) else {
            panic!("no line with {needle:?} within {HANG:?}; the log so far:\n{text}");
        };
        text.push_str(&line);
        text.push('\n');
        if line.contains(needle) {
            return text;
        }
    }
}

#[test]
fn lines_dropped_while_the_reader_was_gone_are_reported_once_it_is_back() {
    let fifo = Fifo::new();
    // Opening one end of a named pipe waits for the other.
    let (mut app, reader) = std::thread::scope(|scope| {
        let reader = scope.spawn(|| fifo.reader());
        let writer = File::options()
            .write(true)
            .open(&fifo.0)
            .expect("the fifo opens for writing");
        let app = Process::start_with_stderr(Process::command(NOISY), Stdio::from(writer));
        (app, reader.join().expect("the reader opens"))
    });
    let mut reader = reader;
    let mut line = String::new();
    while !line.contains("application started") {
        line.clear();
        let read = reader.read_line(&mut line).expect("a readable log");
        assert!(read > 0, "the log ended before the host started");
    }
    drop(reader);
    app.wait_for_line("ready", HANG);
    std::thread::sleep(SOME_CHATTER);
    // The log shipper comes back: the writer still holds its end, so this opens at once.
    let lines = lines_of(fifo.reader());
    let text = read_until(&lines, "could not be written to standard error");
    let notice = text.lines().last().unwrap_or_default();
    assert!(notice.contains(" WARN hosted::host::logging: "), "{notice}");
    assert!(notice.contains("Broken pipe"), "{notice}");
    let dropped: u64 = notice
        .rsplit_once("dropped=")
        .and_then(|(_, count)| count.trim().parse().ok())
        .unwrap_or_else(|| panic!("a count in {notice:?}"));
    assert!(dropped > 0, "{notice}");
    app.signal("TERM");
    let rest = read_until(&lines, "application stopped");
    assert_eq!(app.wait_exit(HANG), 0, "{text}{rest}");
    assert!(
        !rest.contains("could not be written"),
        "reported once:\n{rest}"
    );
}

#[test]
fn a_reader_that_stops_reading_does_not_wedge_the_host() {
    // The reader stays connected and never reads: once the pipe is full, every write to it
    // would block.
    let (stalled, writer) = std::io::pipe().expect("a pipe");
    let mut command = Process::command(NOISY);
    command.env("NOISY_FLOOD", "1");
    let mut app = Process::start_with_stderr(command, Stdio::from(writer));
    app.wait_for_line("ready", HANG);
    // Far more than a pipe holds (64 KiB) has been logged by now.
    std::thread::sleep(SOME_CHATTER);
    app.signal("TERM");
    assert_eq!(app.wait_exit(HANG), 0, "{}", app.transcript());
    drop(stalled);
}
