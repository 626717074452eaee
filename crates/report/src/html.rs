//! HTML building blocks: escaping, the page layout and the episode form generated from the
//! dataset dictionary. Plain server-rendered HTML that works without JavaScript.

use crest_core::{Field, Kind, Section, FIELDS};
use std::collections::HashMap;
use std::fmt::Write;

/// Escapes text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;color:#1b1b1b;background:#fff;line-height:1.45}
header{background:#003087;color:#fff;padding:.6rem 1rem;display:flex;gap:1.2rem;align-items:center;flex-wrap:wrap}
header a{color:#fff}main{padding:1rem;max-width:72rem}
a{color:#005eb8}a:focus,button:focus,input:focus,select:focus{outline:3px solid #ffb81c;outline-offset:1px}
label{display:block;font-weight:600;margin-top:.6rem}.hint{font-weight:400;color:#4c6272;font-size:.9rem}
input,select{font-size:1rem;padding:.3rem;border:2px solid #4c6272;max-width:100%}
.err{color:#b10e1e;font-weight:600}.field-error input,.field-error select{border-color:#b10e1e}
.summary{border:4px solid #b10e1e;padding:.6rem 1rem;margin:1rem 0}
.ok{border:4px solid #007f3b;padding:.6rem 1rem;margin:1rem 0}
table{border-collapse:collapse;margin:.6rem 0}th,td{border:1px solid #d8dde0;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f0f4f5}button{font-size:1rem;padding:.4rem 1rem;background:#007f3b;color:#fff;border:0;cursor:pointer}button.secondary{background:#4c6272}
fieldset{border:1px solid #d8dde0;margin:1rem 0}legend{font-weight:700}
.grade-green{color:#007f3b}.grade-amber{color:#8a5a00}.grade-red{color:#b10e1e}
@media print{header,nav,form,.noprint{display:none}}";

/// A whole page. `nav` is already-escaped HTML for the header links.
pub fn page(title: &str, nav: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" \
         content=\"width=device-width, initial-scale=1\"><title>{} – crest</title><style>{STYLE}</style>\
         </head><body><header><strong>crest</strong>{nav}</header><main id=\"main\"><h1>{}</h1>{body}</main></body></html>",
        esc(title),
        esc(title)
    )
}

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
pub fn csrf_field(token: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        esc(token)
    )
}

/// The error summary at the top of a form, linking to each field.
pub fn error_summary(errors: &[(String, String)]) -> String {
    if errors.is_empty() {
        return String::new();
    }
    let mut s = String::from(
        "<div class=\"summary\" role=\"alert\" tabindex=\"-1\" id=\"error-summary\" autofocus><h2>There is a problem</h2><ul>",
    );
    for (field, msg) in errors {
        let _ = write!(s, "<li><a href=\"#f-{}\">{}</a></li>", esc(field), esc(msg));
    }
    s.push_str("</ul></div>");
    s
}

/// One input for a dictionary field, with its label, hint, current value and error.
pub fn field_input(f: &Field, value: &str, error: Option<&str>, readonly: bool) -> String {
    let id = format!("f-{}", f.name);
    let required = if f.required { " (required)" } else { "" };
    let ro = if readonly { " readonly" } else { "" };
    let described = format!("h-{}", f.name);
    let input = match f.kind {
        Kind::Code(codes) => {
            let mut s = format!(
                "<select id=\"{id}\" name=\"{}\" aria-describedby=\"{described}\"{}>",
                f.name,
                if readonly { " disabled" } else { "" }
            );
            s.push_str("<option value=\"\"></option>");
            for c in codes {
                let sel = if c.eq_ignore_ascii_case(value) { " selected" } else { "" };
                let _ = write!(s, "<option value=\"{}\"{sel}>{}</option>", esc(c), esc(c));
            }
            s.push_str("</select>");
            s
        }
        Kind::Date => format!(
            "<input id=\"{id}\" name=\"{}\" value=\"{}\" placeholder=\"YYYY-MM-DD or DD/MM/YYYY\" \
             aria-describedby=\"{described}\" inputmode=\"numeric\"{ro}>",
            f.name,
            esc(value)
        ),
        Kind::Int { .. } | Kind::Decimal { .. } => format!(
            "<input id=\"{id}\" name=\"{}\" value=\"{}\" inputmode=\"decimal\" aria-describedby=\"{described}\"{ro}>",
            f.name,
            esc(value)
        ),
        _ => format!(
            "<input id=\"{id}\" name=\"{}\" value=\"{}\" aria-describedby=\"{described}\"{ro}>",
            f.name,
            esc(value)
        ),
    };
    // A disabled select submits nothing, so a read-only code travels in a hidden field.
    let hidden = if readonly && matches!(f.kind, Kind::Code(_)) {
        format!(
            "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
            f.name,
            esc(value)
        )
    } else {
        String::new()
    };
    let err = error
        .map(|e| {
            format!(
                "<span class=\"err\" id=\"e-{}\">{}</span><br>",
                f.name,
                esc(e)
            )
        })
        .unwrap_or_default();
    format!(
        "<div class=\"{}\"><label for=\"{id}\">{}{required} <span class=\"hint\" id=\"{described}\">{}</span></label>{err}{input}{hidden}</div>",
        if error.is_some() { "field-error" } else { "" },
        esc(f.name),
        esc(&format!("{} — {}", f.help, f.kind.describe())),
    )
}

/// The fields of a form, grouped by dataset section; `include` picks the fields shown.
pub fn fields_form(
    values: &HashMap<String, String>,
    errors: &HashMap<String, String>,
    include: &dyn Fn(&Field) -> bool,
    readonly: &[&str],
) -> String {
    let mut s = String::new();
    let mut current: Option<Section> = None;
    for f in FIELDS.iter().filter(|f| f.imported() && include(f)) {
        if current != Some(f.section) {
            if current.is_some() {
                s.push_str("</fieldset>");
            }
            let _ = write!(s, "<fieldset><legend>{}</legend>", esc(f.section.title()));
            current = Some(f.section);
        }
        s.push_str(&field_input(
            f,
            values.get(f.name).map(String::as_str).unwrap_or(""),
            errors.get(f.name).map(String::as_str),
            readonly.contains(&f.name),
        ));
    }
    if current.is_some() {
        s.push_str("</fieldset>");
    }
    s
}

/// Uptake (started / referred) with its Wilson interval, by a grouping of the episodes.
pub fn uptake_table(title: &str, rows: &[(String, u64, u64)]) -> String {
    let mut s = format!(
        "<table><caption>Uptake by {}</caption><thead><tr><th scope=\"col\">Group</th><th scope=\"col\">Referred</th>\
         <th scope=\"col\">Started</th><th scope=\"col\">Uptake</th><th scope=\"col\">95% interval</th></tr></thead><tbody>",
        esc(title)
    );
    for (g, n, k) in rows {
        let ci = crest_stats::summary::wilson(*k, *n, crest_stats::Z95);
        let _ = write!(
            s,
            "<tr><th scope=\"row\">{}</th><td>{n}</td><td>{k}</td><td>{}</td><td>{}</td></tr>",
            esc(g),
            pct((*n > 0).then(|| *k as f64 / *n as f64)),
            ci.map_or("–".into(), |(lo, hi)| format!(
                "{}–{}",
                pct(Some(lo)),
                pct(Some(hi))
            ))
        );
    }
    s.push_str("</tbody></table>");
    s
}

/// A proportion as a percentage with one decimal, or a dash.
pub fn pct(x: Option<f64>) -> String {
    x.map_or("–".into(), |v| format!("{:.1}%", v * 100.0))
}
