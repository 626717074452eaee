//! The CSV reader and the row checks on any bytes, as `crest import` and the upload page read
//! a file.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    crest_fuzz::read_and_check(&crest_fuzz::scratch_file("upload.csv", bytes));
});
