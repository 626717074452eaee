//! Data sharing agreements for administrators (privacy.md, "Governance"): the agreements on
//! record, whether each is in force today, and a form to record or replace one. The form reads
//! through `Agreement::parse`, the same path as `crest agreements add`, so the same rules hold
//! (no tier L field, the fields the national store needs, dates in order); the approved-field
//! choices come from the dataset dictionary. Every recorded agreement is in the access log.

use crate::app::access::Admin;
use crate::app::{html_page, App, WebError};
use crate::html::{csrf_field, error_summary, page, url_encode};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use crest_core::governance::{Agreement, AgreementInput};
use crest_core::{Col, Section, Tier};
use crest_store::national::national_fields;
use maud::{html, Markup};
use std::collections::HashMap;
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

/// One line of text in the form, with its error when it was the part refused.
fn text_field(
    part: &str,
    label: &str,
    hint: &str,
    value: &str,
    error: Option<(&str, &str)>,
) -> Markup {
    let bad = error.filter(|(p, _)| *p == part).map(|(_, m)| m);
    html! {
        div class=[bad.map(|_| "field-error")] {
            label for={ "f-" (part) } { (label) " " span class="hint" { (hint) } }
            @if let Some(m) = bad { p class="err" id={ "e-" (part) } { (m) } }
            input id={ "f-" (part) } name=(part) value=(value) size="40"
                aria-invalid=[bad.map(|_| "true")] aria-describedby=[bad.map(|_| format!("e-{part}"))];
        }
    }
}

fn form(c: &crate::app::Ctx, typed: &Typed, error: Option<(&str, &str)>) -> maud::Markup {
    let summary = error_summary(
        &error
            .map(|(part, m)| vec![(part.to_string(), m.to_string())])
            .unwrap_or_default(),
    );
    let i = &typed.input;
    let fields_error = error.filter(|(p, _)| *p == "fields").map(|(_, m)| m);
    // The approvable fields under their dataset section headings.
    let mut sections: Vec<(Section, Vec<&crest_core::Field>)> = Vec::new();
    for f in approvable() {
        match sections.last_mut() {
            Some((s, list)) if *s == f.section => list.push(f),
            _ => sections.push((f.section, vec![f])),
        }
    }
    let ticked = |f: &crest_core::Field| match &i.fields {
        Some(list) => list.iter().any(|n| n == f.name),
        None => f.required,
    };
    html! {
        (summary)
        h2 { "Record an agreement" }
        p { "An agreement with an id already on record replaces it." }
        form method="post" action="/admin/agreements" {
            (csrf_field(&c.session.csrf))
            (text_field("id", "Id", "e.g. ncpcr-2025", &i.id, error))
            (text_field("recipient", "Recipient", "who receives the data", &i.recipient, error))
            (text_field("legal_basis", "Legal basis reference", "e.g. the CAG (section 251) approval", &i.legal_basis, error))
            (text_field("valid_from", "Valid from", "YYYY-MM-DD or DD/MM/YYYY", &i.valid_from, error))
            (text_field("valid_to", "Valid to", "the last day in force", &i.valid_to, error))
            fieldset {
                legend { "National Data Opt-out" }
                div {
                    input type="radio" id="o1" name="opt_out" value="applies" checked[!i.opt_out_exempt];
                    " "
                    label for="o1" style="display:inline" { "applies (English programmes must load a check result)" }
                }
                div {
                    input type="radio" id="o2" name="opt_out" value="exempt" checked[i.opt_out_exempt];
                    " "
                    label for="o2" style="display:inline" { "exempt (the agreement records an exemption)" }
                }
            }
            fieldset id="f-fields" tabindex="-1" class=[fields_error.map(|_| "field-error")] {
                legend { "Approved fields" }
                @if let Some(m) = fields_error { p class="err" { (m) } }
                div {
                    input type="radio" id="s1" name="scope" value="all" checked[typed.scope != "listed"];
                    " "
                    label for="s1" style="display:inline" { "every national field" }
                }
                div {
                    input type="radio" id="s2" name="scope" value="listed" checked[typed.scope == "listed"];
                    " "
                    label for="s2" style="display:inline" { "only the fields ticked below" }
                }
                @for (section, fields) in &sections {
                    h3 { (section.title()) }
                    @for f in fields {
                        div {
                            input type="checkbox" id={ "c-" (f.name) } name="fields" value=(f.name) checked[ticked(f)];
                            " "
                            label for={ "c-" (f.name) } style="display:inline" {
                                (f.label) " " code { (f.name) } " "
                                span class="hint" {
                                    @if f.required { " (needed on every episode)" }
                                    @else if f.tier == Tier::Derived { " (derived by crest)" }
                                }
                            }
                        }
                    }
                }
            }
            p { button { "Record the agreement" } }
        }
    }
}

fn table(agreements: &[Agreement], today: crest_core::Date) -> Markup {
    html! {
        @if agreements.is_empty() {
            p { "No agreement is on record, so no programme can submit to the national audit." }
        } @else {
            table tabindex="0" {
                caption { "Data sharing agreements on record" }
                thead { tr {
                    th scope="col" { "Id" } th scope="col" { "In force today" }
                    th scope="col" { "Valid" } th scope="col" { "Recipient" }
                    th scope="col" { "Legal basis" } th scope="col" { "National Data Opt-out" }
                    th scope="col" { "Approved fields" }
                } }
                tbody {
                    @for a in agreements {
                        tr {
                            td { (a.id) }
                            td { @if a.in_force(today) { "yes" } @else { "no" } }
                            td { (a.valid_from.long()) " to " (a.valid_to.long()) }
                            td { (a.recipient) }
                            td { (a.legal_basis) }
                            td { @if a.opt_out_exempt { "exempt" } @else { "applies" } }
                            td {
                                @match &a.fields {
                                    Some(f) => (f.join(", ")),
                                    None => "every national field",
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

async fn list(
    State(app): State<Arc<App>>,
    Admin(c): Admin,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let agreements = app.db(|s, _| Ok(s.agreements()?)).await?;
    let body = html! {
        @if let Some(id) = q.get("saved") {
            div class="ok" role="status" { p { "Agreement " (id) " recorded." } }
        }
        (table(&agreements, (app.today)()))
        (form(&c, &Typed::blank(), None))
    };
    Ok(html_page(page(
        "Data sharing agreements",
        c.nav(None),
        body,
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
            let body = html! {
                (table(&agreements, (app.today)()))
                (form(&c, &typed, Some((e.part, &e.message))))
            };
            let mut r = html_page(page("Data sharing agreements", c.nav(None), body));
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
