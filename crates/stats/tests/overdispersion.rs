//! crest's overdispersed funnel limits against an independent implementation of Spiegelhalter
//! (2005) in numpy and scipy (`overdispersion.py`, scipy's own winsorize), over random sets of
//! programmes with real overdispersion, none, and a few very large or small programmes.
//! Needs python3 with numpy and scipy: without them the test says so and passes, except in CI
//! (`CI` set), where it fails.
#![allow(clippy::unwrap_used)]

use crest_stats::funnel::{Fit, Method, Position};
use crest_stats::published::level;
use std::io::Write;
use std::process::{Command, Stdio};

fn lcg(seed: &mut u64) -> u64 {
    *seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    *seed >> 33
}

fn python(points: &[(u64, u64)]) -> Option<serde_json::Value> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/overdispersion.py");
    let mut child = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    let input = serde_json::json!({ "points": points }).to_string();
    child.stdin.take()?.write_all(input.as_bytes()).ok()?;
    let out = child.wait_with_output().ok()?;
    if !out.status.success() {
        let why = String::from_utf8_lossy(&out.stderr).to_string();
        if why.contains("No module named") && std::env::var_os("CI").is_none() {
            eprintln!("skipped: python3 needs numpy and scipy ({why})");
            return None;
        }
        panic!("overdispersion.py failed: {why}");
    }
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

#[test]
fn overdispersion_matches_numpy_and_scipy() {
    let mut seed = 42;
    for round in 0..20 {
        let programmes = 5 + (lcg(&mut seed) % 200) as usize;
        // Half the rounds with real between-programme variation, half with none beyond chance.
        let spread = if round % 2 == 0 { 0.15 } else { 0.0 };
        let points: Vec<(u64, u64)> = (0..programmes)
            .map(|_| {
                let n = 5 + lcg(&mut seed)
                    % if lcg(&mut seed).is_multiple_of(10) {
                        3000
                    } else {
                        300
                    };
                let shift = spread * ((lcg(&mut seed) % 1000) as f64 / 1000.0 - 0.5) * 2.0;
                let p = (0.5 + shift).clamp(0.02, 0.98);
                let k = (0..n)
                    .filter(|_| (lcg(&mut seed) % 1000) as f64 / 1000.0 < p)
                    .count() as u64;
                (k, n)
            })
            .collect();
        let Some(want) = python(&points) else {
            return;
        };
        for method in Method::ALL {
            let fit = Fit::new(&points, method).unwrap();
            let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * a.abs().max(1.0);
            assert!(
                close(fit.phi, want["phi"].as_f64().unwrap()),
                "round {round}: φ {} vs {}",
                fit.phi,
                want["phi"]
            );
            assert!(
                close(fit.tau2, want["tau2"].as_f64().unwrap()),
                "round {round}: τ² {} vs {}",
                fit.tau2,
                want["tau2"]
            );
            let p = want["p_value"].as_f64().unwrap();
            assert!(
                (fit.dispersion.p_value - p).abs() <= 1e-9 * p.max(1e-6),
                "round {round}: p {} vs {p}",
                fit.dispersion.p_value
            );
            if method == Method::Auto {
                assert_eq!(
                    fit.method.code(),
                    want["chosen"].as_str().unwrap(),
                    "round {round}"
                );
            }
            let levels: Vec<&str> = points
                .iter()
                .map(|&(k, n)| level(fit.position(k, n).unwrap_or(Position::Within)))
                .collect();
            let theirs: Vec<&str> = want["levels"][method.code()]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            assert_eq!(levels, theirs, "round {round}, {}", method.code());
        }
        if round % 2 == 0 {
            // With real spread the adjusted methods flag fewer programmes than the plain one.
            let flagged = |m: Method| {
                let f = Fit::new(&points, m).unwrap();
                points
                    .iter()
                    .filter(|&&(k, n)| f.position(k, n) != Some(Position::Within))
                    .count()
            };
            assert!(flagged(Method::Multiplicative) <= flagged(Method::Plain));
            assert!(flagged(Method::Additive) <= flagged(Method::Plain));
        }
    }
}
