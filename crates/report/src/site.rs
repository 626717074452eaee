//! The public results site (`crest report site --out DIR`): the annual report's published
//! results as a static, self-contained set of HTML pages that any web server (or a folder
//! opened from disk) can host. Every value is exactly the annual report's, so disclosure
//! control is the report's own; every published table is there as CSV too. Pages work without
//! JavaScript; a small script only narrows the programme list as someone types.

use crate::annual::{AnnualReport, PublishedTable};
use crate::ReportError;
use maud::{html, Markup, DOCTYPE};
use std::path::Path;

/// The site's stylesheet: readable on phones and desktops, NHS-like colours, no web fonts.
const STYLE: &str = "body{font-family:Arial,Helvetica,sans-serif;margin:0;color:#212b32;line-height:1.5;font-size:1rem}\
.skip{position:absolute;left:-999px}.skip:focus{left:1rem;top:.4rem;background:#ffb81c;color:#212b32;padding:.4rem .6rem;z-index:10}\
header{background:#005eb8;color:#fff;padding:.6rem 1rem}header a{color:#fff}header nav a{margin-right:1rem;display:inline-block}\
main{max-width:70rem;margin:0 auto;padding:1rem}h1{font-size:1.8rem;margin:.4rem 0}h2{color:#003087;font-size:1.4rem}\
a{color:#005eb8}a:focus,input:focus{outline:3px solid #212b32;box-shadow:0 0 0 6px #ffb81c}\
table{border-collapse:collapse;margin:.6rem 0;display:block;overflow-x:auto;max-width:100%}caption{text-align:left;font-weight:700;padding:.3rem 0}\
th,td{border:1px solid #aeb7bd;padding:.3rem .5rem;text-align:left;vertical-align:top}th{background:#f0f4f5}\
figure{margin:1rem 0}svg{max-width:100%;height:auto}figcaption{font-size:.9rem}\
.note{background:#f0f4f5;padding:.6rem 1rem;border-left:4px solid #005eb8}\
label{display:block;font-weight:700;margin-top:.6rem}input{font-size:1rem;padding:.4rem;border:2px solid #4c6272;max-width:100%;box-sizing:border-box}\
footer{max-width:70rem;margin:2rem auto;padding:0 1rem;font-size:.9rem;color:#4c6272}";

/// Narrows the programme list to the rows whose text holds what is typed (an enhancement: with
/// no script, the whole list shows and the browser's own find works).
const SEARCH_JS: &str = "(function(){var i=document.getElementById('search');if(!i)return;\
var rows=document.querySelectorAll('#programme-list tbody tr');var out=document.getElementById('search-count');\
i.addEventListener('input',function(){var q=i.value.trim().toLowerCase();var n=0;\
rows.forEach(function(r){var hit=!q||r.textContent.toLowerCase().indexOf(q)>=0;r.hidden=!hit;if(hit)n++;});\
out.textContent=n+' of '+rows.length+' programmes shown';});})();";

fn table(t: &PublishedTable) -> Markup {
    html! {
        table {
            caption { (t.caption) }
            thead { tr { @for h in &t.head { th scope="col" { (h.replace('_', " ")) } } } }
            tbody {
                @for r in &t.rows {
                    tr {
                        @for (i, c) in r.iter().enumerate() {
                            @if i == 0 { th scope="row" { (c) } } @else { td { (c) } }
                        }
                    }
                }
            }
        }
    }
}

/// One page of the site: `up` is the way back to the site's root (`""` or `"../"`).
fn page(report: &AnnualReport, title: &str, up: &str, body: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " – National audit of cardiac rehabilitation" }
                link rel="stylesheet" href={ (up) "site.css" };
            }
            body {
                a class="skip" href="#main" { "Skip to main content" }
                header {
                    p { strong { "National audit of cardiac rehabilitation" } " · results for patients referred "
                        (report.period.from.long()) " to " (report.period.to.long()) }
                    nav aria-label="Results" {
                        a href={ (up) "index.html" } { "Programmes" }
                        @for s in &report.sections {
                            a href={ (up) (s.id) ".html" } { (s.title) }
                        }
                        a href={ (up) "tables.html" } { "Tables (CSV)" }
                    }
                }
                main id="main" {
                    h1 { (title) }
                    (body)
                }
                footer {
                    p {
                        "Every figure has passed disclosure control: counts of 1 to 7 are shown as *, other counts are \
                         rounded to the nearest 5, and percentages come from the rounded counts. Made by crest on "
                        (report.generated_on.long()) "."
                    }
                }
                script src={ (up) "search.js" } {}
            }
        }
    }
    .into_string()
    // A table too wide for a phone scrolls in its own box, which keyboard users must be able to
    // reach (the report's section tables included). Text is escaped, so only tags match.
    .replace("<table", "<table tabindex=\"0\"")
}

/// Writes the site into `dir` (made if missing); returns the number of files written.
pub fn write_site(report: &AnnualReport, dir: &Path) -> Result<usize, ReportError> {
    let io = |what: &Path, source: std::io::Error| ReportError::Write {
        path: what.display().to_string(),
        source,
    };
    let programmes_dir = dir.join("programmes");
    let tables_dir = dir.join("tables");
    for d in [dir, &programmes_dir, &tables_dir] {
        std::fs::create_dir_all(d).map_err(|e| io(d, e))?;
    }
    let mut written = 0;
    let mut write = |path: std::path::PathBuf, bytes: &[u8]| -> Result<(), ReportError> {
        std::fs::write(&path, bytes).map_err(|e| io(&path, e))?;
        written += 1;
        Ok(())
    };
    write(dir.join("site.css"), STYLE.as_bytes())?;
    write(dir.join("search.js"), SEARCH_JS.as_bytes())?;
    let published = report.tables.iter().find(|t| t.name == "programmes");
    let funnels = report.tables.iter().find(|t| t.name == "funnels");
    let column = |t: &PublishedTable, name: &str| t.head.iter().position(|h| h == name);

    // The front page: every programme, searchable, each linking to its own page.
    let grade_of = |code: &str| -> String {
        published
            .and_then(|t| {
                let g = column(t, "grade")?;
                t.rows.iter().find(|r| r[0] == code).map(|r| r[g].clone())
            })
            .unwrap_or_else(|| "–".into())
    };
    let index = html! {
        p class="note" {
            "The national audit's published results: each programme's seven standards and grade, funnel \
             plots, waits, inequalities and outcomes. Find a programme below, or choose a section above."
        }
        form role="search" {
            label for="search" { "Find a programme" }
            p id="search-hint" { "Type part of its name, code, nation or region." }
            input id="search" type="search" aria-describedby="search-hint search-count" autocomplete="off";
            p id="search-count" aria-live="polite" { (report.programme_list.len()) " programmes" }
        }
        table id="programme-list" {
            caption { "Programmes and their grades" }
            thead { tr {
                th scope="col" { "Programme" } th scope="col" { "Code" } th scope="col" { "Nation" }
                th scope="col" { "Region" } th scope="col" { "Grade" }
            } }
            tbody {
                @for p in &report.programme_list {
                    tr {
                        th scope="row" { a href={ "programmes/" (p.code) ".html" } { (p.name) } }
                        td { (p.code) }
                        td { (p.nation.label()) }
                        td { (p.region) }
                        td { (grade_of(&p.code)) }
                    }
                }
            }
        }
    };
    write(
        dir.join("index.html"),
        page(report, "Results by programme", "", index).as_bytes(),
    )?;

    // A page per section of the annual report.
    for s in &report.sections {
        write(
            dir.join(format!("{}.html", s.id)),
            // On its own page the section's title is the h1, so its parts' headings are h2.
            page(report, s.title, "", s.content(2)).as_bytes(),
        )?;
    }

    // A page per programme: its published standards and grade, and its funnel levels.
    for p in &report.programme_list {
        let row = published.and_then(|t| t.rows.iter().find(|r| r[0] == p.code).map(|r| (t, r)));
        let levels: Vec<(&str, &str, &str, &str)> = funnels
            .map(|t| {
                t.rows
                    .iter()
                    .filter(|r| r[1] == p.code)
                    .map(|r| (r[0].as_str(), r[2].as_str(), r[3].as_str(), r[4].as_str()))
                    .collect()
            })
            .unwrap_or_default();
        let body = html! {
            p { (p.name) " (" (p.code) "), " (p.region) ", " (p.nation.label()) "." }
            @match row {
                None => p { "No results were published for this programme in this period." },
                Some((t, r)) => {
                    table {
                        caption { "The seven standards (KPIs), as published" }
                        thead { tr { th scope="col" { "Standard" } th scope="col" { "Result" } th scope="col" { "Met" } } }
                        tbody {
                            @for (i, h) in t.head.iter().enumerate().skip(1) {
                                @if !h.ends_with("_met") && !h.starts_with("kpis_") && h != "grade" {
                                    tr {
                                        th scope="row" { (crest_stats::kpis::kpi_label(h)) }
                                        td { (r[i]) }
                                        td { (column(t, &format!("{h}_met")).map_or("–", |m| r[m].as_str())) }
                                    }
                                }
                            }
                        }
                    }
                    p {
                        "Standards met: " (column(t, "kpis_met").map_or("–", |i| r[i].as_str()))
                        " of " (column(t, "kpis_assessable").map_or("–", |i| r[i].as_str())) " that could be assessed. "
                        strong { "Grade: " (column(t, "grade").map_or("–", |i| r[i].as_str())) }
                    }
                }
            }
            @if !levels.is_empty() {
                table {
                    caption { "Where the programme sits on the funnel plots" }
                    thead { tr {
                        th scope="col" { "Measure" } th scope="col" { "Numerator" }
                        th scope="col" { "Denominator" } th scope="col" { "Level" }
                    } }
                    tbody {
                        @for (kpi, k, n, level) in &levels {
                            tr {
                                th scope="row" { (crest_stats::kpis::kpi_label(kpi)) }
                                td { (k) } td { (n) } td { (level.replace('_', " ")) }
                            }
                        }
                    }
                }
            }
            p { a href="../funnels.html" { "See the funnel plots" } }
        };
        write(
            programmes_dir.join(format!("{}.html", p.code)),
            page(report, &p.name, "../", body).as_bytes(),
        )?;
    }

    // Every published table as CSV, listed on one page.
    for t in &report.tables {
        write(tables_dir.join(format!("{}.csv", t.name)), &t.csv()?)?;
    }
    let tables = html! {
        p { "Every table of these results, with exactly the published values, as CSV:" }
        ul {
            @for t in &report.tables {
                li { a href={ "tables/" (t.name) ".csv" } { (t.caption) } " (" (t.name) ".csv)" }
            }
        }
        @for t in report.tables.iter().filter(|t| t.rows.len() <= 40) {
            (table(t))
        }
    };
    write(
        dir.join("tables.html"),
        page(report, "Tables", "", tables).as_bytes(),
    )?;
    Ok(written)
}
