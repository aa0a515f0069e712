//! The `#[timed]` attribute checks cron expressions at compile time with a checker of its own
//! (the macro crate may not depend on a cron crate); the runtime parses them with `croner`. This
//! test holds the two to the same accept / reject answer on a corpus: hand-picked expressions,
//! and thousands assembled from tricky field values.

#[path = "../../hosted-macros/src/cron.rs"]
#[allow(dead_code, reason = "the checker's own unit tests and constants")]
mod cron;

use hosted::timer::CronSchedule;

/// Expressions worth a line each: the dialect's features, `croner`'s quirks, and what the
/// runtime refuses on top of `croner`.
const CORPUS: &[&str] = &[
    "* * * * * *",
    "0 */5 * * * *",
    "*/15 * * * * *",
    "0 0 9 * * MON-FRI",
    "0 0 9 * * mon-fri",
    "0 30 8 1 JAN,JUL *",
    "0 0 0 L * *",
    "0 0 0 LW * *",
    "0 0 0 15W * *",
    "0 0 0 15W3 * *",
    "0 0 0 ? * 5L",
    "0 0 0 ? * FRIL",
    "0 0 0 * * 1#2",
    "0 0 0 * * MON#2",
    "0 0 0 * * 1#6",
    "0 0 0 * * 1#0",
    "0 0 0 * * 5#L",
    "0 0 0 * * 5LL",
    "0 0 0 * * 1-5#2",
    "0 0 0 * * */2#1",
    "0 0 0 * * L",
    "0 0 0 1 * +MON",
    "0 0 0 1-7 * +5#5",
    "0 0 0 31 2 *",
    "0 0 0 30 2 *",
    "0 0 0 29 2 *",
    "0 0 0 31 4,6,9,11 *",
    "0 0 0 31 4,6,9,11 MON",
    "0 0 0 31 4 +MON",
    "@yearly",
    "@annually",
    "@monthly",
    "@weekly",
    "@daily",
    "@hourly",
    "@HOURLY",
    "@often",
    "@hourly extra",
    "*/5 * * * *",
    "0 0 0 * * * 2030",
    "0 0 0 *",
    "",
    "   ",
    "60 * * * * *",
    "0 60 * * * *",
    "0 0 24 * * *",
    "0 0 0 0 * *",
    "0 0 0 32 * *",
    "0 0 0 * 0 *",
    "0 0 0 * 13 *",
    "0 0 0 * * 7",
    "0 0 0 * * 8",
    "0 0 0 * * MON-SUN",
    "0 0 0 * * SUN-SAT",
    "0 0 0 * * SAT-SUN",
    "0 0 0 * * JAN",
    "0 0 0 * MON *",
    "0 MON 0 * * *",
    "0 0 0 * JUNE *",
    "1,,2 * * * * *",
    ", * * * * *",
    "1, * * * * *",
    "*,1 * * * * *",
    "5/10 * * * * *",
    "/10 * * * * *",
    "*/0 * * * * *",
    "*/60 * * * * *",
    "*/65535 * * * * *",
    "*/65536 * * * * *",
    "1-59/65535 * * * * *",
    "5-1 * * * * *",
    "1-5-7 * * * * *",
    "-5 * * * * *",
    "5- * * * * *",
    "0 0 0 5L * *",
    "0 0 0 L-2 * *",
    "0 0 0 W * *",
    "0 0 0 0W * *",
    "0 0 0 32W * *",
    "0 0 0 1-5W * *",
    "0 0 0 ? * ?",
    "? * * * * *",
    "0 0 0 1? * *",
    "0 0 0 * * +*",
    "0 0 0 * * ++1",
    "0 0 0 * * #3",
    "0 0 0 * * 1#",
    "0 0 0 * * 1#256",
    "L * * * * *",
    "0 0 0 * * 1W",
    "0 0 0 1 * 1",
    "@ * * * * *",
    "0 0 0 * * 0005",
    "00 05 * * * *",
];

/// Field values, good and bad, from which expressions are assembled.
const VALUES: &[&str] = &[
    "*", "?", "0", "1", "5", "7", "12", "23", "29", "30", "31", "59", "60", "1-5", "5-1", "0-7",
    "*/5", "*/0", "*/7", "1-10/3", "5/10", "L", "LW", "15W", "5L", "1#2", "1#6", "MON", "mon-fri",
    "JAN", "FEB", "1,15", "1,,2", "L,1", "2#5", "FRI#3", "SAT-SUN", "+1", "+MON", "*,1", "-SUN",
    "W", "W5", "#", "6-7",
];

/// A small deterministic generator, so a failure reproduces.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, bound: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        usize::try_from(self.0 >> 33).unwrap_or_default() % bound
    }
}

fn disagreement(expression: &str) -> Option<String> {
    let compile_time = cron::check(expression);
    let run_time = CronSchedule::parse(expression);
    if compile_time.is_ok() == run_time.is_ok() {
        return None;
    }
    Some(format!(
        "{expression:?}: the attribute says {compile_time:?}, the runtime says {:?}",
        run_time.map(|_| ()).map_err(|error| error.to_string())
    ))
}

#[test]
fn the_attribute_and_the_runtime_agree_on_the_corpus() {
    let disagreements: Vec<String> = CORPUS.iter().filter_map(|e| disagreement(e)).collect();
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
    let accepted = CORPUS.iter().filter(|e| cron::check(e).is_ok()).count();
    assert!(
        accepted > 30 && accepted < CORPUS.len() - 30,
        "the corpus holds both kinds: {accepted} of {} accepted",
        CORPUS.len()
    );
}

#[test]
fn the_attribute_and_the_runtime_agree_on_assembled_expressions() {
    let mut random = Lcg(5);
    let mut disagreements = Vec::new();
    let mut accepted = 0;
    for _ in 0..6_000 {
        // Mostly plausible time fields, so that the day fields decide.
        let seconds = ["0", "*/10", VALUES[random.below(VALUES.len())]][random.below(3)];
        let minutes = ["0", "30", VALUES[random.below(VALUES.len())]][random.below(3)];
        let hours = ["9", "*", VALUES[random.below(VALUES.len())]][random.below(3)];
        let days: Vec<&str> = (0..3).map(|_| VALUES[random.below(VALUES.len())]).collect();
        let expression = format!(
            "{seconds} {minutes} {hours} {} {} {}",
            days[0], days[1], days[2]
        );
        if cron::check(&expression).is_ok() {
            accepted += 1;
        }
        disagreements.extend(disagreement(&expression));
    }
    assert!(
        disagreements.is_empty(),
        "{} disagreements:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
    assert!(
        accepted > 100,
        "only {accepted} of the assembled expressions are valid"
    );
}
