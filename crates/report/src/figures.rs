//! The national audit's published figures read back: `programmes.csv` and `funnels.csv` as
//! `crest report annual --tables DIR` writes them. A programme's server without the national
//! store shows its lead these (loaded by an administrator) beside the programme's own figures.
//! Only published values are here: counts rounded, 1–7 shown as `*`.

use crate::ReportError;
use crest_stats::funnel::{Direction, Position};

/// One programme's row of `programmes.csv`.
#[derive(Clone, Debug, PartialEq)]
pub struct ProgrammeRow {
    /// Programme code.
    pub code: String,
    /// Each KPI: its key, published value and met flag (`yes`, `no` or `*`).
    pub kpis: Vec<(String, String, String)>,
    /// The published grade.
    pub grade: String,
}

impl ProgrammeRow {
    /// The KPI of this key: its published value and met flag.
    pub fn kpi(&self, key: &str) -> Option<(&str, &str)> {
        self.kpis
            .iter()
            .find(|k| k.0 == key)
            .map(|k| (k.1.as_str(), k.2.as_str()))
    }
}

/// One point of `funnels.csv`.
#[derive(Clone, Debug, PartialEq)]
pub struct FunnelRow {
    /// The funnel KPI (`uptake`, `completion`, `assessment1`, `assessment2`).
    pub kpi: String,
    /// Programme code.
    pub code: String,
    /// The published numerator and denominator (`None` when shown as `*`).
    pub counts: (Option<u64>, Option<u64>),
    /// Its level, from the exact counts; `None` where the counts are suppressed (`too_few`).
    pub position: Option<Position>,
    /// The limits' method its level was decided by (`funnels.csv`'s `method` column: the
    /// method in force for that KPI's funnel; plain for tables published before it existed).
    pub method: crest_stats::funnel::Method,
}

/// The published figures of one period.
#[derive(Clone, Debug, PartialEq)]
pub struct Figures {
    /// What the figures are for, as the administrator named it (e.g. `2024-04-01 to 2025-03-31`).
    pub period: String,
    /// Every programme's KPIs and grade.
    pub programmes: Vec<ProgrammeRow>,
    /// Every funnel point.
    pub funnels: Vec<FunnelRow>,
}

fn bad(what: &str, why: impl std::fmt::Display) -> ReportError {
    ReportError::NotFigures(format!(
        "{what} is not the national audit's published table: {why}"
    ))
}

/// Reads the two tables; says what is wrong in words if either is not what crest publishes.
pub fn read(period: &str, programmes: &[u8], funnels: &[u8]) -> Result<Figures, ReportError> {
    let mut r = csv::Reader::from_reader(programmes);
    let head: Vec<String> = r
        .headers()
        .map_err(|e| bad("programmes.csv", e))?
        .iter()
        .map(str::to_string)
        .collect();
    let n = head.len();
    if n < 5
        || head[0] != "programme_code"
        || head[n - 1] != "grade"
        || head[n - 2] != "kpis_assessable"
    {
        return Err(bad("programmes.csv", "its first column must be programme_code and its last kpis_met, kpis_assessable and grade"));
    }
    let keys: Vec<String> = head[1..n - 3].iter().step_by(2).cloned().collect();
    let mut rows = Vec::new();
    for (i, rec) in r.records().enumerate() {
        let rec = rec.map_err(|e| bad("programmes.csv", e))?;
        if rec.len() != n {
            return Err(bad(
                "programmes.csv",
                format!("row {} has {} cells, not {n}", i + 2, rec.len()),
            ));
        }
        let kpis = keys
            .iter()
            .enumerate()
            .map(|(j, k)| {
                (
                    k.clone(),
                    rec[1 + 2 * j].to_string(),
                    rec[2 + 2 * j].to_string(),
                )
            })
            .collect();
        rows.push(ProgrammeRow {
            code: rec[0].to_string(),
            kpis,
            grade: rec[n - 1].to_string(),
        });
    }
    let mut r = csv::Reader::from_reader(funnels);
    let head: Vec<String> = r
        .headers()
        .map_err(|e| bad("funnels.csv", e))?
        .iter()
        .map(str::to_string)
        .collect();
    const COLUMNS: [&str; 5] = ["kpi", "programme_code", "numerator", "denominator", "level"];
    let with_method = head.len() == 6 && head[5] == "method";
    if head[..5.min(head.len())] != COLUMNS || !(head.len() == 5 || with_method) {
        return Err(bad(
            "funnels.csv",
            "its columns must be kpi, programme_code, numerator, denominator, level (and method)",
        ));
    }
    let count = |s: &str| s.parse::<u64>().ok();
    let mut points = Vec::new();
    for (i, rec) in r.records().enumerate() {
        let rec = rec.map_err(|e| bad("funnels.csv", e))?;
        let position = match &rec[4] {
            "within" => Some(Position::Within),
            "alert_low" => Some(Position::Alert(Direction::Low)),
            "alert_high" => Some(Position::Alert(Direction::High)),
            "alarm_low" => Some(Position::Alarm(Direction::Low)),
            "alarm_high" => Some(Position::Alarm(Direction::High)),
            crest_stats::published::TOO_FEW => None,
            other => {
                return Err(bad(
                    "funnels.csv",
                    format!(
                        "row {}: '{}' is not a level",
                        i + 2,
                        crest_core::validate::shown(other)
                    ),
                ))
            }
        };
        let mut method = crest_stats::funnel::Method::Plain;
        if with_method {
            method = crest_stats::funnel::Method::parse(&rec[5]).ok_or_else(|| {
                bad(
                    "funnels.csv",
                    format!(
                        "row {}: '{}' is not a funnel method (plain, multiplicative or additive)",
                        i + 2,
                        crest_core::validate::shown(&rec[5])
                    ),
                )
            })?;
        }
        points.push(FunnelRow {
            kpi: rec[0].to_string(),
            code: rec[1].to_string(),
            counts: (count(&rec[2]), count(&rec[3])),
            position,
            method,
        });
    }
    if rows.is_empty() {
        return Err(bad("programmes.csv", "it has no programmes"));
    }
    Ok(Figures {
        period: period.trim().to_string(),
        programmes: rows,
        funnels: points,
    })
}

impl Figures {
    /// A funnel fitted to the published (rounded) counts by the published method, for drawing
    /// its limits: close to, not exactly, the audit's own.
    pub fn fit(&self, kpi: &str) -> Option<crest_stats::funnel::Fit> {
        let rows = || self.funnels.iter().filter(|f| f.kpi == kpi);
        let points: Vec<(u64, u64)> = rows()
            .filter_map(|f| Some((f.counts.0?, f.counts.1?)))
            .collect();
        let method = rows().next()?.method;
        crest_stats::funnel::Fit::new(&points, method)
    }

    /// The proportion pooled over the drawn points of a funnel (from published counts, so
    /// close to, not exactly, the audit's own).
    pub fn pooled(&self, kpi: &str) -> Option<f64> {
        let (k, n) = self
            .funnels
            .iter()
            .filter(|f| f.kpi == kpi)
            .filter_map(|f| Some((f.counts.0?, f.counts.1?)))
            .fold((0u64, 0u64), |(a, b), (k, n)| (a + k, b + n));
        (n > 0).then(|| k as f64 / n as f64)
    }
}

/// The settings of a programme's store that hold the loaded figures.
const PERIOD: &str = "published_period";
const PROGRAMMES: &str = "published_programmes_csv";
const FUNNELS: &str = "published_funnels_csv";

/// Checks the two tables and keeps them in the programme's store (replacing any before).
pub fn save(
    store: &mut dyn crest_store::Store,
    period: &str,
    programmes: &[u8],
    funnels: &[u8],
) -> Result<Figures, ReportError> {
    if period.trim().is_empty() {
        return Err(ReportError::NotFigures(
            "say which period the figures are for".into(),
        ));
    }
    let figures = read(period, programmes, funnels)?;
    store.put_setting(PERIOD, &figures.period)?;
    store.put_setting(PROGRAMMES, &String::from_utf8_lossy(programmes))?;
    store.put_setting(FUNNELS, &String::from_utf8_lossy(funnels))?;
    Ok(figures)
}

/// The figures this store holds, if any were loaded.
pub fn held(store: &mut dyn crest_store::Store) -> Result<Option<Figures>, ReportError> {
    let (Some(period), Some(p), Some(f)) = (
        store.setting(PERIOD)?,
        store.setting(PROGRAMMES)?,
        store.setting(FUNNELS)?,
    ) else {
        return Ok(None);
    };
    Ok(read(&period, p.as_bytes(), f.as_bytes()).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROGRAMMES: &str = "programme_code,mdt,mdt_met,priority_groups,priority_groups_met,kpis_met,kpis_assessable,grade\n\
                              P001,3,yes,*,*,1,1,withheld\nP002,2,no,5,yes,1,2,red\n";
    const FUNNELS: &str = "kpi,programme_code,numerator,denominator,level\n\
                           uptake,P001,40,100,within\nuptake,P002,*,20,alarm_low\nuptake,P003,60,100,alert_high\n\
                           completion,P002,*,20,too_few\n";

    #[test]
    fn published_tables_read_back_and_pool_their_drawn_counts() {
        let f = read("2024-25", PROGRAMMES.as_bytes(), FUNNELS.as_bytes()).unwrap();
        assert_eq!(f.programmes.len(), 2);
        assert_eq!(
            f.programmes[0].kpis,
            vec![
                ("mdt".to_string(), "3".to_string(), "yes".to_string()),
                (
                    "priority_groups".to_string(),
                    "*".to_string(),
                    "*".to_string()
                ),
            ]
        );
        assert_eq!(f.programmes[1].grade, "red");
        assert_eq!(f.funnels[1].counts, (None, Some(20)));
        assert_eq!(f.funnels[1].position, Some(Position::Alarm(Direction::Low)));
        // A row whose counts are hidden carries no level (published since too_few existed).
        assert_eq!(f.funnels[3].position, None);
        // Only drawn points pool: (40 + 60) / (100 + 100).
        assert_eq!(f.pooled("uptake"), Some(0.5));
        assert_eq!(f.pooled("completion"), None);
    }

    #[test]
    fn other_files_are_refused_in_words() {
        let e = read("x", b"a,b\n1,2\n", FUNNELS.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("programmes.csv is not the national audit's published table"),
            "{e}"
        );
        let e = read("x", PROGRAMMES.as_bytes(), b"kpi,code\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("funnels.csv"), "{e}");
        let bad_level = FUNNELS.replace("within", "<b>odd</b>");
        let e = read("x", PROGRAMMES.as_bytes(), bad_level.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(e.contains("is not a level"), "{e}");
    }
}
