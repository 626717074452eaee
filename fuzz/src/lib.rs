//! What the fuzz targets share: a scratch file to hand the readers (they read files, as
//! `crest import` does), and reading a whole source row by row through the dataset's checks.

use crest_core::validate::{check_row, Header};
use crest_core::Date;
use std::path::PathBuf;

/// A file named `name` in this fuzzing process's own scratch folder, holding `bytes`.
pub fn scratch_file(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("crest-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch folder");
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("scratch file");
    path
}

/// The day the checks judge dates by (fixed, so a crash reproduces on any day).
pub fn today() -> Date {
    Date::parse_iso("2026-12-07").expect("a date")
}

/// Opens `path` as `crest import` does and checks every row (at most 5,000) against the
/// dataset, as an import would before storing anything.
pub fn read_and_check(path: &std::path::Path) {
    let Ok((mut source, names)) = crest_ingest::read::Source::open(path, None) else {
        return;
    };
    let header = Header::parse(&names).ok();
    let mut cells = Vec::new();
    for _ in 0..5_000 {
        let Some(row) = source.next_row(&mut cells) else {
            break;
        };
        if let (Ok(_), Some(header)) = (row, header.as_ref()) {
            let mut checked = check_row(header, &cells, today());
            source.explain(&mut checked);
        }
    }
}
