//! The KPI engine on hand-worked datasets.
#![allow(clippy::unwrap_used)]

use crest_core::{Date, KpiEpisode, PriorityGroup, Programme};
use crest_stats::kpis::{compute, Measure, Period, Thresholds};

fn d(s: &str) -> Date {
    Date::parse_iso(s).unwrap()
}

fn period() -> Period {
    Period {
        from: d("2024-04-01"),
        to: d("2025-03-31"),
    }
}

/// An episode referred on 2024-06-01; offsets in days.
fn ep(
    group: PriorityGroup,
    start: Option<i32>,
    length: Option<i32>,
    a1: bool,
    completed: bool,
    a2_after_a1: Option<i32>,
) -> KpiEpisode {
    let referral = d("2024-06-01");
    let core_start = start.map(|s| referral.add_days(s));
    let assessment1 = (a1 && core_start.is_some()).then(|| referral.add_days(1));
    KpiEpisode {
        programme: 0,
        referral_date: referral,
        core_start,
        core_end: core_start.zip(length).map(|(s, l)| s.add_days(l)),
        assessment1,
        assessment2: assessment1.zip(a2_after_a1).map(|(a, n)| a.add_days(n)),
        completed,
        group,
    }
}

fn programmes() -> Vec<Programme> {
    vec![
        Programme::parse([
            "P1",
            "One",
            "england",
            "R",
            "nurse;physiotherapist;dietitian",
            "mi;mi_pci;pci;cabg;heart_failure",
        ])
        .unwrap(),
        Programme::parse(["P0", "No profile", "wales", "R", "", ""]).unwrap(),
    ]
}

fn worked(a2_days_for_second: i32) -> Vec<KpiEpisode> {
    use PriorityGroup::*;
    let mut outside = ep(Cabg, Some(1), Some(100), true, true, Some(10));
    outside.referral_date = d("2025-04-01");
    outside.core_start = Some(d("2025-04-02"));
    vec![
        ep(Cabg, Some(40), Some(60), true, true, Some(100)),
        ep(
            Cabg,
            Some(50),
            Some(50),
            true,
            true,
            Some(a2_days_for_second),
        ),
        ep(MiPci, Some(30), Some(56), true, true, None),
        ep(Pci, Some(36), None, false, false, None),
        ep(Mi, None, None, false, false, None),
        ep(HeartFailure, Some(20), Some(70), true, false, Some(30)),
        outside,
    ]
}

fn kpi<'a>(r: &'a crest_stats::kpis::ProgrammeKpis, key: &str) -> &'a crest_stats::kpis::Kpi {
    r.results.kpis.iter().find(|k| k.key == key).unwrap()
}

#[test]
fn hand_worked_programme() {
    let report = compute(
        &programmes(),
        &worked(141),
        period(),
        &Thresholds::default(),
    );
    // Programmes come out in code order: P0 then P1.
    assert_eq!(
        report
            .programmes
            .iter()
            .map(|p| p.programme_code.as_str())
            .collect::<Vec<_>>(),
        ["P0", "P1"]
    );
    let p = &report.programmes[1];
    assert_eq!((p.results.referred, p.results.started), (6, 5));
    assert_eq!(kpi(p, "mdt").value(), Some(3.0));
    assert!(kpi(p, "mdt").met);
    assert_eq!(kpi(p, "priority_groups").value(), Some(5.0));
    // Durations 50, 56, 60, 70: even count, mean of the middle two.
    assert_eq!(kpi(p, "duration").value(), Some(58.0));
    let Measure::Median(s) = &kpi(p, "duration").measure else {
        panic!()
    };
    assert_eq!((s.n, s.q1, s.q3), (4, Some(54.5), Some(62.5)));
    // 4 of 5 starters assessed: exactly on England's 0.80 threshold, which meets it.
    assert_eq!(kpi(p, "assessment1").value(), Some(0.8));
    assert!(kpi(p, "assessment1").met);
    // CABG waits 40, 50; MI/PCI waits 30 (MI+PCI), 36 (PCI) → 33 = threshold, met.
    assert_eq!(kpi(p, "wait_cabg").value(), Some(45.0));
    assert_eq!(kpi(p, "wait_mi_pci").value(), Some(33.0));
    assert!(kpi(p, "wait_mi_pci").met);
    // A2 denominator: started, A1, completed = 3; the 141-day A2 is past 20 weeks.
    let Measure::Proportion(a2) = kpi(p, "assessment2").measure else {
        panic!()
    };
    assert_eq!((a2.numerator, a2.denominator), (1, 3));
    assert!(!kpi(p, "assessment2").met);
    assert_eq!((p.kpis_met, p.grade), (6, "amber"));

    let none = &report.programmes[0];
    assert_eq!(
        (none.results.referred, none.kpis_met, none.grade),
        (0, 0, "red")
    );
    assert!(none
        .results
        .kpis
        .iter()
        .all(|k| k.status() == "no_data" && !k.met));
    assert_eq!(report.national.referred, 6);
    assert!(report.national.kpis.iter().all(|k| k.threshold.is_none()));
}

#[test]
fn assessment2_at_exactly_twenty_weeks_counts() {
    let report = compute(
        &programmes(),
        &worked(140),
        period(),
        &Thresholds::default(),
    );
    let p = &report.programmes[1];
    let Measure::Proportion(a2) = kpi(p, "assessment2").measure else {
        panic!()
    };
    assert_eq!((a2.numerator, a2.denominator), (2, 3));
    assert_eq!((p.kpis_met, p.grade), (7, "green"));
}

#[test]
fn thresholds_are_configuration() {
    let mut t = Thresholds::default();
    t.nations
        .get_mut(&crest_core::Nation::England)
        .unwrap()
        .wait_mi_pci = 32.0;
    let report = compute(&programmes(), &worked(140), period(), &t);
    assert!(!kpi(&report.programmes[1], "wait_mi_pci").met);
    let json = r#"{"mdt": 3, "priority_groups": 5, "duration": 56, "nations": {
        "england": {"assessment1": 0.8, "wait_cabg": 46, "wait_mi_pci": 33, "assessment2": 0.6}}}"#;
    assert!(Thresholds::from_json(json)
        .unwrap_err()
        .to_string()
        .contains("wales"));
}

#[test]
fn json_has_the_contract_shape() {
    let report = compute(
        &programmes(),
        &worked(141),
        period(),
        &Thresholds::default(),
    );
    let j = report.to_json();
    assert_eq!(j["period"]["from"], "2024-04-01");
    let p = &j["programmes"][1];
    assert_eq!(p["programme_code"], "P1");
    assert_eq!(p["nation"], "england");
    assert_eq!(p["uptake"]["numerator"], 5);
    assert_eq!(p["uptake"]["denominator"], 6);
    assert_eq!(p["kpis"]["mdt"]["threshold"], 3);
    assert_eq!(p["kpis"]["duration"]["value"], 58.0);
    assert_eq!(p["kpis"]["duration"]["n"], 4);
    assert_eq!(p["kpis"]["assessment1"]["threshold"], 0.8);
    assert_eq!(p["kpis"]["wait_cabg"]["threshold"], 46);
    assert_eq!(p["kpis"]["assessment2"]["status"], "ok");
    assert!(p["kpis"]["assessment2"]["ci_low"].as_f64().unwrap() > 0.0);
    assert_eq!(p["kpis_met"], 6);
    assert_eq!(p["grade"], "amber");
    let empty = &j["programmes"][0];
    assert_eq!(empty["kpis"]["wait_cabg"]["value"], serde_json::Value::Null);
    assert_eq!(empty["kpis"]["wait_cabg"]["status"], "no_data");
    assert_eq!(empty["kpis"]["mdt"]["status"], "no_data");
    assert_eq!(empty["uptake"]["value"], serde_json::Value::Null);
    let nat = &j["national"];
    assert_eq!(nat["referred"], 6);
    assert!(nat.get("grade").is_none() && nat["kpis"].get("mdt").is_none());
    assert_eq!(nat["kpis"].as_object().unwrap().len(), 5);
    assert!(report.to_csv().lines().count() == 4);
    assert!(report.to_table().contains("P1"));
}

#[test]
fn last_financial_year() {
    let p = Period::last_financial_year(d("2026-11-22"));
    assert_eq!((p.from, p.to), (d("2025-04-01"), d("2026-03-31")));
    let p = Period::last_financial_year(d("2026-03-31"));
    assert_eq!((p.from, p.to), (d("2024-04-01"), d("2025-03-31")));
}

#[test]
fn rebasing_takes_national_averages_per_nation_and_keeps_the_rest() {
    let mut progs = programmes();
    progs.push(Programme::parse(["P2", "Two", "england", "R", "", ""]).unwrap());
    let with = |p: usize, mut e: KpiEpisode| {
        e.programme = p;
        e
    };
    let mut eps = Vec::new();
    // England: P1 has 4 started (3 with A1), P2 has 4 started (1 with A1): pooled A1 4/8 = 0.50.
    // MI/PCI waits 10, 20, 30, 40 and CABG waits 50, 61 (P1), 12, 22 (P2):
    // median MI/PCI of 10, 20, 30, 40, 12, 22 = (20 + 22) / 2 = 21; CABG of 50, 61 = 55.5 → 56.
    for (w, a1) in [(10, true), (20, true), (30, true)] {
        eps.push(with(
            0,
            ep(PriorityGroup::MiPci, Some(w), Some(60), a1, true, Some(100)),
        ));
    }
    eps.push(with(
        0,
        ep(PriorityGroup::Cabg, Some(50), Some(60), false, true, None),
    ));
    eps.push(with(
        2,
        ep(
            PriorityGroup::Cabg,
            Some(61),
            Some(60),
            true,
            true,
            Some(200),
        ),
    ));
    eps.push(with(
        2,
        ep(PriorityGroup::MiPci, Some(40), Some(60), false, false, None),
    ));
    eps.push(with(
        2,
        ep(PriorityGroup::MiPci, Some(12), Some(60), false, false, None),
    ));
    eps.push(with(
        2,
        ep(PriorityGroup::MiPci, Some(22), Some(60), false, false, None),
    ));
    let current = Thresholds::default();
    let t = current.rebased(&progs, &eps, period());
    let england = t.nations[&crest_core::Nation::England];
    assert_eq!(england.assessment1, 0.5);
    assert_eq!(england.wait_mi_pci, 21.0);
    assert_eq!(england.wait_cabg, 56.0);
    // A2 among completed with A1: 3 in P1 within 140 days, 1 in P2 at 200 days → 3/4 = 0.75.
    assert_eq!(england.assessment2, 0.75);
    // Wales has a programme but no episodes, Northern Ireland none: both keep their values.
    assert_eq!(
        t.nations[&crest_core::Nation::Wales],
        current.nations[&crest_core::Nation::Wales]
    );
    assert_eq!(
        t.nations[&crest_core::Nation::NorthernIreland],
        current.nations[&crest_core::Nation::NorthernIreland]
    );
    assert_eq!((t.mdt, t.priority_groups, t.duration), (3.0, 5.0, 56.0));
    // Saved thresholds read back the same.
    assert_eq!(Thresholds::from_json(&t.to_json()).unwrap(), t);
}

#[test]
fn completion_is_completed_among_started() {
    let eps = vec![
        ep(PriorityGroup::MiPci, Some(10), Some(60), true, true, None),
        ep(PriorityGroup::MiPci, Some(10), Some(60), true, false, None),
        ep(PriorityGroup::MiPci, Some(10), Some(60), true, true, None),
        // Completed without a start is not counted: it never started.
        ep(PriorityGroup::MiPci, None, None, false, true, None),
    ];
    let r = compute(&programmes(), &eps, period(), &Thresholds::default());
    let c = r
        .programmes
        .iter()
        .find(|p| p.programme_code == "P1")
        .unwrap()
        .results
        .completion;
    assert_eq!((c.numerator, c.denominator), (2, 3));
    assert_eq!(
        (
            r.national.completion.numerator,
            r.national.completion.denominator
        ),
        (2, 3)
    );
}

/// The nation → region roll-up pools counts (never rates) and counts grades, a programme with
/// nobody referred as "no data".
#[test]
fn rollup_pools_counts_by_nation_then_region() {
    let r = compute(&programmes(), &worked(30), period(), &Thresholds::default());
    let rows: Vec<_> = r.programmes.iter().collect();
    let lines = crest_stats::kpis::rollup(&rows, |code| {
        if code == "P1" {
            "South".into()
        } else {
            "North".into()
        }
    });
    let names: Vec<(&str, &str)> = lines
        .iter()
        .map(|l| (l.nation.as_str(), l.region.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("england", ""),
            ("england", "South"),
            ("wales", ""),
            ("wales", "North")
        ]
    );
    // P1: 6 referred in the period, 5 started (the MI episode did not).
    assert_eq!(lines[0].uptake, (5, 6));
    assert_eq!(lines[0].uptake, lines[1].uptake);
    assert_eq!(lines[0].programmes, 1);
    // P0 has nobody referred.
    assert_eq!((lines[2].no_data, lines[2].uptake), (1, (0, 0)));
}

#[test]
fn a_tally_fed_a_few_episodes_at_a_time_gives_the_same_report() {
    let (ps, eps, t) = (programmes(), worked(141), Thresholds::default());
    let whole = compute(&ps, &eps, period(), &t);
    let mut tally = crest_stats::KpiTally::new(&ps, period());
    for some in eps.chunks(2) {
        tally.add(some);
    }
    tally.add(&[]);
    assert_eq!(tally.report(&t).to_json(), whole.to_json());
}

#[test]
fn one_profession_is_not_said_as_professions() {
    use crest_stats::kpis::kpi_shown;
    assert_eq!(kpi_shown("mdt", "1"), "1 profession");
    assert_eq!(kpi_shown("mdt", "3"), "3 professions");
    assert_eq!(kpi_shown("mdt", "0"), "0 professions");
}
