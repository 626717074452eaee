//! The programme dashboard: the seven KPIs against their thresholds with the grade, uptake with
//! its interval, waits with a distribution chart, and uptake by sex, age band, ethnic group and
//! deprivation quintile. Charts are server-side SVG with titles and text alternatives.

use crate::app::access::Staff;
use crate::app::table::View;
use crate::app::{html_page, App, Code, WebError};
use crate::html::{page, pct};
use axum::extract::{Path as UrlPath, Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use crest_core::{Col, Kind, KpiEpisode, Period, PriorityGroup, Programme, Record, FIELDS};
use crest_report::charts::FUNNELS;
use crest_stats::kpis::{compute, Thresholds};
use crest_stats::outcomes::{paired_change, share_at_least, HADS_CASE};
use crest_stats::summary::Summary;
use maud::{html, Markup};
use std::sync::Arc;

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new().route("/p/{code}/dashboard", get(dashboard))
}

#[derive(serde::Deserialize, Default)]
struct PeriodQuery {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    /// The KPI whose national funnel plot is shown (one at a time).
    #[serde(default)]
    funnel: String,
}

/// The funnel KPI asked for (uptake by default), with its title; a clear 400 for another.
fn chosen_funnel(asked: &str) -> Result<(&'static str, &'static str), WebError> {
    if asked.trim().is_empty() {
        return Ok(FUNNELS[0]);
    }
    FUNNELS
        .iter()
        .find(|(k, _)| *k == asked.trim())
        .copied()
        .ok_or_else(|| {
            WebError::BadRequest(
                "There is no funnel plot of that: choose uptake, completion, assessment 1 or assessment 2."
                    .into(),
            )
        })
}

/// The small form that picks which national funnel plot the lead sees, keeping the period.
pub(crate) fn funnel_chooser(period: Period, chosen: &str) -> Markup {
    html! {
        form method="get" class="noprint" action="#national-funnel" {
            input type="hidden" name="from" value=(period.from.to_string());
            input type="hidden" name="to" value=(period.to.to_string());
            label for="funnel" { "Funnel plot of" }
            select id="funnel" name="funnel" {
                @for (key, title) in FUNNELS {
                    option value=(key) selected[key == chosen] { (title) }
                }
            }
            " "
            button { "Show" }
        }
    }
}

fn num(x: Option<f64>) -> String {
    x.map_or("–".into(), crest_core::value::format_num)
}

/// Uptake by group among the programme's own records (started = has a core start date).
fn group_by<'a>(
    records: impl IntoIterator<Item = &'a Record>,
    key: impl Fn(&Record) -> String,
) -> Vec<crest_stats::inequality::GroupUptake> {
    crest_stats::inequality::uptake_by(
        records,
        |r| key(r),
        |r| r.date(Col::CoreStartDate).is_some(),
    )
}

/// Patients by whole weeks of `days` (the last column holds `weeks` or more), as a column
/// chart with labelled axes.
fn weeks_chart(id: &str, title: &str, x_label: &str, days: &[f64], weeks: usize) -> Markup {
    let mut counts = vec![0u64; weeks + 1];
    for d in days {
        counts[((*d / 7.0).floor().max(0.0) as usize).min(weeks)] += 1;
    }
    let columns: Vec<(String, f64)> = counts
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let label = if i == weeks {
                format!("{i}+")
            } else {
                i.to_string()
            };
            (label, *c as f64)
        })
        .collect();
    crest_report::charts::column_chart(id, title, x_label, "patients", &columns)
}

/// "1 patient", "2 patients": a caption reads as words.
fn patients(n: usize) -> String {
    if n == 1 {
        "1 patient".to_string()
    } else {
        format!("{n} patients")
    }
}

/// Patients who ended core rehabilitation, by whole weeks it lasted (16 or more together).
fn duration_chart(durations: &[f64]) -> Markup {
    weeks_chart(
        "dur",
        &format!(
            "How long core rehabilitation lasted ({} with a start and an end)",
            patients(durations.len())
        ),
        "weeks from start to end",
        durations,
        16,
    )
}

/// Patients who started, by whole weeks waited from referral (12 or more weeks together).
fn wait_chart(waits: &[f64]) -> Markup {
    weeks_chart(
        "wt",
        &format!(
            "Waits from referral to the start of core rehabilitation ({} who started)",
            patients(waits.len())
        ),
        "weeks from referral to start",
        waits,
        12,
    )
}

async fn dashboard(
    State(app): State<Arc<App>>,
    Staff(c, p): Staff,
    UrlPath(_code): Code,
    Query(q): Query<PeriodQuery>,
) -> Result<Response, WebError> {
    let period = crate::app::requested_period(&app, &q.from, &q.to)?;
    let funnel = chosen_funnel(&q.funnel)?;
    // The page is rebuilt only when the programme's data or profile changed since it was
    // last rendered for this period (the store's data version says which).
    let key = crate::app::cache::cache_key("dashboard", &p.code, Some(period), "");
    let prog = p.clone();
    let body = app
        .db(move |s, app| {
            // The profile and the service changes are part of the version: either changes
            // the page.
            let changes = crate::programme::over_time::changes_for(&prog, s.service_changes()?);
            let ids: Vec<i64> = changes.iter().map(|c| c.id).collect();
            // Loading expected patients moves the data version too.
            let version = format!("{} {:?} {ids:?}", s.data_version(&prog.code)?, prog);
            // Requests for a cold page at once wait for the first one's render rather than
            // each reading the episodes and rendering the same page.
            app.dashboards.get_or_build(key, &version, || {
                // This period and the two years before it, for the trend and the charts over
                // time.
                let q = crate::programme::over_time::history_query(period);
                let expected =
                    s.expected_of(&crest_core::expected::Area::Programme(prog.code.clone()))?;
                let records = s.find_episodes(&prog.code, &q)?;
                Ok::<_, WebError>(render(&prog, &records, period, &changes, &expected))
            })
        })
        .await?;
    let national = national_section(&app, &p, period, funnel).await?;
    Ok(html_page(page(
        &format!("Dashboard – {}", p.name),
        c.nav(Some(&p.code)),
        html! {
            (body)
            @if c.user.role == crest_store::Role::ProgrammeLead {
                (crate::programme::over_time::change_form(&p).render(&c.session.csrf, &Default::default(), None))
            }
            @match national {
                Some(n) => (n),
                None => {
                    h2 { "Against the national picture" }
                    p {
                        "This server has no national store, and no published national figures \
                         are loaded yet, so national figures and funnel plots are not shown here. \
                         An administrator can load the national audit's latest published figures."
                    }
                }
            }
        },
    )))
}

/// The programme against every programme in the national store (when this server has one):
/// the national value of each KPI and the programme's point on the funnel plots, published
/// figures only (other programmes' counts are disclosure-controlled), cached until the
/// national data change.
async fn national_section(
    app: &Arc<App>,
    p: &Programme,
    period: Period,
    funnel: (&'static str, &'static str),
) -> Result<Option<Arc<Markup>>, WebError> {
    let chooser = funnel_chooser(period, funnel.0);
    if app.national_db.get().is_none() {
        // No national store: the national audit's published figures, if an administrator
        // loaded them.
        let code = p.code.clone();
        return app
            .db(move |s, _| {
                Ok(crate::admin::national_figures::held(s)?.map(|f| {
                    Arc::new(crate::admin::national_figures::markup(
                        &f, &code, funnel, chooser,
                    ))
                }))
            })
            .await;
    }
    // Other programmes' published counts come only on the published grid (a quarter or a
    // financial year), as for commissioners: a lead asking for many overlapping periods could
    // otherwise subtract them to find another programme's small counts.
    let period = crest_report::aggregates::published_grid(period);
    let key = format!(
        "lead\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}",
        p.code, period.from, period.to, funnel.0
    );
    let (a, code) = (app.clone(), p.code.clone());
    app.national(move |n| {
        let version = n.data_version()?;
        if let Some(body) = a.national_pages.get(&key, &version) {
            return Ok(Some(body));
        }
        let programmes = n.programmes()?;
        let episodes = n.kpi_episodes(period.from, period.to, &programmes)?;
        let report = compute(&programmes, &episodes, period, &Thresholds::default());
        let body = Arc::new(national_markup(&report, &code, funnel, chooser, period));
        a.national_pages.put(key, version, body.clone());
        Ok(Some(body))
    })
    .await
}

fn national_markup(
    report: &crest_stats::KpiReport,
    code: &str,
    (key, title): (&str, &str),
    chooser: Markup,
    grid: Period,
) -> Markup {
    use crest_stats::published;
    let published: Vec<published::PublishedProgramme> =
        report.programmes.iter().map(published::programme).collect();
    let mine = published.iter().find(|p| p.programme_code == code);
    // Programmes meeting a KPI, of those it could be assessed for (not too few).
    let meeting = |key: &str| {
        let flag = |p: &published::PublishedProgramme| p.kpi(key).map(|k| k.met);
        let met = published
            .iter()
            .filter(|p| flag(p) == Some(published::Met::Yes))
            .count();
        let assessable = met
            + published
                .iter()
                .filter(|p| flag(p) == Some(published::Met::No))
                .count();
        format!("{met} of {assessable}")
    };
    let shown = crest_stats::kpis::kpi_shown;
    let f = published::funnel(report, key, crest_stats::funnel::Method::Auto);
    let plot = match f.fit {
        None => html! { p { (title) ": no data." } },
        Some(fit) => {
            let dots: Vec<crest_report::charts::Dot> = f
                .rows
                .iter()
                .map(|r| crest_report::charts::Dot {
                    code: r.programme_code.clone(),
                    at: r.drawn(),
                    position: r.published_position(),
                    shown: format!(
                        "{}/{}",
                        crate::html::count_words(&r.numerator.to_string()),
                        crate::html::count_words(&r.denominator.to_string())
                    ),
                })
                .collect();
            crest_report::charts::draw_funnel(&crest_report::charts::FunnelChart {
                id: &format!("nf-{key}"),
                title,
                fit: &fit,
                programmes: f.rows.len(),
                dots: &dots,
                note: "Points are drawn at published (rounded) counts; positions come from exact counts.",
                selected: Some(code),
                outliers_href: None,
            })
        }
    };
    html! {
        h2 { "Against the national picture" }
        p {
            "National figures for " strong { (grid.from.long()) " to " (grid.to.long()) } ": "
            "other programmes' figures are published for whole financial years and their \
             quarters only, so a period inside one quarter shows that quarter, and any other \
             the financial year it ends in."
        }
        p class="hint" {
            "From the national audit's store: what every programme has submitted for this period. \
             Your figures there can differ from yours above: patients who asked to be left out, \
             and those covered by the National Data Opt-out, are never sent, and changes made \
             since your last submission reach the audit with the next one. Other programmes' \
             counts are rounded to the nearest 5, and counts of 1 to 7 are not shown."
        }
        table tabindex="0" {
            caption { "Each KPI: your programme as the national audit holds it, and nationally" }
            thead { tr {
                th scope="col" { "KPI" } th scope="col" { "Your programme (as submitted)" }
                th scope="col" { "National (all programmes pooled)" }
                th scope="col" { "Programmes meeting the standard" }
            } }
            tbody {
                @for key in crest_stats::kpis::KPI_KEYS {
                    tr {
                        th scope="row" { (crest_stats::kpis::kpi_label(key)) }
                        td { (mine.and_then(|m| m.kpi(key)).map_or("not submitted".to_string(), |v| shown(key, &v.value))) }
                        // The profile counts are each programme's own: nothing to pool.
                        td { (report.national.kpi(key).map_or("–".to_string(), |k| shown(key, &published::kpi(k).value))) }
                        td { (meeting(key)) }
                    }
                }
            }
        }
        @if let Some(m) = mine {
            p { "Your grade as the national audit publishes it: " strong { (m.grade) } "." }
        }
        h3 id="national-funnel" { "Where your programme sits on the national funnel plots" }
        (chooser)
        (plot)
    }
}

/// Median and IQR of `values` as "median (IQR q1–q3)".
fn median_iqr(values: &[f64]) -> String {
    if values.is_empty() {
        return "–".into();
    }
    // Summary sorts what it is given; the caller's list stays in its order.
    let w = Summary::of(&mut values.to_vec());
    format!("{} (IQR {}–{})", num(w.median), num(w.q1), num(w.q3))
}

/// The dashboard's content for a programme's episodes referred in `period`.
/// The dashboard's content for a programme: `history` holds its episodes referred in
/// `period` and the two years before it (for the trend).
fn render(
    p: &Programme,
    history: &[Record],
    period: Period,
    changes: &[crest_core::changes::ServiceChange],
    expected: &[crest_core::expected::Expected],
) -> maud::Markup {
    let records: Vec<Record> = history
        .iter()
        .filter(|r| referred_within(r, period))
        .cloned()
        .collect();
    let facts: Vec<KpiEpisode> = records
        .iter()
        .filter_map(|r| KpiEpisode::of_record(r, 0))
        .collect();
    let report = compute(
        std::slice::from_ref(p),
        &facts,
        period,
        &Thresholds::default(),
    );
    let k = report.programmes.first();
    html! {
        (crate::html::period_form(period.from, period.to, maud::html! {}))
        (kpi_section(k, period))
        (ascertainment_section(p, expected, &facts, period))
        (waits_section(&records, &facts, k))
        (uptake_section(&records, k, p, period))
        (trend_section(p, history, period))
        (crate::programme::over_time::section(p, history, period, changes))
    }
}

/// Eligible patients referred: the programme's referrals and starts against the expected
/// patients loaded for it, in all and by condition.
fn ascertainment_section(
    p: &Programme,
    expected: &[crest_core::expected::Expected],
    facts: &[KpiEpisode],
    period: Period,
) -> maud::Markup {
    let a = crest_stats::ascertainment::ascertainment(
        expected,
        std::slice::from_ref(p),
        facts,
        period.from,
        period.to,
    );
    html! {
        h2 id="ascertainment" { "Eligible patients referred" }
        @match a.programmes.first().filter(|f| f.has_expected()) {
            None => (crate::ascertainment::none_loaded("Expected patients come from a count of hospital episodes, per quarter and condition: load them with crest expected import FILE.")),
            Some(f) => {
                p { (crate::ascertainment::sentence(&format!("{}, {}", p.name, crate::ascertainment::quarters_words(&a)), &f.all)) }
                @let here = format!("/p/{}/dashboard", crate::html::url_encode(&p.code));
                @let query = std::collections::HashMap::from([
                    ("from".to_string(), period.from.to_string()),
                    ("to".to_string(), period.to.to_string()),
                ]);
                (crate::ascertainment::by_condition(f).render(&View::of("conditions", &here, &query)))
            }
        }
    }
}

/// Whether an episode was referred within `q`.
fn referred_within(r: &Record, q: Period) -> bool {
    r.date(Col::ReferralDate)
        .is_some_and(|d| d >= q.from && d <= q.to)
}

/// Referrals and uptake, the grade, and the seven KPIs against their thresholds.
fn kpi_section(k: Option<&crest_stats::kpis::ProgrammeKpis>, period: Period) -> maud::Markup {
    let is_share = |key: &str| matches!(key, "assessment1" | "assessment2");
    html! {
        @if let Some(k) = k {
            @let r = &k.results;
            h2 { "Referrals and uptake" }
            p {
                (r.referred) " referred, " (r.started) " started core CR: uptake " (pct(r.uptake.value()))
                " (95% interval "
                (r.uptake.ci().map_or("–".into(), |(lo, hi)| format!("{}–{}", pct(Some(lo)), pct(Some(hi)))))
                ")."
            }
            h2 { "Key performance indicators" }
            p {
                "Grade: " strong class={ "grade-" (k.grade_shown().replace(' ', "-")) } { (k.grade_shown()) }
                @if r.referred == 0 { ": nobody was referred in this period" }
                @else { " (" (k.kpis_met) " of 7 met)" }
                "."
            }
            table tabindex="0" {
                caption { "The seven NCP_CR KPIs for " (period.long()) }
                thead { tr {
                    th scope="col" { "KPI" } th scope="col" { "Value" }
                    th scope="col" { "Threshold" } th scope="col" { "Met" }
                } }
                tbody {
                    @for kpi in &r.kpis {
                        tr {
                            th scope="row" { (kpi.label()) }
                            @let shown = |x: Option<f64>| {
                                let v = if is_share(kpi.key) { pct(x) } else { num(x) };
                                crest_stats::kpis::kpi_shown(kpi.key, &v)
                            };
                            td { (shown(kpi.value())) } td { (shown(kpi.threshold)) }
                            td { @if kpi.met { "yes" } @else { "no" } }
                        }
                    }
                }
            }
        }
    }
}

/// Waits from referral to start (all, CABG, MI/PCI), duration, completion, assessments
/// recorded, and delivery modes.
fn waits_section(
    records: &[Record],
    facts: &[KpiEpisode],
    k: Option<&crest_stats::kpis::ProgrammeKpis>,
) -> maud::Markup {
    let mut wait_thresholds = (None, None);
    for kpi in k.iter().flat_map(|k| &k.results.kpis) {
        match kpi.key {
            "wait_cabg" => wait_thresholds.0 = kpi.threshold,
            "wait_mi_pci" => wait_thresholds.1 = kpi.threshold,
            _ => {}
        }
    }
    // Waits (overall and by the two KPI groups), duration, completion, assessment recording.
    let wait = |f: &KpiEpisode| Some(f.core_start?.days_since(f.referral_date) as f64);
    let mut waits: Vec<f64> = facts.iter().filter_map(wait).collect();
    waits.sort_by(f64::total_cmp);
    let group_waits = |groups: &[PriorityGroup]| -> Vec<f64> {
        facts
            .iter()
            .filter(|f| groups.contains(&f.group))
            .filter_map(wait)
            .collect()
    };
    let cabg = group_waits(&[PriorityGroup::Cabg]);
    let mi_pci = group_waits(&[PriorityGroup::Mi, PriorityGroup::MiPci, PriorityGroup::Pci]);
    let durations: Vec<f64> = facts
        .iter()
        .filter_map(|f| Some(f.core_end?.days_since(f.core_start?) as f64))
        .collect();
    let started = facts.iter().filter(|f| f.core_start.is_some()).count();
    let completed = facts.iter().filter(|f| f.completed).count();
    let a1 = facts.iter().filter(|f| f.assessment1.is_some()).count();
    let a2 = facts.iter().filter(|f| f.assessment2.is_some()).count();
    let modes = group_by(
        records
            .iter()
            .filter(|r| r.date(Col::CoreStartDate).is_some()),
        |r| match r.text(Col::DeliveryMode) {
            Some(m) => Col::DeliveryMode
                .field()
                .code_label(m)
                .unwrap_or(m)
                .to_string(),
            None => "Not recorded".to_string(),
        },
    );
    html! {
        h2 { "Waits and delivery" }
        table tabindex="0" {
            caption { "Wait from referral to the start of core CR, days" }
            thead { tr {
                th scope="col" { "Patients" } th scope="col" { "Started" }
                th scope="col" { "Median (IQR)" } th scope="col" { "Threshold" }
            } }
            tbody {
                tr { th scope="row" { "All" } td { (waits.len()) } td { (median_iqr(&waits)) } td {} }
                tr { th scope="row" { "CABG" } td { (cabg.len()) } td { (median_iqr(&cabg)) } td { (num(wait_thresholds.0)) } }
                tr { th scope="row" { "MI/PCI" } td { (mi_pci.len()) } td { (median_iqr(&mi_pci)) } td { (num(wait_thresholds.1)) } }
            }
        }
        p { "Duration of core CR: median " (median_iqr(&durations)) " days." }
        (duration_chart(&durations))
        p {
            "Completed: " (completed) " of " (started) " started. Assessment 1 recorded for " (a1)
            ", assessment 2 for " (a2) " of " (records.len()) " referred."
        }
        (wait_chart(&waits))
        table tabindex="0" {
            caption { "Delivery modes of those who started" }
            thead { tr { th scope="col" { "Mode" } th scope="col" { "Patients" } } }
            tbody {
                @for (m, n, _) in &modes {
                    tr { th scope="row" { (m) } td { (n) } }
                }
            }
        }
        (outcomes(records))
    }
}

/// Uptake by sex, age band, ethnic group, deprivation quintile and priority group, beside the
/// programme's overall uptake.
fn uptake_section(
    records: &[Record],
    k: Option<&crest_stats::kpis::ProgrammeKpis>,
    p: &Programme,
    period: Period,
) -> maud::Markup {
    // The tables' sorting links keep the period (the page is kept per period).
    let here = format!("/p/{}/dashboard", crate::html::url_encode(&p.code));
    let query = std::collections::HashMap::from([
        ("from".to_string(), period.from.to_string()),
        ("to".to_string(), period.to.to_string()),
    ]);
    let uptake = crate::uptake::by_group(records);
    html! {
        h2 { "Who takes up cardiac rehabilitation" }
        @for (i, (title, rows)) in uptake.iter().enumerate() {
            (crest_report::charts::proportion_bars(
                &format!("ug{i}"),
                &format!("Uptake by {title}"),
                rows,
                k.and_then(|k| k.results.uptake.value()).map(|v| (v, "the programme's overall uptake")),
            ))
            (crate::uptake::uptake_table(title, rows).render(&View::of(&format!("uptake-{i}"), &here, &query)))
        }
    }
}

/// The last three years: uptake, completion and assessments by year of referral, and grades.
fn trend_section(p: &Programme, history: &[Record], period: Period) -> maud::Markup {
    // The last three years, for the trend.
    let years: Vec<(Period, crest_stats::kpis::ProgrammeKpis)> = [2, 1, 0]
        .into_iter()
        .filter_map(|back| {
            let q = period.earlier(back);
            let facts: Vec<KpiEpisode> = history
                .iter()
                .filter(|r| referred_within(r, q))
                .filter_map(|r| KpiEpisode::of_record(r, 0))
                .collect();
            let r = compute(std::slice::from_ref(p), &facts, q, &Thresholds::default());
            Some((q, r.programmes.into_iter().next()?))
        })
        .collect();
    let trend_labels: Vec<String> = years
        .iter()
        .map(|(q, _)| format!("{}–{}", q.from.ymd().0, q.to.ymd().0 % 100))
        .collect();
    let share = |k: &crest_stats::kpis::ProgrammeKpis, key: &str| {
        let (x, n) = k.proportion(key);
        (n > 0).then(|| x as f64 / n as f64)
    };
    let trend: Vec<(&str, Vec<Option<f64>>)> = FUNNELS
        .iter()
        .map(|(key, _)| {
            (
                crest_stats::kpis::kpi_label(key),
                years.iter().map(|(_, k)| share(k, key)).collect(),
            )
        })
        .collect();
    html! {
        h2 { "The last three years" }
        (crest_report::charts::trend_chart("trend", "Uptake, completion and assessments by year of referral", &trend_labels, &trend))
        table tabindex="0" {
            caption { "By year of referral" }
            thead { tr {
                th scope="col" { "Referred" } th scope="col" { "Patients" }
                @for (key, _) in FUNNELS { th scope="col" { (crest_stats::kpis::kpi_label(key)) } }
                th scope="col" { "Grade" }
            } }
            tbody {
                @for ((q, k), label) in years.iter().zip(&trend_labels) {
                    tr {
                        th scope="row" { (label) " (" (q.from.long()) " to " (q.to.long()) ")" }
                        td { (k.results.referred) }
                        @for (key, _) in FUNNELS { td { (pct(share(k, key))) } }
                        td { (k.grade_shown()) }
                    }
                }
            }
        }
    }
}

/// Paired A1 → A2 change for every numeric measure, and the HADS ≥ 8 shares (kpis.md).
fn outcomes(records: &[Record]) -> Markup {
    let a1 = FIELDS.iter().filter(|f| f.assessment() == Some(1));
    let a2 = FIELDS.iter().filter(|f| f.assessment() == Some(2));
    let mut changes = Vec::new();
    let mut hads = Vec::new();
    for (f1, f2) in a1.zip(a2) {
        if !matches!(f1.kind, Kind::Int { .. } | Kind::Decimal { .. }) {
            continue;
        }
        let pairs: Vec<(f64, f64)> = records
            .iter()
            .filter_map(|r| Some((r.num(f1.col)?, r.num(f2.col)?)))
            .collect();
        let c = paired_change(&pairs);
        if f1.name.starts_with("a1_hads") {
            hads.push((
                f1.label,
                c.n,
                share_at_least(pairs.iter().map(|p| p.0), HADS_CASE),
                share_at_least(pairs.iter().map(|p| p.1), HADS_CASE),
            ));
        }
        changes.push((f1.label, c));
    }
    html! {
        h2 { "Outcomes" }
        div class="small-charts" {
            @for (i, (measure, c)) in changes.iter().enumerate().filter(|(_, (_, c))| c.n > 0) {
                (crest_report::charts::change_chart(&format!("oc{i}"), &format!("{measure}: mean of {} patient(s)", c.n), c.mean_a1.map(one_place), c.mean_a2.map(one_place)))
            }
        }
        table tabindex="0" {
            caption { "Change from assessment 1 to assessment 2, among patients with both values" }
            thead { tr {
                th scope="col" { "Measure" } th scope="col" { "Patients" } th scope="col" { "Mean at 1" }
                th scope="col" { "Mean at 2" } th scope="col" { "Mean change" } th scope="col" { "95% interval" }
            } }
            tbody {
                @for (measure, c) in &changes {
                    tr {
                        th scope="row" { (measure) }
                        td { (c.n) } td { (one_dp(c.mean_a1)) } td { (one_dp(c.mean_a2)) }
                        td { (one_dp(c.mean_change)) }
                        td { (c.ci.map_or("–".into(), |(lo, hi)| format!("{} to {}", one_dp(Some(lo)), one_dp(Some(hi))))) }
                    }
                }
            }
        }
        table tabindex="0" {
            caption { "Patients with HADS ≥ 8 (symptoms present), among those scored at both assessments" }
            thead { tr {
                th scope="col" { "Scale" } th scope="col" { "Patients" } th scope="col" { "At 1" } th scope="col" { "At 2" }
            } }
            tbody {
                @for (scale, n, at1, at2) in &hads {
                    tr { th scope="row" { (scale) } td { (n) } td { (pct(*at1)) } td { (pct(*at2)) } }
                }
            }
        }
    }
}

fn one_place(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn one_dp(x: Option<f64>) -> String {
    x.map_or("–".into(), |v| format!("{v:.1}"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn chart_captions_count_patients_in_words() {
        let one = super::wait_chart(&[28.0]).into_string();
        assert!(one.contains("(1 patient who started)"), "{one}");
        let two = super::duration_chart(&[30.0, 61.0]).into_string();
        assert!(
            two.contains("(2 patients with a start and an end)"),
            "{two}"
        );
    }
}
