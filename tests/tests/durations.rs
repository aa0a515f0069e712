//! The attributes read durations at compile time, configuration at run time, with one grammar
//! compiled into both crates (`hosted-macros/src/duration_grammar.rs`). Beside the table both
//! crates test and the properties in `parsers.rs`, this holds the generated code to it: each
//! literal, expanded by the attribute, gives the value configuration reads.

use std::time::Duration;

use hosted::service::{SettingKind, SettingValue};
use hosted::{FailurePolicy, Host};

/// Declares one restarting service per literal, its `backoff` written as the literal.
macro_rules! services_with_backoffs {
    ($($name:ident = $literal:literal),* $(,)?) => {
        $(
            #[hosted::hosted_service(on_failure = "restart", backoff = $literal, max_backoff = "400d")]
            async fn $name() {}
        )*
        const LITERALS: &[(&str, &str)] = &[$((concat!("durations::", stringify!($name)), $literal)),*];
    };
}

services_with_backoffs! {
    zero = "0s",
    nanos = "7ns",
    micros = "3us",
    micro_sign = "3µs",
    millis = "250ms",
    seconds = "5s",
    minutes = "2m",
    hours = "1h",
    days = "3d",
    mixed = "1m30s",
    spaced = "1h 2m 3s",
    every_unit = "1d2h3m4s5ms6us7ns",
    large = "365d",
}

#[test]
fn the_attribute_grammar_and_the_configuration_parser_agree() {
    let host = Host::builder().discover().build().expect("a valid host");
    let kind = SettingKind::Duration {
        min: Duration::ZERO,
    };
    for (name, literal) in LITERALS {
        let info = host.services().find(|info| info.name() == *name).unwrap();
        let FailurePolicy::Restart(restart) = info.policy() else {
            panic!("{name} restarts");
        };
        let at_run_time = kind
            .parse(literal)
            .unwrap_or_else(|error| panic!("{literal}: {error}"));
        assert_eq!(
            SettingValue::Duration(restart.backoff()),
            at_run_time,
            "{literal:?} reads differently at compile time and at run time"
        );
    }
}

/// A typed section's duration field, read through `hosted::config::duration` (as the web
/// host's, the durable store's and an application's own sections read theirs), agrees with the
/// attributes on every literal, and refuses what the attributes refuse.
#[test]
fn sections_read_durations_in_the_same_grammar() {
    use serde::de::IntoDeserializer as _;
    type Text<'a> = serde::de::value::StrDeserializer<'a, serde::de::value::Error>;
    let read = |text: &'static str| {
        hosted::config::duration::deserialize::<Text<'_>>(text.into_deserializer())
    };

    let host = Host::builder().discover().build().expect("a valid host");
    for (name, literal) in LITERALS {
        let info = host.services().find(|info| info.name() == *name).unwrap();
        let FailurePolicy::Restart(restart) = info.policy() else {
            panic!("{name} restarts");
        };
        assert_eq!(
            read(literal).unwrap_or_else(|error| panic!("{literal}: {error}")),
            restart.backoff(),
            "{literal:?} reads differently in a section"
        );
    }
    for refused in [
        "5 sec",
        "5sec",
        "5 s",
        "1 hour 2 min",
        "1.5s",
        "-1s",
        "5",
        "",
    ] {
        assert!(read(refused).is_err(), "{refused:?} is not a duration");
    }
}
