//! What a FHIR value is when crest cannot use it ([`Unusable`]), and FHIR dates and dateTimes
//! read as UK calendar dates ([`fhir_date`]).

use crest_core::Date;

/// A date as a resource gave it: the UK calendar date, or why it is not one.
pub type FhirDate = Result<Date, Unusable>;

/// Why something in a FHIR resource cannot be used, in words a CR nurse understands (or, for a
/// code crest does not map, the coding as `system|code`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unusable(pub String);

impl From<String> for Unusable {
    fn from(s: String) -> Unusable {
        Unusable(s)
    }
}

impl From<&str> for Unusable {
    fn from(s: &str) -> Unusable {
        Unusable(s.to_string())
    }
}

/// Converts a FHIR date or dateTime to the UK calendar date (Europe/London), never the UTC
/// date: 23:30Z on a summer evening is the next day in London.
pub fn fhir_date(s: &str) -> FhirDate {
    let s = s.trim();
    let bad = || {
        Unusable(format!(
            "'{}' is not a FHIR date",
            crest_core::validate::shown(s)
        ))
    };
    if s.len() < 10 {
        return Err(Unusable(format!(
            "'{}' is not a whole date; crest needs the day (YYYY-MM-DD)",
            crest_core::validate::shown(s)
        )));
    }
    // A FHIR date is ASCII; anything else is refused before it is cut by bytes.
    let day = s
        .get(..10)
        .filter(|_| s.is_ascii())
        .ok_or_else(bad)
        .and_then(|d| Date::parse_iso(d).map_err(|_| bad()))?;
    if s.len() == 10 {
        return Ok(day);
    }
    let rest = s.get(10..).ok_or_else(bad)?;
    let time = rest.strip_prefix('T').ok_or_else(bad)?;
    let (clock, zone) = match time.find(['Z', '+', '-']) {
        Some(i) => (&time[..i], &time[i..]),
        // FHIR requires a zone with a time; without one, the date as written is the local date.
        None => return Ok(day),
    };
    let mut parts = clock.split(':');
    let mut num = |max: u32| -> Result<i64, Unusable> {
        let p = parts.next().ok_or_else(bad)?;
        let p = p.split('.').next().unwrap_or(p);
        let v: u32 = p.parse().map_err(|_| bad())?;
        if v > max {
            return Err(bad());
        }
        Ok(i64::from(v))
    };
    let (h, m, sec) = (num(23)?, num(59)?, num(60).unwrap_or(0));
    let offset = if zone == "Z" {
        0
    } else {
        let sign = if zone.starts_with('-') { -1 } else { 1 };
        let z = &zone[1..];
        let (zh, zm) = z.split_once(':').ok_or_else(bad)?;
        let zh: i64 = zh.parse().map_err(|_| bad())?;
        let zm: i64 = zm.parse().map_err(|_| bad())?;
        sign * (zh * 3600 + zm * 60)
    };
    let unix = i64::from(day.days()) * 86_400 + h * 3600 + m * 60 + sec - offset;
    Ok(crest_core::date::uk_time(unix).0)
}
