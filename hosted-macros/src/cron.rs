//! Cron expressions with a seconds field, checked at compile time.
//!
//! The macro crate may depend on syn, quote and proc-macro2 only, so this checker is written
//! here. The runtime parses the same expressions with `croner` (seconds required, no year field)
//! after refusing two things `croner` lets through: names outside their own field and empty list
//! items. This module follows `croner`'s parser rule by rule, and its day matching to refuse
//! expressions that never fire. A test in the `tests` crate includes this file and holds it to
//! the runtime's answers on a corpus. Std only, so that test can include it.

/// The form every error message shows.
pub(crate) const EXPECTED: &str = "expected six fields, `second minute hour day-of-month month day-of-week`, \
     like `\"0 */5 * * * *\"` or `\"0 0 9 * * MON-FRI\"`";

const FIELDS: [&str; 6] = [
    "second",
    "minute",
    "hour",
    "day-of-month",
    "month",
    "day-of-week",
];
const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
const NICKNAMES: [&str; 6] = [
    "@YEARLY",
    "@ANNUALLY",
    "@MONTHLY",
    "@WEEKLY",
    "@DAILY",
    "@HOURLY",
];

// The bits `croner` sets per value.
const ALL: u8 = 1;
const NTH: [u8; 5] = [1 << 1, 1 << 2, 1 << 3, 1 << 4, 1 << 5];
const NTH_ALL: u8 = NTH[0] | NTH[1] | NTH[2] | NTH[3] | NTH[4];
const LAST: u8 = 1 << 6;
const CLOSEST_WEEKDAY: u8 = 1 << 7;

/// Checks `expression`; the error names the field at fault and the fix.
pub(crate) fn check(expression: &str) -> Result<(), String> {
    let upper = expression.to_uppercase();
    let pattern = upper.trim();
    if pattern.is_empty() {
        return Err(format!("empty cron expression; {EXPECTED}"));
    }
    if pattern.contains('@') {
        return if NICKNAMES.contains(&pattern) {
            Ok(())
        } else {
            Err(format!(
                "unknown cron nickname `{expression}`; expected one of `@yearly`, `@annually`, \
                 `@monthly`, `@weekly`, `@daily`, `@hourly`, or six fields"
            ))
        };
    }
    let fields: Vec<&str> = pattern.split_whitespace().collect();
    match fields.len() {
        6 => {}
        5 => {
            return Err(format!(
                "`{expression}` has 5 fields; this cron has a seconds field first: write \
                 `\"0 {}\"` to fire at second 0",
                expression.trim()
            ));
        }
        7 => {
            return Err(format!(
                "`{expression}` has 7 fields; a year field is not supported; {EXPECTED}"
            ));
        }
        count => return Err(format!("`{expression}` has {count} fields; {EXPECTED}")),
    }
    let mut parsed = Vec::with_capacity(6);
    for (position, raw) in fields.iter().enumerate() {
        let field = FIELDS[position];
        let bad = |reason: String| format!("{field} field `{raw}`: {reason}");
        names_in_their_field(position, raw).map_err(bad)?;
        if raw.split(',').any(str::is_empty) {
            return Err(bad(
                "empty list item; separate values with one comma".to_owned()
            ));
        }
        let mut text = (*raw).to_owned();
        if position == 5 {
            text = text.replace("-SUN", "-7");
            for (number, name) in WEEKDAYS.iter().enumerate() {
                text = text.replace(name, &number.to_string());
            }
        }
        if position == 4 {
            for (number, name) in MONTHS.iter().enumerate() {
                text = text.replace(name, &(number + 1).to_string());
            }
        }
        if (position == 3 || position == 5) && text.contains('?') {
            text = text.replace('?', "*");
        }
        let mut both_days = false;
        if position == 5
            && let Some(rest) = text.strip_prefix('+')
        {
            both_days = true;
            text = rest.to_owned();
        }
        legal_characters(position, &text).map_err(bad)?;
        let mut component = Component::for_field(position);
        component.parse(&text).map_err(bad)?;
        parsed.push((component, text == "*", both_days));
    }
    let [
        _,
        _,
        _,
        (month_days, any_month_day, _),
        (months, _, _),
        (weekdays, any_weekday, both),
    ] = <[_; 6]>::try_from(parsed).map_err(|_| EXPECTED.to_owned())?;
    let days = DayFields {
        month_days,
        weekdays: weekdays.with_sunday_as_zero(),
        any_month_day,
        any_weekday,
        both,
    };
    if days.ever_fires(&months) {
        Ok(())
    } else {
        Err(format!(
            "`{expression}` never fires: no date has that day of the month, month and day of the week"
        ))
    }
}

fn names_in_their_field(position: usize, field: &str) -> Result<(), String> {
    if position != 4
        && let Some(name) = MONTHS.iter().find(|name| field.contains(*name))
    {
        return Err(format!(
            "`{name}` names a month; month names go in the fifth field"
        ));
    }
    if position != 5
        && let Some(name) = WEEKDAYS.iter().find(|name| field.contains(*name))
    {
        return Err(format!(
            "`{name}` names a day of the week; day names go in the sixth field"
        ));
    }
    Ok(())
}

fn legal_characters(position: usize, field: &str) -> Result<(), String> {
    let extra: &[char] = match position {
        3 => &['L', 'W', '?'],
        5 => &['#', 'L', '?'],
        _ => &[],
    };
    match field
        .chars()
        .find(|c| !"*/0123456789,-".contains(*c) && !extra.contains(c))
    {
        None => Ok(()),
        Some(c) => Err(match position {
            3 => format!(
                "`{c}` is not allowed; use numbers 1-31, `*`, `?`, `-`, `/`, `,`, `L` or `W`"
            ),
            5 => format!(
                "`{c}` is not allowed; use numbers 0-7, `SUN`-`SAT`, `*`, `?`, `-`, `/`, `,`, `L` or `#`"
            ),
            4 => {
                format!("`{c}` is not allowed; use numbers 1-12, `JAN`-`DEC`, `*`, `-`, `/` or `,`")
            }
            _ => format!("`{c}` is not allowed; use numbers, `*`, `-`, `/` or `,`"),
        }),
    }
}

/// One field's values, as `croner` records them: a set of bits per value, and the `L` / `W`
/// features of the whole field.
struct Component {
    min: u16,
    max: u16,
    features: u8,
    enabled: u8,
    bits: Vec<u8>,
}

impl Component {
    fn for_field(position: usize) -> Self {
        let (min, max, features) = match position {
            0 | 1 => (0, 59, 0),
            2 => (0, 23, 0),
            3 => (1, 31, LAST | CLOSEST_WEEKDAY),
            4 => (1, 12, 0),
            _ => (0, 7, LAST | NTH_ALL),
        };
        Self {
            min,
            max,
            features: features | ALL | LAST,
            enabled: 0,
            bits: vec![0; usize::from(max) + 1],
        }
    }

    fn range_text(&self) -> String {
        format!("{}-{}", self.min, self.max)
    }

    fn set(&mut self, value: u16, bit: u8) -> Result<(), String> {
        if value < self.min || value > self.max {
            return Err(format!(
                "{value} is out of range; use {}",
                self.range_text()
            ));
        }
        if self.features & bit != bit {
            return Err(if bit & NTH_ALL != 0 {
                "`#` is allowed only in the day-of-week field".to_owned()
            } else if bit == CLOSEST_WEEKDAY {
                "`W` is allowed only in the day-of-month field".to_owned()
            } else {
                "this modifier is not allowed here".to_owned()
            });
        }
        self.bits[usize::from(value)] |= bit;
        Ok(())
    }

    fn enable(&mut self, feature: u8) -> Result<(), String> {
        if self.features & feature != feature {
            return Err("`W` is allowed only in the day-of-month field".to_owned());
        }
        self.enabled |= feature;
        Ok(())
    }

    fn parse(&mut self, field: &str) -> Result<(), String> {
        if field == "*" {
            for value in self.min..=self.max {
                self.set(value, ALL)?;
            }
            return Ok(());
        }
        for part in field.split(',') {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            if part.contains('/') {
                self.stepping(part)?;
            } else if part.contains('-') {
                self.range(part)?;
            } else if part.contains('W') {
                self.closest_weekday(part)?;
            } else if part == "L" {
                self.enable(LAST)?;
            } else {
                let mut part = part.to_owned();
                if part.ends_with('L') && !part.contains('#') {
                    part = part.replace('L', "#L");
                }
                if (part.contains('#') || part.contains('L')) && self.features & NTH_ALL == 0 {
                    return Err(if part.ends_with("#L") {
                        "`NL` (the last such weekday) is allowed only in the day-of-week field; \
                         for the last day of the month write `L`"
                            .to_owned()
                    } else {
                        "`#` is allowed only in the day-of-week field".to_owned()
                    });
                }
                self.number(&part)?;
            }
        }
        Ok(())
    }

    fn number(&mut self, value: &str) -> Result<(), String> {
        let bit = nth_bit(value)?;
        let number = before_nth(value);
        let number = number
            .parse::<u16>()
            .map_err(|_| format!("`{value}` is not a number; use {}", self.range_text()))?;
        self.set(number, bit)
    }

    fn range(&mut self, value: &str) -> Result<(), String> {
        let bit = nth_bit(value)?;
        let bounds: Vec<&str> = before_nth(value).split('-').map(str::trim).collect();
        let [start, end] = bounds[..] else {
            return Err(format!("`{value}` is not a range; write `A-B`"));
        };
        let (Ok(start), Ok(end)) = (start.parse::<u16>(), end.parse::<u16>()) else {
            return Err(format!("`{value}` is not a range of numbers; write `A-B`"));
        };
        if start > end {
            return Err(format!(
                "range `{value}` goes backwards; write the smaller bound first"
            ));
        }
        if start < self.min || end > self.max {
            return Err(format!(
                "range `{value}` is out of range; use {}",
                self.range_text()
            ));
        }
        for number in start..=end {
            self.set(number, bit)?;
        }
        Ok(())
    }

    fn stepping(&mut self, value: &str) -> Result<(), String> {
        let bit = nth_bit(value)?;
        let parts: Vec<&str> = before_nth(value).split('/').collect();
        let [range, step] = parts[..] else {
            return Err(format!(
                "`{value}` has more than one `/`; write `*/S` or `A-B/S`"
            ));
        };
        let step = step
            .parse::<u16>()
            .map_err(|_| format!("step `{step}` is not a number"))?;
        if step == 0 {
            return Err("a step cannot be zero".to_owned());
        }
        let (start, end) = if range == "*" {
            (self.min, self.max)
        } else if range.contains('-') {
            let bounds: Vec<&str> = range.split('-').collect();
            let [start, end] = bounds[..] else {
                return Err(format!("`{range}` is not a range; write `A-B/S`"));
            };
            let (Ok(start), Ok(end)) = (start.parse::<u16>(), end.parse::<u16>()) else {
                return Err(format!(
                    "`{range}` is not a range of numbers; write `A-B/S`"
                ));
            };
            (start, end)
        } else if range.is_empty() {
            return Err(format!("`{value}` has no start; write `*/{step}`"));
        } else {
            return Err(format!(
                "`{value}` steps from a single number; write `*/{step}` or `{range}-{}/{step}`",
                self.max
            ));
        };
        if start < self.min || end > self.max || start > end {
            return Err(format!(
                "`{value}` is out of range; use {}",
                self.range_text()
            ));
        }
        let mut number = start;
        while number <= end {
            self.set(number, bit)?;
            number = number
                .checked_add(step)
                .ok_or_else(|| format!("step `{step}` is too large"))?;
        }
        Ok(())
    }

    fn closest_weekday(&mut self, value: &str) -> Result<(), String> {
        let day = &value[..value.find('W').unwrap_or(value.len())];
        if day == "L" {
            self.enable(LAST)?;
            return self.enable(CLOSEST_WEEKDAY);
        }
        let day = day
            .parse::<u16>()
            .map_err(|_| format!("`{value}` needs a day before `W`, like `15W`"))?;
        if day < self.min || day > self.max {
            return Err(format!(
                "day `{day}` is out of range; use {}",
                self.range_text()
            ));
        }
        self.set(day, CLOSEST_WEEKDAY)
    }

    fn has(&self, value: u16, bit: u8) -> bool {
        self.bits
            .get(usize::from(value))
            .is_some_and(|bits| bits & bit != 0)
    }

    /// The day-of-week field with `7` folded into `0`, as `croner` does after parsing.
    fn with_sunday_as_zero(mut self) -> Self {
        let sunday = self.bits[7];
        self.bits[0] |= sunday;
        self.bits[7] = 0;
        self
    }
}

fn nth_bit(value: &str) -> Result<u8, String> {
    if value.ends_with('L') {
        return Ok(LAST);
    }
    let Some(position) = value.find('#') else {
        return Ok(ALL);
    };
    let nth = value[position + 1..].parse::<u8>().map_err(|_| {
        format!("`{value}` needs a number after `#`, like `1#2` (the second Monday)")
    })?;
    match nth {
        1..=5 => Ok(NTH[usize::from(nth - 1)]),
        _ => Err(format!(
            "`#{nth}` is out of range; a weekday occurs 1 to 5 times a month"
        )),
    }
}

fn before_nth(value: &str) -> &str {
    value.split('#').next().unwrap_or("")
}

/// The day fields together, matched as `croner` matches them.
struct DayFields {
    month_days: Component,
    weekdays: Component,
    /// The day-of-month field is `*` (or `?`).
    any_month_day: bool,
    /// The day-of-week field is `*` (or `?`).
    any_weekday: bool,
    /// The day-of-week field starts with `+`: both days must match.
    both: bool,
}

impl DayFields {
    /// Whether any date of a full 400-year Gregorian cycle, in which weekdays and leap years
    /// repeat, matches the day and month fields.
    fn ever_fires(&self, months: &Component) -> bool {
        // 1 January 2000 was a Saturday.
        let mut weekday = 6_u32;
        for year in 2000..2400 {
            for month in 1..=12_u16 {
                let length = days_in_month(year, month);
                for day in 1..=length {
                    if months.has(month, ALL) && self.matches(length, day, weekday) {
                        return true;
                    }
                    weekday = (weekday + 1) % 7;
                }
            }
        }
        false
    }

    fn matches(&self, length: u32, day: u32, weekday: u32) -> bool {
        let Ok(day_number) = u16::try_from(day) else {
            return false;
        };
        let shift = |offset: i64| {
            u32::try_from((i64::from(weekday) + offset).rem_euclid(7)).unwrap_or_default()
        };
        let enabled = |feature: u8| self.month_days.enabled & feature == feature;
        let mut day_matches = self.month_days.has(day_number, ALL);
        if !day_matches && enabled(LAST) && enabled(CLOSEST_WEEKDAY) {
            let last_weekday = shift(i64::from(length) - i64::from(day));
            let last_working_day = match last_weekday {
                6 => length - 1,
                0 => length - 2,
                _ => length,
            };
            day_matches = day == last_working_day;
        } else if !day_matches && enabled(LAST) && !enabled(CLOSEST_WEEKDAY) {
            day_matches = day == length;
        }
        if !day_matches {
            day_matches = (day.saturating_sub(2).max(1)..=(day + 2).min(length)).any(|candidate| {
                let Ok(candidate_number) = u16::try_from(candidate) else {
                    return false;
                };
                if !self.month_days.has(candidate_number, CLOSEST_WEEKDAY) {
                    return false;
                }
                let target = match shift(i64::from(candidate) - i64::from(day)) {
                    6 if candidate > 1 => candidate - 1,
                    6 => candidate + 2,
                    0 if candidate < length => candidate + 1,
                    0 => candidate - 2,
                    _ => candidate,
                };
                target == day
            });
        }
        let weekday_number = u16::try_from(weekday).unwrap_or_default();
        let nth = usize::try_from((day - 1) / 7).unwrap_or(usize::MAX);
        let mut dow_matches = NTH
            .get(nth)
            .is_some_and(|bit| self.weekdays.has(weekday_number, *bit));
        if !dow_matches && self.weekdays.has(weekday_number, LAST) && day + 7 > length {
            dow_matches = true;
        }
        dow_matches = dow_matches || self.weekdays.has(weekday_number, ALL);
        if (day_matches && self.any_weekday) || (dow_matches && self.any_month_day) {
            true
        } else if !self.any_month_day && !self.any_weekday {
            if self.both {
                day_matches && dow_matches
            } else {
                day_matches || dow_matches
            }
        } else {
            false
        }
    }
}

fn days_in_month(year: u32, month: u16) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_expressions_pass() {
        for expression in [
            "* * * * * *",
            "0 */5 * * * *",
            "0 0 9 * * MON-FRI",
            "0 0 0 L * *",
            "0 0 0 ? * 5L",
            "0 0 0 * * 1#2",
            "0 0 12 15W * *",
            "@hourly",
            "0 0 0 29 2 *",
            "0 0 0 1 jan,jul sun",
        ] {
            assert_eq!(check(expression), Ok(()), "{expression}");
        }
    }

    #[test]
    fn mistakes_name_the_field() {
        for (expression, message) in [
            ("", "empty cron expression"),
            (
                "*/5 * * * *",
                "has 5 fields; this cron has a seconds field first: write `\"0 */5 * * * *\"`",
            ),
            (
                "60 * * * * *",
                "second field `60`: 60 is out of range; use 0-59",
            ),
            ("0 0 25 * * *", "hour field `25`"),
            ("0 0 0 * * 8", "day-of-week field `8`"),
            ("0 0 0 * 13 *", "month field `13`"),
            ("0 0 0 * * MON-", "not a range"),
            ("0 */0 * * * *", "a step cannot be zero"),
            (
                "0 0 0 5L * *",
                "`NL` (the last such weekday) is allowed only in the day-of-week field",
            ),
            ("0 0 0 30 2 *", "never fires"),
            ("0 0 0 * * JAN", "`JAN` names a month"),
            ("@often", "unknown cron nickname"),
            ("0 0 0 * * 1#6", "`#6` is out of range"),
            ("0 5/10 * * * *", "steps from a single number"),
        ] {
            let error = check(expression).unwrap_err();
            assert!(error.contains(message), "{expression}: {error}");
        }
    }
}
