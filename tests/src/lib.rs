//! Shared helpers of the `hosted` test suite.

pub mod process {
    //! Running a binary as a real process: its output captured line by line as it arrives,
    //! signals sent with the `kill` command, and the process killed if a test fails first.
    //!
    //! Every wait takes a timeout that only detects hangs; no test asserts how long anything
    //! took.

    use std::fmt::Write as _;
    use std::io::{BufRead as _, BufReader, Read, Write as _};
    use std::path::Path;
    use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
    use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
    use std::thread;
    use std::time::{Duration, Instant};

    /// A timeout for waits that should take a second or two at most: long enough that only a hang
    /// reaches it on a loaded two-core machine.
    pub const HANG: Duration = Duration::from_secs(30);

    /// A running (or exited) binary and everything it has printed so far.
    ///
    /// Dropping it kills the process if it has not exited, so a failing test leaks nothing.
    #[derive(Debug)]
    pub struct Process {
        name: String,
        child: Child,
        output: Arc<Output>,
        status: Option<ExitStatus>,
        /// Standard input, for processes started with [`start_with_stdin`](Self::start_with_stdin).
        stdin: Option<ChildStdin>,
    }

    #[derive(Debug, Default)]
    struct Output {
        captured: Mutex<Captured>,
        changed: Condvar,
    }

    #[derive(Debug, Default)]
    struct Captured {
        stdout: String,
        stderr: String,
        open_streams: usize,
    }

    impl Captured {
        /// The log first (the runtime logs to stderr), then stdout.
        fn lines(&self) -> impl Iterator<Item = &str> {
            self.stderr.lines().chain(self.stdout.lines())
        }

        fn transcript(&self) -> String {
            let mut text = String::new();
            for (stream, captured) in [("stdout", &self.stdout), ("stderr", &self.stderr)] {
                let _ = writeln!(text, "----- {stream} -----");
                text.push_str(captured);
                if !captured.is_empty() && !captured.ends_with('\n') {
                    text.push('\n');
                }
            }
            text.push_str("-----");
            text
        }
    }

    impl Process {
        /// A command for `program` (a path from `env!("CARGO_BIN_EXE_<name>")`) with the
        /// environment the tests rely on: no colours, the default log level, short panic
        /// messages and tokio's default worker count, whatever the caller's environment says.
        #[must_use]
        pub fn command(program: &str) -> Command {
            let mut command = Command::new(program);
            command
                .env("NO_COLOR", "1")
                .env_remove("RUST_LOG")
                .env_remove("RUST_BACKTRACE")
                .env_remove("TOKIO_WORKER_THREADS")
                .env_remove("NOTIFY_SOCKET")
                .env_remove("WATCHDOG_USEC")
                .env_remove("WATCHDOG_PID");
            command
        }

        /// Starts `program` with `args`; see [`command`](Self::command).
        ///
        /// # Panics
        /// When the program cannot be started.
        #[must_use]
        pub fn spawn(program: &str, args: &[&str]) -> Self {
            let mut command = Self::command(program);
            command.args(args);
            Self::start(command)
        }

        /// Starts `command` with its stdout and stderr captured.
        ///
        /// # Panics
        /// When the program cannot be started.
        #[must_use]
        pub fn start(command: Command) -> Self {
            Self::start_with(command, Stdio::null(), None)
        }

        /// Starts `command` with its stdout and stderr captured and its standard input open for
        /// [`write_line`](Self::write_line).
        ///
        /// # Panics
        /// When the program cannot be started.
        #[must_use]
        pub fn start_with_stdin(command: Command) -> Self {
            Self::start_with(command, Stdio::piped(), None)
        }

        /// Starts `command` with its standard input open for [`write_line`](Self::write_line), its
        /// stdout captured, and its standard error sent to `stderr` (`/dev/full`, a pipe the test
        /// reads and closes, ...) instead of being captured.
        ///
        /// # Panics
        /// When the program cannot be started.
        #[must_use]
        pub fn start_with_stderr(command: Command, stderr: Stdio) -> Self {
            Self::start_with(command, Stdio::piped(), Some(stderr))
        }

        /// Writes `line` and a newline to the process's standard input.
        ///
        /// # Panics
        /// When the process was not started with [`start_with_stdin`](Self::start_with_stdin), or
        /// the write fails.
        #[track_caller]
        pub fn write_line(&mut self, line: &str) {
            let stdin = self
                .stdin
                .as_mut()
                .unwrap_or_else(|| panic!("{}: started without a standard input", self.name));
            writeln!(stdin, "{line}")
                .and_then(|()| stdin.flush())
                .unwrap_or_else(|error| {
                    panic!("{}: cannot write to its input: {error}", self.name)
                });
        }

        fn start_with(mut command: Command, stdin: Stdio, stderr: Option<Stdio>) -> Self {
            let program = command.get_program().to_owned();
            let name = Path::new(&program)
                .file_name()
                .unwrap_or(&program)
                .to_string_lossy()
                .into_owned();
            let mut child = command
                .stdin(stdin)
                .stdout(Stdio::piped())
                .stderr(stderr.unwrap_or_else(Stdio::piped))
                .spawn()
                .unwrap_or_else(|error| panic!("cannot start {}: {error}", program.display()));
            let output = Arc::new(Output::default());
            if let Some(stdout) = child.stdout.take() {
                read_lines(stdout, Arc::clone(&output), |captured| &mut captured.stdout);
            }
            if let Some(stderr) = child.stderr.take() {
                read_lines(stderr, Arc::clone(&output), |captured| &mut captured.stderr);
            }
            Self {
                name,
                stdin: child.stdin.take(),
                child,
                output,
                status: None,
            }
        }

        /// Waits for a line of output containing `needle` and returns it. Lines printed before
        /// the call count too.
        ///
        /// # Panics
        /// When no such line arrives within `timeout`, or the process closes its output first;
        /// the message holds everything captured.
        #[track_caller]
        pub fn wait_for_line(&self, needle: &str, timeout: Duration) -> String {
            let deadline = Instant::now() + timeout;
            let mut captured = self.captured();
            loop {
                if let Some(line) = captured.lines().find(|line| line.contains(needle)) {
                    return line.to_owned();
                }
                let now = Instant::now();
                let problem = if captured.open_streams == 0 {
                    "closed its output"
                } else if now >= deadline {
                    "timed out"
                } else {
                    captured = self
                        .output
                        .changed
                        .wait_timeout(captured, deadline - now)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                    continue;
                };
                let transcript = captured.transcript();
                drop(captured);
                panic!(
                    "{}: {problem} waiting {timeout:?} for a line containing {needle:?}\n{transcript}",
                    self.name
                );
            }
        }

        /// Sends a signal by name (`"TERM"`, `"INT"`) with the `kill` command.
        ///
        /// # Panics
        /// When `kill` cannot be run or fails.
        #[track_caller]
        pub fn signal(&self, signal: &str) {
            let status = Command::new("kill")
                .arg(format!("-{signal}"))
                .arg(self.child.id().to_string())
                .status()
                .unwrap_or_else(|error| panic!("cannot run `kill`: {error}"));
            assert!(
                status.success(),
                "`kill -{signal}` of {} failed: {status}",
                self.name
            );
        }

        /// Waits for the process to exit and for its output to be read to the end, and returns
        /// the exit code.
        ///
        /// # Panics
        /// When the process is still running after `timeout` (it is then killed), or was ended
        /// by a signal instead of exiting.
        #[track_caller]
        pub fn wait_exit(&mut self, timeout: Duration) -> i32 {
            let status = self.wait_status(timeout);
            status.code().unwrap_or_else(|| {
                panic!(
                    "{}: ended by a signal, not an exit ({status})\n{}",
                    self.name,
                    self.transcript()
                )
            })
        }

        /// Waits for the process to end and for its output to be read to the end, and returns
        /// how it ended: for tests that expect it may die by a signal.
        ///
        /// # Panics
        /// When the process is still running after `timeout` (it is then killed).
        #[track_caller]
        pub fn wait_status(&mut self, timeout: Duration) -> ExitStatus {
            let deadline = Instant::now() + timeout;
            let status = loop {
                if let Some(status) = self.status {
                    break status;
                }
                match self.child.try_wait() {
                    Ok(Some(status)) => self.status = Some(status),
                    Ok(None) if Instant::now() < deadline => {
                        thread::sleep(Duration::from_millis(10));
                    }
                    Ok(None) => {
                        self.kill();
                        panic!(
                            "{}: still running after {timeout:?}; killed it\n{}",
                            self.name,
                            self.transcript()
                        );
                    }
                    Err(error) => panic!("{}: cannot wait for it: {error}", self.name),
                }
            };
            self.wait_for_eof(deadline);
            status
        }

        /// Kills the process (SIGKILL) and reaps it, unless it has exited already.
        pub fn kill(&mut self) {
            if self.status.is_none() {
                let _ = self.child.kill();
                self.status = self.child.wait().ok();
            }
        }

        /// The complete standard output so far.
        #[must_use]
        pub fn stdout(&self) -> String {
            self.captured().stdout.clone()
        }

        /// The complete standard error (the log) so far.
        #[must_use]
        pub fn stderr(&self) -> String {
            self.captured().stderr.clone()
        }

        /// Everything captured so far, labelled by stream, for assertion messages.
        #[must_use]
        pub fn transcript(&self) -> String {
            self.captured().transcript()
        }

        /// The index of the first log line (stderr) containing every one of `parts`.
        #[must_use]
        pub fn log_line(&self, parts: &[&str]) -> Option<usize> {
            self.captured()
                .stderr
                .lines()
                .position(|line| parts.iter().all(|part| line.contains(part)))
        }

        /// Asserts that the log holds a line for each entry of `events` (a line containing every
        /// part of it), in this order.
        ///
        /// # Panics
        /// When a line is missing or out of order; the message holds everything captured.
        #[track_caller]
        pub fn assert_log_order(&self, events: &[&[&str]]) {
            let mut previous: Option<(usize, &[&str])> = None;
            for &event in events {
                let Some(index) = self.log_line(event) else {
                    panic!(
                        "{}: no log line contains all of {event:?}\n{}",
                        self.name,
                        self.transcript()
                    );
                };
                if let Some((before, earlier)) = previous {
                    assert!(
                        before < index,
                        "{}: the line with {earlier:?} should come before the line with \
                         {event:?}\n{}",
                        self.name,
                        self.transcript()
                    );
                }
                previous = Some((index, event));
            }
        }

        /// Asserts that no log line contains every one of `parts`.
        ///
        /// # Panics
        /// When one does; the message holds everything captured.
        #[track_caller]
        pub fn assert_no_log_line(&self, parts: &[&str]) {
            assert!(
                self.log_line(parts).is_none(),
                "{}: a log line contains all of {parts:?}\n{}",
                self.name,
                self.transcript()
            );
        }

        #[track_caller]
        fn wait_for_eof(&self, deadline: Instant) {
            let mut captured = self.captured();
            while captured.open_streams > 0 {
                let now = Instant::now();
                if now >= deadline {
                    let transcript = captured.transcript();
                    drop(captured);
                    panic!(
                        "{}: exited but its output stayed open (a child process holds it?)\n{transcript}",
                        self.name
                    );
                }
                captured = self
                    .output
                    .changed
                    .wait_timeout(captured, deadline - now)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
        }

        fn captured(&self) -> MutexGuard<'_, Captured> {
            self.output
                .captured
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
        }
    }

    impl Drop for Process {
        fn drop(&mut self) {
            self.kill();
        }
    }

    /// Reads `stream` line by line on its own thread into the stream `select`ed in `output`.
    fn read_lines(
        stream: impl Read + Send + 'static,
        output: Arc<Output>,
        select: fn(&mut Captured) -> &mut String,
    ) {
        output
            .captured
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .open_streams += 1;
        thread::spawn(move || {
            let mut reader = BufReader::new(stream);
            let mut line = Vec::new();
            loop {
                line.clear();
                let done = !matches!(reader.read_until(b'\n', &mut line), Ok(read) if read > 0);
                let mut captured = output
                    .captured
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                if done {
                    captured.open_streams -= 1;
                } else {
                    select(&mut captured).push_str(&String::from_utf8_lossy(&line));
                }
                drop(captured);
                output.changed.notify_all();
                if done {
                    break;
                }
            }
        });
    }
}

pub mod bench {
    //! What the queue and timer benchmarks share.

    /// Leaves out, for the queues and timers built from now on, the hooks a benchmark variant
    /// names: `hosted` (none left out), `no-metrics`, `no-spans`, `no-status`, or `bypassed` (all
    /// three).
    ///
    /// # Panics
    /// On any other name.
    pub fn bypass(variant: &str) {
        let (metrics, spans, status) = match variant {
            "hosted" => (false, false, false),
            "no-metrics" => (true, false, false),
            "no-spans" => (false, true, false),
            "no-status" => (false, false, true),
            "bypassed" => (true, true, true),
            other => panic!("unknown variant {other}"),
        };
        hosted::__private::bypass_hooks(metrics, spans, status);
    }
}
