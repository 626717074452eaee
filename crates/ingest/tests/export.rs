//! Exports round-trip: what crest exports (CSV or XLSX) imports again unchanged, on both stores.
#![allow(clippy::unwrap_used)]

use crest_core::Date;
use crest_ingest::{export, import_file, ImportOptions};
use crest_store::testing::{databases, scratch_dir};

#[test]
fn csv_and_xlsx_exports_import_again_unchanged() {
    let today = Date::from_ymd(2025, 6, 1).unwrap();
    for db in databases() {
        let mut s = crest_store::open(&db.url).unwrap();
        s.migrate().unwrap();
        s.upsert_programmes(&[crest_core::Programme::parse([
            "P001", "One", "england", "London", "nurse", "mi",
        ])
        .unwrap()])
            .unwrap();
        let dir = scratch_dir("export");
        let src = dir.join("in.csv");
        std::fs::write(
            &src,
            "programme_code,episode_id,nhs_number,family_name,date_of_birth,sex,initiating_event,treatment,event_date,referral_date,status,assessment1_date,core_start_date,core_end_date,assessment2_date,a1_weight_kg,a2_weight_kg,a1_hads_anxiety,a2_hads_anxiety,a1_smoking,delivery_mode,national_opt_out\n\
             P001,E1,9434765919,O'Test,1960-06-15,female,mi_nstemi,pci,2024-04-01,2024-04-03,completed,2024-04-20,2024-05-01,2024-07-01,2024-07-05,81.5,79.25,12,6,current,group_supervised,false\n\
             P001,E2,9434765870,\"Comma, Name\",1955-01-01,male,mi_stemi,pci,2024-05-01,2024-05-03,referred,,,,,,,,,,,\n",
        )
        .unwrap();
        let opts = ImportOptions::new(today);
        let first = import_file(s.as_mut(), &src, &opts, None, &mut |_| {}).unwrap();
        assert_eq!(first.imported, 2, "{:?}", first.errors);
        let records = s
            .find_episodes(
                "P001",
                &crest_store::EpisodeQuery {
                    limit: usize::MAX,
                    ..Default::default()
                },
            )
            .unwrap();
        let csv = dir.join("out.csv");
        std::fs::write(&csv, export::csv_bytes(&records).unwrap()).unwrap();
        let xlsx = dir.join("out.xlsx");
        let bytes = export::xlsx_bytes(&records).unwrap();
        assert!(bytes.starts_with(b"PK"), "a real XLSX (zip) file");
        std::fs::write(&xlsx, bytes).unwrap();
        for file in [&csv, &xlsx] {
            let again = import_file(s.as_mut(), file, &opts, None, &mut |_| {}).unwrap();
            assert_eq!(
                (again.rows, again.unchanged, again.updated, again.rejected),
                (2, 2, 0, 0),
                "{}: {file:?} {:?}",
                db.backend,
                again.errors
            );
        }
        let text = std::fs::read_to_string(&csv).unwrap();
        assert!(
            text.contains("\"Comma, Name\"") && text.contains(",81.5,") && text.contains(",79.25,")
        );
    }
}
