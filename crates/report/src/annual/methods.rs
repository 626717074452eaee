//! The methods appendix: data, KPI definitions and thresholds, funnel limits and
//! overdispersion, and disclosure control, in words.

use super::*;

/// The methods appendix: the cohort, the KPIs with the thresholds used, the statistics and
/// disclosure control.
pub(super) fn methods(from: &str, to: &str, thresholds: &Thresholds, method: Method) -> Vec<Part> {
    use crest_core::Nation::{England, NorthernIreland, Wales};
    let by_nation = |pick: &dyn Fn(&crest_stats::kpis::NationThresholds) -> f64| {
        format!(
            "England {}, Wales {}, Northern Ireland {}",
            t(thresholds, England, pick),
            t(thresholds, Wales, pick),
            t(thresholds, NorthernIreland, pick)
        )
    };
    vec![
        Part {
            title: "Cohort",
            body: html! {
                p {
                    "Episodes whose referral date falls from " (from) " to " (to) ", as submitted to the \
                     national audit. Patients who asked to be left out, and those covered by the National \
                     Data Opt-out, are never submitted. Started = has a start date of core rehabilitation. \
                     Uptake = started / referred. Completion = started episodes with status completed / \
                     started."
                }
            },
        },
        Part {
            title: "Priority groups",
            body: html! {
                p {
                    "MI = initiating event STEMI, NSTEMI or unspecified MI. In order: CABG (treatment \
                     CABG); MI/PCI (MI and PCI); PCI (not MI, PCI); MI (MI treated with medicines only); heart failure; other."
                }
            },
        },
        Part {
            title: "The seven KPIs (NCP_CR) and thresholds used",
            body: html! {
                ol {
                    li { "Multidisciplinary team: at least " (thresholds.mdt) " distinct professions in the staffing return." }
                    li { "Priority groups: all " (thresholds.priority_groups) " of MI, MI/PCI, PCI, CABG and heart failure offered." }
                    li { "Duration: median days from start to end of core rehabilitation at least " (thresholds.duration) "." }
                    li { "Assessment 1: share of those started with an assessment 1 date at least " (by_nation(&|n| n.assessment1)) "." }
                    li { "Wait for CABG: median days from referral to start at most " (by_nation(&|n| n.wait_cabg)) "." }
                    li { "Wait for MI/PCI (MI, MI/PCI and PCI): median at most " (by_nation(&|n| n.wait_mi_pci)) "." }
                    li {
                        "Assessment 2: among those started with assessment 1 and completed, share with \
                         assessment 2 within 140 days of assessment 1 at least "
                        (t(thresholds, England, |n| n.assessment2)) "."
                    }
                }
                p {
                    "Grade: 7 met green, 4 to 6 amber, 3 or fewer red. A standard based on 1 to 7 patients \
                     (its number of patients, numerator or denominator) is too few to assess; KPIs met \
                     counts the assessable standards met, and a grade is published only where it is the \
                     same whatever the standards too few to assess would show (otherwise withheld). A \
                     programme with no referrals in the period has no grade."
                }
            },
        },
        Part {
            title: "Statistics",
            body: html! {
                p {
                    "Medians are the middle value (the mean of the two middle values for an even count); \
                     quartiles interpolate linearly. Intervals for proportions are Wilson score intervals \
                     (z = " (Z95) "). Funnel plot limits are the Wilson interval of the proportion pooled \
                     over every programme at each denominator, at 95% (z = " (Z95) ", alert) and 99.8% \
                     (z = " (Z998) ", alarm); positions are decided on exact counts. The slope index of \
                     inequality is the weighted least-squares slope of quintile uptake on the mid-point of \
                     each quintile's cumulative share of referrals (0 = most deprived), weighted by \
                     referrals. Outcomes are mean paired changes from assessment 1 to 2 with 95% \
                     t-intervals; HADS of 8 or more counts as symptoms present."
                }
            },
        },
        Part {
            title: "Overdispersion",
            body: html! {
                p {
                    "When programmes vary more than chance alone allows, most fall outside plain limits. \
                     Following Spiegelhalter (2005), each programme's z-score is (p − p₀) / √(p₀(1 − p₀)/n); \
                     the 10% most extreme at each end are pulled in to the 10th and 90th percentiles \
                     (winsorised), and φ is the mean of their squares. Iφ, over I programmes, is tested \
                     against χ² on I − 1 degrees of freedom; by default the limits are adjusted only \
                     where that test finds more variation than chance at the 5% level, and then by the \
                     multiplicative method. The multiplicative method uses Wilson limits at the \
                     effective sample size n/φ; the additive method adds a between-programme variance \
                     τ² = (Iφ − (I − 1)) / (Σw − Σw²/Σw), w = n / (p₀(1 − p₀)), and uses Wilson limits \
                     at the n whose binomial variance p₀(1 − p₀)/n equals p₀(1 − p₀)/n + τ². Either way \
                     an adjusted limit is never inside the plain one. Where φ ≤ 1 (or τ² = 0) the plain \
                     limits stand. "
                    strong { "This report uses: " (method.label().to_lowercase()) "." }
                    " Each funnel plot's caption gives its test, and its φ or τ where the limits were adjusted."
                }
            },
        },
        Part {
            title: "Disclosure control",
            body: html! {
                p {
                    "A count of 0 stays 0; 1 to 7 is shown as *; other counts are rounded to the nearest \
                     5. Totals are rounded from exact sums. Percentages use the rounded counts and are * \
                     when either count is. Means, medians and intervals based on 1 to 7 people are *. \
                     Every table is also published as CSV with the same values."
                }
                p {
                    "A standard's result (met or not) is shown only where the published counts decide \
                     it. A rounded count stands for any count within 2 of it (10 for 8 to 12), and * for \
                     1 to 7; where every proportion those counts allow is on the same side of the \
                     standard, the result is shown (3 of 15 cannot reach 60%, so that is shown as not \
                     met, though the count is *); where they allow both, the result is * (too close to \
                     tell once rounded), so a result never contradicts the percentage beside it. A grade \
                     is shown only where it is the same whatever the hidden results are, otherwise it \
                     is withheld. A programme whose funnel counts are * is not drawn, and its level is \
                     published as too few: a level beside hidden counts would narrow them. The same \
                     holds for a programme with a result too few to assess, wherever its level says more \
                     than its rounded counts do (a level allows only some of the exact counts a rounded \
                     count stands for, and those could decide the hidden result)."
                }
                p {
                    "Before this report was made, every count it publishes about patients was checked \
                     together with what relates them, by integer programming: each programme's patients \
                     referred, started, completed and assessed (none can exceed the count it is part \
                     of); the regions', nations' and national totals (each the sum of its programmes); \
                     uptake by each group (the groups add up to the national total); and each funnel \
                     level (which allows only some exact counts behind the rounded ones). No hidden \
                     count can be narrowed to one value, and no hidden result or withheld grade can be \
                     worked out. Where a total would give a hidden count away, that total is withheld \
                     and shown as * as well (first the programme's region, then another region of the \
                     nation, so that the withheld region cannot be found by subtraction either), and \
                     the check is run again; a report that does not pass is not made. Commissioners' \
                     and researchers' own figures come only by financial year and quarter, so that no \
                     two of them can be subtracted."
                }
            },
        },
    ]
}

fn t(
    thresholds: &Thresholds,
    nation: crest_core::Nation,
    pick: impl Fn(&crest_stats::kpis::NationThresholds) -> f64,
) -> String {
    thresholds
        .nations
        .get(&nation)
        .map_or("–".into(), |n| crest_core::value::format_num(pick(n)))
}
