//! `crest spc` end to end: two years of synthetic episodes in a real store (SQLite and
//! PostgreSQL), each month's figures recounted here from the imported file, the limits from
//! the month values, a service change splitting the chart, and clear refusals.
#![allow(clippy::unwrap_used)]

use crest_core::Date;
use crest_store::testing::{databases, scratch_dir};
use std::collections::BTreeMap;
use std::process::Command;

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

#[test]
fn spc_charts_a_measure_month_by_month_from_the_store() {
    for db in databases() {
        let dir = scratch_dir("spc");
        let period = crest_core::Period {
            from: Date::from_ymd(2023, 4, 1).unwrap(),
            to: Date::from_ymd(2025, 3, 31).unwrap(),
        };
        let cfg = crest_ingest::synth::Config {
            programmes: 3,
            episodes: 3_000,
            seed: 7,
            period,
            today: Date::from_ymd(2025, 6, 1).unwrap(),
        };
        crest_ingest::synth::write(&dir, &cfg).unwrap();
        assert_eq!(crest(&db.url, &["init"]).0, 0);
        let programmes = dir.join("programmes.csv");
        let episodes = dir.join("episodes.csv");
        assert_eq!(
            crest(
                &db.url,
                &["programmes", "import", programmes.to_str().unwrap()]
            )
            .0,
            0
        );
        let (code, out, err) = crest(&db.url, &["import", episodes.to_str().unwrap()]);
        assert_eq!(code, 0, "{out}{err}");

        // Referred and started by month of referral, recounted from the file.
        let mut want: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        let mut file = csv::Reader::from_path(&episodes).unwrap();
        let head = file.headers().unwrap().clone();
        let col = |name: &str| head.iter().position(|h| h == name).unwrap();
        let (referral, start) = (col("referral_date"), col("core_start_date"));
        for row in file.records() {
            let row = row.unwrap();
            let month = row[referral][..7].to_string();
            let slot = want.entry(month).or_default();
            slot.1 += 1;
            slot.0 += u64::from(!row[start].is_empty());
        }

        let (code, out, err) = crest(
            &db.url,
            &[
                "spc",
                "--measure",
                "uptake",
                "--from",
                "2023-04",
                "--to",
                "2025-03-31",
            ],
        );
        assert_eq!(code, 0, "{err}");
        let lines: Vec<Vec<&str>> = out.lines().map(|l| l.split(',').collect()).collect();
        assert_eq!(
            lines[0],
            [
                "month",
                "numerator",
                "denominator",
                "value",
                "centre",
                "lower",
                "upper",
                "signal",
                "variation"
            ]
        );
        assert_eq!(lines.len(), 25, "{out}");
        let mut values = Vec::new();
        for row in &lines[1..] {
            let (k, n) = want[row[0]];
            assert_eq!(
                (row[1], row[2]),
                (k.to_string().as_str(), n.to_string().as_str()),
                "{}",
                db.backend
            );
            let v: f64 = row[3].parse().unwrap();
            assert!((v - k as f64 / n as f64).abs() < 1e-12);
            values.push(v);
            assert!(["none", "outside", "shift", "trend", "two_of_three"].contains(&row[7]));
            assert!(["common", "improvement", "concern"].contains(&row[8]));
        }
        // One phase: the centre line is the mean of the 24 months.
        let mean = values.iter().sum::<f64>() / 24.0;
        let centre: f64 = lines[1][4].parse().unwrap();
        assert!((centre - mean).abs() < 1e-12, "{centre} vs {mean}");
        assert!(lines.iter().skip(1).all(|r| r[4] == lines[1][4]));

        // A change in April 2024 splits the chart into two phases of 12 months.
        let (_, out, _) = crest(
            &db.url,
            &[
                "spc",
                "--measure",
                "uptake",
                "--from",
                "2023-04",
                "--to",
                "2025-03",
                "--change",
                "2024-04-15",
                "--format",
                "json",
            ],
        );
        let chart: serde_json::Value = serde_json::from_str(&out).unwrap();
        let months = chart["months"].as_array().unwrap();
        assert_eq!(months.len(), 24);
        let centre = |i: usize| months[i]["centre"].as_f64().unwrap();
        let before = values[..12].iter().sum::<f64>() / 12.0;
        let after = values[12..].iter().sum::<f64>() / 12.0;
        assert!((centre(0) - before).abs() < 1e-12 && (centre(23) - after).abs() < 1e-12);
        assert_eq!(chart["improvement"], "higher is better");

        // A recorded change to P001 splits P001's chart, and is listed.
        let (code, out, err) = crest(
            &db.url,
            &[
                "changes",
                "add",
                "--programme",
                "P001",
                "--date",
                "2024-04-15",
                "--text",
                "=Second class, Tuesdays",
            ],
        );
        assert_eq!(code, 0, "{out}{err}");
        assert!(
            out.contains("recorded change 1: programme P001 from 2024-04-15"),
            "{out}"
        );
        let (_, list, _) = crest(&db.url, &["changes", "list"]);
        assert!(
            list.contains("programme,P001,2024-04-15,\"'=Second class, Tuesdays\""),
            "{list}"
        );
        let (_, out, _) = crest(
            &db.url,
            &[
                "spc",
                "--measure",
                "uptake",
                "--programme",
                "P001",
                "--from",
                "2023-04",
                "--to",
                "2025-03",
                "--format",
                "json",
            ],
        );
        let chart: serde_json::Value = serde_json::from_str(&out).unwrap();
        let months = chart["months"].as_array().unwrap();
        let values: Vec<f64> = months
            .iter()
            .map(|m| m["value"].as_f64().unwrap())
            .collect();
        let centre = |i: usize| months[i]["centre"].as_f64().unwrap();
        assert!((centre(0) - values[..12].iter().sum::<f64>() / 12.0).abs() < 1e-12);
        assert!((centre(23) - values[12..].iter().sum::<f64>() / 12.0).abs() < 1e-12);
        // Another programme's chart does not draw it.
        let (_, out, _) = crest(
            &db.url,
            &[
                "spc",
                "--measure",
                "uptake",
                "--programme",
                "P002",
                "--from",
                "2023-04",
                "--to",
                "2025-03",
            ],
        );
        let centres: std::collections::BTreeSet<&str> = out
            .lines()
            .skip(1)
            .map(|l| l.split(',').nth(4).unwrap())
            .collect();
        assert_eq!(centres.len(), 1, "{out}");
        let (code, _, err) = crest(
            &db.url,
            &[
                "changes",
                "add",
                "--programme",
                "P001",
                "--date",
                "2024-04-15",
                "--text",
                " ",
            ],
        );
        assert_ne!(code, 0);
        assert!(err.contains("Say what changed"), "{err}");
        let (code, _, err) = crest(
            &db.url,
            &["changes", "add", "--date", "2024-04-15", "--text", "x"],
        );
        assert_ne!(code, 0);
        assert!(err.contains("say whose services changed"), "{err}");

        // Waits by month of start, lower is better; one programme; a region of none.
        let code = crest(
            &db.url,
            &[
                "spc",
                "--measure",
                "wait",
                "--from",
                "2023-04",
                "--to",
                "2025-03",
                "--programme",
                "P001",
            ],
        )
        .0;
        assert_eq!(code, 0);
        let (code, _, err) = crest(
            &db.url,
            &["spc", "--measure", "uptake", "--region", "Nowhere"],
        );
        assert_ne!(code, 0);
        assert!(
            err.contains("no programme of this store is in the region Nowhere"),
            "{err}"
        );
        let (code, _, err) = crest(&db.url, &["spc", "--measure", "happiness"]);
        assert_ne!(code, 0);
        assert!(
            err.contains(
                "choose one of uptake, wait, assessment1, assessment2, completion, referrals"
            ),
            "{err}"
        );
        let (code, _, err) = crest(
            &db.url,
            &[
                "spc",
                "--measure",
                "uptake",
                "--from",
                "2025-03",
                "--to",
                "2024-03",
            ],
        );
        assert_ne!(code, 0);
        assert!(err.contains("is before --from"), "{err}");
    }
}
