//! Property tests of the parsers a user's text reaches: durations, cron expressions and
//! configuration. None may panic on any input; the duration grammar matches an independent
//! description of it (so the attributes, which compile the same grammar, agree with
//! configuration on every string, not only on the table both crates test); what can be printed
//! reads back to the same value.

use std::time::{Duration, SystemTime};

use hosted::Host;
use hosted::config::ConfigSources;
use hosted::di::RunContext;
use hosted::registry::ServiceDescriptor;
use hosted::service::{Setting, SettingKind, SettingValue};
use hosted::timer::CronSchedule;
use proptest::prelude::*;

const ANY_DURATION: SettingKind = SettingKind::Duration {
    min: Duration::ZERO,
};

const UNITS: [(&str, u128); 8] = [
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
    ("d", 86_400_000_000_000),
];

/// The grammar as the configuration guide states it, written independently of the parser: parts
/// `<digits><unit>`, optional spaces between parts and around the whole, values added up.
/// `None` when the text is refused: also a number past `u64::MAX`, or a total past
/// `Duration::MAX`.
fn reference(text: &str) -> Option<Duration> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return None;
        }
        let number: u128 = rest[..digits].parse::<u64>().ok()?.into();
        rest = &rest[digits..];
        // The longest unit that matches, and nothing glued to it but a digit or a space.
        let (unit, size) = UNITS
            .iter()
            .filter(|(unit, _)| rest.starts_with(unit))
            .max_by_key(|(unit, _)| unit.len())?;
        rest = &rest[unit.len()..];
        if rest.starts_with(|c: char| !c.is_ascii_digit() && !c.is_whitespace()) {
            return None;
        }
        total = total.checked_add(number.checked_mul(*size)?)?;
        rest = rest.trim_start();
    }
    let seconds = u64::try_from(total / 1_000_000_000).ok()?;
    let nanos = u32::try_from(total % 1_000_000_000).ok()?;
    Some(Duration::new(seconds, nanos))
}

fn configured(text: &str) -> Option<Duration> {
    match ANY_DURATION.parse(text) {
        Ok(SettingValue::Duration(duration)) => Some(duration),
        Ok(other) => panic!("{text:?} read as {other:?}"),
        Err(_) => None,
    }
}

/// Text made of the grammar's own pieces, so that most cases are near the boundary between
/// accepted and refused rather than plain noise.
fn duration_like() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        "[0-9]{1,4}",
        "[0-9]{18,21}",
        Just("ns".to_owned()),
        Just("us".to_owned()),
        Just("µs".to_owned()),
        Just("ms".to_owned()),
        Just("s".to_owned()),
        Just("m".to_owned()),
        Just("h".to_owned()),
        Just("d".to_owned()),
        Just(" ".to_owned()),
        Just("\t".to_owned()),
        "[a-zA-Z.,+-]{1,3}",
    ];
    proptest::collection::vec(piece, 0..8).prop_map(|pieces| pieces.concat())
}

proptest! {
    #[test]
    fn no_text_makes_the_duration_parser_panic(text in any::<String>()) {
        let _ = ANY_DURATION.parse(&text);
    }

    #[test]
    fn the_duration_grammar_is_the_documented_one(text in duration_like()) {
        prop_assert_eq!(configured(&text), reference(&text), "{:?}", text);
    }

    #[test]
    fn every_duration_prints_in_the_grammar_and_reads_back(seconds in any::<u64>(), nanos in 0_u32..1_000_000_000) {
        let duration = Duration::new(seconds, nanos);
        let printed = SettingValue::Duration(duration).to_string();
        prop_assert_eq!(configured(&printed), Some(duration), "{:?}", printed);
        prop_assert_eq!(reference(&printed), Some(duration), "{:?}", printed);
    }

    #[test]
    fn no_text_makes_the_cron_parser_panic(text in any::<String>()) {
        let _ = CronSchedule::parse(&text);
    }

    #[test]
    fn cron_expressions_read_back_and_fire_strictly_later(
        fields in proptest::collection::vec(
            prop_oneof![
                Just("*".to_owned()),
                "[0-9]{1,2}",
                "[0-9]{1,2}-[0-9]{1,2}",
                "\\*/[0-9]{1,2}",
                "[0-9]{1,2},[0-9]{1,2}",
                Just("?".to_owned()),
                Just("L".to_owned()),
                "[1-5]#[1-5]",
                Just("MON-FRI".to_owned()),
                Just("JAN".to_owned()),
            ],
            6,
        ),
        after in 0_u64..4_000_000_000,
    ) {
        let expression = fields.join(" ");
        if let Ok(schedule) = CronSchedule::parse(&expression) {
            prop_assert_eq!(schedule.expression(), expression.as_str());
            let again = CronSchedule::parse(schedule.expression()).expect("reads back");
            let time = SystemTime::UNIX_EPOCH + Duration::from_secs(after);
            let next = schedule.next_after(time);
            prop_assert_eq!(next, again.next_after(time));
            if let Some(next) = next {
                prop_assert!(next > time, "{expression}: {next:?} is not after {time:?}");
            }
        }
    }

    #[test]
    fn no_argument_makes_the_configuration_reader_panic(argument in any::<String>()) {
        let _ = ConfigSources::new().argument(&argument);
        let _ = ConfigSources::new().argument(&format!("--{argument}"));
    }

    #[test]
    fn no_configuration_text_makes_the_host_builder_panic(
        key in prop_oneof![
            Just("every".to_owned()),
            Just("capacity".to_owned()),
            Just("enabled".to_owned()),
            Just("on_failure".to_owned()),
            Just("max_restarts".to_owned()),
            "[a-z_]{1,8}",
        ],
        value in prop_oneof![
            duration_like().prop_map(|text| format!("{text:?}")),
            any::<i64>().prop_map(|number| number.to_string()),
            any::<f64>().prop_map(|number| format!("{number:?}")),
            Just("true".to_owned()),
            Just("[1, 2]".to_owned()),
            Just("{ a = 1 }".to_owned()),
            any::<String>().prop_map(|text| format!("{text:?}")),
        ],
        host_key in prop_oneof![
            Just("shutdown_timeout".to_owned()),
            Just("startup_timeout".to_owned()),
            Just("worker_threads".to_owned()),
            Just("log_format".to_owned()),
        ],
    ) {
        let toml = format!("[services.app.ticker]\n{key} = {value}\n[host]\n{host_key} = {value}\n");
        let Ok(configuration) = ConfigSources::new().toml("generated", toml).load() else {
            return Ok(());
        };
        let built = Host::builder()
            .add_service(ticker())
            .configuration(configuration)
            .build();
        if let Err(error) = built {
            prop_assert!(!error.to_string().is_empty());
        }
    }
}

fn ticker() -> ServiceDescriptor {
    ServiceDescriptor::background("app::ticker", |_: RunContext| async {})
        .setting(Setting::new(
            "every",
            SettingKind::Duration {
                min: Duration::from_millis(1),
            },
            SettingValue::Duration(Duration::from_secs(5)),
        ))
        .setting(Setting::new(
            "capacity",
            SettingKind::Integer {
                min: 1,
                max: i64::MAX,
            },
            SettingValue::Integer(100),
        ))
}
