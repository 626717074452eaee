//! Data sharing agreements for administrators (privacy.md, "Governance"): the agreements on
//! record, whether each is in force today, and a form to record or replace one. The form reads
//! through `Agreement::parse`, the same path as `crest agreements add`, so the same rules hold
//! (no tier L field, the fields the national store needs, dates in order); the approved-field
//! choices come from the dataset dictionary. Every recorded agreement is in the access log.

use crate::access::Admin;
use crate::html::{csrf_field, error_summary, esc, page, url_encode};
use crate::{html_page, App, WebError};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use crest_core::governance::{Agreement, AgreementInput};
use crest_core::{Col, Section, Tier};
use crest_store::national::national_fields;
use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Arc;

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new().route("/admin/agreements", get(list).post(record))
}

/// What the form holds: as typed, so a refused form comes back as it was sent.
struct Typed {
    input: AgreementInput,
    /// `listed` when only the ticked fields are approved.
    scope: String,
}

impl Typed {
    fn blank() -> Typed {
        Typed {
            input: AgreementInput::default(),
            scope: "all".into(),
        }
    }

    fn from_form(pairs: &[(String, String)]) -> Typed {
        let one = |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let scope = one("scope");
        let ticked: Vec<String> = pairs
            .iter()
            .filter(|(n, _)| n == "fields")
            .map(|(_, v)| v.clone())
            .collect();
        Typed {
            input: AgreementInput {
                id: one("id"),
                recipient: one("recipient"),
                legal_basis: one("legal_basis"),
                valid_from: one("valid_from"),
                valid_to: one("valid_to"),
                fields: (scope == "listed").then_some(ticked),
                opt_out_exempt: one("opt_out") == "exempt",
            },
            scope,
        }
    }
}

/// The fields an agreement can approve: every national field but the programme code, which
/// every submission carries.
fn approvable() -> impl Iterator<Item = &'static crest_core::Field> {
    national_fields().filter(|f| f.col != Col::ProgrammeCode)
}

fn form(c: &crate::Ctx, typed: &Typed, error: Option<(&str, &str)>) -> String {
    let mut body = error_summary(
        &error
            .map(|(part, m)| vec![(part.to_string(), m.to_string())])
            .unwrap_or_default(),
    );
    let i = &typed.input;
    let text =
        |part: &str, label: &str, hint: &str, value: &str| {
            let bad = error.filter(|(p, _)| *p == part).map(|(_, m)| m);
            format!(
            "<div{}><label for=\"f-{part}\">{label} <span class=\"hint\">{hint}</span></label>{}\
             <input id=\"f-{part}\" name=\"{part}\" value=\"{}\" size=\"40\"></div>",
            if bad.is_some() { " class=\"field-error\"" } else { "" },
            bad.map(|m| format!("<p class=\"err\">{}</p>", esc(m)))
                .unwrap_or_default(),
            esc(value)
        )
        };
    let checked = |yes: bool| if yes { " checked" } else { "" };
    let _ = write!(
        body,
        "<h2>Record an agreement</h2><p>An agreement with an id already on record replaces it.</p>\
         <form method=\"post\" action=\"/admin/agreements\">{}{}{}{}{}{}\
         <fieldset><legend>National Data Opt-out</legend>\
         <div><input type=\"radio\" id=\"o1\" name=\"opt_out\" value=\"applies\"{}> <label for=\"o1\" style=\"display:inline\">applies (English programmes must load a check result)</label></div>\
         <div><input type=\"radio\" id=\"o2\" name=\"opt_out\" value=\"exempt\"{}> <label for=\"o2\" style=\"display:inline\">exempt (the agreement records an exemption)</label></div></fieldset>",
        csrf_field(&c.session.csrf),
        text("id", "Id", "e.g. ncpcr-2025", &i.id),
        text("recipient", "Recipient", "who receives the data", &i.recipient),
        text(
            "legal_basis",
            "Legal basis reference",
            "e.g. the CAG (section 251) approval",
            &i.legal_basis
        ),
        text(
            "valid_from",
            "Valid from",
            "YYYY-MM-DD or DD/MM/YYYY",
            &i.valid_from
        ),
        text("valid_to", "Valid to", "the last day in force", &i.valid_to),
        checked(!i.opt_out_exempt),
        checked(i.opt_out_exempt),
    );
    let fields_error = error.filter(|(p, _)| *p == "fields").map(|(_, m)| m);
    let _ = write!(
        body,
        "<fieldset id=\"f-fields\" tabindex=\"-1\"{}><legend>Approved fields</legend>{}\
         <div><input type=\"radio\" id=\"s1\" name=\"scope\" value=\"all\"{}> <label for=\"s1\" style=\"display:inline\">every national field</label></div>\
         <div><input type=\"radio\" id=\"s2\" name=\"scope\" value=\"listed\"{}> <label for=\"s2\" style=\"display:inline\">only the fields ticked below</label></div>",
        if fields_error.is_some() { " class=\"field-error\"" } else { "" },
        fields_error
            .map(|m| format!("<p class=\"err\">{}</p>", esc(m)))
            .unwrap_or_default(),
        checked(typed.scope != "listed"),
        checked(typed.scope == "listed"),
    );
    let mut section: Option<Section> = None;
    for f in approvable() {
        if section != Some(f.section) {
            let _ = write!(body, "<h3>{}</h3>", esc(f.section.title()));
            section = Some(f.section);
        }
        let ticked = match &i.fields {
            Some(list) => list.iter().any(|n| n == f.name),
            None => f.required,
        };
        let _ = write!(
            body,
            "<div><input type=\"checkbox\" id=\"c-{0}\" name=\"fields\" value=\"{0}\"{1}> \
             <label for=\"c-{0}\" style=\"display:inline\"><code>{0}</code> <span class=\"hint\">{2}{3}</span></label></div>",
            f.name,
            checked(ticked),
            esc(f.help),
            if f.required {
                " (needed on every episode)"
            } else if f.tier == Tier::Derived {
                " (derived by crest)"
            } else {
                ""
            }
        );
    }
    body.push_str("</fieldset><p><button>Record the agreement</button></p></form>");
    body
}

fn table(agreements: &[Agreement], today: crest_core::Date) -> String {
    if agreements.is_empty() {
        return "<p>No agreement is on record, so no programme can submit to the national audit.</p>"
            .into();
    }
    let mut s = String::from(
        "<table><caption>Data sharing agreements on record</caption><thead><tr><th scope=\"col\">Id</th>\
         <th scope=\"col\">In force today</th><th scope=\"col\">Valid</th><th scope=\"col\">Recipient</th>\
         <th scope=\"col\">Legal basis</th><th scope=\"col\">National Data Opt-out</th><th scope=\"col\">Approved fields</th></tr></thead><tbody>",
    );
    for a in agreements {
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{} to {}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&a.id),
            if a.in_force(today) { "yes" } else { "no" },
            a.valid_from,
            a.valid_to,
            esc(&a.recipient),
            esc(&a.legal_basis),
            if a.opt_out_exempt { "exempt" } else { "applies" },
            a.fields
                .as_ref()
                .map_or("every national field".into(), |f| esc(&f.join(", ")))
        );
    }
    s.push_str("</tbody></table>");
    s
}

async fn list(
    State(app): State<Arc<App>>,
    Admin(c): Admin,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let agreements = app.db(|s, _| Ok(s.agreements()?)).await?;
    let mut body = String::new();
    if let Some(id) = q.get("saved") {
        let _ = write!(
            body,
            "<div class=\"ok\" role=\"status\"><p>Agreement {} recorded.</p></div>",
            esc(id)
        );
    }
    body.push_str(&table(&agreements, (app.today)()));
    body.push_str(&form(&c, &Typed::blank(), None));
    Ok(html_page(page(
        "Data sharing agreements",
        &c.nav(None),
        &body,
    )))
}

async fn record(
    State(app): State<Arc<App>>,
    Admin(c): Admin,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    c.check_csrf(
        pairs
            .iter()
            .find(|(n, _)| n == "csrf")
            .map(|(_, v)| v.as_str()),
    )?;
    let typed = Typed::from_form(&pairs);
    let agreement = match Agreement::parse(typed.input.clone()) {
        Ok(a) => a,
        Err(e) => {
            let agreements = app.db(|s, _| Ok(s.agreements()?)).await?;
            let mut body = table(&agreements, (app.today)());
            body.push_str(&form(&c, &typed, Some((e.part, &e.message))));
            let mut r = html_page(page("Data sharing agreements", &c.nav(None), &body));
            *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            return Ok(r);
        }
    };
    let mut entry = c.entry("", "agreement", &agreement.id);
    entry.detail = agreement.summary();
    let id = agreement.id.clone();
    app.db(move |s, _| {
        // Logged first: a change may never be stored without its entry.
        s.log(&entry)?;
        s.put_agreement(&agreement)?;
        Ok(())
    })
    .await?;
    Ok(Redirect::to(&format!("/admin/agreements?saved={}", url_encode(&id))).into_response())
}
