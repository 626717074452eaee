//! A calendar date without time zone, as CR teams write them: ISO `YYYY-MM-DD` or UK `DD/MM/YYYY`.
//!
//! Stored as days since 1970-01-01 so that waits and durations are plain subtraction; no date
//! library is needed for the proleptic Gregorian arithmetic below.

use std::fmt;

/// A calendar date (days since 1970-01-01).
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date(i32);

/// Why a piece of text is not a date, in words a CR nurse understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateError(pub String);

impl std::error::Error for DateError {}

impl fmt::Display for DateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The months' names, January first.
pub const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

fn is_leap(y: i32) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

/// Number of days in a month of a year.
pub fn days_in_month(y: i32, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        2 => 28,
        _ => 0,
    }
}

impl Date {
    /// The date of a year, month and day, if it exists on the calendar.
    pub fn from_ymd(y: i32, m: u32, d: u32) -> Option<Date> {
        if !(1..=12).contains(&m)
            || d == 0
            || d > days_in_month(y, m)
            || !(1800..=9999).contains(&y)
        {
            return None;
        }
        // Howard Hinnant's days_from_civil.
        let y = if m <= 2 { y - 1 } else { y };
        let era = if y >= 0 { y } else { y - 399 } / 400;
        let yoe = y - era * 400;
        let mp = (m as i32 + 9) % 12;
        let doy = (153 * mp + 2) / 5 + d as i32 - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        Some(Date(era * 146097 + doe - 719468))
    }

    /// Days since 1970-01-01.
    pub fn days(self) -> i32 {
        self.0
    }

    /// The date a number of days after 1970-01-01.
    pub fn from_days(days: i32) -> Date {
        Date(days)
    }

    /// Year, month and day.
    pub fn ymd(self) -> (i32, u32, u32) {
        let z = self.0 + 719468;
        let era = if z >= 0 { z } else { z - 146096 } / 146097;
        let doe = z - era * 146097;
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        let y = yoe + era * 400;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        (if m <= 2 { y + 1 } else { y }, m, d)
    }

    /// This date plus a number of days (negative goes back).
    pub fn add_days(self, n: i32) -> Date {
        Date(self.0 + n)
    }

    /// Whole days from `earlier` to `self`.
    pub fn days_since(self, earlier: Date) -> i32 {
        self.0 - earlier.0
    }

    /// Completed years of age on `on` for someone born on `self`.
    pub fn age_on(self, on: Date) -> i32 {
        let (by, bm, bd) = self.ymd();
        let (y, m, d) = on.ymd();
        let mut age = y - by;
        if (m, d) < (bm, bd) {
            age -= 1;
        }
        age
    }

    /// An Excel serial date (1900 date system; Excel's fictitious 29/02/1900 is day 60).
    pub fn from_excel_serial(serial: f64) -> Option<Date> {
        if !serial.is_finite() || !(61.0..=2_958_465.0).contains(&serial) {
            return None;
        }
        // Serial 25569 is 1970-01-01.
        Some(Date(serial.floor() as i32 - 25569))
    }

    /// Parses `YYYY-MM-DD` only (the storage and API format).
    pub fn parse_iso(s: &str) -> Result<Date, DateError> {
        let b = s.as_bytes();
        if b.len() == 10 && b[4] == b'-' && b[7] == b'-' {
            let (y, m, d) = (num(&s[0..4]), num(&s[5..7]), num(&s[8..10]));
            if let (Some(y), Some(m), Some(d)) = (y, m, d) {
                return Date::from_ymd(y as i32, m, d).ok_or_else(|| impossible(y as i32, m, d, s));
            }
        }
        Err(DateError(format!(
            "'{s}' is not a date in the form YYYY-MM-DD"
        )))
    }

    /// Parses a date as written in a CR spreadsheet: ISO `YYYY-MM-DD` or UK `DD/MM/YYYY`
    /// (one- or two-digit day and month). US month-first dates, two-digit years and other
    /// separators are refused rather than guessed.
    pub fn parse(s: &str) -> Result<Date, DateError> {
        let s = s.trim();
        if s.len() == 10 && s.as_bytes()[4] == b'-' {
            return Date::parse_iso(s);
        }
        let parts: Vec<&str> = s.split('/').collect();
        if parts.len() == 3 && parts[0].len() == 4 && parts.iter().all(|p| num(p).is_some()) {
            return Err(DateError(format!(
                "'{s}' has the year first with slashes: write it as {}-{:0>2}-{:0>2} (YYYY-MM-DD) or DD/MM/YYYY",
                parts[0], parts[1], parts[2]
            )));
        }
        if parts.len() == 3 {
            let (d, m, y) = (num(parts[0]), num(parts[1]), num(parts[2]));
            if parts[2].len() != 4 || y.is_none() {
                return Err(DateError(format!(
                    "'{s}' needs a four-digit year: write dates as DD/MM/YYYY or YYYY-MM-DD"
                )));
            }
            if let (Some(d), Some(m), Some(y), true, true) =
                (d, m, y, parts[0].len() <= 2, parts[1].len() <= 2)
            {
                if m > 12 && d <= 12 {
                    return Err(DateError(format!(
                        "'{s}' looks like a US-style date (month first); write dates as DD/MM/YYYY or YYYY-MM-DD"
                    )));
                }
                return Date::from_ymd(y as i32, m, d).ok_or_else(|| impossible(y as i32, m, d, s));
            }
        }
        Err(DateError(format!(
            "'{s}' is not a date: write dates as DD/MM/YYYY (e.g. 31/01/2025) or YYYY-MM-DD"
        )))
    }
}

fn num(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn impossible(y: i32, m: u32, d: u32, s: &str) -> DateError {
    if !(1..=12).contains(&m) {
        return DateError(format!(
            "'{s}' has no month {m}: write dates as DD/MM/YYYY or YYYY-MM-DD"
        ));
    }
    if !(1800..=9999).contains(&y) {
        return DateError(format!("'{s}' has an implausible year {y}"));
    }
    DateError(format!(
        "'{s}' is not a real date: {} {y} has {} days, not {d}",
        MONTHS[(m - 1) as usize],
        days_in_month(y, m)
    ))
}

impl Date {
    /// The ISO form `YYYY-MM-DD` as bytes, without allocating (years 0–9999).
    pub fn iso_bytes(self) -> [u8; 10] {
        let (y, m, d) = self.ymd();
        let y = y.clamp(0, 9999) as u32;
        let digit = |n: u32| b'0' + (n % 10) as u8;
        [
            digit(y / 1000),
            digit(y / 100),
            digit(y / 10),
            digit(y),
            b'-',
            digit(m / 10),
            digit(m),
            b'-',
            digit(d / 10),
            digit(d),
        ]
    }

    /// The date as people read it on screen, e.g. "3 March 2025".
    pub fn long(self) -> String {
        let (y, m, d) = self.ymd();
        format!("{d} {} {y}", MONTHS[(m as usize).clamp(1, 12) - 1])
    }

    /// The date as written in inputs and files for people, e.g. "03/03/2025".
    pub fn dmy(self) -> String {
        let (y, m, d) = self.ymd();
        format!("{d:02}/{m:02}/{y:04}")
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = self.ymd();
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

impl serde::Serialize for Date {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// UK civil time at `unix_secs` (seconds since 1970-01-01 UTC): the date and the minutes since
/// midnight. British Summer Time (UTC+1) runs from 01:00 UTC on the last Sunday of March to
/// 01:00 UTC on the last Sunday of October (the Summer Time Order 2002); the rest of the year
/// is GMT. Written here rather than taken from a time-zone database because it is one fixed
/// rule, and a database crate would add megabytes to a binary that needs nothing else of it.
pub fn uk_time(unix_secs: i64) -> (Date, u32) {
    let utc_day = unix_secs.div_euclid(86_400);
    let (y, _, _) = Date::from_days(utc_day as i32).ymd();
    // The last Sunday of a month: 1970-01-01 was a Thursday (day 0), so Sunday is day 3 mod 7.
    let last_sunday = |m: u32| {
        let last = Date::from_ymd(y, m, days_in_month(y, m)).map_or(0, |d| d.days());
        i64::from(last - (last - 3).rem_euclid(7))
    };
    let starts = last_sunday(3) * 86_400 + 3_600;
    let ends = last_sunday(10) * 86_400 + 3_600;
    let local = if (starts..ends).contains(&unix_secs) {
        unix_secs + 3_600
    } else {
        unix_secs
    };
    let day = local.div_euclid(86_400);
    (
        Date::from_days(day as i32),
        (local.rem_euclid(86_400) / 60) as u32,
    )
}

/// Today's date in the UK (a patient seen at 00:30 in July was seen on that day, not the day
/// before as UTC would have it).
pub fn uk_today() -> Date {
    uk_time(unix_now()).0
}

/// A moment as people in the UK read it: "6 December 2026, 02:34".
pub fn uk_timestamp(unix_secs: i64) -> String {
    let (date, minutes) = uk_time(unix_secs);
    format!("{}, {:02}:{:02}", date.long(), minutes / 60, minutes % 60)
}

/// A stored UTC moment (`2026-12-06T02:34:00Z`) as people in the UK read it; anything else
/// as it is.
pub fn uk_timestamp_iso(at: &str) -> String {
    let part = |r: std::ops::Range<usize>| at.get(r).and_then(|p| p.parse::<i64>().ok());
    let day = at.get(..10).and_then(|d| Date::parse_iso(d).ok());
    match (day, at.get(10..11), part(11..13), part(14..16)) {
        (Some(d), Some("T"), Some(h), Some(m)) => {
            let secs = part(17..19).unwrap_or(0);
            uk_timestamp(i64::from(d.days()) * 86_400 + h * 3_600 + m * 60 + secs)
        }
        _ => at.to_string(),
    }
}

/// A stored date (`2025-04-01`, or the date part of a stored moment) as people read it,
/// "1 April 2025"; anything else as it is.
pub fn long_iso(at: &str) -> String {
    at.get(..10)
        .and_then(|d| Date::parse_iso(d).ok())
        .map_or_else(|| at.to_string(), Date::long)
}

/// Seconds since 1970-01-01 UTC now.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hand-worked: in 2026 summer time runs from 29 March 01:00 UTC to 25 October 01:00 UTC.
    #[test]
    fn uk_time_follows_british_summer_time() {
        let at = |y, m, d, h: i64, min: i64| {
            i64::from(Date::from_ymd(y, m, d).unwrap().days()) * 86_400 + h * 3_600 + min * 60
        };
        assert_eq!(
            uk_timestamp(at(2026, 12, 6, 2, 34)),
            "6 December 2026, 02:34"
        );
        assert_eq!(uk_timestamp(at(2026, 3, 29, 0, 59)), "29 March 2026, 00:59");
        assert_eq!(uk_timestamp(at(2026, 3, 29, 1, 0)), "29 March 2026, 02:00");
        // Half past eleven at night UTC in July is already the next day in London.
        assert_eq!(
            uk_time(at(2026, 6, 30, 23, 30)).0,
            Date::from_ymd(2026, 7, 1).unwrap()
        );
        assert_eq!(
            uk_timestamp(at(2026, 10, 25, 0, 59)),
            "25 October 2026, 01:59"
        );
        assert_eq!(
            uk_timestamp(at(2026, 10, 25, 1, 0)),
            "25 October 2026, 01:00"
        );
        // 2024: 31 March and 27 October.
        assert_eq!(uk_timestamp(at(2024, 3, 31, 1, 0)), "31 March 2024, 02:00");
        assert_eq!(uk_timestamp(at(2024, 3, 30, 12, 0)), "30 March 2024, 12:00");
        assert_eq!(
            uk_timestamp(at(2024, 10, 27, 0, 30)),
            "27 October 2024, 01:30"
        );
        assert_eq!(
            uk_timestamp_iso("2026-07-01T08:05:09Z"),
            "1 July 2026, 09:05"
        );
        assert_eq!(uk_timestamp_iso("not a time"), "not a time");
    }

    #[test]
    fn dates_are_written_for_people() {
        let d = Date::from_ymd(2025, 3, 3).unwrap();
        assert_eq!(d.long(), "3 March 2025");
        assert_eq!(d.dmy(), "03/03/2025");
        assert_eq!(
            Date::from_ymd(2024, 12, 31).unwrap().long(),
            "31 December 2024"
        );
    }

    #[test]
    fn round_trips_every_day_for_centuries() {
        let start = Date::from_ymd(1899, 1, 1).unwrap();
        for n in 0..(366 * 250) {
            let d = start.add_days(n);
            let (y, m, dd) = d.ymd();
            assert_eq!(Date::from_ymd(y, m, dd), Some(d));
            assert_eq!(Date::parse_iso(&d.to_string()), Ok(d));
            assert_eq!(d.iso_bytes(), d.to_string().as_bytes());
        }
        assert_eq!(Date::from_ymd(1970, 1, 1).unwrap().days(), 0);
        assert_eq!(Date::from_ymd(2000, 3, 1).unwrap().days(), 11017);
    }

    #[test]
    fn parses_uk_and_iso() {
        let d = Date::from_ymd(2024, 2, 29).unwrap();
        assert_eq!(Date::parse("29/02/2024"), Ok(d));
        assert_eq!(Date::parse(" 2024-02-29 "), Ok(d));
        assert_eq!(
            Date::parse("5/3/2024"),
            Ok(Date::from_ymd(2024, 3, 5).unwrap())
        );
    }

    #[test]
    fn refuses_impossible_us_and_ambiguous_dates() {
        let e = Date::parse("31/02/2024").unwrap_err().0;
        assert!(e.contains("February 2024 has 29 days"), "{e}");
        assert!(Date::parse("29/02/2023").is_err());
        let e = Date::parse("12/31/2024").unwrap_err().0;
        assert!(e.contains("US-style"), "{e}");
        assert!(Date::parse("03/04/24")
            .unwrap_err()
            .0
            .contains("four-digit year"));
        let e = Date::parse("2025/06/01").unwrap_err().0;
        assert!(e.contains("year first") && e.contains("2025-06-01"), "{e}");
        assert!(Date::parse("03-04-2024").is_err());
        assert!(Date::parse("March 3rd").is_err());
        assert!(Date::parse("").is_err());
    }

    #[test]
    fn excel_serials_and_ages() {
        assert_eq!(Date::from_excel_serial(45292.0), Date::from_ymd(2024, 1, 1));
        assert_eq!(
            Date::from_excel_serial(45292.75),
            Date::from_ymd(2024, 1, 1)
        );
        let born = Date::from_ymd(1960, 6, 15).unwrap();
        assert_eq!(born.age_on(Date::from_ymd(2024, 6, 14).unwrap()), 63);
        assert_eq!(born.age_on(Date::from_ymd(2024, 6, 15).unwrap()), 64);
    }
}
