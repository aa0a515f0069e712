//! Process-level reliability under random SIGTERM: the queue's drain accounts for every item
//! exactly, from its final log line alone and from the binary's own journal; and a service that
//! ignores its stop token never holds the process past the budget plus 250 ms.
//!
//! The trials are random but seeded (`RELIABILITY_SEED` overrides the seed, which every
//! failure prints), so a failing trial can be run again.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use hosted_tests::process::{HANG, Process};

/// A small deterministic generator: trials vary, yet a failure can be replayed from its seed.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low + 1)
    }
}

fn seed() -> u64 {
    std::env::var("RELIABILITY_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or(20_261_201)
}

/// The `key=value` fields of the last log line containing `message`.
fn fields(stderr: &str, message: &str) -> Option<BTreeMap<String, String>> {
    let line = stderr.lines().rev().find(|line| line.contains(message))?;
    Some(
        line.split_whitespace()
            .filter_map(|word| word.split_once('='))
            .map(|(key, value)| (key.to_owned(), value.to_owned()))
            .collect(),
    )
}

/// What the binary's journal says happened, item by item.
#[derive(Default, Debug)]
struct Journal {
    accepted: BTreeSet<u64>,
    handed_back: BTreeSet<u64>,
    processed: BTreeSet<u64>,
    dead: BTreeSet<u64>,
    duplicates: Vec<String>,
}

fn read_journal(path: &PathBuf) -> Journal {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut journal = Journal::default();
    for line in text.lines() {
        let Some((event, item)) = line.split_once(' ') else {
            continue;
        };
        let item: u64 = item.parse().expect("an item number");
        let set = match event {
            "accepted" => &mut journal.accepted,
            "handed_back" => &mut journal.handed_back,
            "processed" => &mut journal.processed,
            "dead" => &mut journal.dead,
            _ => continue,
        };
        if !set.insert(item) {
            journal.duplicates.push(line.to_owned());
        }
    }
    journal
}

/// One drain trial: random options, SIGTERM at a random moment, every count checked. Returns
/// the counts of the final line.
fn drain_trial(seed: u64, trial: u64, random: &mut Lcg) -> [(&'static str, u64); 6] {
    let modes = [
        "wait",
        "wait",
        "drop_oldest",
        "drop_newest",
        "drop_incoming",
        "reject",
    ];
    let workers = random.between(1, 8);
    let capacity = random.between(1, 64);
    let budget_ms = random.between(150, 900);
    let max_item_ms = random.between(1, 40);
    let run_ms = random.between(50, 400);
    let mode = modes[usize::try_from(random.between(0, 5)).unwrap()];
    let journal_path = std::env::temp_dir().join(format!(
        "hosted-drain-{}-{trial}.journal",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&journal_path);
    let context = format!(
        "seed {seed}, trial {trial}: workers={workers} capacity={capacity} full_mode={mode} \
         budget={budget_ms}ms items<{max_item_ms}ms sigterm after {run_ms}ms"
    );

    let mut command = Process::command(env!("CARGO_BIN_EXE_drain"));
    command
        .env("DRAIN_JOURNAL", &journal_path)
        .env("DRAIN_SEED", trial.to_string())
        .env("DRAIN_MAX_MS", max_item_ms.to_string())
        .args([
            format!("--host.shutdown_timeout={budget_ms}ms"),
            format!("--services.drain.work.workers={workers}"),
            format!("--services.drain.work.capacity={capacity}"),
            format!("--services.drain.work.full_mode={mode}"),
        ]);
    let mut app = Process::start(command);
    app.wait_for_line("application started", HANG);
    std::thread::sleep(Duration::from_millis(run_ms));
    app.signal("TERM");
    let code = app.wait_exit(HANG);
    let stderr = app.stderr();
    let line = fields(&stderr, "queue stopped")
        .unwrap_or_else(|| panic!("{context}: no `queue stopped` line\n{stderr}"));
    let count = |key: &str| -> u64 {
        line.get(key)
            .unwrap_or_else(|| panic!("{context}: `{key}` missing from the final line"))
            .parse()
            .unwrap_or_else(|_| panic!("{context}: `{key}` is not a count"))
    };
    let (accepted, processed, dead, dropped, undone, handed_back) = (
        count("accepted"),
        count("processed"),
        count("dead_lettered"),
        count("dropped"),
        count("left_undone"),
        count("handed_back"),
    );
    // From the final line alone.
    assert_eq!(
        accepted,
        processed + dead + dropped + undone,
        "{context}: the final line does not add up\n{stderr}"
    );
    assert_eq!(
        line.get("unaccounted").map(String::as_str),
        Some("0"),
        "{context}"
    );
    // Against the binary's own count.
    let journal = read_journal(&journal_path);
    let _ = std::fs::remove_file(&journal_path);
    check_journal(&context, &journal, [accepted, handed_back, processed, dead]);
    // Items left undone make the exit code 1 only when a budget ran out; never a crash.
    assert!(code == 0 || code == 1, "{context}: exit {code}\n{stderr}");
    [
        ("accepted", accepted),
        ("processed", processed),
        ("dead_lettered", dead),
        ("dropped", dropped),
        ("left_undone", undone),
        ("handed_back", handed_back),
    ]
}

/// The journal's counts against the final line's: `[accepted, handed_back, processed, dead]`.
fn check_journal(context: &str, journal: &Journal, counts: [u64; 4]) {
    let [accepted, handed_back, processed, dead] = counts;
    assert!(
        journal.duplicates.is_empty(),
        "{context}: {:?}",
        journal.duplicates
    );
    assert_eq!(
        u64::try_from(journal.accepted.len()).unwrap(),
        accepted,
        "{context}"
    );
    assert_eq!(
        u64::try_from(journal.handed_back.len()).unwrap(),
        handed_back,
        "{context}"
    );
    assert_eq!(
        u64::try_from(journal.processed.len()).unwrap(),
        processed,
        "{context}"
    );
    assert_eq!(
        u64::try_from(journal.dead.len()).unwrap(),
        dead,
        "{context}"
    );
    assert!(
        journal.processed.is_subset(&journal.accepted)
            && journal.dead.is_subset(&journal.accepted)
            && journal.processed.is_disjoint(&journal.dead)
            && journal.accepted.is_disjoint(&journal.handed_back),
        "{context}: an item was counted twice or without being accepted"
    );
}

#[test]
fn the_drain_accounts_for_every_item_under_random_sigterm() {
    const TRIALS: u64 = 20;
    let seed = seed();
    let mut random = Lcg(seed);
    let mut totals = BTreeMap::<&str, u64>::new();
    for trial in 0..TRIALS {
        for (key, value) in drain_trial(seed, trial, &mut random) {
            *totals.entry(key).or_default() += value;
        }
    }
    // The trials must exercise every outcome, or the invariant was tested on too little.
    for key in [
        "processed",
        "dead_lettered",
        "dropped",
        "left_undone",
        "handed_back",
    ] {
        assert!(totals[key] > 0, "no trial produced `{key}`: {totals:?}");
    }
    eprintln!("drain: {TRIALS} trials (seed {seed}), totals {totals:?}");
}

#[test]
fn a_service_ignoring_its_token_never_holds_the_process_past_the_budget_plus_250ms() {
    const TRIALS: u64 = 12;
    let seed = seed();
    let mut random = Lcg(seed ^ 0x5eed);
    let mut worst = Duration::ZERO;
    for trial in 0..TRIALS {
        let budget = Duration::from_millis(random.between(100, 700));
        let blocking = trial % 2 == 1;
        let mut command = Process::command(env!("CARGO_BIN_EXE_stubborn"));
        command.arg(format!("--host.shutdown_timeout={}ms", budget.as_millis()));
        if blocking {
            command.env("STUBBORN_BLOCKING", "1");
        }
        let mut app = Process::start(command);
        app.wait_for_line("application started", HANG);
        app.wait_for_line("stubborn running", HANG);
        let sent = Instant::now();
        app.signal("TERM");
        let code = app.wait_exit(HANG);
        let took = sent.elapsed();
        let context = format!(
            "seed {seed}, trial {trial}: budget {budget:?}, blocking={blocking}, exited after {took:?}"
        );
        assert_eq!(code, 1, "{context}\n{}", app.transcript());
        // The services it held up still stopped.
        app.assert_log_order(&[&["before stopped"], &["held_up=", "stubborn::before"]]);
        assert!(app.stderr().contains("after stopped"), "{context}");
        let over = took.saturating_sub(budget);
        worst = worst.max(over);
        assert!(
            over <= Duration::from_millis(250),
            "{context}: {over:?} past the budget\n{}",
            app.transcript()
        );
    }
    eprintln!("deadline: {TRIALS} trials (seed {seed}), worst {worst:?} past the budget");
}
