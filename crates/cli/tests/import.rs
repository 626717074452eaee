//! `crest import` end to end: the real binary, real files, SQLite and PostgreSQL.
#![allow(clippy::unwrap_used)]

use crest_store::testing::{databases, scratch_dir, TestDb};
use std::path::{Path, PathBuf};
use std::process::Command;

struct Run {
    code: i32,
    out: String,
}

fn crest(db: &TestDb, args: &[&str]) -> Run {
    let o = Command::new(env!("CARGO_BIN_EXE_crest"))
        .arg("--db")
        .arg(&db.url)
        .args(args)
        .output()
        .unwrap();
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    Run {
        code: o.status.code().unwrap_or(-1),
        out,
    }
}

/// A store with programmes P001 (England) and P002 (Wales).
fn setup(db: &TestDb, dir: &Path) {
    assert_eq!(crest(db, &["init"]).code, 0);
    let p = dir.join("programmes.csv");
    std::fs::write(
        &p,
        "programme_code,name,nation,region,professions,offers\nP001,One,england,South London,nurse;physiotherapist;dietitian,mi;mi_pci;pci;cabg;heart_failure\nP002,Two,wales,North Wales,,\n",
    )
    .unwrap();
    let r = crest(db, &["programmes", "import", p.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.out);
}

const COLS: &[&str] = &[
    "programme_code",
    "episode_id",
    "nhs_number",
    "date_of_birth",
    "postcode",
    "sex",
    "initiating_event",
    "treatment",
    "event_date",
    "referral_date",
    "status",
    "delivery_mode",
    "assessment1_date",
    "core_start_date",
    "core_end_date",
    "assessment2_date",
    "a1_hads_anxiety",
    "non_start_reason",
];

/// A valid completed episode; `id` and `nhs` vary it.
fn row(id: &str, nhs: &str) -> Vec<String> {
    [
        "P001",
        id,
        nhs,
        "15/06/1960",
        "se1 7eh",
        "female",
        "mi_nstemi",
        "pci",
        "01/04/2024",
        "2024-04-03",
        "completed",
        "group_supervised",
        "2024-04-20",
        "2024-05-01",
        "2024-07-01",
        "2024-07-05",
        "9",
        "",
    ]
    .map(str::to_string)
    .to_vec()
}

fn set(r: &mut [String], col: &str, v: &str) {
    let i = COLS.iter().position(|c| *c == col).unwrap();
    r[i] = v.to_string();
}

fn write_csv(dir: &Path, name: &str, rows: &[Vec<String>]) -> PathBuf {
    let mut w = csv::Writer::from_path(dir.join(name)).unwrap();
    w.write_record(COLS).unwrap();
    for r in rows {
        w.write_record(r).unwrap();
    }
    w.flush().unwrap();
    dir.join(name)
}

/// Valid test-range NHS numbers.
const NHS: [&str; 4] = ["9434765919", "9434765870", "9434765862", "9434765854"];

fn count(db: &TestDb) -> u64 {
    crest_store::open(&db.url)
        .unwrap()
        .count_episodes()
        .unwrap()
}

#[test]
fn imports_then_reimports_idempotently_and_never_blanks_values() {
    for db in databases() {
        let dir = scratch_dir("imp");
        setup(&db, &dir);
        let f = write_csv(&dir, "e.csv", &[row("E1", NHS[0]), row("E2", NHS[1])]);
        let r = crest(&db, &["import", f.to_str().unwrap()]);
        assert_eq!(r.code, 0, "{}", r.out);
        assert!(
            r.out
                .contains("2 row(s): 2 imported, 0 updated, 0 unchanged, 0 rejected"),
            "{}",
            r.out
        );
        let r = crest(&db, &["import", f.to_str().unwrap()]);
        assert!(
            r.out
                .contains("0 imported, 0 updated, 2 unchanged, 0 rejected"),
            "{}: {}",
            db.backend,
            r.out
        );
        // A later file with an empty HADS and a changed status must not blank the score.
        let mut e1 = row("E1", NHS[0]);
        set(&mut e1, "a1_hads_anxiety", "");
        set(&mut e1, "assessment2_date", "2024-07-09");
        let f2 = write_csv(&dir, "e2.csv", &[e1]);
        let r = crest(&db, &["import", f2.to_str().unwrap()]);
        assert!(
            r.out.contains("0 imported, 1 updated, 0 unchanged"),
            "{}",
            r.out
        );
        let stored = crest_store::open(&db.url)
            .unwrap()
            .episode("P001", "E1")
            .unwrap()
            .unwrap();
        assert_eq!(
            stored.num(crest_core::Col::A1HadsAnxiety),
            Some(9.0),
            "{}",
            db.backend
        );
        assert_eq!(
            stored
                .date(crest_core::Col::Assessment2Date)
                .unwrap()
                .to_string(),
            "2024-07-09"
        );
        assert_eq!(stored.text(crest_core::Col::Postcode), Some("SE1 7EH"));
        assert_eq!(count(&db), 2);
    }
}

#[test]
fn any_rejected_row_refuses_the_file_unless_skip_invalid() {
    for db in databases() {
        let dir = scratch_dir("bad");
        setup(&db, &dir);
        let mut cases: Vec<(Vec<String>, &str, &str, &str)> = Vec::new();
        let mut add =
            |col: &'static str, v: &'static str, expect_col: &'static str, text: &'static str| {
                let mut r = row(&format!("B{}", cases.len()), NHS[cases.len() % 4]);
                set(
                    &mut r,
                    "event_date",
                    &format!("{:02}/03/2024", cases.len() + 1),
                );
                set(&mut r, col, v);
                // The reported value is the offending cell's, which is not always the one changed.
                let shown = if expect_col == col {
                    v
                } else if expect_col == "a1_hads_anxiety" {
                    "9"
                } else {
                    "2024-05-01"
                };
                cases.push((r, expect_col, shown, text));
            };
        // The codes are named with their labels, so a person can tell which one they meant.
        add(
            "sex",
            "m",
            "sex",
            "'m' is not one of the codes for Sex (column sex); use one of: Male (male), Female (female), Indeterminate (indeterminate), Not known (not_known)",
        );
        add(
            "a1_hads_anxiety",
            "25",
            "a1_hads_anxiety",
            "outside the allowed range 0–21",
        );
        add(
            "a1_hads_anxiety",
            "high",
            "a1_hads_anxiety",
            "is not a number",
        );
        add("event_date", "31/02/2024", "event_date", "not a real date");
        add("event_date", "03/13/2024", "event_date", "US-style");
        add(
            "assessment2_date",
            "01/01/2099",
            "assessment2_date",
            "in the future",
        );
        add(
            "core_end_date",
            "2024-04-30",
            "core_end_date",
            "before core_start_date",
        );
        add("nhs_number", "9434765918", "nhs_number", "check digit");
        add(
            "assessment1_date",
            "",
            "a1_hads_anxiety",
            "needs assessment1_date",
        );
        add(
            "status",
            "referred",
            "core_start_date",
            "status is 'referred'",
        );
        let mut rows: Vec<Vec<String>> = cases.iter().map(|c| c.0.clone()).collect();
        rows.push(row("GOOD", NHS[3]));
        let f = write_csv(&dir, "bad.csv", &rows);
        let r = crest(&db, &["import", f.to_str().unwrap()]);
        assert_eq!(r.code, 1, "{}", r.out);
        for (i, (_, col, v, text)) in cases.iter().enumerate() {
            let line = format!("rejected: row {}, column {col}, value '{v}'", i + 2);
            assert!(
                r.out.contains(&line),
                "{}: missing '{line}' in\n{}",
                db.backend,
                r.out
            );
            assert!(r.out.contains(text), "missing '{text}'");
        }
        assert!(
            r.out.contains(&format!(
                "{} row(s): 1 would be imported, 0 would be updated, 0 unchanged, {} rejected",
                cases.len() + 1,
                cases.len()
            )),
            "{}",
            r.out
        );
        assert!(r.out.contains("nothing was stored"));
        assert_eq!(
            count(&db),
            0,
            "{}: a refused file must change nothing",
            db.backend
        );

        let dry = crest(
            &db,
            &["import", "--dry-run", "--skip-invalid", f.to_str().unwrap()],
        );
        assert!(dry.out.contains("dry run"));
        assert_eq!(count(&db), 0);

        let errors = dir.join("errors.csv");
        let r = crest(
            &db,
            &[
                "import",
                "--skip-invalid",
                "--errors",
                errors.to_str().unwrap(),
                f.to_str().unwrap(),
            ],
        );
        assert_eq!(r.code, 1);
        assert_eq!(count(&db), 1, "{}", r.out);
        let e = std::fs::read_to_string(&errors).unwrap();
        assert!(e.starts_with("row,column,value,reason\n"));
        assert_eq!(e.lines().count(), cases.len() + 1, "{e}");
        assert!(e.contains("2,sex,m,"));
    }
}

/// A rejected row carries the number a spreadsheet shows (header = row 1), the same on the
/// terminal and in the errors file, whatever the line endings or line breaks inside cells.
#[test]
fn rejected_rows_carry_the_spreadsheet_row_number() {
    let db = &databases()[0];
    let dir = scratch_dir("rows");
    setup(db, &dir);
    let head = "programme_code,episode_id,nhs_number,date_of_birth,sex,initiating_event,treatment,event_date,referral_date,status,notes";
    let good = "P001,R1,9434765919,1950-01-01,male,mi_stemi,pci,2024-05-10,2024-05-12,referred";
    let good2 = "P001,R3,9434765862,1950-01-01,male,mi_stemi,pci,2024-05-10,2024-05-12,referred";
    let bad = "P001,R2,9434765870,1950-01-01,x,mi_stemi,pci,2024-05-10,2024-05-12,referred";
    for (name, text) in [
        ("lf.csv", format!("{head}\n{good},\n{good2},\n{bad},\n")),
        (
            "crlf.csv",
            format!("{head}\r\n{good},\r\n{good2},\r\n{bad},\r\n"),
        ),
        (
            "breaks.csv",
            format!("{head}\n{good},\"first line\nsecond line\"\n{good2},\"a\r\nb\"\n{bad},\n"),
        ),
    ] {
        let f = dir.join(name);
        std::fs::write(&f, text).unwrap();
        let errors = dir.join(format!("{name}.errors.csv"));
        let r = crest(
            db,
            &[
                "import",
                "--dry-run",
                f.to_str().unwrap(),
                "--errors",
                errors.to_str().unwrap(),
            ],
        );
        assert!(
            r.out.contains("rejected: row 4, column sex"),
            "{name}: {}",
            r.out
        );
        let written = std::fs::read_to_string(&errors).unwrap();
        assert!(written.contains("\n4,sex,x,"), "{name}: {written}");
    }
    // The same rows as a workbook.
    let f = dir.join("rows.xlsx");
    let mut wb = rust_xlsxwriter::Workbook::new();
    let sheet = wb.add_worksheet();
    for (r, line) in [
        head,
        &format!("{good},"),
        &format!("{good2},"),
        &format!("{bad},"),
    ]
    .iter()
    .enumerate()
    {
        for (c, v) in line.split(',').enumerate() {
            sheet.write_string(r as u32, c as u16, v).unwrap();
        }
    }
    wb.save(&f).unwrap();
    let r = crest(db, &["import", "--dry-run", f.to_str().unwrap()]);
    assert!(
        r.out.contains("rejected: row 4, column sex"),
        "xlsx: {}",
        r.out
    );
}

/// What a file holds but the import cannot use is said, never dropped quietly: a file with no
/// rows, values beyond the last heading, formulas with no saved result, merged cells; many
/// warnings are summarised by column, and all go to --warnings FILE.
#[test]
fn nothing_in_a_file_is_ignored_silently() {
    use rust_xlsxwriter::{Formula, Workbook};
    let db = &databases()[0];
    let dir = scratch_dir("silent");
    setup(db, &dir);
    let head = "programme_code,episode_id,nhs_number,date_of_birth,sex,initiating_event,treatment,event_date,referral_date,status";
    let f = dir.join("empty.csv");
    std::fs::write(&f, format!("{head}\n")).unwrap();
    let r = crest(db, &["import", f.to_str().unwrap()]);
    assert_ne!(r.code, 0, "{}", r.out);
    assert!(r.out.contains("no episode rows"), "{}", r.out);

    // Valid synthetic NHS numbers (9xx test range, modulus 11 check digit).
    let numbers: Vec<String> = (0..200u64)
        .filter_map(|i| {
            let body = format!("9{:08}", 40_000_000 + i * 7);
            let sum: u32 = body
                .bytes()
                .enumerate()
                .map(|(k, b)| (b - b'0') as u32 * (10 - k as u32))
                .sum();
            match 11 - sum % 11 {
                11 => Some(format!("{body}0")),
                10 => None,
                c => Some(format!("{body}{c}")),
            }
        })
        .take(25)
        .collect();
    let mut text = format!("{head}\n");
    for (i, n) in numbers.iter().enumerate() {
        text.push_str(&format!(
            "P001,W{i},{n},1950-01-01,male,mi_stemi,pci,2024-05-10,2024-05-12,referred,stray {i}\n"
        ));
    }
    let f = dir.join("extra.csv");
    std::fs::write(&f, text).unwrap();
    let warnings = dir.join("warnings.csv");
    let r = crest(
        db,
        &[
            "import",
            "--dry-run",
            f.to_str().unwrap(),
            "--warnings",
            warnings.to_str().unwrap(),
        ],
    );
    assert!(
        r.out.contains("25 warning(s) in 1 column(s)")
            && r.out
                .contains("column 11 (no heading): 25 (e.g. row 2, value 'stray 0'"),
        "{}",
        r.out
    );
    assert!(r.out.lines().count() < 15, "summarised: {}", r.out);
    let all = std::fs::read_to_string(&warnings).unwrap();
    assert_eq!(all.lines().count(), 26, "{all}");

    let mut wb = Workbook::new();
    let s = wb.add_worksheet();
    for (c, name) in head
        .split(',')
        .chain(["a1_hads_anxiety", "notes_a", "notes_b"])
        .enumerate()
    {
        s.write_string(0, c as u16, name).unwrap();
    }
    for (c, v) in format!(
        "P001,M1,{},1950-01-01,male,mi_stemi,pci,2024-05-10,2024-05-12,referred",
        numbers[0]
    )
    .split(',')
    .enumerate()
    {
        s.write_string(1, c as u16, v).unwrap();
    }
    // As a program (not Excel) writes it: a formula with no saved result.
    s.set_formula_result_default("");
    s.write_formula(1, 10, Formula::new("=4+5")).unwrap();
    s.merge_range(1, 11, 1, 12, "merged", &Default::default())
        .unwrap();
    let f = dir.join("book.xlsx");
    wb.save(&f).unwrap();
    let r = crest(db, &["import", "--dry-run", f.to_str().unwrap()]);
    assert!(
        r.out.contains("row 2, column a1_hads_anxiety")
            && r.out.contains("formula with no saved result"),
        "{}",
        r.out
    );
    assert!(
        r.out.contains("column notes_b") && r.out.contains("merged cell"),
        "{}",
        r.out
    );
}

/// Two overlapping files imported at the same moment: the second waits for the first, and
/// both succeed (no "database is locked", no bare "db error").
#[test]
fn concurrent_overlapping_imports_take_turns() {
    for db in databases() {
        let dir = scratch_dir("concurrent");
        setup(&db, &dir);
        let mut files = Vec::new();
        for k in 0..4 {
            let mut rows = Vec::new();
            for (i, nhs) in NHS.iter().enumerate() {
                rows.push(row(&format!("C{i}"), nhs));
            }
            files.push(write_csv(&dir, &format!("c{k}.csv"), &rows));
        }
        let handles: Vec<_> = files
            .iter()
            .map(|f| {
                let (url, f) = (db.url.clone(), f.clone());
                std::thread::spawn(move || {
                    Command::new(env!("CARGO_BIN_EXE_crest"))
                        .args(["--db", &url, "import", f.to_str().unwrap()])
                        .output()
                        .unwrap()
                })
            })
            .collect();
        for h in handles {
            let o = h.join().unwrap();
            let out = format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            assert!(o.status.success(), "{}: {out}", db.backend);
        }
        assert_eq!(count(&db), NHS.len() as u64);
    }
}

#[test]
fn duplicates_and_unknown_programmes() {
    for db in databases() {
        let dir = scratch_dir("dup");
        setup(&db, &dir);
        let mut other = row("E9", NHS[1]);
        set(&mut other, "programme_code", "P999");
        // Same NHS number and event date as E1 under another id: probable duplicate.
        let f = write_csv(
            &dir,
            "d.csv",
            &[
                row("E1", NHS[0]),
                row("E1", NHS[2]),
                row("E2", NHS[0]),
                other,
            ],
        );
        let r = crest(&db, &["import", f.to_str().unwrap()]);
        assert!(r.out.contains("row 3, column episode_id, value 'E1': episode_id E1 of programme P001 already appears in row 2"), "{}", r.out);
        assert!(r.out.contains("probable duplicate: episode E1 has the same NHS number and event date as episode E2"), "{}", r.out);
        assert!(r.out.contains("programme P999 is not registered in this store; register it first with `crest programmes import"), "{}", r.out);
        assert!(
            r.out.contains(
                "4 row(s): 1 would be imported, 0 would be updated, 0 unchanged, 3 rejected"
            ),
            "{}",
            r.out
        );
        let forced = write_csv(&dir, "f.csv", &[row("E1", NHS[0]), row("E2", NHS[0])]);
        let r = crest(
            &db,
            &["import", "--allow-duplicates", forced.to_str().unwrap()],
        );
        assert_eq!(r.code, 0, "{}", r.out);
        assert_eq!(count(&db), 2);
    }
}

#[test]
fn files_refused_as_a_whole() {
    for db in databases() {
        let dir = scratch_dir("whole");
        setup(&db, &dir);
        let run = |name: &str, bytes: &[u8]| {
            let p = dir.join(name);
            std::fs::write(&p, bytes).unwrap();
            crest(&db, &["import", p.to_str().unwrap()])
        };
        let no_status = COLS
            .iter()
            .filter(|c| **c != "status")
            .copied()
            .collect::<Vec<_>>()
            .join(",");
        let r = run("missing.csv", format!("{no_status}\n").as_bytes());
        assert!(
            r.out.contains("the required column 'status' is missing"),
            "{}",
            r.out
        );
        assert_eq!(r.code, 1);
        let r = run("empty.csv", b"");
        assert!(r.out.contains("is empty"), "{}", r.out);
        let r = run("fake.csv", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n");
        assert!(
            r.out.contains("is a PDF document, not a CSV or XLSX file"),
            "{}",
            r.out
        );
        let r = run("bin.dat", b"\x00\x01\x02\x03binary");
        assert!(r.out.contains("not a CSV or XLSX file"), "{}", r.out);
        let r = run(
            "header.csv",
            format!("\u{feff}{}\n", COLS.join(",")).as_bytes(),
        );
        assert_ne!(
            r.code, 0,
            "a file with no episodes is not a success: {}",
            r.out
        );
        assert!(r.out.contains("no episode rows"), "{}", r.out);
        // Windows-1252 bytes in a cell: that row is rejected with a plain reason.
        let mut bytes = format!("{}\n", COLS.join(",")).into_bytes();
        let mut bad = row("E1", NHS[0]);
        set(&mut bad, "postcode", "");
        let mut line = bad.join(",").into_bytes();
        line.extend_from_slice(b"\n");
        let pos = line.iter().position(|b| *b == b'f').unwrap(); // "female"
        line[pos] = 0xE9;
        bytes.extend(line);
        let r = run("latin1.csv", &bytes);
        assert!(
            r.out.contains("row 2") && r.out.contains("not UTF-8"),
            "{}",
            r.out
        );
        assert_eq!(count(&db), 0);
    }
}

#[test]
fn xlsx_sheets_date_cells_formulas_and_merged_cells() {
    use rust_xlsxwriter::{ExcelDateTime, Formula, Workbook};
    for db in databases() {
        let dir = scratch_dir("xlsx");
        setup(&db, &dir);
        let mut wb = Workbook::new();
        wb.add_worksheet()
            .set_name("cover")
            .unwrap()
            .merge_range(0, 0, 0, 3, "Exported episodes", &Default::default())
            .unwrap();
        let s = wb.add_worksheet().set_name("Episodes").unwrap();
        for (c, name) in COLS.iter().enumerate() {
            s.write_string(0, c as u16, *name).unwrap();
        }
        for (r, (id, nhs)) in [("X1", NHS[0]), ("X2", NHS[1])].iter().enumerate() {
            let values = row(id, nhs);
            for (c, v) in values.iter().enumerate() {
                let (r, c) = (r as u32 + 1, c as u16);
                match COLS[c as usize] {
                    // A real Excel date cell.
                    "event_date" => {
                        let fmt = rust_xlsxwriter::Format::new().set_num_format("dd/mm/yyyy");
                        s.write_datetime_with_format(
                            r,
                            c,
                            ExcelDateTime::from_ymd(2024, 4, 1).unwrap(),
                            &fmt,
                        )
                        .unwrap();
                    }
                    // A formula whose cached result is the score.
                    "a1_hads_anxiety" => {
                        s.write_formula(r, c, Formula::new("=4+5").set_result("9"))
                            .unwrap();
                    }
                    _ => {
                        s.write_string(r, c, v).unwrap();
                    }
                }
            }
        }
        let f = dir.join("book.xlsx");
        wb.save(&f).unwrap();
        let r = crest(&db, &["import", f.to_str().unwrap()]);
        assert!(
            r.out.contains("the required columns"),
            "first sheet is the cover: {}",
            r.out
        );
        let r = crest(&db, &["import", "--sheet", "nope", f.to_str().unwrap()]);
        assert!(
            r.out
                .contains("has no sheet 'nope'; its sheets are: cover, Episodes"),
            "{}",
            r.out
        );
        let r = crest(&db, &["import", "--sheet", "episodes", f.to_str().unwrap()]);
        assert_eq!(r.code, 0, "{}", r.out);
        assert!(r.out.contains("2 imported"), "{}", r.out);
        let e = crest_store::open(&db.url)
            .unwrap()
            .episode("P001", "X2")
            .unwrap()
            .unwrap();
        assert_eq!(
            e.date(crest_core::Col::EventDate).unwrap().to_string(),
            "2024-04-01"
        );
        assert_eq!(
            e.num(crest_core::Col::A1HadsAnxiety),
            Some(9.0),
            "{}",
            db.backend
        );
    }
}

#[test]
fn templates_import_cleanly_and_programmes_are_validated() {
    let db = crest_store::testing::sqlite_db();
    let dir = scratch_dir("tpl");
    setup(&db, &dir);
    for ext in ["csv", "xlsx"] {
        let t = dir.join(format!("template.{ext}"));
        assert_eq!(
            crest(&db, &["template", "--out", t.to_str().unwrap()]).code,
            0
        );
        // The template (header and notes) holds no episodes yet, and says so.
        let r = crest(&db, &["import", t.to_str().unwrap()]);
        assert_ne!(r.code, 0, "{ext}: {}", r.out);
        assert!(r.out.contains("no episode rows"), "{}", r.out);
    }
    let csv = std::fs::read_to_string(dir.join("template.csv")).unwrap();
    let notes = csv::Reader::from_reader(csv.as_bytes())
        .records()
        .next()
        .unwrap()
        .unwrap();
    assert!(
        notes[0].starts_with("NOTE: Programme: required."),
        "{:?}",
        &notes[0]
    );
    assert!(
        notes[8].contains("one of: male = Male; female = Female"),
        "{:?}",
        &notes[8]
    );
    // The XLSX template offers a drop-down of the codes on every coded column.
    let xlsx = std::fs::File::open(dir.join("template.xlsx")).unwrap();
    let mut zip = zip::ZipArchive::new(xlsx).unwrap();
    let mut sheet = String::new();
    std::io::Read::read_to_string(
        &mut zip.by_name("xl/worksheets/sheet1.xml").unwrap(),
        &mut sheet,
    )
    .unwrap();
    let coded = crest_core::FIELDS
        .iter()
        .filter(|f| matches!(f.kind, crest_core::Kind::Code(_)))
        .count();
    assert_eq!(sheet.matches("<dataValidation ").count(), coded, "{sheet}");
    assert!(
        sheet.contains("\"male,female,indeterminate,not_known\""),
        "{sheet}"
    );
    assert!(!csv.lines().next().unwrap().contains("age_at_event"));
    let r = crest(
        &db,
        &["template", "--out", dir.join("t.pdf").to_str().unwrap()],
    );
    assert_ne!(r.code, 0);
    let bad = dir.join("bad_programmes.csv");
    std::fs::write(
        &bad,
        "programme_code,name,nation,region,professions,offers\nP9,Nine,scotland,X,,\n",
    )
    .unwrap();
    let r = crest(&db, &["programmes", "import", bad.to_str().unwrap()]);
    assert_ne!(r.code, 0);
    assert!(r.out.contains("row 2: nation 'scotland'"), "{}", r.out);
}

#[test]
fn commands_on_an_uninitialised_store_say_what_to_do() {
    let db = crest_store::testing::sqlite_db();
    let r = crest(&db, &["kpis"]);
    assert_eq!(r.code, 2);
    assert!(r.out.contains("run `crest init` first"), "{}", r.out);
}

/// The peak resident memory of a child process, read from /proc while it runs (Linux).
fn peak_rss_mib(child: &mut std::process::Child) -> (std::process::ExitStatus, f64) {
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0u64;
    loop {
        if let Ok(s) = std::fs::read_to_string(&status_file) {
            if let Some(kib) = s
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            {
                peak_kib = peak_kib.max(kib);
            }
        }
        if let Some(status) = child.try_wait().unwrap() {
            return (status, peak_kib as f64 / 1024.0);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Writes `mib` MiB of valid episodes with ids from `first`; returns the path and row count.
/// An extra (ignored) notes column makes each row long, so the file is big without the test
/// spending minutes validating millions of rows.
fn big_file(dir: &Path, name: &str, mib: usize, first: u64) -> (PathBuf, usize) {
    let path = dir.join(name);
    let mut w = csv::Writer::from_writer(std::io::BufWriter::new(
        std::fs::File::create(&path).unwrap(),
    ));
    let mut header: Vec<&str> = COLS.to_vec();
    header.push("notes");
    w.write_record(&header).unwrap();
    let notes = "free text that crest ignores ".repeat(24);
    let (mut rows, mut n, mut bytes) = (0usize, first, 0usize);
    while bytes < mib * 1024 * 1024 {
        n += 1;
        let digits: Vec<u32> = n.to_string().bytes().map(|b| u32::from(b - b'0')).collect();
        let Some(check) = crest_core::checks::nhs_check_digit(&digits) else {
            continue;
        };
        let mut r = row(&format!("E{n}"), &format!("{n}{check}"));
        r.push(notes.clone());
        bytes += r.iter().map(|c| c.len() + 1).sum::<usize>();
        w.write_record(&r).unwrap();
        rows += 1;
    }
    w.flush().unwrap();
    (path, rows)
}

/// Checks `path` against a fresh store (a dry run: reading, validation and duplicate
/// detection, without SQLite's page cache); returns the peak memory in MiB.
fn import_peak(path: &Path, rows: usize) -> f64 {
    let db = crest_store::testing::sqlite_db();
    setup(&db, path.parent().unwrap());
    let mut child = Command::new(env!("CARGO_BIN_EXE_crest"))
        .args([
            "--db",
            &db.url,
            "import",
            "--dry-run",
            path.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut out).unwrap();
        out
    });
    let (status, peak) = peak_rss_mib(&mut child);
    let out = reader.join().unwrap();
    assert!(status.success(), "{out}");
    assert!(
        out.contains(&format!("{rows} row(s): {rows} would be imported")),
        "{out}"
    );
    assert!(peak > 1.0, "the memory probe read nothing");
    peak
}

/// Tests that measure a process's memory take turns with tests that load the machine: a
/// busy machine lets the import's queues fill, which is not what they measure.
static MEASURING: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn a_200_mb_file_streams_in_flat_memory() {
    let _turn = MEASURING.lock().unwrap_or_else(|e| e.into_inner());
    let dir = scratch_dir("big");
    let (small, small_rows) = big_file(&dir, "small.csv", 50, 900_000_000);
    let (big, big_rows) = big_file(&dir, "big.csv", 200, 900_000_000);
    assert!(std::fs::metadata(&big).unwrap().len() >= 200 * 1024 * 1024);
    // Each the lower of two runs: how full the queues between the reading and the writing
    // thread get depends on scheduling, which moves a single run's peak by a few MiB.
    let lower = |a: f64, b: f64| a.min(b);
    let small_peak = lower(
        import_peak(&small, small_rows),
        import_peak(&small, small_rows),
    );
    let big_peak = lower(import_peak(&big, big_rows), import_peak(&big, big_rows));
    println!(
        "peak memory: {small_peak:.0} MiB for 50 MiB ({small_rows} rows), \
         {big_peak:.0} MiB for 200 MiB ({big_rows} rows)"
    );
    // Rows are never held: 150 MiB more file may cost only the duplicate-detection keys
    // (under 100 bytes per episode: about 17 MiB here).
    assert!(
        big_peak - small_peak < 24.0,
        "memory grew from {small_peak:.0} to {big_peak:.0} MiB"
    );
    // A whole debug-built process, allocator arenas and SQLite's page cache included:
    // measured at 61–66 MiB on the 2-core machine (2026-12-07), so 72 leaves room for noise
    // while a file held in memory (200 MiB) would still fail.
    assert!(big_peak < 72.0, "peak memory {big_peak:.0} MiB");
    let _ = std::fs::remove_file(&small);
    let _ = std::fs::remove_file(&big);
}

#[test]
fn imports_are_logged_and_audit_verify_detects_tampering() {
    for db in databases() {
        let dir = scratch_dir("audit");
        setup(&db, &dir);
        let f = dir.join("e.csv");
        std::fs::write(
            &f,
            "programme_code,episode_id,nhs_number,date_of_birth,sex,initiating_event,treatment,event_date,referral_date,status\n\
             P001,A1,9434765919,1950-01-01,male,mi_stemi,pci,2025-01-10,2025-01-12,referred\n",
        )
        .unwrap();
        let r = crest(&db, &["import", f.to_str().unwrap()]);
        assert_eq!(r.code, 0, "{}", r.out);
        let r = crest(&db, &["import", "--dry-run", f.to_str().unwrap()]);
        assert_eq!(r.code, 0, "{}", r.out);
        let r = crest(&db, &["audit", "verify"]);
        assert_eq!(r.code, 0, "{}", r.out);
        assert!(
            r.out.contains("access log intact: 1 entries"),
            "{}: {}",
            db.backend,
            r.out
        );
        let log = crest_store::open(&db.url).unwrap().access_log(10).unwrap();
        assert_eq!(log[0].action, "import");
        assert_eq!(log[0].target, "e.csv");
        assert!(log[0].detail.contains("1 new"), "{:?}", log[0]);
        assert!(
            !format!("{log:?}").contains("9434765919"),
            "no identifiers in the log"
        );
        db.execute_raw("UPDATE access_log SET detail = '0 rows' WHERE seq = 1");
        let r = crest(&db, &["audit", "verify"]);
        assert_eq!(r.code, 1, "{}", r.out);
        assert!(
            r.out.contains("BROKEN") && r.out.contains("entry 1"),
            "{}",
            r.out
        );
    }
}

/// privacy.md, "Durability": an import's log entry is written in the import's transaction. With
/// the log made unwritable, the import must store nothing (before, the rows were committed and
/// only then the log failed).
#[test]
fn an_import_is_never_stored_without_its_log_entry() {
    for db in databases() {
        let dir = scratch_dir("atomic-log");
        setup(&db, &dir);
        db.execute_raw(if db.backend == "postgres" {
            "CREATE FUNCTION crest_test_no_log() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'the log is broken'; END $$ LANGUAGE plpgsql; \
             CREATE TRIGGER no_log BEFORE INSERT ON access_log FOR EACH ROW EXECUTE FUNCTION crest_test_no_log()"
        } else {
            "CREATE TRIGGER no_log BEFORE INSERT ON access_log BEGIN SELECT RAISE(ABORT, 'the log is broken'); END"
        });
        let f = dir.join("e.csv");
        std::fs::write(
            &f,
            "programme_code,episode_id,nhs_number,date_of_birth,sex,initiating_event,treatment,event_date,referral_date,status\n\
             P001,A1,9434765919,1950-01-01,male,mi_stemi,pci,2025-01-10,2025-01-12,referred\n",
        )
        .unwrap();
        let r = crest(&db, &["import", f.to_str().unwrap()]);
        assert_ne!(r.code, 0, "{}", r.out);
        assert_eq!(
            count(&db),
            0,
            "{}: rows stored without a log entry",
            db.backend
        );
    }
}

#[test]
fn keys_new_writes_a_private_key_file_once_and_never_prints_the_secret() {
    use std::os::unix::fs::PermissionsExt;
    let db = crest_store::testing::sqlite_db();
    let dir = scratch_dir("keys");
    let path = dir.join("submission.key");
    let r = crest(&db, &["keys", "new", "--out", path.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.out);
    let text = std::fs::read_to_string(&path).unwrap();
    let key = crest_privacy::Key::parse(&text).unwrap();
    assert!(r.out.contains(key.id()), "{}", r.out);
    let secret = text
        .lines()
        .find_map(|l| l.strip_prefix("secret: "))
        .unwrap();
    assert!(!r.out.contains(secret));
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // Never overwritten; a second key differs.
    let r = crest(&db, &["keys", "new", "--out", path.to_str().unwrap()]);
    assert_ne!(r.code, 0);
    assert!(r.out.contains("never overwrites"), "{}", r.out);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    let other = dir.join("other.key");
    assert_eq!(
        crest(&db, &["keys", "new", "--out", other.to_str().unwrap()]).code,
        0
    );
    assert_ne!(std::fs::read_to_string(&other).unwrap(), text);
}

#[test]
fn submission_build_and_receive_from_the_command_line() {
    for (local, national) in databases().into_iter().zip(databases()) {
        let dir = scratch_dir("cli-sub");
        setup(&local, &dir);
        let f = dir.join("e.csv");
        std::fs::write(
            &f,
            "programme_code,episode_id,nhs_number,family_name,date_of_birth,sex,initiating_event,treatment,event_date,referral_date,status\n\
             P001,A1,9434765919,Zanzibarson,1950-01-01,male,mi_stemi,pci,2024-05-10,2024-05-12,referred\n\
             P002,B1,9434765870,Quillon,1950-01-01,male,mi_stemi,pci,2024-05-10,2024-05-12,referred\n",
        )
        .unwrap();
        assert_eq!(crest(&local, &["import", f.to_str().unwrap()]).code, 0);
        let (sk, nk) = (dir.join("submission.key"), dir.join("national.key"));
        for k in [&sk, &nk] {
            assert_eq!(
                crest(&local, &["keys", "new", "--out", k.to_str().unwrap()]).code,
                0
            );
        }
        // Each programme's own signing key; the public key is printed to register nationally.
        let signing = |programme: &str, name: &str| {
            let path = dir.join(name);
            let r = crest(
                &local,
                &[
                    "keys",
                    "new",
                    "--signing",
                    "--programme",
                    programme,
                    "--out",
                    path.to_str().unwrap(),
                ],
            );
            assert_eq!(r.code, 0, "{}", r.out);
            let public = r
                .out
                .lines()
                .find_map(|l| l.strip_prefix("public key: "))
                .unwrap()
                .to_string();
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(
                !r.out.contains(text.lines().last().unwrap()),
                "the secret is never printed"
            );
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            (path, public)
        };
        let (p001_signing, p001_public) = signing("P001", "p001.signing");
        let (p002_signing, p002_public) = signing("P002", "p002.signing");
        // Someone other than P002 making a key that says P002: never registered nationally.
        let (forged_signing, _) = signing("P002", "forged-p002.signing");
        let out = dir.join("p002.jsonl");
        let build_signed = |programme: &str, out: &Path, signing_key: &Path| {
            crest(
                &local,
                &[
                    "submission",
                    "build",
                    "--programme",
                    programme,
                    "--from",
                    "2024-04-01",
                    "--to",
                    "2025-03-31",
                    "--key",
                    sk.to_str().unwrap(),
                    "--signing-key",
                    signing_key.to_str().unwrap(),
                    "--out",
                    out.to_str().unwrap(),
                ],
            )
        };
        let build = |programme: &str, out: &Path| {
            let key = if programme == "P001" {
                &p001_signing
            } else {
                &p002_signing
            };
            build_signed(programme, out, key)
        };
        let r = build("P002", &out);
        assert_ne!(r.code, 0);
        assert!(r.out.contains("no data sharing agreement"), "{}", r.out);
        let r = crest(
            &local,
            &[
                "agreements",
                "add",
                "--id",
                "ncpcr",
                "--recipient",
                "National audit",
                "--legal-basis",
                "CAG 99/CAG/0001",
                "--from",
                "2020-01-01",
                "--to",
                "2099-12-31",
                "--fields",
                "sex,nhs_number",
            ],
        );
        assert_ne!(r.code, 0, "a tier L field can never be approved");
        assert!(
            r.out.contains("nhs_number") && r.out.contains("tier L"),
            "{}",
            r.out
        );
        let r = crest(
            &local,
            &[
                "agreements",
                "add",
                "--id",
                "ncpcr",
                "--recipient",
                "National audit",
                "--legal-basis",
                "CAG 99/CAG/0001",
                "--from",
                "2020-01-01",
                "--to",
                "2099-12-31",
            ],
        );
        assert_eq!(r.code, 0, "{}", r.out);
        let r = build("P001", &dir.join("p001.jsonl"));
        assert_ne!(r.code, 0);
        assert!(r.out.contains("National Data Opt-out"), "{}", r.out);
        let r = build_signed("P002", &out, &p001_signing);
        assert_ne!(r.code, 0, "P001's key cannot sign for P002");
        assert!(r.out.contains("is not P002's"), "{}", r.out);
        let r = build("P002", &out);
        assert_eq!(r.code, 0, "{}", r.out);
        assert!(r.out.contains("1 episode(s)"), "{}", r.out);
        let text = std::fs::read_to_string(&out).unwrap();
        // P001 builds its own, correctly signed file, and relabels it as P002's.
        let p001_file = dir.join("p001-as-p002.jsonl");
        let ndoo = dir.join("ndoo.csv");
        std::fs::write(&ndoo, "nhs_number,checked_on\n9000000009,2026-01-01\n").unwrap();
        let r = crest(
            &local,
            &[
                "submission",
                "build",
                "--programme",
                "P001",
                "--from",
                "2024-04-01",
                "--to",
                "2025-03-31",
                "--key",
                sk.to_str().unwrap(),
                "--signing-key",
                p001_signing.to_str().unwrap(),
                "--ndoo-opted-out",
                ndoo.to_str().unwrap(),
                "--ndoo-max-age",
                "100000",
                "--out",
                p001_file.to_str().unwrap(),
            ],
        );
        assert_eq!(r.code, 0, "{}", r.out);
        let p001_text = std::fs::read_to_string(&p001_file).unwrap();
        std::fs::write(&p001_file, p001_text.replace("\"P001\"", "\"P002\"")).unwrap();
        let forged = dir.join("forged-p002.jsonl");
        assert_eq!(build_signed("P002", &forged, &forged_signing).code, 0);
        assert!(!text.contains("9434765870") && !text.contains("Quillon"));

        // The national side: a separate database.
        assert_eq!(crest(&national, &["init", "--national"]).code, 0);
        let r = crest(&national, &["init"]);
        assert_ne!(
            r.code, 0,
            "a local store cannot share the national database"
        );
        let p = dir.join("programmes.csv");
        assert_eq!(
            crest(
                &national,
                &["programmes", "import", "--national", p.to_str().unwrap()]
            )
            .code,
            0
        );
        let receive = || {
            crest(
                &national,
                &[
                    "submission",
                    "receive",
                    out.to_str().unwrap(),
                    "--submission-key",
                    sk.to_str().unwrap(),
                    "--national-key",
                    nk.to_str().unwrap(),
                ],
            )
        };
        let receive_file = |file: &Path| {
            crest(
                &national,
                &[
                    "submission",
                    "receive",
                    file.to_str().unwrap(),
                    "--submission-key",
                    sk.to_str().unwrap(),
                    "--national-key",
                    nk.to_str().unwrap(),
                ],
            )
        };
        let r = receive();
        assert_eq!(r.code, 1, "no key is registered for P002 yet: {}", r.out);
        assert!(r.out.contains("no signing key registered"), "{}", r.out);
        for (programme, public) in [("P001", &p001_public), ("P002", &p002_public)] {
            let r = crest(
                &national,
                &[
                    "programmes",
                    "keys",
                    "add",
                    "--programme",
                    programme,
                    "--public-key",
                    public,
                ],
            );
            assert_eq!(r.code, 0, "{}", r.out);
        }
        for attack in [&p001_file, &forged] {
            let r = receive_file(attack);
            assert_eq!(r.code, 1, "{}", r.out);
            assert!(
                r.out.contains("refused, nothing was stored")
                    && r.out.contains("signature does not verify"),
                "{}",
                r.out
            );
        }
        let r = receive();
        assert_eq!(r.code, 0, "{}", r.out);
        assert!(r.out.contains("stored 1 episode(s)"), "{}", r.out);
        assert!(receive().out.contains("already received"));
        std::fs::write(&out, text.replace("\"male\"", "\"female\"")).unwrap();
        let r = receive();
        assert_eq!(r.code, 1);
        assert!(
            r.out.contains("refused, nothing was stored") && r.out.contains("checksum"),
            "{}",
            r.out
        );
        // Revoked: P002's own properly signed file is refused from then on.
        let list = crest(&national, &["programmes", "keys", "list"]);
        assert!(list.out.contains("in force"), "{}", list.out);
        let p002_id = list
            .out
            .lines()
            .find(|l| l.contains(" P002 "))
            .and_then(|l| l.split_whitespace().next())
            .unwrap()
            .to_string();
        assert_eq!(
            crest(&national, &["programmes", "keys", "revoke", &p002_id]).code,
            0
        );
        let fresh = dir.join("p002-again.jsonl");
        assert_eq!(build("P002", &fresh).code, 0);
        let r = receive_file(&fresh);
        assert_eq!(r.code, 1, "{}", r.out);
        assert!(r.out.contains("was revoked"), "{}", r.out);
        // Rotation: a new key registered for P002 signs from now on.
        let (rotated, rotated_public) = signing("P002", "p002-rotated.signing");
        let r = crest(
            &national,
            &[
                "programmes",
                "keys",
                "add",
                "--programme",
                "P002",
                "--public-key",
                &rotated_public,
            ],
        );
        assert_eq!(r.code, 0, "{}", r.out);
        assert_eq!(build_signed("P002", &fresh, &rotated).code, 0);
        let r = receive_file(&fresh);
        assert_eq!(r.code, 0, "{}", r.out);
        // API tokens: made with an expiry, listed without the token, revoked by id.
        let r = crest(
            &national,
            &["tokens", "new", "--programme", "P002", "--days", "30"],
        );
        assert_eq!(r.code, 0, "{}", r.out);
        let token = r.out.trim().rsplit(' ').next().unwrap().to_string();
        assert_eq!(token.len(), 64, "{}", r.out);
        assert!(r.out.contains("valid until"), "{}", r.out);
        let r = crest(&national, &["tokens", "list"]);
        assert_eq!(r.code, 0, "{}", r.out);
        assert!(
            !r.out.contains(&token) && r.out.contains("P002") && r.out.contains("works"),
            "{}",
            r.out
        );
        let id = r.out.split_whitespace().next().unwrap().to_string();
        assert_eq!(crest(&national, &["tokens", "revoke", &id]).code, 0);
        assert!(crest(&national, &["tokens", "list"])
            .out
            .contains("revoked"));
        let r = crest(&national, &["tokens", "revoke", &id]);
        assert_ne!(r.code, 0, "{}", r.out);
        assert!(r.out.contains("no working token"), "{}", r.out);
        let mut n = crest_store::NationalStore::open(&national.url).unwrap();
        assert!(matches!(
            n.api_token_access(&token, &crest_store::utc_now()).unwrap(),
            crest_store::national::TokenAccess::Revoked(_)
        ));
        drop(n);
        // KPIs from the national store, and re-based thresholds saved for next year.
        let r = crest(
            &national,
            &[
                "kpis",
                "--national",
                "--from",
                "2024-04-01",
                "--to",
                "2025-03-31",
            ],
        );
        assert_eq!(r.code, 0, "{}", r.out);
        assert!(r.out.contains("P002"), "{}", r.out);
        let saved = dir.join("thresholds-next.json");
        let rebase = [
            "kpis",
            "--national",
            "--rebase",
            "--from",
            "2024-04-01",
            "--to",
            "2025-03-31",
            "--save",
            saved.to_str().unwrap(),
        ];
        let r = crest(&national, &rebase);
        assert_eq!(r.code, 0, "{}", r.out);
        assert!(
            r.out.contains("re-based") && r.out.contains("wales"),
            "{}",
            r.out
        );
        let t = crest_stats::kpis::Thresholds::from_json(&std::fs::read_to_string(&saved).unwrap())
            .unwrap();
        assert_eq!(t.mdt, 3.0);
        let r = crest(&national, &rebase);
        assert_ne!(r.code, 0, "never overwritten");
        // The build is in the local access log, and the chain holds.
        let r = crest(&local, &["audit", "verify"]);
        assert_eq!(r.code, 0, "{}", r.out);
        let log = crest_store::open(&local.url)
            .unwrap()
            .access_log(5)
            .unwrap();
        assert!(log
            .iter()
            .any(|e| e.action == "submission" && e.programme == "P002"));
    }
}

#[test]
fn the_demo_builds_both_sides_and_the_national_store_holds_no_identifiers() {
    let _turn = MEASURING.lock().unwrap_or_else(|e| e.into_inner());
    let db = crest_store::testing::sqlite_db();
    let dir = scratch_dir("demo");
    let d = dir.join("demo");
    let r = crest(
        &db,
        &[
            "demo",
            "--no-serve",
            "--programmes",
            "6",
            "--episodes",
            "1500",
            "--dir",
            d.to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 0, "{}", r.out);
    assert!(
        r.out.contains("18 submissions (6 programmes, 3 years)") && r.out.contains("demo-analyst"),
        "{}",
        r.out
    );
    // Every receipt is in the national access log, and `audit verify` reads that log when
    // given the national store.
    let national_db = format!("sqlite:{}", d.join("crest-national.sqlite").display());
    let log = crest_store::NationalStore::open(&national_db)
        .unwrap()
        .access_log(100)
        .unwrap();
    assert_eq!(
        log.iter()
            .filter(|e| e.action == "receipt" && e.outcome == "ok")
            .count(),
        18,
        "{log:?}"
    );
    let v = Command::new(env!("CARGO_BIN_EXE_crest"))
        .args(["--db", &national_db, "audit", "verify"])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&v.stdout);
    assert!(
        v.status.success() && out.contains("access log intact: 18 entries"),
        "{out}"
    );
    // Every synthetic identifier, in every form, is absent from the national store's files and
    // from every submission.
    let mut national = std::fs::read(d.join("crest-national.sqlite")).unwrap();
    national.extend(std::fs::read(d.join("crest-national.sqlite-wal")).unwrap_or_default());
    for entry in std::fs::read_dir(d.join("submissions")).unwrap() {
        national.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    let mut reader = csv::Reader::from_path(d.join("episodes.csv")).unwrap();
    let headers = reader.headers().unwrap().clone();
    let col = |n: &str| headers.iter().position(|h| h == n).unwrap();
    let cols = [
        "nhs_number",
        "family_name",
        "given_name",
        "date_of_birth",
        "postcode",
        "local_patient_id",
        "episode_id",
    ]
    .map(col);
    // Every identifier (NHS numbers also with spaces), by length; values under 6 characters
    // (a 3-letter name) could occur by chance inside hex pseudonyms.
    let mut wanted: std::collections::HashMap<usize, std::collections::HashSet<Vec<u8>>> =
        Default::default();
    for row in reader.records() {
        let row = row.unwrap();
        let nhs = &row[cols[0]];
        let spaced = format!("{} {} {}", &nhs[..3], &nhs[3..6], &nhs[6..]);
        for v in [nhs, spaced.as_str()]
            .into_iter()
            .chain(cols[1..].iter().map(|&c| &row[c]))
        {
            if v.len() >= 6 {
                wanted
                    .entry(v.len())
                    .or_default()
                    .insert(v.as_bytes().to_vec());
            }
        }
    }
    let checked: usize = wanted.values().map(|s| s.len()).sum();
    assert!(checked > 2_000, "{checked}");
    for (len, set) in &wanted {
        for w in national.windows(*len) {
            assert!(
                !set.contains(w),
                "'{}' reached the national side",
                String::from_utf8_lossy(w)
            );
        }
    }
}

/// Runs crest and samples its resident memory until it exits: (run, peak resident MB).
fn crest_peak_mb(db: &TestDb, args: &[&str]) -> (Run, u64) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_crest"))
        .arg("--db")
        .arg(&db.url)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let status = format!("/proc/{}/status", child.id());
    let mut peak_kb = 0u64;
    loop {
        // VmHWM is the process's own high-water mark, so short peaks between samples count.
        if let Ok(s) = std::fs::read_to_string(&status) {
            if let Some(kb) = s
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
            {
                peak_kb = peak_kb.max(kb);
            }
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let o = child.wait_with_output().unwrap();
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (
        Run {
            code: o.status.code().unwrap_or(-1),
            out,
        },
        peak_kb / 1024,
    )
}

/// A real workbook (the dataset's header and one row, from rust_xlsxwriter) with one part
/// replaced by `write`'s bytes.
fn workbook_with_part(part: &str, write: &dyn Fn(&mut dyn std::io::Write)) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut wb = rust_xlsxwriter::Workbook::new();
    let ws = wb.add_worksheet();
    for (c, name) in COLS.iter().enumerate() {
        ws.write_string(0, c as u16, *name).unwrap();
        ws.write_string(1, c as u16, "x").unwrap();
    }
    let bytes = wb.save_to_buffer().unwrap();
    let mut src = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(9))
        .large_file(true);
    let mut replaced = false;
    for i in 0..src.len() {
        let mut f = src.by_index(i).unwrap();
        let name = f.name().unwrap().to_string();
        out.start_file(name.as_str(), opts).unwrap();
        if name == part {
            write(&mut out);
            replaced = true;
        } else {
            let mut buf = Vec::new();
            f.read_to_end(&mut buf).unwrap();
            out.write_all(&buf).unwrap();
        }
    }
    if !replaced {
        out.start_file(part, opts).unwrap();
        write(&mut out);
    }
    out.finish().unwrap().into_inner()
}

/// Decompression bombs and sheets whose extent is huge are refused before they are unpacked
/// or laid out, with crest staying far under 200 MB; an ordinary workbook still imports.
#[test]
fn xlsx_bombs_are_refused_in_little_memory() {
    let _turn = MEASURING.lock().unwrap_or_else(|e| e.into_inner());
    let db = crest_store::testing::sqlite_db();
    let dir = scratch_dir("xlsx-bombs");
    setup(&db, &dir);
    // One shared string of 512 MiB (the file is well under 1 MB).
    let strings = workbook_with_part("xl/sharedStrings.xml", &|w| {
        w.write_all(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><sst xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\" count=\"1\" uniqueCount=\"1\"><si><t>").unwrap();
        let block = vec![b'A'; 1 << 20];
        for _ in 0..512 {
            w.write_all(&block).unwrap();
        }
        w.write_all(b"</t></si></sst>").unwrap();
    });
    // A sheet of 512 MiB of rows.
    let sheet = workbook_with_part("xl/worksheets/sheet1.xml", &|w| {
        w.write_all(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><worksheet xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\"><sheetData>").unwrap();
        let row = b"<row><c t=\"inlineStr\"><is><t>x</t></is></c></row>".repeat(20_000);
        let mut written = 0;
        while written < 1 << 29 {
            w.write_all(&row).unwrap();
            written += row.len();
        }
        w.write_all(b"</sheetData></worksheet>").unwrap();
    });
    // Two cells far apart: a tiny file whose extent is the whole sheet.
    let extent = workbook_with_part("xl/worksheets/sheet1.xml", &|w| {
        w.write_all(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><worksheet xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\"><sheetData>\
            <row r=\"1\"><c r=\"A1\" t=\"inlineStr\"><is><t>programme_code</t></is></c></row>\
            <row r=\"1048576\"><c r=\"XFD1048576\" t=\"inlineStr\"><is><t>x</t></is></c></row></sheetData></worksheet>").unwrap();
    });
    for (name, bytes, want) in [
        ("strings.xlsx", strings, "decompression bomb"),
        ("sheet.xlsx", sheet, "decompression bomb"),
        ("extent.xlsx", extent, "beyond the 1000 columns"),
    ] {
        assert!(bytes.len() < 15 << 20, "{name} is {} bytes", bytes.len());
        let f = dir.join(name);
        std::fs::write(&f, bytes).unwrap();
        let (r, peak) = crest_peak_mb(&db, &["import", f.to_str().unwrap()]);
        assert_ne!(r.code, 0, "{name}: {}", r.out);
        assert!(r.out.contains(want), "{name}: {}", r.out);
        assert!(peak < 200, "{name}: crest reached {peak} MB");
    }
    // An ordinary workbook still imports.
    let mut wb = rust_xlsxwriter::Workbook::new();
    let ws = wb.add_worksheet();
    let row = [
        "P001",
        "B1",
        "9434765919",
        "1950-01-01",
        "SE1 7EH",
        "male",
        "mi_stemi",
        "pci",
        "2024-05-10",
        "2024-05-12",
        "referred",
        "",
        "",
        "",
    ];
    for (c, (name, value)) in COLS.iter().zip(row).enumerate() {
        ws.write_string(0, c as u16, *name).unwrap();
        ws.write_string(1, c as u16, value).unwrap();
    }
    let ok = dir.join("ok.xlsx");
    wb.save(&ok).unwrap();
    let r = crest(&db, &["import", ok.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.out);
    assert!(
        r.out.contains("imported 1") || r.out.contains("1 imported"),
        "{}",
        r.out
    );
}

/// privacy.md, "Files holding identifiable data": what crest writes from identifiable data
/// (the store, rejected rows, warnings) is readable by its owner only,
/// while a template (meant to be shared) keeps the usual permissions.
#[test]
fn files_holding_identifiable_data_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch_dir("cli-modes");
    let db = crest_store::testing::sqlite_db();
    let store = std::path::PathBuf::from(db.url.trim_start_matches("sqlite:"));
    let _ = std::fs::remove_file(&store);
    setup(&db, &dir);
    let f = dir.join("e.csv");
    std::fs::write(
        &f,
        "programme_code,episode_id,nhs_number,family_name,date_of_birth,sex,initiating_event,treatment,event_date,referral_date,status\n\
         P001,A1,9434765919,Zanzibarson,1950-01-01,male,mi_stemi,pci,2024-05-10,2024-05-12,referred\n\
         P001,A2,123,Quillon,1950-01-01,male,mi_stemi,pci,2024-05-10,2024-05-12,referred\n",
    )
    .unwrap();
    let (errors, warnings) = (dir.join("errors.csv"), dir.join("warnings.csv"));
    let r = crest(
        &db,
        &[
            "import",
            f.to_str().unwrap(),
            "--skip-invalid",
            "--errors",
            errors.to_str().unwrap(),
            "--warnings",
            warnings.to_str().unwrap(),
        ],
    );
    assert!(
        std::fs::read_to_string(&errors)
            .unwrap()
            .contains("nhs_number"),
        "{}",
        r.out
    );
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    for p in [
        // (its write-ahead log is gone once crest closes it; the store's tests check it open)
        store.clone(),
        errors.clone(),
        warnings.clone(),
    ] {
        assert_eq!(mode(&p), 0o600, "{}", p.display());
    }
    let template = dir.join("template.csv");
    assert_eq!(
        crest(&db, &["template", "--out", template.to_str().unwrap()]).code,
        0
    );
    assert_ne!(mode(&template) & 0o044, 0, "a template is for sharing");
}
