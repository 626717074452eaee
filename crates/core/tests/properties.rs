//! Parsers never panic, whatever text they are given, and accept what they should.
#![allow(clippy::unwrap_used)]

use crest_core::checks::{nhs_check_digit, NhsNumber};
use crest_core::validate::{check_row, parse_field, Header};
use crest_core::{Date, FIELDS};
use proptest::prelude::*;

fn today() -> Date {
    Date::parse_iso("2026-12-07").unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// Any text at all: the NHS number, date and field parsers answer, never panic.
    #[test]
    fn parsers_never_panic(s in any::<String>()) {
        let _ = NhsNumber::parse(&s);
        let _ = Date::parse(&s);
        let _ = Date::parse_iso(&s);
        for f in FIELDS {
            let _ = parse_field(f, &s, today());
        }
    }

    /// Any row of any text against the whole dataset's header: checked, never a panic.
    #[test]
    fn a_row_of_any_text_is_checked_never_a_panic(cells in proptest::collection::vec(any::<String>(), 0..FIELDS.len() + 3)) {
        let names: Vec<&str> = FIELDS.iter().map(|f| f.name).collect();
        let header = Header::parse(&names).unwrap();
        let _ = check_row(&header, &cells, today());
    }

    /// Every NHS number with a valid check digit is accepted, however it is spaced, and comes
    /// back as its ten digits; changing its last digit makes it invalid.
    #[test]
    fn valid_nhs_numbers_are_accepted_as_written(first9 in proptest::collection::vec(0u32..10, 9)) {
        prop_assume!(!first9.iter().all(|d| *d == first9[0]));
        let Some(check) = nhs_check_digit(&first9) else { return Ok(()) };
        let digits: String = first9.iter().chain([check].iter()).map(|d| char::from(b'0' + *d as u8)).collect();
        prop_assume!(!digits.chars().all(|c| c == digits.chars().next().unwrap()));
        let spaced = format!("{} {} {}", &digits[..3], &digits[3..6], &digits[6..]);
        let parsed = NhsNumber::parse(&spaced).unwrap();
        prop_assert_eq!(parsed.digits(), digits.as_str());
        let wrong = format!("{}{}", &digits[..9], (check + 1) % 10);
        prop_assert!(NhsNumber::parse(&wrong).is_err());
    }

    /// Every real date reads back from its ISO and UK forms.
    #[test]
    fn real_dates_read_back(days in 0i32..60_000) {
        let d = Date::parse_iso("1900-01-01").unwrap().add_days(days);
        let iso = d.to_string();
        prop_assert_eq!(Date::parse_iso(&iso).unwrap(), d);
        let uk = format!("{}/{}/{}", &iso[8..10], &iso[5..7], &iso[..4]);
        prop_assert_eq!(Date::parse(&uk).unwrap(), d);
    }
}
