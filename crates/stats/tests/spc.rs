//! crest's SPC charts against an independent numpy implementation of NHSRplotthedots
//! (`spc.py`): 60 random series (level shifts, trends, outliers, ties from rounding, service
//! changes, short series and targets) and 12 built by hand to trip each rule on its own.
//! Needs python3 with numpy: without it the test says so and passes, except in CI (`CI` set),
//! where it fails.
#![allow(clippy::unwrap_used)]

use crest_stats::spc::{xmr, Improvement};
use crest_stats::summary::newcombe;
use crest_stats::Z95;
use serde_json::{json, Value};
use std::io::Write;
use std::process::{Command, Stdio};

fn lcg(seed: &mut u64) -> u64 {
    *seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    *seed >> 33
}

/// A uniform number in [0, 1).
fn unit(seed: &mut u64) -> f64 {
    (lcg(seed) % 1_000_000) as f64 / 1_000_000.0
}

struct Series {
    values: Vec<f64>,
    improvement: Improvement,
    phase_starts: Vec<usize>,
    target: Option<f64>,
}

impl Series {
    fn json(&self) -> Value {
        json!({
            "values": self.values,
            "improvement": if self.improvement == Improvement::Increase { "increase" } else { "decrease" },
            "phase_starts": self.phase_starts,
            "target": self.target,
        })
    }
}

fn python(series: &[Series]) -> Option<Vec<Value>> {
    let input = json!({ "series": series.iter().map(Series::json).collect::<Vec<_>>() });
    run_script("spc.py", &input, "numpy").map(|v| v.as_array().unwrap().clone())
}

/// Runs a Python script of this folder on `input`; `None` (and a note) when python3 lacks
/// `needs` outside CI.
fn run_script(name: &str, input: &Value, needs: &str) -> Option<Value> {
    let script = format!("{}/tests/{name}", env!("CARGO_MANIFEST_DIR"));
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
            eprintln!("skipped: python3 needs {needs} ({why})");
            return None;
        }
        panic!("{name} failed: {why}");
    }
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

/// A random month-by-month series: a level with noise, sometimes a step, a trend or outliers,
/// sometimes rounded so that ties (with each other and with the mean) happen.
fn random(seed: &mut u64) -> Series {
    let n = 5 + (lcg(seed) % 40) as usize;
    let level = 20.0 + 60.0 * unit(seed);
    let noise = 0.5 + 8.0 * unit(seed);
    let step_at = lcg(seed)
        .is_multiple_of(3)
        .then(|| (lcg(seed) as usize) % n);
    let step = 25.0 * (unit(seed) - 0.5);
    let slope = if lcg(seed).is_multiple_of(4) {
        2.0 * (unit(seed) - 0.5)
    } else {
        0.0
    };
    let rounded = lcg(seed).is_multiple_of(2);
    let values = (0..n)
        .map(|i| {
            let mut v = level + slope * i as f64 + noise * (unit(seed) + unit(seed) - 1.0) * 1.7;
            if step_at.is_some_and(|s| i >= s) {
                v += step;
            }
            if lcg(seed).is_multiple_of(25) {
                v += 6.0
                    * noise
                    * if lcg(seed).is_multiple_of(2) {
                        1.0
                    } else {
                        -1.0
                    };
            }
            if rounded {
                v.round()
            } else {
                v
            }
        })
        .collect();
    let phase_starts = match lcg(seed) % 4 {
        0 => vec![(lcg(seed) as usize) % n],
        1 => vec![(lcg(seed) as usize) % n, (lcg(seed) as usize) % n],
        _ => vec![],
    };
    Series {
        values,
        improvement: if lcg(seed).is_multiple_of(2) {
            Improvement::Increase
        } else {
            Improvement::Decrease
        },
        phase_starts,
        target: lcg(seed)
            .is_multiple_of(2)
            .then(|| level + 20.0 * (unit(seed) - 0.5)),
    }
}

/// Series built to trip one rule each (and the edges between them).
fn by_hand() -> Vec<Series> {
    let alternating = |n: usize, lo: f64, hi: f64| -> Vec<f64> {
        (0..n).map(|i| if i % 2 == 0 { lo } else { hi }).collect()
    };
    let with = |mut v: Vec<f64>, tail: &[f64]| {
        v.extend_from_slice(tail);
        v
    };
    let s = |values: Vec<f64>, up: bool, starts: Vec<usize>, target: Option<f64>| Series {
        values,
        improvement: if up {
            Improvement::Increase
        } else {
            Improvement::Decrease
        },
        phase_starts: starts,
        target,
    };
    vec![
        // Common cause only.
        s(alternating(20, 9.0, 11.0), true, vec![], Some(10.0)),
        // One point far outside.
        s(
            with(alternating(15, 9.0, 11.0), &[30.0]),
            true,
            vec![],
            None,
        ),
        // A shift: 8 on one side after 12 alternating.
        s(
            with(alternating(12, 9.0, 11.0), &[12.0; 8]),
            false,
            vec![],
            None,
        ),
        // A trend of 7 rising.
        s(
            with(
                alternating(12, 9.0, 11.0),
                &[8.0, 8.5, 9.0, 9.5, 10.0, 10.5, 11.0],
            ),
            true,
            vec![],
            None,
        ),
        // A trend of 8 falling, the last below the limits.
        s(
            with(
                alternating(12, 9.0, 11.0),
                &[12.0, 11.5, 11.0, 10.5, 10.0, 9.5, 9.0, 2.0],
            ),
            true,
            vec![],
            None,
        ),
        // Two of three near the upper limit.
        s(
            with(alternating(12, 9.0, 11.0), &[16.0, 11.0, 16.5]),
            true,
            vec![],
            None,
        ),
        // Two of three straddling the mean: nothing.
        s(
            with(alternating(12, 9.0, 11.0), &[16.0, 9.0, 16.5]),
            true,
            vec![],
            None,
        ),
        // A point on the mean breaks a run.
        s(
            [
                &[8.0, 9.0, 8.0, 9.0, 8.0, 9.0][..],
                &[11.0, 12.0, 11.0, 12.0, 11.0, 12.0],
                &[10.0],
                &[11.0, 12.0, 11.0, 12.0, 11.0, 12.0],
                &[8.0, 9.0, 8.0, 9.0, 8.0, 9.0],
            ]
            .concat(),
            true,
            vec![],
            None,
        ),
        // A change: the new phase has its own limits.
        s(
            with(alternating(12, 9.0, 11.0), &alternating(14, 29.0, 31.0)),
            true,
            vec![12],
            Some(25.0),
        ),
        // A change with too few points after it for limits.
        s(
            with(alternating(12, 9.0, 11.0), &alternating(5, 29.0, 31.0)),
            false,
            vec![12],
            Some(25.0),
        ),
        // Too few points for limits at all.
        s(alternating(11, 9.0, 11.0), true, vec![], Some(10.0)),
        // Constant.
        s(vec![5.0; 14], true, vec![], Some(5.0)),
    ]
}

#[test]
fn spc_charts_match_an_independent_implementation_of_nhsrplotthedots() {
    let mut seed = 2026;
    let mut series = by_hand();
    series.extend((0..60).map(|_| random(&mut seed)));
    let Some(want) = python(&series) else {
        return;
    };
    let mut signals = std::collections::BTreeMap::new();
    for (i, (s, w)) in series.iter().zip(&want).enumerate() {
        let chart = xmr(&s.values, s.improvement, &s.phase_starts, s.target);
        let theirs = w["points"].as_array().unwrap();
        assert_eq!(chart.points.len(), theirs.len(), "series {i}");
        for (j, (p, t)) in chart.points.iter().zip(theirs).enumerate() {
            let close =
                |a: f64, b: &Value| (a - b.as_f64().unwrap()).abs() <= 1e-9 * a.abs().max(1.0);
            match p.limits {
                Some(l) => assert!(
                    close(l.centre, &t["centre"])
                        && close(l.lower, &t["lower"])
                        && close(l.upper, &t["upper"]),
                    "series {i} point {j}: {l:?} vs {t}"
                ),
                None => assert!(
                    t["centre"].is_null(),
                    "series {i} point {j}: no limits vs {t}"
                ),
            }
            assert_eq!(
                p.signal.code(),
                t["signal"],
                "series {i} point {j}: {:?}",
                s.values
            );
            assert_eq!(p.variation.code(), t["variation"], "series {i} point {j}");
            *signals.entry(p.signal.code()).or_insert(0) += 1;
        }
        assert_eq!(
            chart.assurance.map(|a| a.code()),
            w["assurance"].as_str(),
            "series {i}"
        );
    }
    // The series exercise every rule.
    for rule in ["none", "outside", "shift", "trend", "two_of_three"] {
        assert!(
            signals.get(rule).copied().unwrap_or(0) > 0,
            "{rule}: {signals:?}"
        );
    }
}

#[test]
fn newcombe_intervals_match_statsmodels() {
    let mut seed = 77;
    let mut pairs: Vec<[u64; 4]> = vec![
        [30, 50, 20, 60],
        [0, 12, 5, 14],
        [12, 12, 0, 9],
        [1, 1, 1, 2],
        [450, 1000, 430, 1000],
    ];
    pairs.extend((0..40).map(|_| {
        let (n1, n2) = (1 + lcg(&mut seed) % 300, 1 + lcg(&mut seed) % 300);
        [lcg(&mut seed) % (n1 + 1), n1, lcg(&mut seed) % (n2 + 1), n2]
    }));
    let Some(want) = run_script("newcombe.py", &json!({ "pairs": pairs }), "statsmodels") else {
        return;
    };
    for (p, w) in pairs.iter().zip(want.as_array().unwrap()) {
        let (d, lo, hi) = newcombe(p[0], p[1], p[2], p[3], Z95).unwrap();
        let w: Vec<f64> = w
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        assert!(
            (d - w[0]).abs() < 1e-12 && (lo - w[1]).abs() < 1e-6 && (hi - w[2]).abs() < 1e-6,
            "{p:?}: {d} {lo} {hi} vs {w:?}"
        );
    }
    assert_eq!(newcombe(1, 0, 1, 2, Z95), None);
}
