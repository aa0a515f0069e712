//! The one duration grammar of `hosted`: attribute literals (read by this crate at compile time)
//! and configuration values (read by the runtime) accept exactly the same strings.
//!
//! This file is compiled into both crates (`#[path]` in `hosted/src/service/settings.rs`): the
//! macros crate may depend on nothing but `syn`, `quote` and `proc-macro2`, and a crate of its
//! own for one function would be published and versioned for nothing. It uses `core` only.
//!
//! The grammar: one or more parts `<digits><unit>`, the unit right after its number, parts
//! optionally separated by spaces, their values added up. Units: `ns`, `us` (or `µs`), `ms`, `s`,
//! `m`, `h`, `d`. No sign, no fraction, no spelled-out unit (`sec`, `hour`), no space between a
//! number and its unit: `"250ms"`, `"5s"`, `"1m30s"`, `"1h 2m"`, `"0s"`.

use core::time::Duration;

/// Every unit, with its length in nanoseconds.
pub(crate) const UNITS: [(&str, u64); 8] = [
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60 * 1_000_000_000),
    ("h", 3_600 * 1_000_000_000),
    ("d", 86_400 * 1_000_000_000),
];

/// Why a text is not a duration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Nothing but spaces.
    Empty,
    /// A part that does not start with a digit.
    NotADuration,
    /// A number with no unit after it.
    MissingUnit,
    /// A number, a space, then a unit (`"5 s"`).
    SpaceBeforeUnit(String),
    /// A unit that is not one of [`UNITS`] (`"5sec"`, `"5 seconds"`).
    UnknownUnit(String),
    /// A decimal point (`"1.5s"`).
    Fraction,
    /// A minus sign before a number (`"-5s"`).
    Negative,
    /// A number past `u64::MAX`, or a total past `Duration::MAX`.
    TooLarge,
}

impl Refusal {
    /// What is wrong with `text`, and how to write it when that is clear ([`fix`](Self::fix));
    /// without the form expected (each side adds its own when there is no fix).
    pub(crate) fn describe(&self, text: &str) -> String {
        let problem = match self {
            Self::Empty => "empty duration".to_owned(),
            Self::NotADuration => format!("`{text}` is not a duration"),
            Self::MissingUnit => format!("`{text}` has a number without a unit"),
            Self::SpaceBeforeUnit(unit) => {
                format!("`{text}` has a space between a number and its unit `{unit}`")
            }
            Self::UnknownUnit(unit) => format!("unknown unit `{unit}` in `{text}`"),
            Self::Fraction if self.fix(text).is_some() => format!("`{text}` has a fraction"),
            Self::Fraction => {
                format!(
                    "`{text}` has a fraction; write it in a smaller unit (`1500ms`, not `1.5s`)"
                )
            }
            Self::Negative => format!("`{text}` is negative; a duration cannot be"),
            Self::TooLarge => format!("`{text}` is too large a duration"),
        };
        match self.fix(text) {
            Some(fix) => format!("{problem}; write `{fix}`"),
            None => problem,
        }
    }

    /// `text` as the grammar writes what it most likely means: its units spelled out or set
    /// apart (`"5 minutes"` → `5m`, `"1 hour 2 min"` → `1h2m`, `"5 s"` → `5s`), or its fraction
    /// in smaller units (`"1.5s"` → `1s500ms`).
    pub(crate) fn fix(&self, text: &str) -> Option<String> {
        match self {
            Self::SpaceBeforeUnit(_) | Self::UnknownUnit(_) => spelled_out(text),
            Self::Fraction => without_fraction(text),
            _ => None,
        }
    }
}

fn unit_nanos(unit: &str) -> Option<u64> {
    UNITS
        .iter()
        .find(|(name, _)| *name == unit)
        .map(|(_, nanos)| *nanos)
}

/// Reads `text` (leading and trailing spaces allowed) as a duration.
pub(crate) fn parse(text: &str) -> Result<Duration, Refusal> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(Refusal::Empty);
    }
    // In nanoseconds: a part like `5000000000000000h` is more than 64 bits of them.
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            let negative = rest
                .strip_prefix('-')
                .is_some_and(|after| after.starts_with(|c: char| c.is_ascii_digit()));
            return Err(if negative {
                Refusal::Negative
            } else {
                Refusal::NotADuration
            });
        }
        let number: u64 = rest[..digits].parse().map_err(|_| Refusal::TooLarge)?;
        rest = &rest[digits..];
        let unit_length = rest
            .find(|c: char| c.is_ascii_digit() || c.is_whitespace())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_length];
        let nanos = match unit_nanos(unit) {
            Some(nanos) => nanos,
            None if unit.is_empty() => return Err(missing_unit(rest)),
            None if unit.starts_with(['.', ',']) => return Err(Refusal::Fraction),
            None => return Err(Refusal::UnknownUnit(unit.to_owned())),
        };
        total = total
            .checked_add(u128::from(number) * u128::from(nanos))
            .ok_or(Refusal::TooLarge)?;
        rest = rest[unit_length..].trim_start();
    }
    let seconds = u64::try_from(total / 1_000_000_000).map_err(|_| Refusal::TooLarge)?;
    let nanos = u32::try_from(total % 1_000_000_000).map_err(|_| Refusal::TooLarge)?;
    Ok(Duration::new(seconds, nanos))
}

/// A number with nothing glued to it: `"5"`, or `"5 s"` / `"5 seconds"` where a word follows
/// after a space.
fn missing_unit(rest: &str) -> Refusal {
    let word: String = rest
        .trim_start()
        .chars()
        .take_while(|c| c.is_alphabetic())
        .collect();
    if word.is_empty() {
        Refusal::MissingUnit
    } else if unit_nanos(&word).is_some() {
        Refusal::SpaceBeforeUnit(word)
    } else {
        Refusal::UnknownUnit(word)
    }
}

/// The unit a spelled-out, abbreviated or capitalised unit name stands for.
fn unit_named(word: &str) -> Option<&'static str> {
    let unit = match word.to_lowercase().as_str() {
        "ns" | "nsec" | "nsecs" | "nano" | "nanos" | "nanosecond" | "nanoseconds" => "ns",
        "us" | "µs" | "usec" | "usecs" | "micro" | "micros" | "microsecond" | "microseconds" => {
            "us"
        }
        "ms" | "msec" | "msecs" | "milli" | "millis" | "millisecond" | "milliseconds" => "ms",
        "s" | "sec" | "secs" | "second" | "seconds" => "s",
        "m" | "min" | "mins" | "minute" | "minutes" => "m",
        "h" | "hr" | "hrs" | "hour" | "hours" => "h",
        "d" | "day" | "days" => "d",
        _ => return None,
    };
    Some(unit)
}

/// `text` in the grammar, when it is a list of numbers each followed (after optional spaces)
/// by a unit [`unit_named`] knows.
fn spelled_out(text: &str) -> Option<String> {
    let mut rewrite = String::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        rewrite.push_str(&rest[..digits]);
        rest = rest[digits..].trim_start();
        let word = rest
            .find(|c: char| !c.is_alphabetic())
            .unwrap_or(rest.len());
        rewrite.push_str(unit_named(&rest[..word])?);
        rest = rest[word..].trim_start();
    }
    parse(&rewrite).is_ok().then_some(rewrite)
}

/// `text` (one `<digits>.<digits><unit>`, as `"1.5s"`) written exactly in whole units, when it
/// is a whole number of nanoseconds: `"1.5s"` → `1s500ms`.
fn without_fraction(text: &str) -> Option<String> {
    let text = text.trim();
    let (whole, rest) = text.split_once('.')?;
    let digits = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let (fraction, unit) = rest.split_at(digits);
    if whole.is_empty() || fraction.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let nanos = u128::from(unit_nanos(unit_named(unit.trim())?)?);
    let scale = 10_u128.checked_pow(u32::try_from(fraction.len()).ok()?)?;
    let tenths: u128 = format!("{whole}{fraction}").parse().ok()?;
    let total = tenths.checked_mul(nanos)?;
    if total % scale != 0 {
        return None;
    }
    let total = total / scale;
    let duration = Duration::new(
        u64::try_from(total / 1_000_000_000).ok()?,
        u32::try_from(total % 1_000_000_000).ok()?,
    );
    Some(format(duration))
}

/// `duration` in the grammar, shortest form: the largest units first, `"0s"` for zero.
/// [`parse`] reads it back to the same value.
pub(crate) fn format(duration: Duration) -> String {
    if duration.is_zero() {
        return "0s".to_owned();
    }
    let mut text = String::new();
    let mut nanos = duration.as_nanos();
    for (unit, size) in [
        ("d", 86_400_000_000_000_u128),
        ("h", 3_600_000_000_000),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
        ("us", 1_000),
        ("ns", 1),
    ] {
        if nanos >= size {
            text.push_str(&(nanos / size).to_string());
            text.push_str(unit);
            nanos %= size;
        }
    }
    text
}

/// The cases both crates test their side against: a text and the value it reads as, or the
/// refusal. Not a copy of the parser's logic: written out by hand.
#[cfg(test)]
#[allow(dead_code, reason = "each crate's tests use the table")]
pub(crate) const CASES: &[(&str, Result<u128, &str>)] = &[
    ("0s", Ok(0)),
    ("7ns", Ok(7)),
    ("3us", Ok(3_000)),
    ("3µs", Ok(3_000)),
    ("250ms", Ok(250_000_000)),
    ("5s", Ok(5_000_000_000)),
    ("2m", Ok(120_000_000_000)),
    ("1h", Ok(3_600_000_000_000)),
    ("3d", Ok(259_200_000_000_000)),
    ("1m30s", Ok(90_000_000_000)),
    ("1h 2m 3s", Ok(3_723_000_000_000)),
    ("  5s  ", Ok(5_000_000_000)),
    ("1d2h3m4s5ms6us7ns", Ok(93_784_005_006_007)),
    ("30s1m", Ok(90_000_000_000)),
    ("213503d", Ok(18_446_659_200_000_000_000)),
    (
        "5000000000000000h",
        Ok(18_000_000_000_000_000_000_000_000_000),
    ),
    (
        "18446744073709551615s",
        Ok(18_446_744_073_709_551_615_000_000_000),
    ),
    (
        "18446744073709551615s 1s",
        Err("`18446744073709551615s 1s` is too large a duration"),
    ),
    ("", Err("empty duration")),
    ("   ", Err("empty duration")),
    ("5", Err("`5` has a number without a unit")),
    ("s", Err("`s` is not a duration")),
    ("-5s", Err("`-5s` is negative; a duration cannot be")),
    ("-", Err("`-` is not a duration")),
    ("+5s", Err("`+5s` is not a duration")),
    ("1.5s", Err("`1.5s` has a fraction; write `1s500ms`")),
    ("0.25 h", Err("`0.25 h` has a fraction; write `15m`")),
    (
        "1.0000000001ns",
        Err("`1.0000000001ns` has a fraction; write it in a smaller unit (`1500ms`, not `1.5s`)"),
    ),
    (
        "5 s",
        Err("`5 s` has a space between a number and its unit `s`; write `5s`"),
    ),
    ("5sec", Err("unknown unit `sec` in `5sec`; write `5s`")),
    ("5 sec", Err("unknown unit `sec` in `5 sec`; write `5s`")),
    (
        "5 minutes",
        Err("unknown unit `minutes` in `5 minutes`; write `5m`"),
    ),
    (
        "1 hour 2 min",
        Err("unknown unit `hour` in `1 hour 2 min`; write `1h2m`"),
    ),
    ("2 Days", Err("unknown unit `Days` in `2 Days`; write `2d`")),
    ("5S", Err("unknown unit `S` in `5S`; write `5s`")),
    ("1w", Err("unknown unit `w` in `1w`")),
    ("5s x", Err("`5s x` is not a duration")),
    (
        "99999999999999999999s",
        Err("`99999999999999999999s` is too large a duration"),
    ),
    (
        "18446744073709551615d",
        Err("`18446744073709551615d` is too large a duration"),
    ),
];
