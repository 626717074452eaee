//! The synthetic generator follows the dataset dictionary: a field added to the dictionary is
//! a column of the generated file at once, and this test names any field the generator leaves
//! empty, so the demo, the calibration tests and the benchmarks exercise every field.
#![allow(clippy::unwrap_used)]

use crest_core::{Date, Period, FIELDS};
use crest_ingest::synth::{write, Config};

#[test]
fn every_imported_field_is_a_column_and_the_generator_fills_each() {
    let dir = crest_store::testing::scratch_dir("synth-fields");
    let d = |s: &str| Date::parse_iso(s).unwrap();
    write(
        &dir,
        &Config {
            // Enough programmes that some walk with each test (30% use the six-minute walk).
            programmes: 40,
            episodes: 4_000,
            seed: 7,
            period: Period {
                from: d("2024-04-01"),
                to: d("2025-03-31"),
            },
            today: d("2025-12-31"),
        },
    )
    .unwrap();
    let mut r = csv::Reader::from_path(dir.join("episodes.csv")).unwrap();
    let head: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    let imported: Vec<&str> = FIELDS
        .iter()
        .filter(|f| f.imported())
        .map(|f| f.name)
        .collect();
    assert_eq!(
        head, imported,
        "the generated file's columns are the imported fields, in order"
    );
    let mut filled = vec![0usize; head.len()];
    for row in r.records() {
        for (i, cell) in row.unwrap().iter().enumerate() {
            if !cell.is_empty() {
                filled[i] += 1;
            }
        }
    }
    let empty: Vec<&str> = head
        .iter()
        .zip(&filled)
        .filter(|(_, n)| **n == 0)
        .map(|(h, _)| h.as_str())
        .collect();
    assert!(
        empty.is_empty(),
        "the synthetic generator leaves these fields empty in 4,000 episodes: {empty:?}; give each \
         a plausible value in crates/ingest/src/synth (fn episode, or synth/measures.rs for a \
         measure) so the demo, calibration and benchmarks exercise it"
    );
}
