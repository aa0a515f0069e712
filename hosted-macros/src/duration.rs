//! Duration literals such as `"250ms"`, `"5s"` or `"1m30s"`, read at compile time.
//!
//! The macro crate may depend on syn, quote and proc-macro2 only, so this small grammar is
//! written here. It is a strict subset of what the runtime accepts (through `humantime`) in
//! configuration, and a test in the runtime crate holds the two to the same values.

use std::time::Duration;

/// The form every error message shows.
pub(crate) const EXPECTED: &str = "expected a duration like `\"250ms\"`, `\"5s\"` or `\"1m30s\"` \
     (units: `ns`, `us`, `ms`, `s`, `m`, `h`, `d`)";

/// Reads `text` as a sum of `<integer><unit>` parts, optionally separated by spaces.
pub(crate) fn parse(text: &str) -> Result<Duration, String> {
    let mut total = Duration::ZERO;
    let mut rest = text.trim_start();
    if rest.is_empty() {
        return Err(format!("empty duration; {EXPECTED}"));
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!("`{text}` is not a duration; {EXPECTED}"));
        }
        let number: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("`{text}` is too large a duration"))?;
        rest = &rest[digits..];
        let unit_length = rest
            .find(|c: char| c.is_ascii_digit() || c.is_whitespace())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_length];
        let nanos_per_unit: u64 = match unit {
            "ns" => 1,
            "us" | "µs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60 * 1_000_000_000,
            "h" => 3_600 * 1_000_000_000,
            "d" => 86_400 * 1_000_000_000,
            "" => return Err(missing_unit(text, rest)),
            other => return Err(format!("unknown unit `{other}` in `{text}`; {EXPECTED}")),
        };
        let part = number
            .checked_mul(nanos_per_unit)
            .map(Duration::from_nanos)
            .ok_or_else(|| format!("`{text}` is too large a duration"))?;
        total = total
            .checked_add(part)
            .ok_or_else(|| format!("`{text}` is too large a duration"))?;
        rest = rest[unit_length..].trim_start();
    }
    Ok(total)
}

/// The error for a number with no unit right after it: `"5"`, or `"5 s"` and `"5 seconds"`
/// where a unit follows after a space.
fn missing_unit(text: &str, rest: &str) -> String {
    let word: String = rest
        .trim_start()
        .chars()
        .take_while(|c| c.is_alphabetic())
        .collect();
    match word.as_str() {
        "" => format!("`{text}` has a number without a unit; {EXPECTED}"),
        "ns" | "us" | "µs" | "ms" | "s" | "m" | "h" | "d" => {
            format!("`{text}` has a space between a number and its unit `{word}`; {EXPECTED}")
        }
        _ => format!("unknown unit `{word}` in `{text}`; {EXPECTED}"),
    }
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
    let method = proc_macro2::Ident::new(method, proc_macro2::Span::call_site());
    let value = u64::try_from(value).unwrap_or(u64::MAX);
    let value = proc_macro2::Literal::u64_unsuffixed(value);
    quote::quote!(::core::time::Duration::#method(#value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_of_parts_are_read() {
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("1h 2m"), Ok(Duration::from_mins(62)));
        assert_eq!(parse("1d"), Ok(Duration::from_hours(24)));
        assert_eq!(parse("3us"), Ok(Duration::from_micros(3)));
        assert_eq!(parse("7ns"), Ok(Duration::from_nanos(7)));
        assert_eq!(parse("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn malformed_durations_say_what_is_expected() {
        for bad in [
            "",
            "5",
            "s",
            "5 s x",
            "5sec",
            "-5s",
            "1.5s",
            "99999999999999999999s",
        ] {
            let error = parse(bad).unwrap_err();
            assert!(
                error.contains("expected a duration") || error.contains("too large"),
                "{bad:?}: {error}"
            );
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
    }
}
