//! Properties of reading and importing, over generated input: no file makes a reader panic,
//! and every row offered is counted exactly once (imported + updated + unchanged + rejected).
#![allow(clippy::unwrap_used)]

use crest_core::Date;
use crest_ingest::{import_file, ImportOptions};
use crest_store::testing::{scratch_dir, sqlite_db};
use proptest::prelude::*;

fn today() -> Date {
    Date::from_ymd(2025, 6, 1).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Any bytes at all, as a CSV, spreadsheet or FHIR file: read or refused in words, never a
    /// panic.
    #[test]
    fn no_file_makes_a_reader_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600), name in prop_oneof![Just("f.csv"), Just("f.xlsx"), Just("f.json"), Just("f.ndjson")]) {
        let dir = scratch_dir("prop-read");
        let path = dir.join(name);
        std::fs::write(&path, &bytes).unwrap();
        if let Ok((mut source, _header)) = crest_ingest::read::Source::open(&path, None) {
            let mut cells = Vec::new();
            for _ in 0..1000 {
                if source.next_row(&mut cells).is_none() {
                    break;
                }
            }
        }
        let _ = crest_ingest::read::Source::open_fhir(std::slice::from_ref(&path), &mut |_| {});
    }

    /// FHIR-shaped JSON with arbitrary values: read or refused, never a panic.
    #[test]
    fn fhir_with_any_values_never_panics(values in proptest::collection::vec(any::<String>(), 6)) {
        let dir = scratch_dir("prop-fhir");
        let path = dir.join("Patient.ndjson");
        let [a, b, c, d, e, f] = [&values[0], &values[1], &values[2], &values[3], &values[4], &values[5]].map(|v| serde_json::to_string(v).unwrap());
        let text = format!(
            "{{\"resourceType\":\"Patient\",\"id\":{a},\"identifier\":[{{\"system\":\"https://fhir.nhs.uk/Id/nhs-number\",\"value\":{b}}}],\"birthDate\":{c},\"gender\":{d}}}\n\
             {{\"resourceType\":\"Condition\",\"id\":\"c1\",\"subject\":{{\"reference\":\"Patient/\"}},\"code\":{{\"coding\":[{{\"system\":\"http://snomed.info/sct\",\"code\":{e}}}]}},\"onsetDateTime\":{f}}}\n"
        );
        std::fs::write(&path, text).unwrap();
        if let Ok((mut source, _)) = crest_ingest::read::Source::open_fhir(std::slice::from_ref(&path), &mut |_| {}) {
            let mut cells = Vec::new();
            while source.next_row(&mut cells).is_some() {}
        }
    }
}

/// A row of an import file: new, a repeat of an earlier row, changed, or broken.
fn row() -> impl Strategy<Value = (u8, u8, u8)> {
    (0u8..6, 0u8..4, 0u8..5)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// However rows repeat, change or break, each is counted once: imported + updated +
    /// unchanged + rejected = rows offered, and what is stored is what was imported.
    #[test]
    fn every_row_offered_is_counted_once(first in proptest::collection::vec(row(), 1..25), second in proptest::collection::vec(row(), 1..25)) {
        let db = sqlite_db();
        let mut store = crest_store::open(&db.url).unwrap();
        store.migrate().unwrap();
        store.upsert_programmes(&[crest_core::Programme::parse(["P001", "One", "england", "London", "", ""]).unwrap()]).unwrap();
        let dir = scratch_dir("prop-import");
        let nhs = ["9434765854", "9434765919", "9434765870", "9434765862", "9434765889", "9434765897"];
        let mut stored = std::collections::BTreeSet::new();
        for (n, rows) in [first, second].iter().enumerate() {
            let mut csv = String::from("programme_code,episode_id,nhs_number,date_of_birth,sex,initiating_event,treatment,event_date,referral_date,status\n");
            for (id, version, broken) in rows {
                let nhs = nhs[usize::from(*id)];
                let referral = ["2025-01-12", "2025-01-13", "2025-01-14", "2025-01-15"][usize::from(*version)];
                // One row in five has a broken date of birth.
                let dob = if *broken == 0 { "31/02/1950" } else { "1950-01-01" };
                csv.push_str(&format!("P001,E{id},{nhs},{dob},male,mi_stemi,pci,2025-01-10,{referral},referred\n"));
            }
            let path = dir.join(format!("import-{n}.csv"));
            std::fs::write(&path, &csv).unwrap();
            let mut opts = ImportOptions::new(today());
            opts.skip_invalid = true;
            let s = import_file(store.as_mut(), &path, &opts, None, &mut |_| {}).unwrap();
            prop_assert_eq!(s.imported + s.updated + s.unchanged + s.rejected, rows.len(), "{:?}", s.counts());
            for (id, _, broken) in rows {
                if *broken != 0 {
                    stored.insert(*id);
                }
            }
        }
        let held = (0u8..6).filter(|id| store.episode("P001", &format!("E{id}")).unwrap().is_some()).count();
        prop_assert_eq!(held, stored.len());
    }
}
