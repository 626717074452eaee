//! `crest expected import` and `crest ascertainment` end to end, on SQLite and PostgreSQL:
//! two years of synthetic episodes with the expected-patients file the generator writes, every
//! figure checked against an independent recomputation from the files (`ascertainment.py`,
//! scipy's chi-square quantiles for the intervals), loading twice changing nothing, and bad
//! files refused in one round with nothing changed.
#![allow(clippy::unwrap_used)]

use crest_core::Date;
use crest_store::testing::{databases, scratch_dir};
use serde_json::{json, Value};
use std::io::Write;
use std::process::{Command, Stdio};

fn crest(db: &str, args: &[&str]) -> (i32, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_crest"))
        .arg("--db")
        .arg(db)
        .args(args)
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).to_string(),
        String::from_utf8_lossy(&o.stderr).to_string(),
    )
}

/// The oracle's rows; `None` (and a note) when python3 lacks scipy outside CI.
fn oracle(input: &Value) -> Option<Vec<Value>> {
    let script = format!("{}/tests/ascertainment.py", env!("CARGO_MANIFEST_DIR"));
    let mut child = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    child
        .stdin
        .take()?
        .write_all(input.to_string().as_bytes())
        .ok()?;
    let out = child.wait_with_output().ok()?;
    if !out.status.success() {
        let why = String::from_utf8_lossy(&out.stderr).to_string();
        if why.contains("No module named") && std::env::var_os("CI").is_none() {
            eprintln!("skipped: python3 needs scipy ({why})");
            return None;
        }
        panic!("ascertainment.py failed: {why}");
    }
    Some(
        serde_json::from_slice::<Value>(&out.stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .clone(),
    )
}

#[test]
fn ascertainment_matches_a_recomputation_from_the_files() {
    for db in databases() {
        let dir = scratch_dir("ascertainment");
        let cfg = crest_ingest::synth::Config {
            programmes: 6,
            episodes: 6_000,
            seed: 11,
            period: crest_core::Period {
                from: Date::from_ymd(2023, 4, 1).unwrap(),
                to: Date::from_ymd(2025, 3, 31).unwrap(),
            },
            today: Date::from_ymd(2025, 9, 1).unwrap(),
        };
        crest_ingest::synth::write(&dir, &cfg).unwrap();
        let path = |f: &str| dir.join(f).to_str().unwrap().to_string();
        assert_eq!(crest(&db.url, &["init"]).0, 0);
        assert_eq!(
            crest(&db.url, &["programmes", "import", &path("programmes.csv")]).0,
            0
        );
        let (code, out, err) = crest(&db.url, &["import", &path("episodes.csv")]);
        assert_eq!(code, 0, "{out}{err}");

        // Before any file: a clear refusal.
        let (code, _, err) = crest(&db.url, &["ascertainment"]);
        assert_ne!(code, 0);
        assert!(err.contains("no expected patients"), "{err}");

        // 6 programmes × 8 quarters × 5 conditions; a second load changes nothing.
        let (code, out, err) = crest(&db.url, &["expected", "import", &path("expected.csv")]);
        assert_eq!(code, 0, "{err}");
        assert!(
            out.contains("240 row(s) added, 0 changed, 0 unchanged"),
            "{out}"
        );
        let (_, out, _) = crest(&db.url, &["expected", "import", &path("expected.csv")]);
        assert!(
            out.contains("0 row(s) added, 0 changed, 240 unchanged"),
            "{out}"
        );

        let (from, to) = ("2024-04-01", "2025-03-31");
        let (code, out, err) = crest(
            &db.url,
            &[
                "ascertainment",
                "--from",
                from,
                "--to",
                to,
                "--format",
                "json",
            ],
        );
        assert_eq!(code, 0, "{err}");
        let before = out.clone();
        let got: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            got["quarters"],
            json!(["2024-Q2", "2024-Q3", "2024-Q4", "2025-Q1"])
        );
        let got: Vec<&Value> = got["rows"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["expected"].as_f64().unwrap() > 0.0)
            .collect();
        let Some(want) = oracle(&json!({
            "programmes": path("programmes.csv"),
            "episodes": path("episodes.csv"),
            "expected": path("expected.csv"),
            "from": from,
            "to": to,
        })) else {
            continue;
        };
        assert_eq!(
            got.len(),
            want.len(),
            "rows: crest {} oracle {}",
            got.len(),
            want.len()
        );
        let mut flagged = 0;
        for w in &want {
            let g = got
                .iter()
                .find(|g| {
                    g["level"] == w["level"]
                        && g["area"] == w["area"]
                        && g["condition"] == w["condition"]
                })
                .unwrap_or_else(|| panic!("crest has no row for {w}"));
            for k in ["expected", "referred", "started"] {
                assert_eq!(g[k].as_f64(), w[k].as_f64(), "{k} of {w}");
            }
            for (k, o) in [
                ("ascertainment", "ascertainment"),
                ("ascertainment_low", "low"),
                ("ascertainment_high", "high"),
                ("uptake_of_eligible", "uptake_of_eligible"),
            ] {
                let (a, b) = (g[k].as_f64().unwrap(), w[o].as_f64().unwrap());
                assert!((a - b).abs() < 6e-5, "{k} of {w}: crest {a}");
            }
            assert_eq!(g["flag"], w["flag"], "{w}");
            flagged += usize::from(w["flag"] == "under_80");
        }
        assert!(want.len() > 40, "{}", want.len());
        assert!(flagged > 0, "the synthetic file flags some area under 80%");

        // One programme only; a bad file and an unknown programme, refused with every problem.
        let (_, out, _) = crest(
            &db.url,
            &[
                "ascertainment",
                "--programme",
                "P002",
                "--from",
                from,
                "--to",
                to,
            ],
        );
        assert!(
            out.lines()
                .skip(1)
                .all(|l| l.starts_with("programme,P002,")),
            "{out}"
        );
        std::fs::write(
            dir.join("bad.csv"),
            "programme_code,quarter,condition,expected\nP001,2024-Q9,angina,x\nP001,2024-Q2,mi,5\nP001,2024-Q2,mi,6\n",
        )
        .unwrap();
        let (code, _, err) = crest(&db.url, &["expected", "import", &path("bad.csv")]);
        assert_ne!(code, 0);
        for words in [
            "row 2: '2024-Q9' is not a quarter",
            "'angina' is not a condition",
            "'x' is not a whole number",
            "row 4: P001 2024-Q2 mi appears twice",
            "nothing was changed",
        ] {
            assert!(err.contains(words), "{words}: {err}");
        }
        std::fs::write(
            dir.join("unknown.csv"),
            "programme_code,quarter,condition,expected\nP001,2024-Q2,mi,1\nZZ9,2024-Q2,mi,5\n",
        )
        .unwrap();
        let (code, _, err) = crest(&db.url, &["expected", "import", &path("unknown.csv")]);
        assert_ne!(code, 0);
        assert!(
            err.contains("programme ZZ9") && err.contains("nothing was changed"),
            "{err}"
        );
        let (_, again, _) = crest(
            &db.url,
            &[
                "ascertainment",
                "--from",
                from,
                "--to",
                to,
                "--format",
                "json",
            ],
        );
        assert_eq!(again, before, "a refused file changed nothing");
    }
}
