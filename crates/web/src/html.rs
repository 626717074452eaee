//! The page kit: the page layout, forms (the episode form generated from the dataset
//! dictionary, the period chooser) and tables. Plain server-rendered HTML that works without
//! JavaScript. Numbers and words come from `crest_report::words`, as the reports write them.

use crest_core::{Field, Kind, Section, FIELDS};
use maud::{html, Markup, PreEscaped, DOCTYPE};
use std::collections::HashMap;

pub use crest_report::words::{capitalised, count_words, group_words, number, pct, thousands};

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;color:#1b1b1b;background:#fff;line-height:1.45}
header{background:#003087;color:#fff;padding:.6rem 1rem;display:flex;gap:1.2rem;align-items:center;flex-wrap:wrap}
header a{color:#fff}main{padding:1rem;max-width:72rem}
a{color:#005eb8}a:focus,button:focus,input:focus,select:focus,textarea:focus,summary:focus{outline:3px solid #1b1b1b;outline-offset:0;box-shadow:0 0 0 6px #ffb81c}
label{display:block;font-weight:600;margin-top:.6rem}.hint{font-weight:400;color:#4c6272;font-size:.9rem}
input,select,textarea{font-size:1rem;padding:.3rem;border:2px solid #4c6272;max-width:100%;box-sizing:border-box}
.err{color:#b10e1e;font-weight:600;margin:.2rem 0}.field-error{border-left:4px solid #b10e1e;padding-left:.8rem}.field-error input,.field-error select{border-color:#b10e1e}
.visually-hidden{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}
.field{margin:1rem 0}.choices,.date{border:0;padding:0;margin:0}.choices legend,.date legend{font-weight:600;padding:0}
.choice{display:flex;align-items:center;gap:.5rem;margin:.3rem 0}.choice input{width:1.4rem;height:1.4rem;margin:0}.choice label{font-weight:400;margin:0}
dl.summary-list{display:grid;grid-template-columns:minmax(8rem,max-content) 1fr;gap:.3rem 1rem}dl.summary-list dt{font-weight:600}dl.summary-list dd{margin:0}
.filters{display:flex;flex-wrap:wrap;gap:0 1.2rem}.filters>*{min-width:0;max-width:100%}.pages{margin:1rem 0}
.date-part{display:inline-block;margin-right:1rem}.date-part label{font-weight:400;margin-top:.2rem}input.short{width:8rem}
.summary{border:4px solid #b10e1e;padding:.6rem 1rem;margin:1rem 0}
.ok{border:4px solid #007f3b;padding:.6rem 1rem;margin:1rem 0}
table{border-collapse:collapse;margin:.6rem 0}th,td{border:1px solid #d8dde0;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f0f4f5}button{font-size:1rem;padding:.4rem 1rem;background:#007f3b;color:#fff;border:0;cursor:pointer}button.secondary{background:#4c6272}
fieldset{border:1px solid #d8dde0;margin:1rem 0;min-width:0}main{overflow-wrap:anywhere}legend{font-weight:700}
.grade-green{color:#007f3b}.grade-amber{color:#8a5a00}.grade-red{color:#b10e1e}
svg{max-width:100%;height:auto}figure{margin:1rem 0}caption{text-align:left;font-weight:600;padding:.2rem 0}
td.words{min-width:16rem}a.button{display:inline-block;padding:.4rem 1rem;background:#007f3b;color:#fff;text-decoration:none;margin:.2rem 0}
ul.due{padding-left:1.2rem}ul.due li{margin:.4rem 0}ul.due li.late{border-left:4px solid #b10e1e;padding-left:.6rem;list-style:none;margin-left:-1.2rem}.tag{color:#b10e1e}
td.num{text-align:right;font-variant-numeric:tabular-nums}th[aria-sort] a,th a{color:#003087}.table-search{margin:.6rem 0}.table-search input{width:16rem}.table-search label{margin-top:0}
ol.pathway li.done::marker{color:#007f3b;font-weight:700}.account summary{cursor:pointer}.account[open]>div{display:flex;flex-wrap:wrap;gap:.4rem 1rem;align-items:center;margin-top:.3rem}
.skip{position:absolute;left:-999px}.skip:focus{left:1rem;top:.4rem;background:#ffb81c;color:#1b1b1b;padding:.4rem .6rem;z-index:10}
@media screen{table{display:block;overflow-x:auto;max-width:100%;position:relative}th,td{overflow-wrap:normal}}
.small-charts{display:flex;flex-wrap:wrap;gap:.5rem 1rem}.small-chart{margin:0}.small-chart figcaption{font-size:.85rem;max-width:220px}
@media print{header,nav,form,.noprint,.skip{display:none}@page{size:A4;margin:12mm}body{font-size:9pt;line-height:1.3}main{padding:0}h1{font-size:15pt;margin:0 0 4pt}p{margin:3pt 0}table{font-size:8pt;margin:3pt 0}th,td{padding:1pt 4pt}.hint{font-size:7.5pt}.small-charts{gap:2pt 8pt}.small-chart svg{width:120px;height:auto}.small-chart figcaption{font-size:7pt;max-width:120px}}";

/// A whole page: the header with the service name and the navigation, a skip link, and the
/// page's heading and body. `nav` and `body` are templates, so whatever text they hold was
/// escaped where it was written; the title is escaped here.
pub fn page(title: &str, nav: Markup, body: impl maud::Render) -> String {
    let body = body.render();
    // A page showing the error summary says so first in its title, so a screen reader user
    // hears it before anything else (GOV.UK's pattern); the summary is always this component.
    let error = body.0.contains(ERROR_SUMMARY_ID);
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { @if error { "Error: " } (title) " – crest" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                a class="skip" href="#main" { "Skip to main content" }
                header { strong { "crest" } (nav) }
                main id="main" { h1 { (title) } (body) }
            }
        }
    }
    .into_string()
}

/// The error summary's id, as it appears in a rendered page.
const ERROR_SUMMARY_ID: &str = "id=\"error-summary\"";

/// Percent-encodes a value for a URL's query string.
pub fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A hidden CSRF field.
pub fn csrf_field(token: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(token); }
}

/// The error summary at the top of a form, linking to each field.
pub fn error_summary(errors: &[(String, String)]) -> Markup {
    if errors.is_empty() {
        return html! {};
    }
    html! {
        div class="summary" role="alert" tabindex="-1" id="error-summary" autofocus {
            h2 { "There is a problem" }
            ul {
                @for (field, msg) in errors {
                    li { a href={ "#f-" (field) } { (msg) } }
                }
            }
        }
    }
}

/// Code lists this short are radios; longer ones a select.
const RADIOS_UP_TO: usize = 4;

/// The day, month and year of a date as typed or stored (`2025-03-03` or `3/3/2025`), for the
/// three boxes of a date input; anything else goes in the day box as it was typed.
fn date_parts(value: &str) -> [String; 3] {
    if let Ok(d) = crest_core::Date::parse(value) {
        let (y, m, day) = d.ymd();
        return [day.to_string(), m.to_string(), y.to_string()];
    }
    let parts: Vec<&str> = value.split('/').collect();
    match parts[..] {
        [d, m, y] => [d.into(), m.into(), y.into()],
        _ => [value.into(), String::new(), String::new()],
    }
}

/// Joins the boxes of three-part dates (`<name>-day`, `-month`, `-year`) into the field as
/// DD/MM/YYYY, and repeated values (ticked boxes) with `;`, as an import file holds them.
pub fn form_values(form: Vec<(String, String)>) -> HashMap<String, String> {
    let mut values: HashMap<String, String> = HashMap::new();
    for (k, v) in form {
        values
            .entry(k)
            .and_modify(|held| {
                held.push(';');
                held.push_str(&v);
            })
            .or_insert(v);
    }
    for f in FIELDS.iter().filter(|f| f.kind == Kind::Date) {
        let mut part = |p: &str| values.remove(&format!("{}-{p}", f.name));
        let (d, m, y) = (part("day"), part("month"), part("year"));
        if d.is_none() && m.is_none() && y.is_none() {
            continue;
        }
        let [d, m, y] = [d, m, y].map(|p| p.unwrap_or_default().trim().to_string());
        let joined = if d.is_empty() && m.is_empty() && y.is_empty() {
            String::new()
        } else {
            format!("{d}/{m}/{y}")
        };
        values.insert(f.name.to_string(), joined);
    }
    values
}

/// One question for a dictionary field: its label, hint, error (linked to the input, which is
/// marked invalid) and the control its kind calls for: three boxes for a date, radios for a
/// short code list, a select for a long one, ticks for several codes, yes/no for a yes/no.
pub fn field_input(f: &Field, value: &str, error: Option<&str>, readonly: bool) -> Markup {
    let id = format!("f-{}", f.name);
    let hint_id = format!("h-{}", f.name);
    let error_id = format!("e-{}", f.name);
    let described = if error.is_some() {
        format!("{hint_id} {error_id}")
    } else {
        hint_id.clone()
    };
    let invalid = error.map(|_| "true");
    let hint = html! { div class="hint" id=(hint_id) { (f.help) } };
    let err = html! {
        @if let Some(e) = error {
            p class="err" id=(error_id) { span class="visually-hidden" { "Error: " } (e) }
        }
    };
    // Radios and ticks: the first one carries the field's id, so an error link lands on it.
    let choice_id = |i: usize| {
        if i == 0 {
            id.clone()
        } else {
            format!("{id}-{i}")
        }
    };
    let choices = |kind: &str, options: &[(&str, &str)], checked: &dyn Fn(&str) -> bool| {
        html! {
            fieldset class="choices" aria-describedby=(described) {
                legend { (f.label) }
                (hint) (err)
                @for (i, (code, label)) in options.iter().enumerate() {
                    div class="choice" {
                        input type=(kind) id=(choice_id(i)) name=(f.name) value=(code)
                            checked[checked(code)] disabled[readonly]
                            aria-invalid=[if i == 0 { invalid } else { None }];
                        label for=(choice_id(i)) { (label) }
                    }
                }
                // A disabled control submits nothing, so a read-only value travels hidden.
                @if readonly {
                    input type="hidden" name=(f.name) value=(value);
                }
            }
        }
    };
    let codes: Vec<(&str, &str)> = f.codes().iter().map(|c| (c.code, c.label)).collect();
    let body = match f.kind {
        Kind::Date => {
            let [d, m, y] = date_parts(value);
            html! {
                fieldset class="date" role="group" aria-describedby=(described) {
                    legend { (f.label) }
                    (hint) (err)
                    div class="date-part" {
                        label for=(id) { "Day" }
                        input id=(id) name={ (f.name) "-day" } value=(d) inputmode="numeric"
                            size="2" maxlength="2" readonly[readonly] aria-invalid=[invalid];
                    }
                    div class="date-part" {
                        label for={ (id) "-month" } { "Month" }
                        input id={ (id) "-month" } name={ (f.name) "-month" } value=(m)
                            inputmode="numeric" size="2" maxlength="2" readonly[readonly];
                    }
                    div class="date-part" {
                        label for={ (id) "-year" } { "Year" }
                        input id={ (id) "-year" } name={ (f.name) "-year" } value=(y)
                            inputmode="numeric" size="4" maxlength="4" readonly[readonly];
                    }
                }
            }
        }
        Kind::Code(_) if codes.len() <= RADIOS_UP_TO => {
            choices("radio", &codes, &|c| c.eq_ignore_ascii_case(value.trim()))
        }
        Kind::CodeList(_) => {
            let ticked: Vec<String> = value
                .split(';')
                .map(|v| v.trim().to_ascii_lowercase())
                .collect();
            choices("checkbox", &codes, &|c| {
                ticked.contains(&c.to_ascii_lowercase())
            })
        }
        Kind::Bool => {
            let yes = matches!(
                value.trim().to_ascii_lowercase().as_str(),
                "yes" | "y" | "true" | "1"
            );
            let no = matches!(
                value.trim().to_ascii_lowercase().as_str(),
                "no" | "n" | "false" | "0"
            );
            choices("radio", &[("yes", "Yes"), ("no", "No")], &|c| {
                (c == "yes" && yes) || (c == "no" && no)
            })
        }
        Kind::Code(_) => html! {
            label for=(id) { (f.label) }
            (hint) (err)
            select id=(id) name=(f.name) aria-describedby=(described) aria-invalid=[invalid]
                disabled[readonly] {
                option value="" { "Choose…" }
                @for (code, label) in &codes {
                    option value=(code) selected[code.eq_ignore_ascii_case(value.trim())] { (label) }
                }
            }
            @if readonly {
                input type="hidden" name=(f.name) value=(value);
            }
        },
        Kind::Int { .. } | Kind::Decimal { .. } => html! {
            label for=(id) { (f.label) }
            (hint) (err)
            input id=(id) name=(f.name) value=(value) inputmode="decimal" class="short"
                aria-describedby=(described) aria-invalid=[invalid] readonly[readonly];
        },
        _ => html! {
            label for=(id) { (f.label) }
            (hint) (err)
            input id=(id) name=(f.name) value=(value) aria-describedby=(described)
                aria-invalid=[invalid] readonly[readonly];
        },
    };
    html! {
        div class={ "field" @if error.is_some() { " field-error" } } { (body) }
    }
}

/// The fields of a form, grouped by dataset section; `include` picks the fields shown.
pub fn fields_form(
    values: &HashMap<String, String>,
    errors: &HashMap<String, String>,
    include: &dyn Fn(&Field) -> bool,
    readonly: &[&str],
) -> Markup {
    // Consecutive fields of one dataset section share a fieldset.
    let mut groups: Vec<(Section, Vec<&Field>)> = Vec::new();
    for f in FIELDS.iter().filter(|f| f.imported() && include(f)) {
        match groups.last_mut() {
            Some((section, fields)) if *section == f.section => fields.push(f),
            _ => groups.push((f.section, vec![f])),
        }
    }
    html! {
        @for (section, fields) in &groups {
            fieldset {
                legend { (section.title()) }
                @for f in fields {
                    (field_input(
                        f,
                        values.get(f.name).map(String::as_str).unwrap_or(""),
                        errors.get(f.name).map(String::as_str),
                        readonly.contains(&f.name),
                    ))
                }
            }
        }
    }
}

/// The "From / To / Show" form above a page of figures for a period of referrals, with any
/// further filters (`filters`) before its button. It reads the page again with `from` and `to`
/// in the address, so a period can be bookmarked and shared.
pub fn period_form(from: crest_core::Date, to: crest_core::Date, filters: Markup) -> Markup {
    html! {
        form method="get" class="noprint" {
            label for="from" {
                "From " span class="hint" { "referral date, DD/MM/YYYY, for example 01/04/2024" }
            }
            input id="from" name="from" value=(from.dmy()) inputmode="numeric";
            label for="to" { "To" }
            input id="to" name="to" value=(to.dmy()) inputmode="numeric";
            (filters)
            " "
            button { "Show" }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTILE: &str = "<script>alert('x')</script>\"><img src=x onerror=alert(1)>&";

    /// Whatever a user typed comes out as text, in content and in attributes alike.
    #[test]
    fn components_escape_every_text_they_are_given() {
        // The hostile text's tags never appear as tags, and its quote never closes an attribute.
        let escaped = |html: &str| {
            !html.contains("<script>")
                && !html.contains("<img")
                && !html.contains("x')</script>\">")
        };
        let p = page(HOSTILE, html! {}, html! {});
        assert!(escaped(&p) && p.contains("&lt;script&gt;"), "{p}");
        assert!(escaped(&csrf_field(HOSTILE).into_string()));
        let s = error_summary(&[(HOSTILE.to_string(), HOSTILE.to_string())]).into_string();
        assert!(escaped(&s), "{s}");
        let f = FIELDS
            .iter()
            .find(|f| f.name == "family_name")
            .expect("a text field");
        let i = field_input(f, HOSTILE, Some(HOSTILE), false).into_string();
        assert!(escaped(&i) && i.contains("value=\"&lt;script&gt;"), "{i}");
        let code = FIELDS
            .iter()
            .find(|f| f.name == "sex")
            .expect("a code field");
        assert!(escaped(
            &field_input(code, HOSTILE, None, true).into_string()
        ));
        let values: HashMap<String, String> = FIELDS
            .iter()
            .map(|f| (f.name.to_string(), HOSTILE.to_string()))
            .collect();
        let errors = values.clone();
        assert!(escaped(
            &fields_form(&values, &errors, &|_| true, &[]).into_string()
        ));
    }
}
