//! The annual report (`crest report annual`): the national summary, every programme's KPIs
//! and grade, the funnel plots, waits, inequalities, outcomes, data quality and a methods
//! appendix, from the national store. Every figure passes through disclosure control
//! (`crest_stats::disclosure`) before it is written. The report is one self-contained HTML file
//! (fonts embedded, print styles with page numbers and repeating table headers); the PDF is that
//! file printed by headless Chromium, so both look the same on any machine.

use crate::html::esc;
use crate::national_dashboard::{funnel_plot, proportion, wait_plot};
use base64::Engine;
use crest_core::{Date, Period};
use crest_stats::disclosure::{self, Cell};
use crest_stats::funnel::Z998;
use crest_stats::kpis::{compute, Measure, ProgrammeKpis, Thresholds};
use crest_stats::outcomes::{paired_change, HADS_CASE};
use crest_stats::summary::Summary;
use crest_stats::Z95;
use crest_store::NationalStore;
use std::fmt::Write;
use std::path::Path;

const FONT_REGULAR: &[u8] = include_bytes!("../../../assets/fonts/LiberationSans-Regular.ttf");
const FONT_BOLD: &[u8] = include_bytes!("../../../assets/fonts/LiberationSans-Bold.ttf");

fn count(n: u64) -> String {
    disclosure::count(n).to_string()
}

fn percentage(k: u64, n: u64) -> String {
    disclosure::percentage(k, n).to_string()
}

fn style() -> String {
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    format!(
        "@font-face{{font-family:'Report';src:url(data:font/ttf;base64,{}) format('truetype');font-weight:400}}\
         @font-face{{font-family:'Report';src:url(data:font/ttf;base64,{}) format('truetype');font-weight:700}}\
         @page{{size:A4;margin:18mm 15mm 20mm 15mm;@bottom-center{{content:'Page ' counter(page) ' of ' counter(pages);font-family:'Report';font-size:9pt;color:#425563}}}}\
         @page:first{{@bottom-center{{content:none}}}}\
         body{{font-family:'Report',sans-serif;font-size:10pt;color:#1b1b1b;line-height:1.35}}\
         h1{{font-size:24pt;margin-top:60mm}}h2{{font-size:15pt;break-before:page;color:#003087}}h3{{font-size:12pt}}\
         .title{{break-after:page}}table{{border-collapse:collapse;margin:4pt 0;width:100%}}\
         thead{{display:table-header-group}}tr{{break-inside:avoid}}\
         th,td{{border:0.5pt solid #aeb7bd;padding:2pt 4pt;text-align:left;font-size:8.5pt}}th{{background:#f0f4f5}}\
         figure{{break-inside:avoid;margin:6pt 0}}figcaption{{font-size:8.5pt}}svg{{max-width:100%;height:auto}}\
         .toc a{{color:#1b1b1b;text-decoration:none}}.toc li{{margin:3pt 0}}.toc .pg{{float:right}}.note{{color:#425563;font-size:9pt}}",
        b64(FONT_REGULAR),
        b64(FONT_BOLD)
    )
}

/// The programmes' proportion points for a funnel plot, from disclosed counts: a programme whose
/// numerator or denominator is suppressed is left out (and shown as `*` in the tables).
fn disclosed_points(rows: &[ProgrammeKpis], key: &str) -> Vec<(String, u64, u64)> {
    rows.iter()
        .filter_map(|p| {
            let (k, n) = proportion(p, key);
            match (disclosure::count(k), disclosure::count(n)) {
                (Cell::Count(k), Cell::Count(n)) if n > 0 => Some((p.programme_code.clone(), k, n)),
                _ => None,
            }
        })
        .collect()
}

/// A copy of the rows whose medians based on 1–7 people are removed (not drawn).
fn disclosed_waits(rows: &[ProgrammeKpis]) -> Vec<ProgrammeKpis> {
    rows.iter()
        .cloned()
        .map(|mut p| {
            for k in &mut p.results.kpis {
                if let Measure::Median(s) = &k.measure {
                    if (1..=7).contains(&s.n) {
                        k.measure = Measure::Median(Summary::default());
                    }
                }
            }
            p
        })
        .collect()
}

/// A KPI's published value: proportions from rounded counts, medians suppressed on 1–7 people,
/// profile counts (professions, groups offered) as they are.
fn kpi_value(k: &crest_stats::kpis::Kpi) -> String {
    match &k.measure {
        Measure::Proportion(p) => percentage(p.numerator, p.denominator),
        Measure::Median(s) => disclosure::statistic(s.median, s.n as u64).to_string(),
        Measure::Count(c) => c.map_or("–".into(), |c| c.to_string()),
    }
}

fn uptake_rows(title: &str, rows: &[(String, u64, u64)]) -> String {
    let mut s = format!(
        "<table><caption>Uptake by {}</caption><thead><tr><th>Group</th><th>Referred</th><th>Started</th><th>Uptake</th></tr></thead><tbody>",
        esc(title)
    );
    for (g, n, k) in rows {
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(g),
            count(*n),
            count(*k),
            percentage(*k, *n)
        );
    }
    s.push_str("</tbody></table>");
    s
}

/// The annual report for `period` as one self-contained HTML document.
pub fn annual_html(
    national: &mut NationalStore,
    period: Period,
    generated_on: Date,
) -> Result<String, String> {
    let e = |e: crest_store::StoreError| e.to_string();
    let programmes = national.programmes().map_err(e)?;
    let episodes = national
        .kpi_episodes(period.from, period.to, &programmes)
        .map_err(e)?;
    let thresholds = Thresholds::default();
    let report = compute(&programmes, &episodes, period, &thresholds);
    let facts = national.equity_facts(period.from, period.to).map_err(e)?;
    let outcomes = national.outcome_pairs(period.from, period.to).map_err(e)?;
    let held = national.submissions().map_err(e)?;
    let (from, to) = (period.from.to_string(), period.to.to_string());

    let sections = [
        ("summary", "National summary"),
        ("programmes", "Programmes: KPIs and grades"),
        ("funnels", "Funnel plots"),
        ("waits", "Waits"),
        ("inequalities", "Who takes up cardiac rehabilitation"),
        ("outcomes", "Outcomes"),
        ("quality", "Data quality"),
        ("methods", "Methods"),
    ];
    let mut body = format!(
        "<section class=\"title\"><h1>National audit of cardiac rehabilitation</h1><p style=\"font-size:14pt\">Annual report: \
         patients referred from {from} to {to}</p><p>{} programmes. Generated {generated_on} by crest.</p>\
         <p class=\"note\">Every figure in this report has passed disclosure control: counts of 1 to 7 are shown as *, other \
         counts are rounded to the nearest 5, percentages are computed from the rounded counts, and statistics based on 1 to \
         7 people are shown as *.</p></section><section class=\"toc\"><h2 style=\"break-before:auto\">Contents</h2><ol>",
        programmes.len()
    );
    for (id, title) in sections {
        let _ = write!(
            body,
            "<li><a href=\"#{id}\">{title}</a><span class=\"pg\" data-for=\"{id}\"></span></li>"
        );
    }
    body.push_str("</ol></section>");

    // National summary.
    let n = &report.national;
    let grades = |g: &str| report.programmes.iter().filter(|p| p.grade == g).count();
    let _ = write!(
        body,
        "<h2 id=\"summary\">National summary</h2><p>{} patients were referred to cardiac rehabilitation and {} started \
         a core programme: an uptake of {}.</p><p>Of {} programmes, {} met all seven standards (green), {} met four to six \
         (amber) and {} met three or fewer (red).</p><table><thead><tr><th>Measure (all programmes pooled)</th><th>Value</th></tr></thead><tbody>",
        count(n.referred),
        count(n.started),
        percentage(n.started, n.referred),
        programmes.len(),
        grades("green"),
        grades("amber"),
        grades("red")
    );
    for k in &n.kpis {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td></tr>",
            esc(&k.key.replace('_', " ")),
            kpi_value(k)
        );
    }
    body.push_str("</tbody></table>");

    // Every programme.
    body.push_str("<h2 id=\"programmes\">Programmes: KPIs and grades</h2><table><thead><tr><th>Programme</th><th>Nation</th><th>Referred</th><th>Uptake</th>");
    if let Some(first) = report.programmes.first() {
        for k in &first.results.kpis {
            let _ = write!(body, "<th>{}</th>", esc(&k.key.replace('_', " ")));
        }
    }
    body.push_str("<th>Met</th><th>Grade</th></tr></thead><tbody>");
    for p in &report.programmes {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
            esc(&p.programme_code),
            esc(&p.nation.code().replace('_', " ")),
            count(p.results.referred),
            percentage(p.results.started, p.results.referred)
        );
        for k in &p.results.kpis {
            let _ = write!(body, "<td>{}</td>", kpi_value(k));
        }
        let _ = write!(body, "<td>{}</td><td>{}</td></tr>", p.kpis_met, p.grade);
    }
    body.push_str("</tbody></table>");

    // Funnel plots.
    body.push_str("<h2 id=\"funnels\">Funnel plots</h2><p>Each dot is a programme. Programmes with 1 to 7 patients are not drawn.</p>");
    for (id, key, title) in [
        ("r-uptake", "uptake", "Uptake (started / referred)"),
        (
            "r-completion",
            "completion",
            "Completion (completed / started)",
        ),
        ("r-a1", "assessment1", "Assessment 1 recorded (KPI 4)"),
        (
            "r-a2",
            "assessment2",
            "Assessment 2 within 140 days (KPI 7)",
        ),
    ] {
        body.push_str(&funnel_plot(
            id,
            title,
            &disclosed_points(&report.programmes, key),
        ));
    }

    // Waits.
    let waits = disclosed_waits(&report.programmes);
    let refs: Vec<&ProgrammeKpis> = waits.iter().collect();
    body.push_str("<h2 id=\"waits\">Waits</h2><p>Median days from referral to the start of core rehabilitation, by programme, against each nation's threshold.</p>");
    if refs.len() <= 60 {
        body.push_str(&wait_plot(
            "r-wcabg",
            "wait_cabg",
            "Median wait: CABG",
            &refs,
        ));
        body.push_str(&wait_plot(
            "r-wmipci",
            "wait_mi_pci",
            "Median wait: MI/PCI",
            &refs,
        ));
    } else {
        // Too many programmes for a chart on a page: a table that breaks across pages.
        body.push_str("<table><thead><tr><th>Programme</th><th>Nation</th><th>CABG median</th><th>CABG threshold</th>\
                       <th>MI/PCI median</th><th>MI/PCI threshold</th></tr></thead><tbody>");
        for p in &waits {
            let cell = |key: &str| {
                p.results.kpis.iter().find(|k| k.key == key).map_or(
                    ("–".to_string(), "–".to_string()),
                    |k| {
                        (
                            kpi_value(k),
                            k.threshold
                                .map_or("–".into(), crest_core::record::format_num),
                        )
                    },
                )
            };
            let (c, ct) = cell("wait_cabg");
            let (m, mt) = cell("wait_mi_pci");
            let _ = write!(
                body,
                "<tr><td>{}</td><td>{}</td><td>{c}</td><td>{ct}</td><td>{m}</td><td>{mt}</td></tr>",
                esc(&p.programme_code),
                esc(&p.nation.code().replace('_', " "))
            );
        }
        body.push_str("</tbody></table>");
    }

    // Inequalities.
    let group = |key: &dyn Fn(&crest_store::national::EquityFact) -> String| {
        let mut m: std::collections::BTreeMap<String, (u64, u64)> = Default::default();
        for f in &facts {
            let e = m.entry(key(f)).or_default();
            e.0 += 1;
            e.1 += u64::from(f.started);
        }
        m.into_iter()
            .map(|(g, (n, k))| (g, n, k))
            .collect::<Vec<_>>()
    };
    body.push_str("<h2 id=\"inequalities\">Who takes up cardiac rehabilitation</h2>");
    body.push_str(&uptake_rows(
        "sex",
        &group(&|f| f.sex.clone().unwrap_or_else(|| "not known".into())),
    ));
    body.push_str(&uptake_rows(
        "age band",
        &group(&|f| crest_core::age_band(f.age).to_string()),
    ));
    body.push_str(&uptake_rows(
        "ethnic group",
        &group(&|f| crest_core::ethnic_group(f.ethnicity.as_deref()).to_string()),
    ));
    let by_imd = group(&|f| f.imd_quintile.map_or("not known".into(), |q| q.to_string()));
    body.push_str(&uptake_rows(
        "deprivation quintile (1 = most deprived)",
        &by_imd,
    ));
    body.push_str(&uptake_rows(
        "priority group",
        &group(&|f| f.group.code().replace('_', " ")),
    ));
    let mut quintiles = [(0u64, 0u64); 5];
    for f in &facts {
        if let Some(q) = f.imd_quintile.filter(|q| (1..=5).contains(q)) {
            quintiles[(q - 1) as usize].1 += 1;
            quintiles[(q - 1) as usize].0 += u64::from(f.started);
        }
    }
    let referred_known: u64 = quintiles.iter().map(|q| q.1).sum();
    let sii = crest_stats::funnel::slope_index(&quintiles).map(|s| s * 100.0);
    let _ = write!(
        body,
        "<p>Slope index of inequality across deprivation quintiles: {} percentage points (a positive value means uptake \
         rises as deprivation falls).</p>",
        disclosure::statistic(sii, referred_known)
    );

    // Outcomes.
    body.push_str(
        "<h2 id=\"outcomes\">Outcomes</h2><table><caption>Change from assessment 1 to assessment 2, among patients with both</caption>\
         <thead><tr><th>Measure</th><th>Patients</th><th>Mean at 1</th><th>Mean at 2</th><th>Mean change</th><th>95% interval</th></tr></thead><tbody>",
    );
    let mut hads = String::new();
    for (field, pairs) in &outcomes {
        let c = paired_change(pairs);
        let people = c.n as u64;
        let stat = |v: Option<f64>| {
            disclosure::statistic(v.map(|x| (x * 10.0).round() / 10.0), people).to_string()
        };
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(field.help.split(';').next().unwrap_or(field.name)),
            count(people),
            stat(c.mean_a1),
            stat(c.mean_a2),
            stat(c.mean_change),
            match (c.ci, (1..=7).contains(&people)) {
                (Some((lo, hi)), false) => format!("{:.1} to {:.1}", lo, hi),
                (_, true) => "*".into(),
                _ => "–".into(),
            }
        );
        if field.name.starts_with("a1_hads") {
            let at = |first: bool| {
                let cases = pairs
                    .iter()
                    .filter(|p| (if first { p.0 } else { p.1 }) >= HADS_CASE)
                    .count() as u64;
                percentage(cases, people)
            };
            let _ = write!(
                hads,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(field.help),
                count(people),
                at(true),
                at(false)
            );
        }
    }
    let _ = write!(
        body,
        "</tbody></table><table><caption>Patients with HADS of 8 or more (symptoms present), among those scored at both assessments</caption>\
         <thead><tr><th>Scale</th><th>Patients</th><th>At 1</th><th>At 2</th></tr></thead><tbody>{hads}</tbody></table>"
    );

    // Data quality.
    let received = programmes
        .iter()
        .filter(|p| {
            held.iter()
                .any(|s| s.programme == p.code && s.from == from && s.to == to && s.current)
        })
        .count();
    let _ = write!(
        body,
        "<h2 id=\"quality\">Data quality</h2><p>{received} of {} programmes submitted data for this period.</p>\
         <table><thead><tr><th>Programme</th><th>Submission</th><th>Assessment 1 recorded</th><th>Assessment 2 within 140 days</th></tr></thead><tbody>",
        programmes.len()
    );
    for p in &report.programmes {
        let got = held
            .iter()
            .any(|s| s.programme == p.programme_code && s.from == from && s.to == to && s.current);
        let (a1k, a1n) = proportion(p, "assessment1");
        let (a2k, a2n) = proportion(p, "assessment2");
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&p.programme_code),
            if got { "received" } else { "missing" },
            percentage(a1k, a1n),
            percentage(a2k, a2n)
        );
    }
    body.push_str("</tbody></table>");

    // Methods.
    let _ = write!(
        body,
        "<h2 id=\"methods\">Methods</h2>\
         <h3>Cohort</h3><p>Episodes whose referral date falls from {from} to {to}, as submitted to the national audit. \
         Patients who asked to be left out, and those covered by the National Data Opt-out, are never submitted. \
         Started = has a start date of core rehabilitation. Uptake = started / referred. Completion = started \
         episodes with status completed / started.</p>\
         <h3>Priority groups</h3><p>MI = initiating event STEMI, NSTEMI or unspecified MI. In order: CABG (treatment CABG); \
         MI/PCI (MI and PCI); PCI (not MI, PCI); MI (MI, medical); heart failure; other.</p>\
         <h3>The seven KPIs (NCP_CR) and thresholds used</h3><ol>\
         <li>Multidisciplinary team: at least {} distinct professions in the staffing return.</li>\
         <li>Priority groups: all {} of MI, MI/PCI, PCI, CABG and heart failure offered.</li>\
         <li>Duration: median days from start to end of core rehabilitation at least {}.</li>\
         <li>Assessment 1: share of those started with an assessment 1 date at least England {}, Wales {}, Northern Ireland {}.</li>\
         <li>Wait for CABG: median days from referral to start at most England {}, Wales {}, Northern Ireland {}.</li>\
         <li>Wait for MI/PCI (MI, MI/PCI and PCI): median at most England {}, Wales {}, Northern Ireland {}.</li>\
         <li>Assessment 2: among those started with assessment 1 and completed, share with assessment 2 within 140 days \
         of assessment 1 at least {}.</li></ol><p>Grade: 7 met green, 4 to 6 amber, 3 or fewer red.</p>\
         <h3>Statistics</h3><p>Medians are the middle value (the mean of the two middle values for an even count); quartiles \
         interpolate linearly. Intervals for proportions are Wilson score intervals (z = {Z95}). Funnel plot limits are the \
         Wilson interval of the pooled national proportion at each denominator, at 95% (z = {Z95}, alert) and 99.8% \
         (z = {Z998}, alarm). The slope index of inequality is the weighted least-squares slope of quintile uptake on the \
         mid-point of each quintile's cumulative share of referrals (0 = most deprived), weighted by referrals. Outcomes are \
         mean paired changes from assessment 1 to 2 with 95% t-intervals; HADS of 8 or more counts as symptoms present.</p>\
         <h3>Disclosure control</h3><p>A count of 0 stays 0; 1 to 7 is shown as *; other counts are rounded to the nearest 5. \
         Totals are rounded from exact sums. Percentages use the rounded counts and are * when either count is. Means, \
         medians and intervals based on 1 to 7 people are *.</p>",
        thresholds.mdt,
        thresholds.priority_groups,
        thresholds.duration,
        t(&thresholds, crest_core::Nation::England, |n| n.assessment1),
        t(&thresholds, crest_core::Nation::Wales, |n| n.assessment1),
        t(&thresholds, crest_core::Nation::NorthernIreland, |n| n.assessment1),
        t(&thresholds, crest_core::Nation::England, |n| n.wait_cabg),
        t(&thresholds, crest_core::Nation::Wales, |n| n.wait_cabg),
        t(&thresholds, crest_core::Nation::NorthernIreland, |n| n.wait_cabg),
        t(&thresholds, crest_core::Nation::England, |n| n.wait_mi_pci),
        t(&thresholds, crest_core::Nation::Wales, |n| n.wait_mi_pci),
        t(&thresholds, crest_core::Nation::NorthernIreland, |n| n.wait_mi_pci),
        t(&thresholds, crest_core::Nation::England, |n| n.assessment2),
    );
    Ok(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>National audit of cardiac rehabilitation: annual report {from} to {to}</title>\
         <style>{}</style></head><body>{body}</body></html>",
        style()
    ))
}

fn t(
    thresholds: &Thresholds,
    nation: crest_core::Nation,
    pick: impl Fn(&crest_stats::kpis::NationThresholds) -> f64,
) -> String {
    thresholds
        .nations
        .get(&nation)
        .map_or("–".into(), |n| crest_core::record::format_num(pick(n)))
}

/// Runs headless Chromium (`CHROMIUM`, else `chromium` on the path) on a local HTML file with
/// extra arguments.
fn chromium(html_file: &Path, args: &[String]) -> Result<std::process::Output, String> {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".into());
    let html =
        std::fs::canonicalize(html_file).map_err(|e| format!("{}: {e}", html_file.display()))?;
    std::process::Command::new(&chromium)
        .args(["--headless=new", "--no-sandbox", "--disable-gpu"])
        .args(args)
        .arg(format!("file://{}", html.display()))
        .output()
        .map_err(|e| {
            format!("this needs Chromium ({chromium}: {e}); install it (apt-get install chromium)")
        })
}

/// The number of pages of a PDF as Chromium writes it (one `/Type /Page` object per page).
fn pdf_pages(pdf: &[u8]) -> usize {
    let needle = b"/Type /Page";
    pdf.windows(needle.len() + 1)
        .filter(|w| w.starts_with(needle) && !w[needle.len()].is_ascii_alphanumeric())
        .count()
}

/// Prints the annual report to PDF with its contents page numbered. Each section starts on a
/// new page, so printing each section alone tells how many pages it takes; the start pages then
/// go into the contents, and the whole report is printed once more.
pub fn annual_pdf(html: &str, pdf: &Path) -> Result<usize, String> {
    let body_start = html.find("<body>").ok_or("not a report")? + "<body>".len();
    let body_end = html.rfind("</body>").ok_or("not a report")?;
    let (head, body) = (&html[..body_start], &html[body_start..body_end]);
    let parts: Vec<&str> = body.split("<h2 id=\"").collect();
    let dir = pdf.with_extension("parts");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut page = 3; // the title page, then the contents
    let mut filled = html.to_string();
    for part in parts.iter().skip(1) {
        let id = part.split('"').next().unwrap_or("");
        let alone = format!("{head}<h2 id=\"{part}</body></html>");
        let (file, out) = (
            dir.join(format!("{id}.html")),
            dir.join(format!("{id}.pdf")),
        );
        std::fs::write(&file, alone).map_err(|e| e.to_string())?;
        print_pdf(&file, &out)?;
        let pages = pdf_pages(&std::fs::read(&out).map_err(|e| e.to_string())?);
        filled = filled.replacen(
            &format!("<span class=\"pg\" data-for=\"{id}\"></span>"),
            &format!("<span class=\"pg\" data-for=\"{id}\">{page}</span>"),
            1,
        );
        page += pages.max(1);
    }
    let whole = dir.join("report.html");
    std::fs::write(&whole, filled).map_err(|e| e.to_string())?;
    let printed = print_pdf(&whole, pdf);
    let _ = std::fs::remove_dir_all(&dir);
    printed?;
    Ok(pdf_pages(&std::fs::read(pdf).map_err(|e| e.to_string())?))
}

/// Prints an HTML report to PDF with headless Chromium. Fonts are embedded in the HTML, so the
/// PDF is the same wherever it is made.
pub fn print_pdf(html_file: &Path, pdf: &Path) -> Result<(), String> {
    let out = chromium(
        html_file,
        &[
            "--no-pdf-header-footer".into(),
            format!("--print-to-pdf={}", pdf.display()),
        ],
    )
    .map_err(|e| format!("{e}, or write --out FILE.html"))?;
    if !out.status.success() || !pdf.exists() {
        return Err(format!(
            "Chromium could not print the PDF: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        ));
    }
    Ok(())
}

/// A chart's SVG (the first `<svg>…</svg>` in `html`) as a PNG of `width` × `height` pixels,
/// drawn by headless Chromium with the report's bundled font.
pub fn svg_png(html: &str, width: u32, height: u32) -> Result<Vec<u8>, String> {
    let (Some(start), Some(end)) = (html.find("<svg"), html.find("</svg>")) else {
        return Err("there is no chart to draw".into());
    };
    let svg = &html[start..end + 6];
    let dir = std::env::temp_dir().join(format!(
        "crest-png-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let page = dir.join("chart.html");
    let png = dir.join("chart.png");
    let drawn = std::fs::write(
        &page,
        format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><style>{}html,body{{margin:0;background:#fff}}</style></head><body>{svg}</body></html>",
            style()
        ),
    )
    .map_err(|e| e.to_string())
    .and_then(|()| {
        chromium(
            &page,
            &[
                "--hide-scrollbars".into(),
                format!("--window-size={width},{height}"),
                format!("--screenshot={}", png.display()),
            ],
        )
    })
    .and_then(|out| {
        std::fs::read(&png).map_err(|_| {
            format!(
                "Chromium could not draw the chart: {}",
                String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or("")
            )
        })
    });
    let _ = std::fs::remove_dir_all(&dir);
    drawn
}
