//! The dates people type: `yesterday`, `today 08:30`, `2026-11-20 21:00`,
//! `monday`, `3 days ago`, or an RFC 3339 timestamp.

use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan, ZonedDateTime};

/// A day, or a moment.
#[derive(Clone, Debug, PartialEq)]
pub enum When {
    Day(Date),
    Moment(Timestamp),
}

const HINT: &str = "try `yesterday`, `today 08:30`, `monday`, `3 days ago` or `2026-11-20 21:00`";

fn bad(text: &str) -> anyhow::Error {
    anyhow::anyhow!("cannot read `{text}` as a date; {HINT}")
}

fn parse_time(text: &str) -> Option<Time> {
    let (h, m) = text.split_once(':')?;
    let (m, s) = match m.split_once(':') {
        Some((m, s)) => (m, s),
        None => (m, "0"),
    };
    Time::new(h.parse().ok()?, m.parse().ok()?, s.parse().ok()?, 0).ok()
}

fn weekday(text: &str) -> Option<Weekday> {
    Some(match text {
        "monday" | "mon" => Weekday::Monday,
        "tuesday" | "tue" => Weekday::Tuesday,
        "wednesday" | "wed" => Weekday::Wednesday,
        "thursday" | "thu" => Weekday::Thursday,
        "friday" | "fri" => Weekday::Friday,
        "saturday" | "sat" => Weekday::Saturday,
        "sunday" | "sun" => Weekday::Sunday,
        _ => return None,
    })
}

/// Parse what a person typed, relative to `now` in `tz`.
pub fn parse(text: &str, now: Timestamp, tz: &TimeZone) -> anyhow::Result<When> {
    let raw = text.trim();
    let lower = raw.to_lowercase();
    let here = now.to_zoned_datetime(tz.clone());
    let today = here.date();
    if lower == "now" {
        return Ok(When::Moment(now));
    }
    if let Ok(ts) = raw.parse::<Timestamp>() {
        return Ok(When::Moment(ts));
    }
    // "N units ago"
    let words: Vec<&str> = lower.split_whitespace().collect();
    if let [n, unit, "ago"] = words.as_slice() {
        let n: i64 = n.parse().map_err(|_| bad(raw))?;
        let unit = unit.trim_end_matches('s');
        let span = match unit {
            "minute" | "min" => n.minutes(),
            "hour" => n.hours(),
            "day" => n.days(),
            "week" => n.weeks(),
            _ => return Err(bad(raw)),
        };
        let then = here.checked_sub(span).map_err(|_| bad(raw))?;
        return Ok(if matches!(unit, "day" | "week") {
            When::Day(then.date())
        } else {
            When::Moment(then.timestamp())
        });
    }
    // "<day> [HH:MM]" where day is a word or a date
    let (day_part, time_part) = match words.as_slice() {
        [one] => match one.split_once('t') {
            Some((d, t)) if d.parse::<Date>().is_ok() => (d, Some(t)),
            _ => (*one, None),
        },
        [last, day] if *last == "last" && weekday(day).is_some() => (*day, None),
        [day, time] => (*day, Some(*time)),
        _ => return Err(bad(raw)),
    };
    let day = match day_part {
        "today" => Some(today),
        "yesterday" => today.yesterday().ok(),
        "tomorrow" => today.tomorrow().ok(),
        other => match weekday(other) {
            Some(wd) => {
                let back = (today.weekday().to_monday_zero_offset() - wd.to_monday_zero_offset())
                    .rem_euclid(7);
                let back = if back == 0 { 7 } else { back };
                today.checked_sub(i64::from(back).days()).ok()
            }
            None => other.parse::<Date>().ok(),
        },
    };
    let (day, time) = match (day, time_part) {
        (Some(day), time) => (day, time),
        // A bare time means today.
        (None, None) => (today, Some(day_part)),
        (None, Some(_)) => return Err(bad(raw)),
    };
    match time {
        None => Ok(When::Day(day)),
        Some(t) => {
            let time = parse_time(t).ok_or_else(|| bad(raw))?;
            let zoned = day
                .to_datetime(time)
                .to_zoned_datetime(tz.clone())
                .map_err(|_| bad(raw))?;
            Ok(When::Moment(zoned.timestamp()))
        }
    }
}

fn start_of(day: Date, tz: &TimeZone) -> anyhow::Result<Timestamp> {
    Ok(day.to_zoned_datetime(tz.clone())?.timestamp())
}

/// When an item written "at" this moment is dated: a bare day means that
/// day at the current time of day, so `--at yesterday` is "this time yesterday".
pub fn at(text: &str, now: Timestamp, tz: &TimeZone) -> anyhow::Result<Timestamp> {
    match parse(text, now, tz)? {
        When::Moment(ts) => Ok(ts),
        When::Day(day) => {
            let time = now.to_zoned_datetime(tz.clone()).time();
            Ok(day
                .to_datetime(time)
                .to_zoned_datetime(tz.clone())?
                .timestamp())
        }
    }
}

/// Lower bound for `--from`: a day starts at midnight.
pub fn from(text: &str, now: Timestamp, tz: &TimeZone) -> anyhow::Result<Timestamp> {
    match parse(text, now, tz)? {
        When::Moment(ts) => Ok(ts),
        When::Day(day) => start_of(day, tz),
    }
}

/// Upper bound for `--to`: a day is included whole.
pub fn to(text: &str, now: Timestamp, tz: &TimeZone) -> anyhow::Result<Timestamp> {
    match parse(text, now, tz)? {
        When::Moment(ts) => Ok(ts),
        When::Day(day) => start_of(day.tomorrow()?, tz),
    }
}

/// The calendar day a `--date` names (`yesterday`, `last friday`, `2026-11-20`); a moment
/// names the local day it falls on.
pub fn day(text: &str, now: Timestamp, tz: &TimeZone) -> anyhow::Result<jiff::civil::Date> {
    Ok(match parse(text, now, tz)? {
        When::Moment(ts) => ts.to_zoned_datetime(tz.clone()).date(),
        When::Day(day) => day,
    })
}

/// Today, where the user is.
pub fn today(now: Timestamp, tz: &TimeZone) -> jiff::civil::Date {
    now.to_zoned_datetime(tz.clone()).date()
}

/// A calendar day as days since 1970-01-01 (the core counts days that way).
pub fn day_number(date: jiff::civil::Date) -> i32 {
    duet_core::item::parse_date(&date.to_string()).unwrap_or(0)
}

/// The calendar day of a day number.
pub fn from_day_number(n: i32) -> jiff::civil::Date {
    jiff::civil::date(1970, 1, 1)
        .checked_add(jiff::Span::new().days(i64::from(n)))
        .unwrap_or(jiff::civil::date(1970, 1, 1))
}

/// The local day an item's time falls on, as a day number.
pub fn local_day(ms: i64, tz: &TimeZone) -> i32 {
    day_number(local(ms, tz).date())
}

/// Local wall-clock rendering used in human output.
pub fn local(ms: i64, tz: &TimeZone) -> ZonedDateTime {
    Timestamp::from_millisecond(ms)
        .unwrap_or(Timestamp::UNIX_EPOCH)
        .to_zoned_datetime(tz.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        // A Wednesday.
        "2026-11-25T18:00:00Z".parse().unwrap()
    }

    fn p(text: &str) -> String {
        match parse(text, now(), &TimeZone::UTC).unwrap() {
            When::Day(d) => d.to_string(),
            When::Moment(t) => t.to_string(),
        }
    }

    #[test]
    fn natural_dates() {
        assert_eq!(p("yesterday"), "2026-11-24");
        assert_eq!(p("today 08:30"), "2026-11-25T08:30:00Z");
        assert_eq!(p("2026-11-20 21:00"), "2026-11-20T21:00:00Z");
        assert_eq!(p("2026-11-20T21:00"), "2026-11-20T21:00:00Z");
        assert_eq!(p("2026-11-20"), "2026-11-20");
        assert_eq!(p("monday"), "2026-11-23");
        assert_eq!(p("last wednesday"), "2026-11-18");
        assert_eq!(p("3 days ago"), "2026-11-22");
        assert_eq!(p("2 hours ago"), "2026-11-25T16:00:00Z");
        assert_eq!(p("07:15"), "2026-11-25T07:15:00Z");
        assert_eq!(p("Yesterday 21:00"), "2026-11-24T21:00:00Z");
        assert_eq!(p("2026-11-20T21:00:00+01:00"), "2026-11-20T20:00:00Z");
    }

    #[test]
    fn nonsense_is_refused() {
        for text in [
            "",
            "soon",
            "2026-13-01",
            "25:00",
            "today 8",
            "x days ago",
            "a b c",
        ] {
            assert!(parse(text, now(), &TimeZone::UTC).is_err(), "{text}");
        }
    }

    #[test]
    fn bounds_cover_whole_days() {
        let tz = TimeZone::UTC;
        assert_eq!(
            from("2026-11-20", now(), &tz).unwrap().to_string(),
            "2026-11-20T00:00:00Z"
        );
        assert_eq!(
            to("2026-11-20", now(), &tz).unwrap().to_string(),
            "2026-11-21T00:00:00Z"
        );
        assert_eq!(
            at("yesterday", now(), &tz).unwrap().to_string(),
            "2026-11-24T18:00:00Z"
        );
    }
}
