//! The annual report's sections, one function each, in the order they are printed. Each reads
//! the [`Sources`] gathered and audited once, and adds its section and its published tables.

use super::{
    cell_words, count, disclosed_waits, percentage, uptake_table, PublishedTable, ReportSection,
    Sources,
};
use crate::charts::{draw_funnel, wait_plot, Dot, FunnelChart, FUNNELS};
use crest_stats::disclosure;
use crest_stats::funnel::Position;
use crest_stats::kpis::{ProgrammeKpis, RollupRow};
use crest_stats::outcomes::{paired_change, HADS_CASE};
use crest_stats::published;
use maud::{html, Markup};

/// What the funnel plots give the summary at a glance.
pub(super) struct Funnels {
    /// Programmes outside the 95% limits (alert) and the 99.8% limits (alarm) of any KPI.
    pub flagged: [std::collections::BTreeSet<String>; 2],
    /// The uptake funnel, drawn again for the summary.
    pub glance: Option<Markup>,
}

/// The national summary: patients pooled over every programme, grades and the slope index.
pub(super) fn summary(
    s: &Sources,
    sections: &mut Vec<ReportSection>,
    tables: &mut Vec<PublishedTable>,
) {
    let Sources {
        programmes,
        report,
        names,
        published,
        ..
    } = s;
    let pooled = |place: (&str, &str), exact: u64| s.pooled(place, exact);
    // National summary.
    let n = &report.national;
    let grades = |g: &str| published.iter().filter(|p| p.grade == g).count();
    let sii = s.sii();
    let mut summary = PublishedTable::new(
        "summary",
        "The national picture (all programmes pooled)",
        &["measure", "value"],
    );
    let national = (pooled(("", ""), n.referred), pooled(("", ""), n.started));
    summary.push(vec!["referred".into(), national.0.to_string()]);
    summary.push(vec!["started".into(), national.1.to_string()]);
    summary.push(vec![
        "uptake".into(),
        disclosure::percentage_of(national.1, national.0).to_string(),
    ]);
    for k in &n.kpis {
        summary.push(vec![k.label().to_string(), published::kpi(k).value]);
    }
    for g in ["green", "amber", "red", "withheld", "no data"] {
        summary.push(vec![
            format!("programmes graded {g}"),
            grades(g).to_string(),
        ]);
    }
    summary.push(vec![
        "slope index of inequality (percentage points)".into(),
        sii.to_string(),
    ]);
    sections.push(ReportSection {
        id: "summary",
        title: "National summary",
        parts: Vec::new(),
        body: html! {
            p {
                (cell_words("", &national.0.to_string())) " patients were referred to cardiac rehabilitation and "
                (cell_words("", &national.1.to_string())) " started a core programme: an uptake of "
                (disclosure::percentage_of(national.1, national.0)) "."
            }
            p {
                "Of " (programmes.len()) " programmes, " (grades("green"))
                " met all seven standards (green), " (grades("amber"))
                " met four to six (amber) and " (grades("red"))
                " met three or fewer (red). For " (grades("withheld"))
                " the grade is withheld: it depends on a standard based on too few patients to \
                 publish. " (grades("no data")) " had no referrals in the period."
            }
            (summary.html("", names))
        },
    });
    tables.push(summary);
}

/// Each nation, then its regions: patients pooled, programmes by their published grade; the rolled-up rows, for the summary at a glance.
pub(super) fn places(
    s: &Sources,
    sections: &mut Vec<ReportSection>,
    tables: &mut Vec<PublishedTable>,
) -> Vec<RollupRow> {
    let Sources {
        programmes,
        report,
        names,
        published,
        ..
    } = s;
    let pooled = |place: (&str, &str), exact: u64| s.pooled(place, exact);
    // By nation, then by region within it: patients pooled (each count rounded from its exact
    // sum), and programmes by their *published* grade, so a region of one programme never shows
    // the grade that programme's own row withholds.
    let region_of = |code: &str| {
        programmes
            .iter()
            .find(|p| p.code == code)
            .map_or(String::new(), |p| p.region.clone())
    };
    let rows: Vec<&ProgrammeKpis> = report.programmes.iter().collect();
    let mut places = PublishedTable::new(
        "nations_regions",
        "Each nation, then its regions: patients pooled, programmes by published grade",
        &[
            "nation",
            "region",
            "programmes",
            "referred",
            "started",
            "uptake",
            "assessment1",
            "assessment2",
            "green",
            "amber",
            "red",
            "withheld",
            "no_data",
        ],
    );
    let rolled = crest_stats::kpis::rollup(&rows, region_of);
    for r in &rolled {
        let within = |code: &str| {
            let p = programmes.iter().find(|p| p.code == code);
            p.is_some_and(|p| {
                p.nation.code() == r.nation && (r.region.is_empty() || p.region == r.region)
            })
        };
        let graded = |g: &str| {
            published
                .iter()
                .filter(|p| within(&p.programme_code) && p.grade == g)
                .count()
                .to_string()
        };
        // Counts withheld to protect another cell show as * (the audit above).
        let cell = |exact: u64| pooled((&r.nation, &r.region), exact);
        let nation = crest_core::Nation::parse(&r.nation)
            .map_or(r.nation.clone(), |n| n.label().to_string());
        places.push(vec![
            nation,
            if r.region.is_empty() {
                "all regions".into()
            } else {
                r.region.clone()
            },
            r.programmes.to_string(),
            cell(r.uptake.1).to_string(),
            cell(r.uptake.0).to_string(),
            disclosure::percentage_of(cell(r.uptake.0), cell(r.uptake.1)).to_string(),
            disclosure::percentage_of(cell(r.assessment1.0), cell(r.assessment1.1)).to_string(),
            disclosure::percentage_of(cell(r.assessment2.0), cell(r.assessment2.1)).to_string(),
            graded("green"),
            graded("amber"),
            graded("red"),
            graded("withheld"),
            graded("no data"),
        ]);
    }
    sections.push(ReportSection {
        id: "places",
        title: "By nation and region",
        parts: Vec::new(),
        body: html! {
            p {
                "Patients pooled over each nation's programmes, then over each region's. Counts are \
                 rounded from their exact sums; grades are the programmes' published grades. A \
                 line's counts may be * although they are larger than 7: with the other lines \
                 they would let a programme's hidden count or result be worked out."
            }
            (places.html("", names))
        },
    });
    tables.push(places);
    rolled
}

/// Every programme's KPIs, met flags and grade, and its referrals and uptake.
pub(super) fn programmes(
    s: &Sources,
    sections: &mut Vec<ReportSection>,
    tables: &mut Vec<PublishedTable>,
) {
    let Sources {
        report,
        names,
        published,
        ..
    } = s;
    // Every programme: exactly the columns of programmes.csv (privacy.md).
    let keys: Vec<&str> = report
        .programmes
        .first()
        .map(|p| p.results.kpis.iter().map(|k| k.key).collect())
        .unwrap_or_default();
    let mut head = vec!["programme_code".to_string()];
    for k in &keys {
        head.push(k.to_string());
        head.push(format!("{k}_met"));
    }
    head.extend(["kpis_met", "kpis_assessable", "grade"].map(String::from));
    let mut kpi_table = PublishedTable {
        name: "programmes".into(),
        caption: "Each programme's KPIs: the published value and whether the standard is met (* = too few to assess)".into(),
        head,
        rows: Vec::new(),
    };
    for p in published {
        let mut row = vec![p.programme_code.clone()];
        for k in &p.kpis {
            row.push(k.value.clone());
            row.push(k.met.code().to_string());
        }
        row.extend([
            p.kpis_met.to_string(),
            p.kpis_assessable.to_string(),
            p.grade.to_string(),
        ]);
        kpi_table.push(row);
    }
    let mut uptake = PublishedTable::new(
        "uptake",
        "Referrals and uptake by programme",
        &["programme_code", "nation", "referred", "started", "uptake"],
    );
    for p in &report.programmes {
        uptake.push(vec![
            p.programme_code.clone(),
            p.nation.label().to_string(),
            count(p.results.referred),
            count(p.results.started),
            percentage(p.results.started, p.results.referred),
        ]);
    }
    sections.push(ReportSection {
        id: "programmes",
        title: "Programmes: KPIs and grades",
        parts: Vec::new(),
        body: html! {
            p class="note" {
                "A standard based on 1 to 7 patients is too few to assess: its value and met flag \
                 are *. KPIs met counts the assessable standards met; a grade is withheld where it \
                 would depend on a standard too few to assess."
            }
            (kpi_table.html("wide", names))
            (uptake.html("", names))
        },
    });
    tables.push(kpi_table);
    tables.push(uptake);
}

/// Case ascertainment: each programme's referrals and starts against the eligible patients a
/// count of hospital episodes expects, as published (rounded counts, percentages and intervals
/// from them), and the programmes under 80% named. Only where expected patients are loaded.
pub(super) fn ascertainment(
    s: &Sources,
    sections: &mut Vec<ReportSection>,
    tables: &mut Vec<PublishedTable>,
) {
    use crest_stats::published::Met;
    let a = &s.ascertainment;
    if !a.any() {
        return;
    }
    let mut table = PublishedTable::new(
        "ascertainment",
        "Eligible patients expected, referred and started, by programme",
        &[
            "programme_code",
            "expected",
            "referred",
            "started",
            "ascertainment",
            "ci_low",
            "ci_high",
            "uptake_of_eligible",
            "at_least_80",
        ],
    );
    let mut under = Vec::new();
    let mut complete = 0;
    for f in a.programmes.iter().filter(|f| f.has_expected()) {
        let mut row = vec![f.area.clone()];
        match f.published() {
            None => row.extend(
                std::iter::once("incomplete".to_string()).chain((0..7).map(|_| String::new())),
            ),
            Some(p) => {
                complete += 1;
                if p.at_least_80 == Met::No {
                    under.push(
                        s.names
                            .get(&f.area)
                            .map_or(f.area.clone(), |n| format!("{n} ({})", f.area)),
                    );
                }
                let (low, high) = p.interval.map_or((String::new(), String::new()), |(l, h)| {
                    (format!("{l:.1}%"), format!("{h:.1}%"))
                });
                row.extend([
                    p.expected.to_string(),
                    p.referred.to_string(),
                    p.started.to_string(),
                    p.ascertainment.to_string(),
                    low,
                    high,
                    p.uptake_of_eligible.to_string(),
                    p.at_least_80.code().to_string(),
                ]);
            }
        }
        table.push(row);
    }
    sections.push(ReportSection {
        id: "ascertainment",
        title: "Case ascertainment: eligible patients referred",
        parts: Vec::new(),
        body: html! {
            p {
                "Case ascertainment is the share of the patients eligible for cardiac rehabilitation, as a count of \
                 hospital episodes expects them, who were referred. " (complete) " programme(s) have expected counts \
                 for every quarter and condition of the year; "
                @if under.is_empty() {
                    "none of them is under 80%."
                } @else {
                    (under.len()) " of them referred under 80% of the patients expected (SSNAP's rule of thumb): "
                    (under.join(", ")) "."
                }
            }
            p class="note" {
                "Percentages and 95% intervals (exact Poisson, the referrals against a fixed expected count) come from \
                 the rounded counts. Incomplete: the expected counts do not cover every quarter and condition of the \
                 year, so the programme's figures are not published. Above 100%: more were referred than expected."
            }
            (table.html("", &s.names))
        },
    });
    tables.push(table);
}

/// The funnel plots and the programmes outside their limits; the programmes flagged (alert, alarm) and the uptake funnel, for the summary at a glance.
pub(super) fn funnels(
    s: &Sources,
    sections: &mut Vec<ReportSection>,
    tables: &mut Vec<PublishedTable>,
) -> Funnels {
    let Sources {
        method,
        report,
        names,
        ..
    } = s;
    let method = *method;
    // Funnel plots: levels from the exact counts pooled over every programme; points drawn
    // at their published counts, where those are not suppressed.
    let mut funnel_rows = PublishedTable::new(
        "funnels",
        "Funnel plot positions",
        &[
            "kpi",
            "programme_code",
            "numerator",
            "denominator",
            "level",
            "method",
        ],
    );
    let mut outside = PublishedTable::new(
        "outliers",
        "Programmes outside the funnel limits (alert: outside 95%, alarm: outside 99.8%)",
        &["programme_code", "kpi", "numerator", "denominator", "level"],
    );
    let mut plots = Vec::new();
    let mut glance_funnel = None;
    let mut flagged: [std::collections::BTreeSet<String>; 2] = Default::default();
    for (i, (key, title)) in FUNNELS.iter().enumerate() {
        let f = published::funnel(report, key, method);
        for r in &f.rows {
            // Suppressed counts are published `too_few`, not named as outliers: a level beside
            // hidden counts would pin them.
            let level = r.published_level();
            funnel_rows.push(vec![
                key.to_string(),
                r.programme_code.clone(),
                r.numerator.to_string(),
                r.denominator.to_string(),
                level.into(),
                f.fit.map_or(method, |fit| fit.method).code().into(),
            ]);
            if level == published::TOO_FEW {
                continue;
            }
            match r.position {
                Position::Within => {}
                Position::Alert(_) => {
                    flagged[0].insert(r.programme_code.clone());
                }
                Position::Alarm(_) => {
                    flagged[1].insert(r.programme_code.clone());
                }
            }
            if r.position != Position::Within {
                outside.push(vec![
                    r.programme_code.clone(),
                    key.to_string(),
                    r.numerator.to_string(),
                    r.denominator.to_string(),
                    level.into(),
                ]);
            }
        }
        let Some(fit) = f.fit else {
            plots.push(html! { p { (title) ": no data." } });
            continue;
        };
        let hidden = f.rows.iter().filter(|r| r.drawn().is_none()).count();
        let dots: Vec<Dot> = f
            .rows
            .iter()
            .map(|r| Dot {
                code: r.programme_code.clone(),
                at: r.drawn(),
                position: r.published_position(),
                shown: format!("{}/{}", r.numerator, r.denominator),
            })
            .collect();
        let note = if hidden == 0 {
            "Every programme with patients is drawn.".to_string()
        } else {
            format!(
                "{hidden} programme(s) not drawn: a count of 1 to 7 (shown as *), or a level that would narrow a result too few to assess."
            )
        };
        let draw = |id: &str| {
            draw_funnel(&FunnelChart {
                id,
                title,
                fit: &fit,
                programmes: f.rows.len(),
                dots: &dots,
                note: &note,
                selected: None,
                outliers_href: Some("#t-outliers"),
            })
        };
        plots.push(draw(&format!("r-f{i}")));
        if *key == "uptake" {
            glance_funnel = Some(draw("r-glance-funnel"));
        }
    }
    sections.push(ReportSection {
        id: "funnels",
        title: "Funnel plots",
        parts: Vec::new(),
        body: html! {
            p {
                "Each dot is a programme, drawn at its published (rounded) counts. Whether a \
                 programme is inside or outside the limits is decided on its exact counts, against \
                 the proportion pooled over every programme, so it is the same as in the audit's \
                 own analysis. A programme whose numerator or denominator is 1 to 7 cannot be \
                 drawn, and its level is published as too few: a level beside hidden counts would \
                 narrow them."
            }
            @for plot in &plots { (plot) }
            (outside.html("", names))
        },
    });
    tables.push(funnel_rows);
    tables.push(outside);
    Funnels {
        flagged,
        glance: glance_funnel,
    }
}

/// Median waits from referral to start, by programme, against each nation's threshold.
pub(super) fn waits(
    s: &Sources,
    sections: &mut Vec<ReportSection>,
    tables: &mut Vec<PublishedTable>,
) {
    let Sources { report, names, .. } = s;
    // Waits.
    let waits = disclosed_waits(&report.programmes);
    let refs: Vec<&ProgrammeKpis> = waits.iter().collect();
    let mut wait_table = PublishedTable::new(
        "waits",
        "Median wait from referral to start, by programme (days)",
        &[
            "programme_code",
            "nation",
            "wait_cabg",
            "wait_cabg_threshold",
            "wait_mi_pci",
            "wait_mi_pci_threshold",
        ],
    );
    for p in &report.programmes {
        let cell = |key: &str| {
            p.results.kpis.iter().find(|k| k.key == key).map_or(
                ("–".to_string(), "–".to_string()),
                |k| {
                    (
                        published::kpi(k).value,
                        k.threshold
                            .map_or("–".into(), crest_core::value::format_num),
                    )
                },
            )
        };
        let (c, ct) = cell("wait_cabg");
        let (m, mt) = cell("wait_mi_pci");
        wait_table.push(vec![
            p.programme_code.clone(),
            p.nation.label().to_string(),
            c,
            ct,
            m,
            mt,
        ]);
    }
    sections.push(ReportSection {
        id: "waits",
        title: "Waits",
        parts: Vec::new(),
        body: html! {
            p {
                "Median days from referral to the start of core rehabilitation, by programme, \
                 against each nation's threshold."
            }
            // One row per programme: beyond 60 the plots would not fit a page.
            @if refs.len() <= 60 {
                (wait_plot("r-wcabg", "wait_cabg", "Median wait: CABG", &refs))
                (wait_plot("r-wmipci", "wait_mi_pci", "Median wait: MI/PCI", &refs))
            }
            (wait_table.html("", names))
        },
    });
    tables.push(wait_table);
}

/// Uptake by sex, age band, ethnic group, deprivation and priority group.
pub(super) fn inequalities(
    s: &Sources,
    sections: &mut Vec<ReportSection>,
    tables: &mut Vec<PublishedTable>,
) {
    let Sources {
        names,
        by_group,
        withheld,
        ..
    } = s;
    let sii = s.sii();
    // Inequalities.
    let groups = [
        ("uptake_by_sex", "sex"),
        ("uptake_by_age_band", "age band"),
        ("uptake_by_ethnic_group", "ethnic group"),
        (
            "uptake_by_deprivation",
            "deprivation quintile (1 = most deprived)",
        ),
        ("uptake_by_priority_group", "priority group"),
    ]
    .iter()
    .zip(&by_group.groups)
    .enumerate()
    .map(|(i, ((name, title), counts))| {
        let rows: Vec<(String, u64, u64)> = counts
            .iter()
            .map(|(g, (n, k))| (g.clone(), *n, *k))
            .collect();
        uptake_table(name, title, &rows, |g| {
            crate::publication_audit::group_shown(i, g, withheld)
        })
    })
    .collect::<Vec<_>>();
    sections.push(ReportSection {
        id: "inequalities",
        title: "Who takes up cardiac rehabilitation",
        parts: Vec::new(),
        body: html! {
            @for t in &groups { (t.html("", names)) }
            p {
                "Slope index of inequality across deprivation quintiles: " (sii)
                " percentage points (a positive value means uptake rises as deprivation falls)."
            }
        },
    });
    tables.extend(groups);
}

/// Change from assessment 1 to assessment 2, and HADS cases at each.
pub(super) fn outcomes(
    s: &Sources,
    sections: &mut Vec<ReportSection>,
    tables: &mut Vec<PublishedTable>,
) {
    let Sources {
        names, outcomes, ..
    } = s;
    // Outcomes.
    let mut changes = PublishedTable::new(
        "outcomes",
        "Change from assessment 1 to assessment 2, among patients with both",
        &[
            "measure",
            "patients",
            "mean_at_1",
            "mean_at_2",
            "mean_change",
            "interval_95",
        ],
    );
    let mut hads = PublishedTable::new(
        "hads",
        "Patients with HADS of 8 or more (symptoms present), among those scored at both assessments",
        &["scale", "patients", "at_1", "at_2"],
    );
    for (field, pairs) in outcomes {
        let c = paired_change(pairs);
        let people = c.n as u64;
        let stat = |v: Option<f64>| {
            disclosure::statistic(v.map(|x| (x * 10.0).round() / 10.0), people).to_string()
        };
        changes.push(vec![
            field.label.to_string(),
            count(people),
            stat(c.mean_a1),
            stat(c.mean_a2),
            stat(c.mean_change),
            match (c.ci, (1..=7).contains(&people)) {
                (Some((lo, hi)), false) => format!("{:.1} to {:.1}", lo, hi),
                (_, true) => "*".into(),
                _ => "–".into(),
            },
        ]);
        if field.name.starts_with("a1_hads") {
            let at = |first: bool| {
                let cases = pairs
                    .iter()
                    .filter(|p| (if first { p.0 } else { p.1 }) >= HADS_CASE)
                    .count() as u64;
                percentage(cases, people)
            };
            hads.push(vec![
                field.label.to_string(),
                count(people),
                at(true),
                at(false),
            ]);
        }
    }
    sections.push(ReportSection {
        id: "outcomes",
        title: "Outcomes",
        parts: Vec::new(),
        body: html! { (changes.html("", names)) (hads.html("", names)) },
    });
    tables.push(changes);
    tables.push(hads);
}

/// Which programmes submitted, and how completely they recorded assessments.
pub(super) fn quality(
    s: &Sources,
    sections: &mut Vec<ReportSection>,
    tables: &mut Vec<PublishedTable>,
) {
    let Sources {
        programmes,
        report,
        names,
        held,
        from,
        to,
        ..
    } = s;
    // Data quality.
    let current = |code: &str| {
        held.iter()
            .any(|s| s.programme == code && s.from == *from && s.to == *to && s.current)
    };
    let received = programmes.iter().filter(|p| current(&p.code)).count();
    let mut quality = PublishedTable::new(
        "quality",
        "Submissions and recording by programme",
        &[
            "programme_code",
            "submission",
            "assessment1_recorded",
            "assessment2_within_140_days",
        ],
    );
    for p in &report.programmes {
        let (a1k, a1n) = p.proportion("assessment1");
        let (a2k, a2n) = p.proportion("assessment2");
        quality.push(vec![
            p.programme_code.clone(),
            if current(&p.programme_code) {
                "received"
            } else {
                "missing"
            }
            .into(),
            percentage(a1k, a1n),
            percentage(a2k, a2n),
        ]);
    }
    sections.push(ReportSection {
        id: "quality",
        title: "Data quality",
        parts: Vec::new(),
        body: html! {
            p { (received) " of " (programmes.len()) " programmes submitted data for this period." }
            (quality.html("", names))
        },
    });
    tables.push(quality);
}

/// The methods appendix.
pub(super) fn methods(
    s: &Sources,
    sections: &mut Vec<ReportSection>,
    _tables: &mut Vec<PublishedTable>,
) {
    let Sources {
        period,
        method,
        thresholds,
        ..
    } = s;
    let (period, method) = (*period, *method);
    sections.push(ReportSection {
        id: "methods",
        title: "Methods",
        body: html! {},
        parts: super::methods::methods(&period.from.long(), &period.to.long(), thresholds, method),
    });
}
