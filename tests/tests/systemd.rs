//! The systemd lifetime against a real notification socket: a test binds a Unix datagram
//! socket, runs a binary with `NOTIFY_SOCKET` (and `WATCHDOG_USEC`) pointing at it, as systemd
//! runs a `Type=notify` unit, and reads what the binary sends.

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use hosted_tests::process::{HANG, Process};

/// `WATCHDOG_USEC` of the tests: a ping every 100 ms.
const WATCHDOG_USEC: &str = "200000";

/// A notification socket in a fresh directory, removed on drop.
struct Socket {
    socket: UnixDatagram,
    dir: PathBuf,
}

impl Socket {
    fn bind(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("hosted-notify-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let socket = UnixDatagram::bind(dir.join("notify")).unwrap();
        Self { socket, dir }
    }

    fn path(&self) -> PathBuf {
        self.dir.join("notify")
    }

    /// The next datagram, or `None` after `wait`.
    fn next(&self, wait: Duration) -> Option<String> {
        self.socket
            .set_read_timeout(Some(wait.max(Duration::from_millis(1))))
            .unwrap();
        let mut buffer = [0_u8; 4096];
        match self.socket.recv(&mut buffer) {
            Ok(length) => Some(String::from_utf8_lossy(&buffer[..length]).into_owned()),
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                None
            }
            Err(error) => panic!("reading the notification socket: {error}"),
        }
    }

    /// Every datagram until one contains `needle` (returned last), within [`HANG`].
    fn until(&self, needle: &str, app: &Process) -> Vec<String> {
        let end = Instant::now() + HANG;
        let mut seen = Vec::new();
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            if let Some(message) = self.next(left) {
                let found = message.contains(needle);
                seen.push(message);
                if found {
                    return seen;
                }
            }
        }
        panic!(
            "no `{needle}` from the binary; got {seen:?}\n{}",
            app.transcript()
        );
    }

    /// Every datagram until one contains `needle`, or for [`HANG`].
    fn collect_until(&self, needle: &str) -> Vec<String> {
        let end = Instant::now() + HANG;
        let mut seen = Vec::new();
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            if let Some(message) = self.next(left) {
                let found = message.contains(needle);
                seen.push(message);
                if found {
                    break;
                }
            }
        }
        seen
    }

    /// Every datagram for `span`.
    fn during(&self, span: Duration) -> Vec<String> {
        let end = Instant::now() + span;
        let mut seen = Vec::new();
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            seen.extend(self.next(left));
        }
        seen
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn pings(messages: &[String]) -> usize {
    messages
        .iter()
        .filter(|message| message.lines().any(|line| line == "WATCHDOG=1"))
        .count()
}

fn start(socket: &Socket, fault: Option<&str>, args: &[&str]) -> Process {
    let mut command = Process::command(env!("CARGO_BIN_EXE_systemd_notify"));
    command
        .args(args)
        .env("NOTIFY_SOCKET", socket.path())
        .env("WATCHDOG_USEC", WATCHDOG_USEC)
        .env("SYSTEMD_TEST_AFTER_MS", "800");
    if let Some(fault) = fault {
        command.env("SYSTEMD_TEST_FAULT", fault);
    }
    Process::start(command)
}

#[test]
fn ready_after_every_start_then_live_status_watchdog_pings_and_stopping_on_sigterm() {
    let socket = Socket::bind("sequence");
    let mut app = start(&socket, None, &[]);
    let before_ready = socket.until("READY=1", &app);
    let ready = before_ready.last().unwrap();
    // Not at process start: with every service's start returned, all three run.
    assert!(
        ready
            .lines()
            .any(|line| line
                == "STATUS=3/3 services running; next tick in 5s (systemd_notify::report)")
            || ready.contains("STATUS=3/3 services running"),
        "{ready}"
    );
    assert!(
        !before_ready[..before_ready.len() - 1]
            .iter()
            .any(|message| message.contains("STATUS=")),
        "a status before READY: {before_ready:?}"
    );
    // Live counts: two items in the workers' hands, the next tick of the timed service.
    let status = socket.until("queue items in flight", &app);
    let status = status.last().unwrap();
    assert!(
        status.contains("STATUS=3/3 services running; 2 queue items in flight; next tick in"),
        "{status}"
    );
    assert!(status.contains("(systemd_notify::report)"), "{status}");
    let window = socket.during(Duration::from_secs(1));
    assert!(
        pings(&window) >= 4,
        "watchdog pings every 100 ms: {window:?}"
    );

    app.signal("TERM");
    let stopping = socket.until("STOPPING=1", &app);
    let stopping = stopping.last().unwrap();
    // The default budget, 5 s, its 100 ms grace and a second for the exit.
    assert!(
        stopping.contains("EXTEND_TIMEOUT_USEC=6100000"),
        "{stopping}"
    );
    assert!(
        stopping.contains("STATUS=stopping: 3/3 services running"),
        "{stopping}"
    );
    // Read on while the host stops: a datagram queue left full would hold the last ones back.
    let (code, rest) = std::thread::scope(|scope| {
        let reader = scope.spawn(|| socket.collect_until("STATUS=stopped"));
        let code = app.wait_exit(HANG);
        (code, reader.join().unwrap())
    });
    assert_eq!(code, 0, "{}", app.transcript());
    assert!(rest.last().unwrap().contains("STATUS=stopped"), "{rest:?}");
    assert!(
        !rest.iter().any(|message| message.contains("READY=1")),
        "{rest:?}"
    );
    app.assert_no_log_line(&["ERROR"]);
}

#[test]
fn the_watchdog_pings_stop_when_every_runtime_worker_is_blocked() {
    let socket = Socket::bind("blocked");
    let mut app = start(&socket, Some("block"), &["--host.worker_threads=2"]);
    socket.until("READY=1", &app);
    let alive = socket.during(Duration::from_millis(500));
    assert!(
        pings(&alive) >= 2,
        "pings before the block: {alive:?}\n{}",
        app.transcript()
    );
    app.wait_for_line("blocking every worker thread", HANG);
    // A ping already due may still go out; after one watchdog period none may.
    let _ = socket.during(Duration::from_millis(300));
    let blocked = socket.during(Duration::from_secs(1));
    assert_eq!(
        pings(&blocked),
        0,
        "pings with every worker blocked: {blocked:?}"
    );
    app.wait_for_line("withholding the systemd watchdog ping", HANG);
    assert!(
        app.log_line(&["ERROR", "every worker thread may be blocked"])
            .is_some(),
        "{}",
        app.transcript()
    );
    app.kill();
}

#[test]
fn a_service_declared_stuck_stops_the_pings_and_shows_in_the_status() {
    let socket = Socket::bind("stuck");
    let mut app = start(&socket, Some("stuck"), &[]);
    socket.until("READY=1", &app);
    let alive = socket.during(Duration::from_millis(500));
    assert!(
        pings(&alive) >= 2,
        "pings before the stuck service: {alive:?}"
    );
    app.wait_for_line("declared stuck", HANG);
    let _ = socket.during(Duration::from_millis(300));
    let stuck = socket.during(Duration::from_secs(1));
    assert_eq!(pings(&stuck), 0, "pings with a stuck service: {stuck:?}");
    assert!(
        stuck
            .iter()
            .any(|message| message.contains("stuck: systemd_notify::feeder")),
        "{stuck:?}"
    );
    assert!(
        app.log_line(&[
            "ERROR",
            "a service declared itself stuck",
            "the feed has gone quiet"
        ])
        .is_some(),
        "{}",
        app.transcript()
    );
    // The runtime itself is fine: the host still stops cleanly.
    app.signal("TERM");
    assert_eq!(app.wait_exit(HANG), 0, "{}", app.transcript());
}

#[test]
fn without_notify_socket_the_lifetime_does_nothing() {
    let mut command = Process::command(env!("CARGO_BIN_EXE_systemd_notify"));
    command.env("WATCHDOG_USEC", WATCHDOG_USEC);
    let mut app = Process::start(command);
    app.wait_for_line("application started", HANG);
    app.signal("TERM");
    assert_eq!(app.wait_exit(HANG), 0, "{}", app.transcript());
    assert!(
        app.log_line(&["watchdog"]).is_none(),
        "{}",
        app.transcript()
    );
}
