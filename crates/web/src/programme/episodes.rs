//! The episode routes, and starting a new episode: step by step along the pathway
//! (`episode_steps`) unless the whole form on one page is asked for (`episode_form`); opening
//! an episode shows its summary (`patient_summary`).

use crate::app::access::Staff;
use crate::app::{html_page, App, Code, WebError};
use crate::programme::episode_form::{
    episode_page, form_map, save, save_assessment1, save_assessment2, save_episode, show,
    show_assessment1, show_assessment2, EpisodeForm,
};
use axum::extract::{Path as UrlPath, Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::{Form, Router};
use std::collections::HashMap;
use std::sync::Arc;

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/p/{code}/episodes/new", get(new_form).post(save_new))
        .route(
            "/p/{code}/episodes/{id}",
            get(crate::programme::patient_summary::show).post(save),
        )
        .route("/p/{code}/episodes/{id}/edit", get(show))
        .route(
            "/p/{code}/episodes/{id}/assessment1",
            get(show_assessment1).post(save_assessment1),
        )
        .route(
            "/p/{code}/episodes/{id}/assessment2",
            get(show_assessment2).post(save_assessment2),
        )
}

pub(crate) async fn new_form(
    State(app): State<Arc<App>>,
    Staff(c, p): Staff,
    UrlPath(_code): Code,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let code = p.code.clone();
    let proposed = app.db(move |s, _| next_episode_id(s, &code)).await?;
    let values = HashMap::from([
        ("programme_code".to_string(), p.code.clone()),
        ("episode_id".to_string(), proposed),
    ]);
    // Step by step along the pathway, unless the whole episode on one page is asked for.
    if !q.contains_key("whole") {
        return Ok(html_page(crate::programme::episode_steps::step_page(
            &c,
            &p.code,
            crest_core::Step::Patient,
            &values,
            &[],
        )));
    }
    Ok(html_page(episode_page(
        &c,
        &p.code,
        None,
        &values,
        &[],
        false,
        EpisodeForm::Full,
        false,
    )))
}

/// The id a new episode is offered so a nurse need not invent one: the programme's code and
/// a number (`P001-00043`), the first not already held, counting on from the episodes stored.
fn next_episode_id(s: &mut dyn crest_store::Store, programme: &str) -> Result<String, WebError> {
    let mut n = s.count_episodes()? + 1;
    loop {
        let id = format!("{programme}-{n:05}");
        if s.episode(programme, &id)?.is_none() {
            return Ok(id);
        }
        n += 1;
    }
}

pub(crate) async fn save_new(
    State(app): State<Arc<App>>,
    staff: Staff,
    Form(form): Form<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let values = form_map(form);
    if values.contains_key(crate::programme::episode_steps::STEP) {
        return crate::programme::episode_steps::answer_step(app, staff, values).await;
    }
    save_episode(app, staff, None, values, EpisodeForm::Full).await
}
