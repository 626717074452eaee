//! `crest synth` reproduces calibration.md, summarised by crest's own statistics.
#![allow(clippy::unwrap_used)]

use crest_core::{Date, Period, PriorityGroup};
use crest_ingest::synth::{write, Config};
use crest_ingest::{import_file, ImportOptions};
use crest_stats::kpis::{compute, Measure, Thresholds};
use crest_stats::median;
use std::collections::HashMap;

fn within(name: &str, value: f64, target: f64, tolerance: f64) {
    assert!(
        (value - target).abs() <= tolerance,
        "{name}: {value:.3} is not within {tolerance} of {target}"
    );
}

#[test]
fn synthetic_data_is_reproducible_valid_and_calibrated() {
    let period = Period {
        from: Date::from_ymd(2024, 4, 1).unwrap(),
        to: Date::from_ymd(2025, 3, 31).unwrap(),
    };
    let today = Date::from_ymd(2026, 11, 22).unwrap();
    let cfg = Config {
        programmes: 80,
        episodes: 40_000,
        seed: 7,
        period,
        today,
    };
    let (a, b) = (
        crest_store::testing::scratch_dir("synA"),
        crest_store::testing::scratch_dir("synB"),
    );
    write(&a, &cfg).unwrap();
    write(&b, &cfg).unwrap();
    for f in ["programmes.csv", "episodes.csv"] {
        assert!(
            std::fs::read(a.join(f)).unwrap() == std::fs::read(b.join(f)).unwrap(),
            "{f} differs for the same seed"
        );
    }
    write(
        &b,
        &Config {
            seed: 8,
            ..cfg.clone()
        },
    )
    .unwrap();
    assert!(
        std::fs::read(a.join("episodes.csv")).unwrap()
            != std::fs::read(b.join("episodes.csv")).unwrap()
    );

    // Every generated row passes validation.
    let db = crest_store::testing::sqlite_db();
    let mut store = crest_store::open(&db.url).unwrap();
    store.migrate().unwrap();
    let programmes = crest_ingest::programmes::read_programmes(&a.join("programmes.csv")).unwrap();
    store.upsert_programmes(&programmes).unwrap();
    let s = import_file(
        store.as_mut(),
        &a.join("episodes.csv"),
        &ImportOptions::new(today),
        None,
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(
        (s.rows, s.imported, s.rejected),
        (40_000, 40_000, 0),
        "{:?}",
        s.errors.first()
    );

    // Headline figures from the KPI engine.
    let programmes = store.programmes().unwrap();
    let episodes = store
        .kpi_episodes(period.from, period.to, &programmes)
        .unwrap();
    let report = compute(&programmes, &episodes, period, &Thresholds::default());
    let nat = &report.national;
    within("uptake", nat.uptake.value().unwrap(), 0.50, 0.05);
    let kpi = |key: &str| nat.kpis.iter().find(|k| k.key == key).unwrap();
    within(
        "assessment 1 among starters",
        kpi("assessment1").value().unwrap(),
        0.80,
        0.05,
    );
    within(
        "assessment 2 within 140 days among completers with A1",
        kpi("assessment2").value().unwrap(),
        0.56,
        0.04,
    );
    let Measure::Median(d) = &kpi("duration").measure else {
        panic!()
    };
    within("median duration", d.median.unwrap(), 59.0, 5.0);
    within("duration Q1", d.q1.unwrap(), 47.0, 7.0);
    within("duration Q3", d.q3.unwrap(), 81.0, 9.0);
    let waits: Vec<f64> = episodes
        .iter()
        .filter_map(|e| {
            e.core_start
                .map(|s| f64::from(s.days_since(e.referral_date)))
        })
        .collect();
    within(
        "median wait",
        median(&mut waits.clone()).unwrap(),
        36.0,
        5.0,
    );
    let cabg = kpi("wait_cabg").value().unwrap();
    let mi_pci = kpi("wait_mi_pci").value().unwrap();
    assert!(
        (5.0..=16.0).contains(&(cabg - mi_pci)),
        "CABG waits {cabg} vs MI/PCI {mi_pci}"
    );
    let started: Vec<_> = episodes.iter().filter(|e| e.core_start.is_some()).collect();
    let ended: Vec<_> = started.iter().filter(|e| e.core_end.is_some()).collect();
    within(
        "completion among starters who finished",
        ended.iter().filter(|e| e.completed).count() as f64 / ended.len() as f64,
        0.78,
        0.05,
    );
    let share = |g: PriorityGroup| {
        episodes.iter().filter(|e| e.group == g).count() as f64 / episodes.len() as f64
    };
    within("MI+PCI share", share(PriorityGroup::MiPci), 0.33, 0.03);
    within("PCI share", share(PriorityGroup::Pci), 0.20, 0.03);
    within("CABG share", share(PriorityGroup::Cabg), 0.10, 0.02);
    let grades = ["green", "amber", "red"]
        .map(|g| report.programmes.iter().filter(|p| p.grade == g).count() as f64 / 80.0);
    within("green share", grades[0], 0.25, 0.07);
    within("amber share", grades[1], 0.50, 0.12);
    within("red share", grades[2], 0.25, 0.07);

    // Demographics and inequalities, from the file itself.
    let mut r = csv::Reader::from_path(a.join("episodes.csv")).unwrap();
    let h = r.headers().unwrap().clone();
    let col = |name: &str| h.iter().position(|c| c == name).unwrap();
    let (sex, imd, start, nhs, eth) = (
        col("sex"),
        col("imd_quintile"),
        col("core_start_date"),
        col("nhs_number"),
        col("ethnicity"),
    );
    let (dob, comorb, status, a1, a2, prog) = (
        col("date_of_birth"),
        col("comorbidities"),
        col("status"),
        col("assessment1_date"),
        col("assessment2_date"),
        col("programme_code"),
    );
    let hads = [
        (col("a1_hads_anxiety"), col("a2_hads_anxiety")),
        (col("a1_hads_depression"), col("a2_hads_depression")),
    ];
    let mut by: HashMap<String, (f64, f64)> = HashMap::new();
    let mut white = 0.0;
    let mut n = 0.0;
    let mut person: HashMap<String, (String, String, String)> = HashMap::new();
    let mut with_comorbidity = 0.0;
    let (mut completers_a1, mut with_a2) = (0.0, 0.0);
    let mut pairs: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    let mut per_programme: HashMap<String, usize> = HashMap::new();
    for row in r.records() {
        let row = row.unwrap();
        // A returning patient is the same person: one date of birth, sex and ethnicity.
        let me = (
            row[dob].to_string(),
            row[sex].to_string(),
            row[eth].to_string(),
        );
        let seen = person
            .entry(row[nhs].to_string())
            .or_insert_with(|| me.clone());
        assert_eq!(*seen, me, "NHS number {} changed person", &row[nhs]);
        with_comorbidity += f64::from(u8::from(!row[comorb].is_empty()));
        if &row[status] == "completed" && !row[a1].is_empty() {
            completers_a1 += 1.0;
            with_a2 += f64::from(u8::from(!row[a2].is_empty()));
        }
        for (k, (c1, c2)) in hads.iter().enumerate() {
            if !row[*c1].is_empty() && !row[*c2].is_empty() {
                pairs[k].push(row[*c2].parse().unwrap());
            }
        }
        *per_programme.entry(row[prog].to_string()).or_default() += 1;
        assert!(
            row[nhs].starts_with('9'),
            "NHS numbers come from the 9xx test range"
        );
        let s = if row[start].is_empty() { 0.0 } else { 1.0 };
        for key in [format!("sex:{}", &row[sex]), format!("imd:{}", &row[imd])] {
            let e = by.entry(key).or_default();
            e.0 += s;
            e.1 += 1.0;
        }
        white += f64::from(u8::from(matches!(&row[eth], "A" | "B" | "C")));
        n += 1.0;
    }
    let rate = |k: &str| by[k].0 / by[k].1;
    within("female share", by["sex:female"].1 / n, 0.27, 0.02);
    within("female uptake", rate("sex:female"), 0.38, 0.05);
    within("male uptake", rate("sex:male"), 0.52, 0.05);
    within("IMD 1 uptake", rate("imd:1"), 0.40, 0.05);
    within("IMD 5 uptake", rate("imd:5"), 0.54, 0.05);
    within("White share", white / n, 0.87, 0.02);
    assert!(person.len() < n as usize, "some patients return");
    within("at least one comorbidity", with_comorbidity / n, 0.74, 0.03);
    within(
        "assessment 2 recorded among completers with A1",
        with_a2 / completers_a1,
        0.60,
        0.04,
    );
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let cases = |v: &[f64]| v.iter().filter(|x| **x >= 8.0).count() as f64 / v.len() as f64;
    within("HADS anxiety at A2", mean(&pairs[0]), 4.7, 0.3);
    within("HADS anxiety ≥ 8 at A2", cases(&pairs[0]), 0.21, 0.03);
    within("HADS depression at A2", mean(&pairs[1]), 3.4, 0.3);
    within("HADS depression ≥ 8 at A2", cases(&pairs[1]), 0.12, 0.03);
    let largest = per_programme.values().max().unwrap();
    assert!(
        *largest <= 1_500,
        "the largest programme has {largest} referrals in a year"
    );
}

#[test]
fn returning_patients_never_look_like_duplicates() {
    // Referrals crowded into one week make a returning patient's new event land on an earlier
    // event's date often, unless synth prevents it.
    let from = Date::from_ymd(2024, 4, 1).unwrap();
    let cfg = Config {
        programmes: 2,
        episodes: 30_000,
        seed: 3,
        period: Period {
            from,
            to: from.add_days(6),
        },
        today: Date::from_ymd(2026, 11, 22).unwrap(),
    };
    let dir = crest_store::testing::scratch_dir("syn-dense");
    write(&dir, &cfg).unwrap();
    let db = crest_store::testing::sqlite_db();
    let mut store = crest_store::open(&db.url).unwrap();
    store.migrate().unwrap();
    let programmes =
        crest_ingest::programmes::read_programmes(&dir.join("programmes.csv")).unwrap();
    store.upsert_programmes(&programmes).unwrap();
    let mut opts = ImportOptions::new(cfg.today);
    opts.dry_run = true;
    let s = import_file(
        store.as_mut(),
        &dir.join("episodes.csv"),
        &opts,
        None,
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(s.rejected, 0, "{:?}", s.errors.first());
}

/// Programme sizes follow calibration.md's ~20–1,500 referrals a year however many episodes
/// are asked for: a large request is spread, not scaled past the largest real programme.
#[test]
fn programme_sizes_stay_within_a_real_range() {
    let period = Period {
        from: Date::from_ymd(2024, 4, 1).unwrap(),
        to: Date::from_ymd(2025, 3, 31).unwrap(),
    };
    for (programmes, episodes, seed) in [(40, 50_000, 3), (200, 100_000, 5), (12, 4_000, 11)] {
        let dir = crest_store::testing::scratch_dir("synsizes");
        let cfg = Config {
            programmes,
            episodes,
            seed,
            period,
            today: Date::from_ymd(2026, 11, 22).unwrap(),
        };
        write(&dir, &cfg).unwrap();
        let mut sizes: HashMap<String, usize> = HashMap::new();
        let mut r = csv::Reader::from_path(dir.join("episodes.csv")).unwrap();
        let code = r
            .headers()
            .unwrap()
            .iter()
            .position(|c| c == "programme_code")
            .unwrap();
        for row in r.records() {
            *sizes.entry(row.unwrap()[code].to_string()).or_default() += 1;
        }
        let largest = sizes.values().max().copied().unwrap_or(0);
        // Sampling noise on a 1,400 expectation stays well under 1,500 + 2 SD.
        assert!(
            largest <= 1_560,
            "{programmes} programmes, {episodes} episodes: largest {largest}"
        );
        let over = sizes.values().filter(|n| **n > 1_500).count();
        assert!(over <= 2, "{over} programmes above 1,500 a year");
        // Still log-normal: the largest well above the median where there is room.
        if episodes / programmes <= 600 {
            let mut v: Vec<usize> = sizes.values().copied().collect();
            v.sort_unstable();
            let median = v[v.len() / 2];
            assert!(largest as f64 >= 1.5 * median as f64, "{v:?}");
        }
    }
}
