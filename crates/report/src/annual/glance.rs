//! The summary at a glance that opens the report: the headline figures, grades by nation,
//! uptake by deprivation and the uptake funnel.

use super::*;

/// What the executive summary is drawn from, all of it already computed for later sections.
pub(super) struct Glance<'a> {
    pub national: &'a crest_stats::kpis::Results,
    pub programmes: usize,
    pub published: &'a [published::PublishedProgramme],
    /// Each nation's pooled line (region empty).
    pub nations: Vec<&'a crest_stats::kpis::RollupRow>,
    /// (started, referred) by deprivation quintile, most deprived first, exact.
    pub quintiles: [(u64, u64); 5],
    /// Programmes at alarm on any funnel KPI; programmes at alert (and at no alarm) on any.
    pub outliers: (usize, usize),
    pub method: Method,
    pub funnel: Option<Markup>,
    /// Pooled counts and groups the disclosure audit withheld.
    pub withheld: &'a std::collections::BTreeSet<crate::publication_audit::Place>,
}

/// A share as published: both counts rounded, or `None` where either is suppressed.
fn published_share(label: String, (k, n): (u64, u64), shown: bool) -> ShareBar {
    let counts = match (disclosure::count(k), disclosure::count(n)) {
        (disclosure::Cell::Count(k), disclosure::Cell::Count(n)) if shown => Some((k, n)),
        _ => None,
    };
    ShareBar { label, counts }
}

impl Glance<'_> {
    pub(super) fn html(&self) -> Markup {
        let n = self.national;
        let graded = |g: &str| self.published.iter().filter(|p| p.grade == g).count();
        let national = (String::new(), String::new());
        let national_uptake = match disclosure::percentage(n.started, n.referred) {
            _ if self.withheld.contains(&national) => None,
            disclosure::Percentage::Value(v) => Some((v / 100.0, "the national uptake")),
            _ => None,
        };
        let grades: Vec<(String, f64)> = ["green", "amber", "red", "withheld", "no data"]
            .iter()
            .map(|g| (crate::words::capitalised(g), graded(g) as f64))
            .collect();
        // Programmes meeting each standard, of those it could be assessed for.
        let keys: Vec<&str> = self
            .published
            .first()
            .map(|p| p.kpis.iter().map(|k| k.key).collect())
            .unwrap_or_default();
        let standards: Vec<ShareBar> = keys
            .iter()
            .map(|key| {
                let met = |m: published::Met| {
                    self.published
                        .iter()
                        .filter(|p| p.kpi(key).is_some_and(|k| k.met == m))
                        .count() as u64
                };
                let yes = met(published::Met::Yes);
                ShareBar {
                    label: crest_stats::kpis::kpi_label(key).to_string(),
                    counts: Some((yes, yes + met(published::Met::No))),
                }
            })
            .collect();
        let nations: Vec<ShareBar> = self
            .nations
            .iter()
            .map(|r| {
                let name = crest_core::Nation::parse(&r.nation)
                    .map_or(r.nation.clone(), |n| n.label().to_string());
                let place = (r.nation.clone(), String::new());
                published_share(name, r.uptake, !self.withheld.contains(&place))
            })
            .collect();
        let quintiles: Vec<ShareBar> = self
            .quintiles
            .iter()
            .enumerate()
            .map(|(i, q)| {
                let label = match i {
                    0 => "1 (most deprived)".to_string(),
                    4 => "5 (least deprived)".to_string(),
                    _ => (i + 1).to_string(),
                };
                let shown = crate::publication_audit::group_shown(
                    DEPRIVATION,
                    &(i + 1).to_string(),
                    self.withheld,
                );
                published_share(label, *q, shown)
            })
            .collect();
        let shown = |b: &ShareBar| {
            b.counts
                .filter(|c| c.1 > 0)
                .map(|(k, n)| (b.label.clone(), k as f64 / n as f64))
        };
        let lowest = quintiles
            .iter()
            .filter_map(shown)
            .min_by(|a, b| a.1.total_cmp(&b.1));
        let highest = quintiles
            .iter()
            .filter_map(shown)
            .max_by(|a, b| a.1.total_cmp(&b.1));
        let patients = ShareAxis {
            label: "share who started core rehabilitation",
            of: "referred",
            none: "nobody referred",
            intervals: true,
        };
        html! {
            p {
                (cell_words("", &count(n.referred))) " patients were referred to cardiac \
                 rehabilitation and " (cell_words("", &count(n.started)))
                " started a core programme: an uptake of "
                (percentage(n.started, n.referred)) "."
            }
            ul {
                li {
                    (graded("green")) " of " (self.programmes) " programmes met all seven standards (green); "
                    (graded("amber")) " met four to six (amber) and " (graded("red")) " three or fewer (red)."
                }
                @if let (Some(lo), Some(hi)) = (&lowest, &highest) {
                    li {
                        "Uptake was lowest in deprivation quintile " (lo.0) ", " (crate::words::pct(Some(lo.1)))
                        ", and highest in quintile " (hi.0) ", " (crate::words::pct(Some(hi.1))) "."
                    }
                }
                li {
                    (self.outliers.0) " programmes were outside the 99.8% funnel limits (alarm) on at \
                     least one of the four funnel plots, and " (self.outliers.1)
                    " more were outside the 95% limits only (alert). Funnel limits: "
                    (self.method.label()) "."
                }
            }
            (column_chart("r-glance-grades", "Programmes by grade", "Grade", "Programmes", &grades))
            (share_bars(
                "r-glance-standards",
                "Programmes meeting each standard, of those it could be assessed for",
                &standards,
                &ShareAxis {
                    label: "share of programmes meeting the standard",
                    of: "programmes assessed",
                    none: "no programme could be assessed",
                    intervals: false,
                },
                None,
            ))
            (share_bars("r-glance-nations", "Uptake by nation", &nations, &patients, national_uptake))
            (share_bars(
                "r-glance-deprivation",
                "Uptake by deprivation quintile (1 = most deprived)",
                &quintiles,
                &patients,
                national_uptake,
            ))
            @if let Some(f) = &self.funnel { (f) }
            p class="note" {
                "Patients' counts are rounded to the nearest 5 and shares computed from the rounded \
                 counts; a group of 1 to 7 is not drawn. Programme counts are exact."
            }
        }
    }
}
