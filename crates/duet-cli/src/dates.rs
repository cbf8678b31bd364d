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

/// Where the system keeps its time zone files.
const ZONEINFO: &str = "/usr/share/zoneinfo";

/// The system's time zone: `TZ`, else `/etc/localtime`. The usual cases are read directly;
/// jiff's own lookup (the fallback) first lists every zone file on the system, which cost
/// about half a millisecond, a tenth of a whole `duet status`.
pub fn system_tz() -> TimeZone {
    let tz = std::env::var_os("TZ");
    direct_tz(
        tz.as_deref().map(|t| t.to_str()),
        ZONEINFO,
        "/etc/localtime",
    )
    .unwrap_or_else(TimeZone::system)
}

/// `tz` is `TZ` (`Some(None)`: set, but not UTF-8). `None` leaves the case to jiff.
fn direct_tz(tz: Option<Option<&str>>, zoneinfo: &str, localtime: &str) -> Option<TimeZone> {
    match tz {
        // An empty `TZ` means UTC (as for the C library).
        Some(Some("")) => Some(TimeZone::UTC),
        Some(Some(tz)) => {
            let tz = tz.strip_prefix(':').unwrap_or(tz);
            // A rule such as `UTC0` or `CET-1CEST,M3.5.0,M10.5.0/3`.
            if let Ok(rule) = TimeZone::posix(tz) {
                return Some(rule);
            }
            // A zone name such as `Europe/Lisbon`; paths and anything odd go to jiff.
            let plain = tz
                .split('/')
                .all(|part| !part.is_empty() && part != "." && part != "..");
            if !plain {
                return None;
            }
            let data = std::fs::read(std::path::Path::new(zoneinfo).join(tz)).ok()?;
            TimeZone::tzif(tz, &data).ok()
        }
        Some(None) => None,
        None => {
            // Usually a link into the zone files, whose path names the zone.
            let target = std::fs::read_link(localtime).ok()?;
            let target = target.to_str()?;
            let name = &target[target.rfind("zoneinfo/")? + "zoneinfo/".len()..];
            let data = std::fs::read(localtime).ok()?;
            TimeZone::tzif(name, &data).ok()
        }
    }
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

    #[test]
    fn the_system_time_zone_is_read_directly_in_the_usual_cases() {
        let dir = tempfile::tempdir().unwrap();
        let zoneinfo = dir.path().join("zoneinfo");
        std::fs::create_dir_all(zoneinfo.join("Europe")).unwrap();
        // A zone file: a POSIX rule alone is enough for jiff to read it as TZif.
        let lisbon = TimeZone::posix("WET0WEST,M3.5.0/1,M10.5.0").unwrap();
        let tzif =
            jiff::tz::TimeZone::tzif("Europe/Lisbon", &minimal_tzif("WET0WEST,M3.5.0/1,M10.5.0"))
                .unwrap();
        std::fs::write(
            zoneinfo.join("Europe/Lisbon"),
            minimal_tzif("WET0WEST,M3.5.0/1,M10.5.0"),
        )
        .unwrap();
        let z = zoneinfo.to_str().unwrap();
        let summer = "2026-07-01T12:00:00Z".parse::<Timestamp>().unwrap();
        let offset = |tz: &TimeZone| tz.to_offset(summer).seconds();
        let none = "/nonexistent/localtime";

        assert_eq!(direct_tz(Some(Some("")), z, none), Some(TimeZone::UTC));
        let rule = direct_tz(Some(Some("CET-1CEST,M3.5.0,M10.5.0/3")), z, none).unwrap();
        assert_eq!(offset(&rule), 7200);
        let named = direct_tz(Some(Some("Europe/Lisbon")), z, none).unwrap();
        assert_eq!(named.iana_name(), Some("Europe/Lisbon"));
        assert_eq!(offset(&named), offset(&lisbon));
        assert_eq!(offset(&named), offset(&tzif));
        assert!(direct_tz(Some(Some(":Europe/Lisbon")), z, none).is_some());
        // Paths, unknown names and non-UTF-8 values are left to jiff.
        for odd in [
            "../etc/passwd",
            "/etc/localtime",
            "Europe/Nowhere",
            "Europe//Lisbon",
        ] {
            assert!(direct_tz(Some(Some(odd)), z, none).is_none(), "{odd}");
        }
        assert!(direct_tz(Some(None), z, none).is_none());

        // No `TZ`: `/etc/localtime` linking into the zone files names the zone.
        let localtime = dir.path().join("localtime");
        std::os::unix::fs::symlink(zoneinfo.join("Europe/Lisbon"), &localtime).unwrap();
        let local = direct_tz(None, z, localtime.to_str().unwrap()).unwrap();
        assert_eq!(local.iana_name(), Some("Europe/Lisbon"));
        assert!(direct_tz(None, z, none).is_none());
    }

    /// A TZif version 2 file with no transitions, only its footer rule.
    fn minimal_tzif(rule: &str) -> Vec<u8> {
        let header = |out: &mut Vec<u8>, version: u8| {
            out.extend_from_slice(b"TZif");
            out.push(version);
            out.extend_from_slice(&[0; 15]);
            // isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt
            for n in [0u32, 0, 0, 0, 1, 4] {
                out.extend_from_slice(&n.to_be_bytes());
            }
            // One type: offset 0, not DST, abbreviation at 0; then "WET\0".
            out.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
            out.extend_from_slice(b"WET\0");
        };
        let mut out = Vec::new();
        header(&mut out, b'2');
        header(&mut out, b'2');
        out.push(b'\n');
        out.extend_from_slice(rule.as_bytes());
        out.push(b'\n');
        out
    }
}
