//! A worker process of the process-level tests: the store's worker binary, configured for the
//! store through its environment like any deployment.

use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use hosted::durable::JobId;
use tokio::process::{Child, Command};

use crate::store::{Settings, Store};

const STARTED: &str = "test worker: started job ";
const ENDED: &str = "test worker: ended job ";

/// The line the worker binary writes to stderr when it starts `job`.
#[must_use]
pub fn started(job: JobId) -> String {
    format!("{STARTED}{job}")
}

/// The line the worker binary writes to stderr when `job`'s work is done.
#[must_use]
pub fn ended(job: JobId) -> String {
    format!("{ENDED}{job}")
}

/// A running worker; killed when dropped.
#[derive(Debug)]
pub struct Worker {
    child: Child,
    log: PathBuf,
}

/// How a worker's handler behaves.
#[derive(Clone, Debug, Default)]
pub struct Work {
    /// How long each job takes, in milliseconds.
    pub ms: u64,
    /// A random part of `ms` rather than all of it.
    pub random: bool,
    /// More environment variables.
    pub env: Vec<(String, String)>,
}

impl Work {
    /// Jobs of `ms` milliseconds each.
    #[must_use]
    pub fn taking(ms: u64) -> Self {
        Self {
            ms,
            ..Self::default()
        }
    }

    /// Jobs of up to `ms` milliseconds each.
    #[must_use]
    pub fn up_to(ms: u64) -> Self {
        Self {
            ms,
            random: true,
            ..Self::default()
        }
    }

    /// With one more environment variable.
    #[must_use]
    pub fn env(mut self, key: &str, value: impl Into<String>) -> Self {
        self.env.push((key.to_owned(), value.into()));
        self
    }
}

impl Worker {
    /// Starts the store's worker binary on `settings` (the store's own, or a stallable
    /// connection's), with a 3 s shutdown budget.
    ///
    /// # Panics
    /// When the binary does not start.
    pub fn spawn<S: Store>(store: &S, settings: &Settings, work: &Work) -> Self {
        let log = std::env::temp_dir().join(format!(
            "hosted-durable-worker-{}-{}.log",
            std::process::id(),
            fastrand::u64(..)
        ));
        let file = std::fs::File::create(&log).expect("a log file");
        let child = Command::new(store.worker_binary())
            .arg("--host.shutdown_timeout=3s")
            .envs(settings.env())
            .env("WORK_MS", work.ms.to_string())
            .env("WORK_RANDOM", if work.random { "1" } else { "0" })
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .envs(work.env.iter().map(|(key, value)| (key, value)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .kill_on_drop(true)
            .spawn()
            .expect("the worker binary starts");
        Self { child, log }
    }

    /// Its process id.
    ///
    /// # Panics
    /// When it has exited.
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.child.id().expect("running")
    }

    /// What it has logged so far.
    #[must_use]
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Kills it with SIGKILL.
    pub async fn kill9(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }

    /// Sends SIGTERM and waits for the exit; returns the exit status and the log.
    ///
    /// # Panics
    /// When it does not exit within 20 s.
    pub async fn terminate(mut self) -> (ExitStatus, String) {
        let pid = self.pid().to_string();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill runs");
        assert!(sent.success());
        let status = tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .expect("the worker exits within its budget")
            .expect("an exit status");
        (status, self.log())
    }

    /// Whether its log shows a job that started and has not ended: killed now, the job is cut
    /// off (or ends in the moment between this read and the kill).
    #[must_use]
    pub fn holds_a_job(&self) -> bool {
        let log = self.log();
        log.lines()
            .filter_map(|line| line.strip_prefix(STARTED))
            .any(|job| {
                !log.lines()
                    .any(|line| line.strip_prefix(ENDED) == Some(job))
            })
    }

    /// Whether it still runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.log);
    }
}
