//! The field parsers (NHS number, dates, postcode and every other dataset field) on any text.
#![no_main]
use crest_core::checks::NhsNumber;
use crest_core::validate::parse_field;
use crest_core::{Date, FIELDS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(n) = NhsNumber::parse(text) {
        // What is accepted reads back as itself.
        assert_eq!(NhsNumber::parse(n.digits()).ok().as_ref(), Some(&n));
    }
    if let Ok(d) = Date::parse(text) {
        assert_eq!(Date::parse_iso(&d.to_string()), Ok(d));
    }
    let _ = Date::parse_iso(text);
    for f in FIELDS {
        let _ = parse_field(f, text, crest_fuzz::today());
    }
});
