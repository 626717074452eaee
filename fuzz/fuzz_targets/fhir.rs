//! The FHIR reader (a Bundle, or bulk-export NDJSON) and episode assembly on any bytes, through
//! the same row checks as a CSV.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    // The first byte picks how the file is named: a Bundle (.json) or NDJSON.
    let Some((first, rest)) = bytes.split_first() else {
        return;
    };
    let name = if first % 2 == 0 {
        "bundle.json"
    } else {
        "Patient.ndjson"
    };
    crest_fuzz::read_and_check(&crest_fuzz::scratch_file(name, rest));
});
