//! Cron schedules: expressions parsed by `croner`, read in UTC or (feature `time-zones`) in an
//! IANA time zone.

use std::fmt;
use std::time::SystemTime;

use chrono::{DateTime, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

use crate::timer::options::TimerOptionsError;

/// A parsed cron expression with a seconds field, and the time zone it is read in.
///
/// The dialect (the `#[timed]` attribute checks the same one at compile time):
///
/// * six fields separated by spaces: `second minute hour day-of-month month day-of-week`;
///   or one of `@yearly` (`@annually`), `@monthly`, `@weekly`, `@daily`, `@hourly`;
/// * each field is `*` or a comma-separated list of `N`, `A-B`, `*/S` or `A-B/S`;
/// * seconds and minutes `0-59`, hours `0-23`, days of the month `1-31`, months `1-12` or
///   `JAN`-`DEC`, days of the week `0-7` (`0` and `7` are Sunday) or `SUN`-`SAT`, names in any
///   case;
/// * the day of the month may also be `?` (any), `L` (the last day), `LW` (the last weekday) or
///   `NW` (the weekday nearest day `N`); the day of the week may be `?`, `NL` (the last such
///   weekday of the month: `5L`) or `N#K` (the `K`-th such weekday: `1#2`, the second Monday);
/// * when both days are restricted, either may match (as in Vixie cron); a `+` before the
///   day of the week requires both;
/// * an expression that can never fire (`0 0 0 30 2 *`) is refused.
///
/// Parsing and the search for fire times are `croner`'s; a test holds this crate's parser and the
/// attribute's compile-time check to the same answers on a corpus of expressions.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use hosted::timer::CronSchedule;
///
/// let every_quarter = CronSchedule::parse("0 */15 * * * *").unwrap();
/// let noon = SystemTime::UNIX_EPOCH + Duration::from_secs(12 * 3600);
/// let next = every_quarter.next_after(noon).unwrap();
/// assert_eq!(next.duration_since(noon).unwrap(), Duration::from_secs(15 * 60));
/// ```
#[derive(Clone)]
pub struct CronSchedule {
    expression: String,
    cron: Cron,
    zone: Zone,
}

#[derive(Clone, Debug)]
enum Zone {
    Utc,
    #[cfg(feature = "time-zones")]
    Named(chrono_tz::Tz),
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
const MONTH_FIELD: usize = 4;
const WEEKDAY_FIELD: usize = 5;

impl CronSchedule {
    /// Parses `expression`, read in UTC.
    ///
    /// # Errors
    /// When the expression is not in the dialect above, or can never fire.
    pub fn parse(expression: &str) -> Result<Self, TimerOptionsError> {
        let invalid = |reason: String| TimerOptionsError::Cron {
            expression: expression.to_owned(),
            reason,
        };
        restrict(expression).map_err(invalid)?;
        let cron = CronParser::builder()
            .seconds(Seconds::Required)
            .year(Year::Disallowed)
            .build()
            .parse(expression)
            .map_err(|error| invalid(error.to_string()))?;
        let schedule = Self {
            expression: expression.to_owned(),
            cron,
            zone: Zone::Utc,
        };
        // Any year will do: a pattern that fires at all fires within the 28-year calendar cycle.
        let reference = SystemTime::UNIX_EPOCH;
        if schedule.next_after(reference).is_none() {
            return Err(invalid("it never fires".to_owned()));
        }
        Ok(schedule)
    }

    /// Reads the schedule in the IANA time zone `name` (`"Europe/Paris"`), with its daylight
    /// saving time: a fire time in a skipped hour runs once the clocks have moved on, one in a
    /// repeated hour runs once.
    ///
    /// # Errors
    /// When the zone is unknown, or the `time-zones` feature is off.
    pub fn with_time_zone(mut self, name: &str) -> Result<Self, TimerOptionsError> {
        self.zone = zone(name)?;
        Ok(self)
    }

    /// The first fire time strictly after `time`, or `None` when there is none before the year
    /// 5000.
    #[must_use]
    pub fn next_after(&self, time: SystemTime) -> Option<SystemTime> {
        let utc: DateTime<Utc> = time.into();
        match &self.zone {
            Zone::Utc => self
                .cron
                .find_next_occurrence(&utc, false)
                .ok()
                .map(SystemTime::from),
            #[cfg(feature = "time-zones")]
            Zone::Named(zone) => self
                .cron
                .find_next_occurrence(&utc.with_timezone(zone), false)
                .ok()
                .map(SystemTime::from),
        }
    }

    /// The expression as written.
    #[must_use]
    pub fn expression(&self) -> &str {
        &self.expression
    }
}

/// What `croner` accepts beyond the dialect: names in any field (it replaces them throughout the
/// expression) and empty list items.
fn restrict(expression: &str) -> Result<(), String> {
    let upper = expression.to_uppercase();
    if upper.trim_start().starts_with('@') {
        // A nickname (`@monthly`), or nothing `croner` accepts.
        return Ok(());
    }
    for (position, field) in upper.split_whitespace().enumerate() {
        if position != MONTH_FIELD
            && let Some(name) = MONTHS.iter().find(|name| field.contains(*name))
        {
            return Err(format!(
                "`{name}` names a month, but is not in the month field"
            ));
        }
        if position != WEEKDAY_FIELD
            && let Some(name) = WEEKDAYS.iter().find(|name| field.contains(*name))
        {
            return Err(format!(
                "`{name}` names a day of the week, but is not in the day-of-week field"
            ));
        }
        if field.split(',').any(str::is_empty) {
            return Err(format!("`{field}` has an empty list item"));
        }
    }
    Ok(())
}

#[cfg(feature = "time-zones")]
fn zone(name: &str) -> Result<Zone, TimerOptionsError> {
    name.parse::<chrono_tz::Tz>().map(Zone::Named).map_err(|_| {
        TimerOptionsError::TimeZone(format!(
            "unknown time zone `{name}`; expected an IANA name like `\"Europe/Paris\"` or `\"UTC\"`"
        ))
    })
}

#[cfg(not(feature = "time-zones"))]
fn zone(name: &str) -> Result<Zone, TimerOptionsError> {
    if name.eq_ignore_ascii_case("UTC") {
        return Ok(Zone::Utc);
    }
    Err(TimerOptionsError::TimeZone(format!(
        "time zone `{name}` needs the `time-zones` feature of `hosted`"
    )))
}

impl fmt::Debug for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CronSchedule")
            .field("expression", &self.expression)
            .field("zone", &self.zone)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.expression)?;
        match &self.zone {
            Zone::Utc => Ok(()),
            #[cfg(feature = "time-zones")]
            Zone::Named(zone) => write!(f, " ({zone})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn at(text: &str) -> SystemTime {
        DateTime::parse_from_rfc3339(text).unwrap().into()
    }

    fn next(expression: &str, after: &str) -> String {
        let fire = CronSchedule::parse(expression)
            .unwrap()
            .next_after(at(after))
            .unwrap();
        DateTime::<Utc>::from(fire).to_rfc3339()
    }

    #[test]
    fn fire_times_follow_the_fields() {
        assert_eq!(
            next("*/10 * * * * *", "2025-01-01T00:00:05Z"),
            "2025-01-01T00:00:10+00:00"
        );
        assert_eq!(
            next("0 30 9 * * MON-FRI", "2025-01-03T10:00:00Z"),
            "2025-01-06T09:30:00+00:00"
        );
        assert_eq!(
            next("0 0 0 L * *", "2024-02-10T00:00:00Z"),
            "2024-02-29T00:00:00+00:00"
        );
        assert_eq!(
            next("@hourly", "2025-01-01T00:59:59.5Z"),
            "2025-01-01T01:00:00+00:00"
        );
    }

    #[test]
    fn the_next_fire_time_is_strictly_after() {
        let every_second = CronSchedule::parse("* * * * * *").unwrap();
        let time = at("2025-01-01T00:00:00Z");
        assert_eq!(
            every_second.next_after(time).unwrap(),
            time + Duration::from_secs(1)
        );
    }

    #[test]
    fn what_croner_alone_would_accept_is_refused() {
        for (expression, reason) in [
            ("0 0 0 * * JAN", "`JAN` names a month"),
            ("0 MON 0 * * *", "`MON` names a day of the week"),
            ("1,,2 * * * * *", "empty list item"),
            ("0 0 0 30 2 *", "never fires"),
            ("* * * * *", "6 fields"),
        ] {
            let error = CronSchedule::parse(expression).unwrap_err().to_string();
            assert!(error.contains(reason), "{expression}: {error}");
        }
    }
}
