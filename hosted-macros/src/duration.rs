//! Duration literals such as `"250ms"`, `"5s"` or `"1m30s"`, read at compile time with the
//! grammar configuration reads them with at run time (`duration_grammar.rs`, shared by both
//! crates).

use std::time::Duration;

use crate::duration_grammar::{self, Refusal};

/// The form every error message shows.
pub(crate) const EXPECTED: &str = "expected a duration like `\"250ms\"`, `\"5s\"` or `\"1m30s\"` \
     (units: `ns`, `us`, `ms`, `s`, `m`, `h`, `d`)";

/// Reads `text` as a sum of `<integer><unit>` parts, optionally separated by spaces.
pub(crate) fn parse(text: &str) -> Result<Duration, String> {
    duration_grammar::parse(text).map_err(|refusal| {
        // A refusal that says how to write the value needs no example of the form.
        if matches!(refusal, Refusal::TooLarge) || refusal.fix(text).is_some() {
            refusal.describe(text)
        } else {
            format!("{}; {EXPECTED}", refusal.describe(text))
        }
    })
}

/// The most readable constructor call for `duration`, for the generated code.
pub(crate) fn constructor(duration: Duration) -> proc_macro2::TokenStream {
    let nanos = duration.as_nanos();
    let (method, value) = if nanos > 0 && nanos.is_multiple_of(3_600_000_000_000) {
        ("from_hours", nanos / 3_600_000_000_000)
    } else if nanos > 0 && nanos.is_multiple_of(60_000_000_000) {
        ("from_mins", nanos / 60_000_000_000)
    } else if nanos.is_multiple_of(1_000_000_000) {
        ("from_secs", nanos / 1_000_000_000)
    } else if nanos.is_multiple_of(1_000_000) {
        ("from_millis", nanos / 1_000_000)
    } else if nanos.is_multiple_of(1_000) {
        ("from_micros", nanos / 1_000)
    } else {
        ("from_nanos", nanos)
    };
    let Ok(value) = u64::try_from(value) else {
        // Past 64 bits of the unit (centuries of nanoseconds): seconds and nanoseconds.
        let seconds = proc_macro2::Literal::u64_unsuffixed(duration.as_secs());
        let nanos = proc_macro2::Literal::u32_unsuffixed(duration.subsec_nanos());
        return quote::quote!(::core::time::Duration::new(#seconds, #nanos));
    };
    let method = proc_macro2::Ident::new(method, proc_macro2::Span::call_site());
    let value = proc_macro2::Literal::u64_unsuffixed(value);
    quote::quote!(::core::time::Duration::#method(#value))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One side of the table both crates test against (the other is in
    /// `hosted/src/service/settings.rs`).
    #[test]
    fn the_shared_table_of_cases_holds_at_compile_time() {
        for (text, expected) in duration_grammar::CASES {
            match (parse(text), expected) {
                (Ok(duration), Ok(nanos)) => {
                    assert_eq!(duration.as_nanos(), *nanos, "{text:?}");
                }
                (Err(error), Err(refusal)) => {
                    assert!(error.starts_with(refusal), "{text:?}: {error}");
                    // The form expected follows what has no fix of its own.
                    let expected_form = error.ends_with(EXPECTED);
                    let has_fix = error.contains("; write `");
                    assert_eq!(
                        expected_form,
                        !error.contains("too large") && !has_fix,
                        "{text:?}: {error}"
                    );
                }
                (found, expected) => panic!("{text:?}: {found:?}, expected {expected:?}"),
            }
        }
    }

    #[test]
    fn constructors_are_readable() {
        assert_eq!(
            constructor(Duration::from_secs(5)).to_string(),
            ":: core :: time :: Duration :: from_secs (5)"
        );
        assert_eq!(
            constructor(Duration::from_secs(90)).to_string(),
            ":: core :: time :: Duration :: from_secs (90)"
        );
        assert_eq!(
            constructor(Duration::from_mins(2)).to_string(),
            ":: core :: time :: Duration :: from_mins (2)"
        );
        assert_eq!(
            constructor(Duration::from_millis(250)).to_string(),
            ":: core :: time :: Duration :: from_millis (250)"
        );
        assert_eq!(
            constructor(Duration::new(u64::MAX, 1)).to_string(),
            ":: core :: time :: Duration :: new (18446744073709551615 , 1)"
        );
    }
}
