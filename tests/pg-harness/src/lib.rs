//! A PostgreSQL server for the durable tests, one per test binary.
//!
//! `HOSTED_TEST_DATABASE_URL`, when set, names the server to use. Otherwise a throwaway cluster
//! is created (`initdb` + `pg_ctl`, found on `PATH` or under `/usr/lib/postgresql/*/bin`, and
//! installed with `apt-get` when missing and running as root) in a temporary directory, on a free
//! port of 127.0.0.1. A watchdog process stops it and removes its directory once the test binary
//! has exited, however it exits (a failed test, a panic, a `kill -9`).
//!
//! With `CI=true` a server that cannot be had is a failure; elsewhere the tests that need one
//! are skipped with a message saying how to get one.
//!
//! Tests isolate by schema: [`Server::schema`] hands out a fresh name for each.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

/// The user the server binaries run as when the tests run as root (they refuse to run as root).
const SERVER_USER: &str = "postgres";

/// A running server.
#[derive(Debug)]
pub struct Server {
    url: String,
    /// The cluster this harness started, when it did.
    cluster: Option<Cluster>,
}

/// A cluster started by the harness.
#[derive(Debug)]
pub struct Cluster {
    dir: PathBuf,
    port: u16,
    bin: PathBuf,
}

static SERVER: OnceLock<Option<Server>> = OnceLock::new();
static SCHEMAS: AtomicU32 = AtomicU32::new(0);

/// The test binary's server, started on first use; `None` when none can be had outside CI (the
/// caller skips, after the message printed here).
///
/// # Panics
/// With `CI=true`, when no server can be had.
pub fn server() -> Option<&'static Server> {
    SERVER
        .get_or_init(|| match Server::find_or_start() {
            Ok(server) => Some(server),
            Err(why) if in_ci() => panic!("no PostgreSQL server for the durable tests: {why}"),
            Err(why) => {
                eprintln!(
                    "skipping: no PostgreSQL server for the durable tests ({why}); set \
                     HOSTED_TEST_DATABASE_URL, or install `postgresql`"
                );
                None
            }
        })
        .as_ref()
}

/// Whether this run is CI's, where a missing server is a failure.
#[must_use]
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| value == "true" || value == "1")
}

impl Server {
    fn find_or_start() -> Result<Self, String> {
        if let Ok(url) = std::env::var("HOSTED_TEST_DATABASE_URL")
            && !url.is_empty()
        {
            return Ok(Self { url, cluster: None });
        }
        let cluster = Cluster::start()?;
        Ok(Self {
            url: cluster.url(),
            cluster: Some(cluster),
        })
    }

    /// A new cluster of its own, for a test that restarts or stops its server; stopped when the
    /// test binary exits.
    ///
    /// # Errors
    /// When no cluster can be started.
    pub fn own() -> Result<Self, String> {
        let cluster = Cluster::start()?;
        Ok(Self {
            url: cluster.url(),
            cluster: Some(cluster),
        })
    }

    /// The server's URL.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A schema name no other test of this binary uses.
    #[must_use]
    pub fn schema(&self, test: &str) -> String {
        let n = SCHEMAS.fetch_add(1, Ordering::Relaxed);
        let test: String = test
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .take(30)
            .collect();
        format!("t_{test}_{}_{n}", std::process::id())
    }

    /// The cluster this harness started, if it did (not for `HOSTED_TEST_DATABASE_URL`).
    #[must_use]
    pub fn cluster(&self) -> Option<&Cluster> {
        self.cluster.as_ref()
    }
}

impl Cluster {
    fn start() -> Result<Self, String> {
        let bin = server_binaries()?;
        let root = is_root();
        let dir = std::env::temp_dir().join(format!(
            "hosted-pg-{}-{}",
            std::process::id(),
            fastrand::u32(..)
        ));
        std::fs::create_dir_all(&dir).map_err(|error| format!("{}: {error}", dir.display()))?;
        if root {
            run(Command::new("chown").arg(SERVER_USER).arg(&dir))?;
        }
        let data = dir.join("data");
        run(as_server_user(root, &bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"]))?;
        let port = free_port()?;
        let cluster = Self { dir, port, bin };
        cluster.watch_until_exit(root);
        cluster.pg_ctl(&["start", "-w", "-t", "60"])?;
        Ok(cluster)
    }

    /// The cluster's URL.
    #[must_use]
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The port the cluster listens on.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Restarts the server (`pg_ctl restart -m fast`), dropping every connection.
    ///
    /// # Errors
    /// When `pg_ctl` fails.
    pub fn restart(&self) -> Result<(), String> {
        self.pg_ctl(&["restart", "-w", "-m", "fast", "-t", "60"])
    }

    /// Stops the server (`pg_ctl stop -m fast`): an outage, until [`start_again`](Self::start_again).
    ///
    /// # Errors
    /// When `pg_ctl` fails.
    pub fn stop(&self) -> Result<(), String> {
        self.pg_ctl(&["stop", "-w", "-m", "fast", "-t", "60"])
    }

    /// Starts the server again after [`stop`](Self::stop).
    ///
    /// # Errors
    /// When `pg_ctl` fails.
    pub fn start_again(&self) -> Result<(), String> {
        self.pg_ctl(&["start", "-w", "-t", "60"])
    }

    fn pg_ctl(&self, args: &[&str]) -> Result<(), String> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            self.port,
            self.dir.display()
        );
        run(as_server_user(is_root(), &self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .arg("-l")
            .arg(self.dir.join("server.log"))
            .arg("-o")
            .arg(options)
            .args(args))
    }

    /// A detached shell that outlives this process by a moment: once this process is gone it
    /// stops the server and removes the directory.
    fn watch_until_exit(&self, root: bool) {
        let pg_ctl = self.bin.join("pg_ctl");
        let data = self.dir.join("data");
        let stop = if root {
            format!(
                "runuser -u {SERVER_USER} -- {} -D {} -m immediate stop",
                pg_ctl.display(),
                data.display()
            )
        } else {
            format!(
                "{} -D {} -m immediate stop",
                pg_ctl.display(),
                data.display()
            )
        };
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 0.3; done; {stop} >/dev/null 2>&1; rm -rf {dir}",
            pid = std::process::id(),
            dir = self.dir.display()
        );
        let _ = Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

fn as_server_user(root: bool, program: &Path) -> Command {
    if root {
        let mut command = Command::new("runuser");
        command.args(["-u", SERVER_USER, "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn run(command: &mut Command) -> Result<(), String> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|error| format!("{command:?}: {error}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{command:?} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|error| error.to_string())?;
    listener
        .local_addr()
        .map(|addr| addr.port())
        .map_err(|error| error.to_string())
}

/// The directory holding `initdb` and `pg_ctl`: on `PATH`, under Debian's
/// `/usr/lib/postgresql/*/bin`, or installed now with `apt-get` when running as root.
fn server_binaries() -> Result<PathBuf, String> {
    if let Some(found) = find_binaries() {
        return Ok(found);
    }
    if !is_root() {
        return Err("`initdb` is not installed, and only root may install it".to_owned());
    }
    // A lock, so several test binaries starting at once install once.
    run(Command::new("sh").arg("-c").arg(
        "flock /tmp/hosted-pg-apt.lock sh -c 'command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
         (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql)'",
    ))?;
    find_binaries()
        .ok_or_else(|| "`apt-get install postgresql` did not provide `initdb`".to_owned())
}

fn find_binaries() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file())
    });
    on_path.or_else(|| {
        let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|entry| entry.ok().map(|entry| entry.path().join("bin")))
            .filter(|bin| bin.join("initdb").is_file())
            .collect();
        versions.sort();
        versions.pop()
    })
}
