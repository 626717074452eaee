//! The workbook (XLSX) reader and the row checks on any bytes. The corpus starts from real
//! workbooks, so mutations reach the sheets inside the zip.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    crest_fuzz::read_and_check(&crest_fuzz::scratch_file("upload.xlsx", bytes));
});
