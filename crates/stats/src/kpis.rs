//! The seven NCP_CR KPIs, grades and uptake, exactly as kpis.md defines them.

use crate::summary::{wilson, DayCounts, Summary, Z95};
pub use crest_core::Period;
use crest_core::{KpiEpisode, Nation, PriorityGroup, Programme};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value as Json};
use std::collections::HashMap;

/// Thresholds of one nation for KPIs 4–7.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NationThresholds {
    /// KPI 4: minimum proportion with assessment 1.
    pub assessment1: f64,
    /// KPI 5: maximum median wait for CABG, days.
    pub wait_cabg: f64,
    /// KPI 6: maximum median wait for MI/PCI, days.
    pub wait_mi_pci: f64,
    /// KPI 7: minimum proportion with assessment 2.
    pub assessment2: f64,
}

/// KPI thresholds: configuration, re-based from year to year. `Default` is the spec's table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    /// KPI 1: minimum distinct professions.
    pub mdt: f64,
    /// KPI 2: priority groups that must be offered.
    pub priority_groups: f64,
    /// KPI 3: minimum median duration of core CR, days.
    pub duration: f64,
    /// KPIs 4–7 per nation.
    pub nations: HashMap<Nation, NationThresholds>,
}

impl Default for Thresholds {
    fn default() -> Self {
        let t = |assessment1, wait_cabg, wait_mi_pci| NationThresholds {
            assessment1,
            wait_cabg,
            wait_mi_pci,
            assessment2: 0.60,
        };
        Thresholds {
            mdt: 3.0,
            priority_groups: 5.0,
            duration: 56.0,
            nations: HashMap::from([
                (Nation::England, t(0.80, 46.0, 33.0)),
                (Nation::NorthernIreland, t(0.88, 52.0, 40.0)),
                (Nation::Wales, t(0.68, 42.0, 26.0)),
            ]),
        }
    }
}

/// Why a thresholds file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ThresholdsError {
    /// It is not JSON of the thresholds' shape.
    #[error("thresholds file: {0}")]
    Json(#[from] serde_json::Error),
    /// A nation has no thresholds.
    #[error("thresholds file: no thresholds for {0}")]
    NoNation(&'static str),
}

impl Thresholds {
    /// Reads thresholds from JSON (the shape of this struct; every nation must be present).
    pub fn from_json(text: &str) -> Result<Thresholds, ThresholdsError> {
        let t: Thresholds = serde_json::from_str(text)?;
        match Nation::ALL.into_iter().find(|n| !t.nations.contains_key(n)) {
            Some(n) => Err(ThresholdsError::NoNation(n.code())),
            None => Ok(t),
        }
    }

    /// As JSON that [`Thresholds::from_json`] reads back (nations in a fixed order).
    pub fn to_json(&self) -> String {
        let nations: Map<String, Json> = Nation::ALL
            .iter()
            .filter_map(|n| {
                let t = self.nations.get(n)?;
                Some((n.code().to_string(), json!(t)))
            })
            .collect();
        let v = json!({
            "mdt": self.mdt,
            "priority_groups": self.priority_groups,
            "duration": self.duration,
            "nations": nations,
        });
        serde_json::to_string_pretty(&v).unwrap_or_default()
    }

    /// Re-bases KPIs 4–7 on national averages: for each nation with programmes here, the
    /// pooled proportions with assessment 1 and assessment 2 (to two decimals) and the median
    /// waits for CABG and MI/PCI (whole days) over all its programmes' episodes in `period`.
    /// KPIs 1–3 and any nation without data keep their current values.
    pub fn rebased(
        &self,
        programmes: &[Programme],
        episodes: &[KpiEpisode],
        period: crest_core::Period,
    ) -> Thresholds {
        let mut out = self.clone();
        for nation in Nation::ALL {
            let chosen: Vec<usize> = (0..programmes.len())
                .filter(|&i| programmes[i].nation == nation)
                .collect();
            if chosen.is_empty() {
                continue;
            }
            let sub: Vec<Programme> = chosen.iter().map(|&i| programmes[i].clone()).collect();
            let eps: Vec<KpiEpisode> = episodes
                .iter()
                .filter_map(|e| {
                    let at = chosen.iter().position(|&i| i == e.programme)?;
                    Some(KpiEpisode {
                        programme: at,
                        ..e.clone()
                    })
                })
                .collect();
            let pooled = compute(&sub, &eps, period, self).national;
            let value = |key: &str| {
                pooled
                    .kpis
                    .iter()
                    .find(|k| k.key == key)
                    .and_then(Kpi::value)
            };
            let t = out.nations.entry(nation).or_insert(self.nation(nation));
            if let Some(v) = value("assessment1") {
                t.assessment1 = (v * 100.0).round() / 100.0;
            }
            if let Some(v) = value("assessment2") {
                t.assessment2 = (v * 100.0).round() / 100.0;
            }
            if let Some(v) = value("wait_cabg") {
                t.wait_cabg = v.round();
            }
            if let Some(v) = value("wait_mi_pci") {
                t.wait_mi_pci = v.round();
            }
        }
        out
    }

    fn nation(&self, n: Nation) -> NationThresholds {
        self.nations.get(&n).copied().unwrap_or(NationThresholds {
            assessment1: f64::NAN,
            wait_cabg: f64::NAN,
            wait_mi_pci: f64::NAN,
            assessment2: f64::NAN,
        })
    }
}

/// A proportion with its Wilson 95% interval.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct Proportion {
    /// Numerator.
    pub numerator: u64,
    /// Denominator.
    pub denominator: u64,
}

impl Proportion {
    /// numerator / denominator, `None` when the denominator is 0.
    pub fn value(&self) -> Option<f64> {
        (self.denominator > 0).then(|| self.numerator as f64 / self.denominator as f64)
    }

    /// Wilson 95% interval.
    pub fn ci(&self) -> Option<(f64, f64)> {
        wilson(self.numerator, self.denominator, Z95)
    }

    fn json(&self) -> Map<String, Json> {
        let ci = self.ci();
        let mut m = Map::new();
        m.insert("numerator".into(), json!(self.numerator));
        m.insert("denominator".into(), json!(self.denominator));
        m.insert("value".into(), json!(self.value()));
        m.insert("ci_low".into(), json!(ci.map(|c| c.0)));
        m.insert("ci_high".into(), json!(ci.map(|c| c.1)));
        m
    }
}

/// How a KPI is measured.
#[derive(Clone, Debug, PartialEq)]
pub enum Measure {
    /// A count from the programme profile (KPIs 1–2); `None` without a profile.
    Count(Option<usize>),
    /// A median in days (KPIs 3, 5, 6).
    Median(Summary),
    /// A proportion (KPIs 4, 7).
    Proportion(Proportion),
}

/// One KPI's result.
#[derive(Clone, Debug, PartialEq)]
pub struct Kpi {
    /// JSON key (`mdt`, `duration`, …).
    pub key: &'static str,
    /// The measurement.
    pub measure: Measure,
    /// Threshold applied (`None` for pooled national figures).
    pub threshold: Option<f64>,
    /// Whether the standard is met.
    pub met: bool,
}

/// A KPI's name as the NCP_CR publishes it, for pages and reports (the key stays in files).
pub fn kpi_label(key: &str) -> &'static str {
    match key {
        "mdt" => "Multidisciplinary team",
        "priority_groups" => "Priority groups offered",
        "duration" => "Duration of core CR",
        "assessment1" => "Assessment 1 recorded",
        "wait_cabg" => "Wait from referral to start, CABG",
        "wait_mi_pci" => "Wait from referral to start, MI/PCI",
        "assessment2" => "Assessment 2 recorded",
        "uptake" => "Uptake",
        "completion" => "Completion",
        _ => "Other measure",
    }
}

/// The seven KPI keys of a programme, in spec order. National (pooled) results carry only the
/// last five: the first two are counts from each programme's profile.
pub const KPI_KEYS: [&str; 7] = [
    "mdt",
    "priority_groups",
    "duration",
    "assessment1",
    "wait_cabg",
    "wait_mi_pci",
    "assessment2",
];

/// A KPI's value as people read it on a page, with its unit: `42 days`, `5 professions`,
/// `4 of 5 groups`; a percentage keeps its own sign, and `*` or `–` stand alone.
pub fn kpi_shown(key: &str, value: &str) -> String {
    if value == "*" || value == "–" || value.is_empty() {
        return value.to_string();
    }
    match key {
        "mdt" if value == "1" => "1 profession".to_string(),
        "mdt" => format!("{value} professions"),
        "priority_groups" => format!("{value} of {} groups", PriorityGroup::OFFERED.len()),
        _ => match kpi_unit(key) {
            "days" => format!("{value} days"),
            "%" if !value.ends_with('%') => format!("{value}%"),
            _ => value.to_string(),
        },
    }
}

/// How a KPI's value reads: `%` for proportions, `days` for medians, nothing for counts.
pub fn kpi_unit(key: &str) -> &'static str {
    match key {
        "assessment1" | "assessment2" | "uptake" | "completion" => "%",
        "duration" | "wait_cabg" | "wait_mi_pci" => "days",
        _ => "",
    }
}

impl Kpi {
    /// Its name as the NCP_CR publishes it.
    pub fn label(&self) -> &'static str {
        kpi_label(self.key)
    }

    /// The headline value.
    pub fn value(&self) -> Option<f64> {
        match &self.measure {
            Measure::Count(c) => c.map(|c| c as f64),
            Measure::Median(s) => s.median,
            Measure::Proportion(p) => p.value(),
        }
    }

    /// `ok` or `no_data`.
    pub fn status(&self) -> &'static str {
        if self.value().is_some() {
            "ok"
        } else {
            "no_data"
        }
    }

    fn new(key: &'static str, measure: Measure, threshold: Option<f64>) -> Kpi {
        let mut k = Kpi {
            key,
            measure,
            threshold,
            met: false,
        };
        k.met = match (k.value(), threshold) {
            (Some(v), Some(t)) => match key {
                "wait_cabg" | "wait_mi_pci" => v <= t,
                _ => v >= t,
            },
            _ => false,
        };
        k
    }

    fn json(&self) -> Json {
        let mut m = match &self.measure {
            Measure::Count(c) => {
                let mut m = Map::new();
                m.insert("value".into(), json!(c));
                m
            }
            Measure::Median(s) => {
                let mut m = Map::new();
                m.insert("value".into(), json!(s.median));
                m.insert("n".into(), json!(s.n));
                m
            }
            Measure::Proportion(p) => p.json(),
        };
        m.insert(
            "threshold".into(),
            self.threshold.map_or(Json::Null, number),
        );
        m.insert("met".into(), json!(self.met));
        m.insert("status".into(), json!(self.status()));
        Json::Object(m)
    }
}

/// A whole number as a JSON integer, anything else as a float.
fn number(x: f64) -> Json {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        json!(x as i64)
    } else {
        json!(x)
    }
}

/// Referrals, uptake and KPIs of one programme, or of the national pool.
#[derive(Clone, Debug, PartialEq)]
pub struct Results {
    /// Cohort size.
    pub referred: u64,
    /// Cohort episodes with a core start date.
    pub started: u64,
    /// started / referred.
    pub uptake: Proportion,
    /// Started episodes with status `completed` / started (for the completion funnel plot).
    pub completion: Proportion,
    /// The KPIs, in spec order (7 for a programme, 5 nationally).
    pub kpis: Vec<Kpi>,
}

impl Results {
    /// The KPI of this key, if these results carry it (pooled national results have no
    /// profile counts).
    pub fn kpi(&self, key: &str) -> Option<&Kpi> {
        self.kpis.iter().find(|k| k.key == key)
    }
}

/// One programme's row of the report.
#[derive(Clone, Debug, PartialEq)]
pub struct ProgrammeKpis {
    /// Programme code.
    pub programme_code: String,
    /// Nation.
    pub nation: Nation,
    /// Figures.
    pub results: Results,
    /// Number of KPIs met.
    pub kpis_met: usize,
    /// `green`, `amber` or `red`.
    pub grade: &'static str,
}

impl ProgrammeKpis {
    /// The grade as people see it: `no data` when nobody was referred in the period (a
    /// programme with no patients is not "red").
    pub fn grade_shown(&self) -> &'static str {
        if self.results.referred == 0 {
            "no data"
        } else {
            self.grade
        }
    }

    /// One proportion of the programme as (numerator, denominator): `uptake`, `completion`,
    /// or a proportion KPI (`assessment1`, `assessment2`); (0, 0) for anything else.
    pub fn proportion(&self, key: &str) -> (u64, u64) {
        self.results.proportion(key)
    }
}

/// One line of the nation → region roll-up: pooled counts and grades of its programmes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RollupRow {
    /// Nation code.
    pub nation: String,
    /// Region, empty on the nation's own line.
    pub region: String,
    /// Programmes in it.
    pub programmes: usize,
    /// Started, referred.
    pub uptake: (u64, u64),
    /// Assessment 1 numerator, denominator.
    pub assessment1: (u64, u64),
    /// Assessment 2 numerator, denominator.
    pub assessment2: (u64, u64),
    /// Programmes graded green, amber and red.
    pub grades: [usize; 3],
    /// Programmes with nobody referred.
    pub no_data: usize,
}

/// Pools programmes by nation, then by region within it, in nation and region order (each
/// nation's line first, then its regions). `region_of` names a programme's region.
pub fn rollup(rows: &[&ProgrammeKpis], region_of: impl Fn(&str) -> String) -> Vec<RollupRow> {
    let mut sums: std::collections::BTreeMap<(String, String), RollupRow> = Default::default();
    for k in rows {
        let nation = k.nation.code().to_string();
        let region = region_of(&k.programme_code);
        for key in [(nation.clone(), String::new()), (nation.clone(), region)] {
            let s = sums.entry(key.clone()).or_insert_with(|| RollupRow {
                nation: key.0.clone(),
                region: key.1.clone(),
                ..Default::default()
            });
            s.programmes += 1;
            for (acc, kpi) in [
                (&mut s.uptake, "uptake"),
                (&mut s.assessment1, "assessment1"),
                (&mut s.assessment2, "assessment2"),
            ] {
                let (n, d) = k.proportion(kpi);
                acc.0 += n;
                acc.1 += d;
            }
            match k.grade_shown() {
                "green" => s.grades[0] += 1,
                "amber" => s.grades[1] += 1,
                "red" => s.grades[2] += 1,
                _ => s.no_data += 1,
            }
        }
    }
    sums.into_values().collect()
}

/// The KPI report for a period.
#[derive(Clone, Debug, PartialEq)]
pub struct KpiReport {
    /// Reporting period.
    pub period: Period,
    /// Programmes in code order.
    pub programmes: Vec<ProgrammeKpis>,
    /// All listed programmes pooled.
    pub national: Results,
}

/// The grade for a number of KPIs met: all 7 green, 4–6 amber, 0–3 red.
pub fn grade(met: usize) -> &'static str {
    match met {
        7.. => "green",
        4..=6 => "amber",
        _ => "red",
    }
}

#[derive(Default)]
struct Acc {
    referred: u64,
    started: u64,
    completed: u64,
    duration: DayCounts,
    a1: Proportion,
    wait_cabg: DayCounts,
    wait_mi_pci: DayCounts,
    a2: Proportion,
}

impl Acc {
    fn add(&mut self, e: &KpiEpisode) {
        self.referred += 1;
        let Some(start) = e.core_start else { return };
        self.started += 1;
        self.completed += u64::from(e.completed);
        if let Some(end) = e.core_end {
            self.duration.add(end.days_since(start));
        }
        self.a1.denominator += 1;
        let wait = start.days_since(e.referral_date);
        match e.group {
            PriorityGroup::Cabg => self.wait_cabg.add(wait),
            PriorityGroup::Mi | PriorityGroup::MiPci | PriorityGroup::Pci => {
                self.wait_mi_pci.add(wait)
            }
            _ => {}
        }
        if let Some(a1) = e.assessment1 {
            self.a1.numerator += 1;
            if e.completed {
                self.a2.denominator += 1;
                if e.assessment2.is_some_and(|a2| a2.days_since(a1) <= 140) {
                    self.a2.numerator += 1;
                }
            }
        }
    }

    fn merge(&mut self, o: &Acc) {
        self.referred += o.referred;
        self.started += o.started;
        self.completed += o.completed;
        self.duration.merge(&o.duration);
        self.wait_cabg.merge(&o.wait_cabg);
        self.wait_mi_pci.merge(&o.wait_mi_pci);
        for (a, b) in [(&mut self.a1, o.a1), (&mut self.a2, o.a2)] {
            a.numerator += b.numerator;
            a.denominator += b.denominator;
        }
    }

    /// KPIs 3–7, with thresholds when given.
    fn results(self, t: Option<(NationThresholds, f64)>) -> Results {
        let th = |f: fn(&NationThresholds) -> f64| t.as_ref().map(|(n, _)| f(n));
        let kpis = vec![
            Kpi::new(
                "duration",
                Measure::Median(self.duration.summary()),
                t.map(|t| t.1),
            ),
            Kpi::new(
                "assessment1",
                Measure::Proportion(self.a1),
                th(|n| n.assessment1),
            ),
            Kpi::new(
                "wait_cabg",
                Measure::Median(self.wait_cabg.summary()),
                th(|n| n.wait_cabg),
            ),
            Kpi::new(
                "wait_mi_pci",
                Measure::Median(self.wait_mi_pci.summary()),
                th(|n| n.wait_mi_pci),
            ),
            Kpi::new(
                "assessment2",
                Measure::Proportion(self.a2),
                th(|n| n.assessment2),
            ),
        ];
        Results {
            referred: self.referred,
            started: self.started,
            uptake: Proportion {
                numerator: self.started,
                denominator: self.referred,
            },
            completion: Proportion {
                numerator: self.completed,
                denominator: self.started,
            },
            kpis,
        }
    }
}

/// Referrals, starts, uptake, completion and KPIs 3–7 (without thresholds) of `episodes`
/// pooled, whatever their programme: the same definitions as [`compute`], for any grouping
/// (a month, a region).
pub fn pooled<'a>(episodes: impl IntoIterator<Item = &'a KpiEpisode>) -> Results {
    let mut acc = Acc::default();
    for e in episodes {
        acc.add(e);
    }
    acc.results(None)
}

impl Results {
    /// A proportion (numerator, denominator) by key: `uptake`, `completion`, `assessment1` or
    /// `assessment2` ((0, 0) for any other).
    pub fn proportion(&self, key: &str) -> (u64, u64) {
        match key {
            "uptake" => (self.uptake.numerator, self.uptake.denominator),
            "completion" => (self.completion.numerator, self.completion.denominator),
            _ => self
                .kpis
                .iter()
                .find(|k| k.key == key)
                .and_then(|k| match &k.measure {
                    Measure::Proportion(x) => Some((x.numerator, x.denominator)),
                    _ => None,
                })
                .unwrap_or((0, 0)),
        }
    }
}

/// Computes the KPI report. `episodes[i].programme` indexes `programmes`; episodes referred
/// outside the period are ignored. Every programme appears, even with an empty cohort.
pub fn compute(
    programmes: &[Programme],
    episodes: &[KpiEpisode],
    period: Period,
    t: &Thresholds,
) -> KpiReport {
    let mut tally = KpiTally::new(programmes, period);
    tally.add(episodes);
    tally.report(t)
}

/// The KPI report counted as episodes arrive, so they need never be held all at once:
/// [`compute`] for episodes streamed from a store.
pub struct KpiTally<'a> {
    programmes: &'a [Programme],
    period: Period,
    accs: Vec<Acc>,
}

impl<'a> KpiTally<'a> {
    /// Nothing counted yet; `KpiEpisode::programme` will index `programmes`.
    pub fn new(programmes: &'a [Programme], period: Period) -> KpiTally<'a> {
        KpiTally {
            programmes,
            period,
            accs: programmes.iter().map(|_| Acc::default()).collect(),
        }
    }

    /// Counts some episodes (those referred outside the period are ignored).
    pub fn add(&mut self, episodes: &[KpiEpisode]) {
        for e in episodes
            .iter()
            .filter(|e| self.period.contains(e.referral_date))
        {
            if let Some(acc) = self.accs.get_mut(e.programme) {
                acc.add(e);
            }
        }
    }

    /// The report of everything counted, with every programme, even with an empty cohort.
    pub fn report(self, t: &Thresholds) -> KpiReport {
        let KpiTally {
            programmes,
            period,
            accs,
        } = self;
        let mut pooled = Acc::default();
        for a in &accs {
            pooled.merge(a);
        }
        let mut order: Vec<usize> = (0..programmes.len()).collect();
        order.sort_by(|a, b| programmes[*a].code.cmp(&programmes[*b].code));
        let mut accs: Vec<Option<Acc>> = accs.into_iter().map(Some).collect();
        let rows = order
            .into_iter()
            .map(|i| {
                let p = &programmes[i];
                let acc = accs[i].take().unwrap_or_default();
                let mut r = acc.results(Some((t.nation(p.nation), t.duration)));
                let mdt = p.professions.as_ref().map(Vec::len);
                let groups = p.offers.as_ref().map(|o| {
                    PriorityGroup::OFFERED
                        .iter()
                        .filter(|g| o.contains(g))
                        .count()
                });
                r.kpis.insert(
                    0,
                    Kpi::new(
                        "priority_groups",
                        Measure::Count(groups),
                        Some(t.priority_groups),
                    ),
                );
                r.kpis
                    .insert(0, Kpi::new("mdt", Measure::Count(mdt), Some(t.mdt)));
                let kpis_met = r.kpis.iter().filter(|k| k.met).count();
                ProgrammeKpis {
                    programme_code: p.code.clone(),
                    nation: p.nation,
                    results: r,
                    kpis_met,
                    grade: grade(kpis_met),
                }
            })
            .collect();
        KpiReport {
            period,
            programmes: rows,
            national: pooled.results(None),
        }
    }
}

fn results_json(r: &Results) -> Map<String, Json> {
    let mut m = Map::new();
    m.insert("referred".into(), json!(r.referred));
    m.insert("started".into(), json!(r.started));
    m.insert("uptake".into(), Json::Object(r.uptake.json()));
    let kpis: Map<String, Json> = r
        .kpis
        .iter()
        .map(|k| (k.key.to_string(), k.json()))
        .collect();
    m.insert("kpis".into(), Json::Object(kpis));
    m
}

impl KpiReport {
    /// The JSON contract of kpis.md.
    pub fn to_json(&self) -> Json {
        let programmes: Vec<Json> = self
            .programmes
            .iter()
            .map(|p| {
                let mut m = Map::new();
                m.insert("programme_code".into(), json!(p.programme_code));
                m.insert("nation".into(), json!(p.nation.code()));
                m.extend(results_json(&p.results));
                m.insert("kpis_met".into(), json!(p.kpis_met));
                m.insert("grade".into(), json!(p.grade));
                Json::Object(m)
            })
            .collect();
        json!({
            "period": {"from": self.period.from.to_string(), "to": self.period.to.to_string()},
            "programmes": programmes,
            "national": Json::Object(results_json(&self.national)),
        })
    }

    /// One CSV row per programme (and a final `NATIONAL` row), for spreadsheets.
    pub fn to_csv(&self) -> String {
        let keys = KPI_KEYS;
        let mut out = String::from(
            "programme_code,nation,referred,started,uptake,uptake_ci_low,uptake_ci_high",
        );
        for k in keys {
            out.push_str(&format!(",{k},{k}_n,{k}_met"));
        }
        out.push_str(",kpis_met,grade\n");
        let opt = |x: Option<f64>| x.map(|v| v.to_string()).unwrap_or_default();
        let row = |code: &str, nation: &str, r: &Results, tail: String| {
            let ci = r.uptake.ci();
            let mut line = format!(
                "{code},{nation},{},{},{},{},{}",
                r.referred,
                r.started,
                opt(r.uptake.value()),
                opt(ci.map(|c| c.0)),
                opt(ci.map(|c| c.1))
            );
            for k in keys {
                match r.kpis.iter().find(|x| x.key == k) {
                    Some(x) => {
                        let n = match &x.measure {
                            Measure::Count(_) => String::new(),
                            Measure::Median(s) => s.n.to_string(),
                            Measure::Proportion(p) => p.denominator.to_string(),
                        };
                        let met = if x.threshold.is_some() {
                            x.met.to_string()
                        } else {
                            String::new()
                        };
                        line.push_str(&format!(",{},{n},{met}", opt(x.value())));
                    }
                    None => line.push_str(",,,"),
                }
            }
            line.push_str(&tail);
            line.push('\n');
            line
        };
        for p in &self.programmes {
            out.push_str(&row(
                &p.programme_code,
                p.nation.code(),
                &p.results,
                format!(",{},{}", p.kpis_met, p.grade),
            ));
        }
        out.push_str(&row("NATIONAL", "", &self.national, ",,".into()));
        out
    }

    /// A fixed-width table for the terminal.
    pub fn to_table(&self) -> String {
        let mut out = format!(
            "KPIs for referrals {} to {} ({} programmes)\n\n",
            self.period.from,
            self.period.to,
            self.programmes.len()
        );
        out.push_str(&format!(
            "{:<8} {:<6} {:>6} {:>7} {:>5} {:>5} {:>8} {:>6} {:>8} {:>8} {:>6}  {:>3} {}\n",
            "code",
            "nation",
            "refs",
            "uptake",
            "mdt",
            "grps",
            "duration",
            "A1",
            "wait_cabg",
            "wait_mipci",
            "A2",
            "met",
            "grade"
        ));
        let cell = |k: &Kpi| -> String {
            let mark = if k.threshold.is_none() {
                ""
            } else if k.met {
                "✓"
            } else {
                "✗"
            };
            match (&k.measure, k.value()) {
                (_, None) => "–".to_string(),
                (Measure::Proportion(_), Some(v)) => format!("{:.0}%{mark}", v * 100.0),
                (Measure::Count(_), Some(v)) => format!("{v:.0}{mark}"),
                (Measure::Median(_), Some(v)) => format!("{v:.1}{mark}"),
            }
        };
        let nation_short = |n: Nation| match n {
            Nation::England => "ENG",
            Nation::Wales => "WAL",
            Nation::NorthernIreland => "NI",
        };
        let line = |code: &str, nation: &str, r: &Results, met: String, grade: &str| {
            let find = |key: &str| {
                r.kpis
                    .iter()
                    .find(|k| k.key == key)
                    .map(cell)
                    .unwrap_or_default()
            };
            let uptake = r
                .uptake
                .value()
                .map(|v| format!("{:.0}%", v * 100.0))
                .unwrap_or_else(|| "–".into());
            format!(
                "{:<8} {:<6} {:>6} {:>7} {:>5} {:>5} {:>8} {:>6} {:>8} {:>8} {:>6}  {:>3} {}\n",
                code,
                nation,
                r.referred,
                uptake,
                find("mdt"),
                find("priority_groups"),
                find("duration"),
                find("assessment1"),
                find("wait_cabg"),
                find("wait_mi_pci"),
                find("assessment2"),
                met,
                grade
            )
        };
        for p in &self.programmes {
            out.push_str(&line(
                &p.programme_code,
                nation_short(p.nation),
                &p.results,
                p.kpis_met.to_string(),
                p.grade,
            ));
        }
        out.push_str(&line("ALL", "", &self.national, String::new(), ""));
        let grades = ["green", "amber", "red"]
            .map(|g| self.programmes.iter().filter(|p| p.grade == g).count());
        out.push_str(&format!(
            "\nGrades: {} green, {} amber, {} red.  ✓ met ✗ not met – no data. Medians in days.\n",
            grades[0], grades[1], grades[2]
        ));
        for k in self.national.kpis.iter().filter_map(|k| match &k.measure {
            Measure::Median(s) => Some((k.key, s)),
            _ => None,
        }) {
            let (key, s) = k;
            if let (Some(m), Some(q1), Some(q3)) = (s.median, s.q1, s.q3) {
                out.push_str(&format!(
                    "National {key}: median {m:.1} days (IQR {q1:.1}–{q3:.1}), n = {}\n",
                    s.n
                ));
            }
        }
        out
    }
}
