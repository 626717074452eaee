//! "Rows to fix": a file with bad rows gives back exactly those rows, every column, in its own
//! format, with what is wrong; fixed, that same file imports with nothing rejected.
#![allow(clippy::unwrap_used)]

use crest_core::Date;
use crest_ingest::{fix, import_file, ImportOptions};
use crest_store::testing::{databases, scratch_dir};

const HEAD: &str = "programme_code,episode_id,nhs_number,family_name,date_of_birth,sex,initiating_event,treatment,event_date,referral_date,status,local_note";

/// Imports `file` as a dry run, with its errors file, and returns the summary and the errors.
fn check(
    s: &mut dyn crest_store::Store,
    file: &std::path::Path,
) -> (crest_ingest::ImportSummary, Vec<u8>) {
    let mut opts = ImportOptions::new(Date::from_ymd(2025, 6, 1).unwrap());
    opts.dry_run = true;
    let sum = import_file(s, file, &opts, None, &mut |_| {}).unwrap();
    let errors = file.with_extension("errors.csv");
    let mut w = csv::Writer::from_path(&errors).unwrap();
    w.write_record(["row", "column", "value", "reason"])
        .unwrap();
    for e in &sum.errors {
        w.write_record([
            e.row.to_string(),
            e.issue.column.clone(),
            e.issue.value.clone(),
            e.issue.message.clone(),
        ])
        .unwrap();
    }
    w.flush().unwrap();
    (sum, std::fs::read(errors).unwrap())
}

#[test]
fn rows_to_fix_come_back_in_the_files_own_format_and_import_once_fixed() {
    for db in databases() {
        let mut s = crest_store::open(&db.url).unwrap();
        s.migrate().unwrap();
        s.upsert_programmes(&[crest_core::Programme::parse([
            "P001", "One", "england", "London", "nurse", "mi",
        ])
        .unwrap()])
            .unwrap();
        let dir = scratch_dir("fix");
        let rows = [
            "P001,F1,9434765919,Good,1960-06-15,female,mi_nstemi,pci,2024-04-01,2024-04-03,referred,kept",
            "P001,F2,9434765870,Bad,1955-01-01,m,mi_stemi,pci,2024-05-01,2024-04-03,referred,a note",
            "P001,F3,9434765854,Good,1950-01-01,male,mi_stemi,pci,2024-05-01,2024-05-03,referred,",
        ];
        // The same rows as CSV and as a workbook.
        let csv_file = dir.join("in.csv");
        std::fs::write(&csv_file, format!("{HEAD}\n{}\n", rows.join("\n"))).unwrap();
        let xlsx_file = dir.join("in.xlsx");
        let mut wb = rust_xlsxwriter::Workbook::new();
        let sheet = wb.add_worksheet();
        for (r, line) in std::iter::once(HEAD).chain(rows).enumerate() {
            for (c, cell) in line.split(',').enumerate() {
                sheet.write_string(r as u32, c as u16, cell).unwrap();
            }
        }
        wb.save(&xlsx_file).unwrap();
        for (file, xlsx) in [(&csv_file, false), (&xlsx_file, true)] {
            let (sum, errors) = check(s.as_mut(), file);
            assert_eq!(sum.rejected, 1, "{:?}", sum.errors);
            // Both of F2's problems (a bad code; referral before the event) in one round.
            assert_eq!(sum.errors.len(), 2, "{:?}", sum.errors);
            let out = fix::rows_to_fix(file, &errors, None).unwrap();
            assert_eq!((out.xlsx, out.rows), (xlsx, 1));
            let fixed = dir.join(if xlsx { "fix.xlsx" } else { "fix.csv" });
            std::fs::write(&fixed, &out.bytes).unwrap();
            // Read back: the header with a problems column, and F2 with every cell it had.
            let (mut source, header) = crest_ingest::read::Source::open(&fixed, None).unwrap();
            assert_eq!(header.last().map(String::as_str), Some("problems"));
            assert_eq!(header.len(), HEAD.split(',').count() + 1);
            let mut cells = Vec::new();
            source.next_row(&mut cells).unwrap().unwrap();
            assert_eq!(&cells[..12].join(","), rows[1]);
            assert!(
                cells[12].contains("sex: ") && cells[12].contains("referral_date: "),
                "{cells:?}"
            );
            assert!(source.next_row(&mut cells).is_none(), "only the row to fix");
            // The user fixes the row in that file and uploads it again as it is.
            let corrected = if xlsx {
                let mut wb = rust_xlsxwriter::Workbook::new();
                let sheet = wb.add_worksheet();
                let mut line = rows[1]
                    .replace(",m,", ",male,")
                    .replace("2024-04-03", "2024-05-03");
                line.push_str(",old problems");
                for (r, l) in [header.join(","), line].iter().enumerate() {
                    for (c, cell) in l.split(',').enumerate() {
                        sheet.write_string(r as u32, c as u16, cell).unwrap();
                    }
                }
                wb.save(&fixed).unwrap();
                fixed.clone()
            } else {
                let text = String::from_utf8(out.bytes.clone()).unwrap();
                let text = text
                    .replace(",m,", ",male,")
                    .replace("2024-04-03", "2024-05-03");
                std::fs::write(&fixed, text).unwrap();
                fixed.clone()
            };
            let (again, _) = check(s.as_mut(), &corrected);
            assert_eq!((again.rows, again.rejected), (1, 0), "{:?}", again.errors);
            assert!(
                !again.header_warnings.iter().any(|w| w.contains("problems")),
                "the problems column is not read: {:?}",
                again.header_warnings
            );
        }
    }
}
