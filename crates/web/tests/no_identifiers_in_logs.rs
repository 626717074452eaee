//! No patient identifier reaches the server's log, at any level, nor an error page: the web
//! journeys a programme team makes (upload with rejected rows, confirm, search by NHS number,
//! open and save an episode with a mistake, ask for pages that are not there) run with every
//! log line of every crate kept, and the log is searched for each synthetic patient's NHS
//! number, names, date of birth and postcode. Its own test binary, because the log subscriber
//! it installs is for the whole process.
#![allow(clippy::unwrap_used)]

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use common::http::{get, hidden, login, multipart_files, post, send};
use common::{rt, setup, LogBuffer};
use crest_store::testing::databases;

mod common;

/// Synthetic patients (NHS numbers from the 9xx test range): number, last name, first name,
/// date of birth, postcode.
const PATIENTS: [[&str; 5]; 3] = [
    [
        "9434765854",
        "Quellington",
        "Amarantha",
        "1951-03-17",
        "SE1 7EH",
    ],
    [
        "9434765919",
        "Brackenridge",
        "Osvaldo",
        "1948-11-02",
        "LS6 2QW",
    ],
    // A mistyped NHS number (its check digit is wrong): rejected, shown to the team only.
    [
        "9434765855",
        "Featherstonhaugh",
        "Marisol",
        "1960-07-29",
        "CF10 3AT",
    ],
];

/// The ways each identifier might be written out.
fn forms(p: &[&str; 5]) -> Vec<String> {
    let nhs = p[0];
    let dob = p[3];
    let (y, m, d) = (&dob[..4], &dob[5..7], &dob[8..]);
    vec![
        nhs.to_string(),
        format!("{} {} {}", &nhs[..3], &nhs[3..6], &nhs[6..]),
        p[1].to_string(),
        p[2].to_string(),
        dob.to_string(),
        format!("{d}/{m}/{y}"),
        p[4].to_string(),
        p[4].replace(' ', ""),
        p[4].replace(' ', "+"),
    ]
}

#[test]
fn no_identifier_reaches_the_log_or_an_error_page() {
    let buffer = LogBuffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();
    let mut error_pages = String::new();
    for db in databases() {
        let app = setup(&db);
        rt().block_on(async {
            let (cookie, csrf) = login(&app, "lead").await;
            let mut csv = String::from("programme_code,episode_id,nhs_number,family_name,given_name,date_of_birth,postcode,sex,initiating_event,treatment,event_date,referral_date,status\r\n");
            for (i, p) in PATIENTS.iter().enumerate() {
                csv.push_str(&format!(
                    "P001,LOG{i},{},{},{},{},{},female,mi_stemi,pci,2025-01-10,2025-01-12,referred\r\n",
                    p[0], p[1], p[2], p[3], p[4]
                ));
            }
            let (content_type, body) = multipart_files(&csrf, &[("up.csv", csv.as_bytes())]);
            let req = Request::post("/p/P001/upload")
                .header(header::COOKIE, &cookie)
                .header(header::CONTENT_TYPE, content_type)
                .body(Body::from(body))
                .unwrap();
            let r = send(&app, req).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            assert!(r.body.contains("1 rejected"), "{}", r.body);
            let token = hidden(&r.body, "token");
            let r = send(&app, get(&format!("/p/P001/upload/{token}/rows-to-fix"), &cookie)).await;
            assert!(r.body.contains("9434765855"), "the team gets its own rows back: {}", r.body);
            let r = send(
                &app,
                post("/p/P001/upload/confirm", &cookie, &[("csrf", &csrf), ("token", &token), ("name", "up.csv")]),
            )
            .await;
            assert!(r.body.contains("Stored: 2 new"), "{}", r.body);
            // Searches by NHS number, name and postcode.
            for q in [PATIENTS[0][0], PATIENTS[1][1], PATIENTS[0][4]] {
                let r = send(&app, post("/p/P001/episodes", &cookie, &[("csrf", &csrf), ("q", q)])).await;
                assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            }
            // The episode, then a save with a mistake in it (all errors in one round).
            let r = send(&app, get("/p/P001/episodes/LOG0", &cookie)).await;
            assert_eq!(r.status, StatusCode::OK);
            let r = send(
                &app,
                post(
                    "/p/P001/episodes/LOG0",
                    &cookie,
                    &[("csrf", &csrf), ("nhs_number", "9434765855"), ("date_of_birth", "31/02/1951"), ("postcode", PATIENTS[0][4])],
                ),
            )
            .await;
            assert!(r.status.is_client_error() || r.status == StatusCode::OK, "{}", r.status);
            // Pages that are not there, asked for with identifiers in their address.
            for path in [
                format!("/p/P001/episodes/{}", PATIENTS[1][0]),
                format!("/p/P001/episodes/{}/report", PATIENTS[0][1]),
                format!("/nowhere/{}", PATIENTS[0][0]),
            ] {
                let r = send(&app, get(&path, &cookie)).await;
                assert!(r.status.is_client_error(), "{path}: {}", r.status);
                error_pages.push_str(&r.body);
            }
            // A stranger's requests with identifiers.
            let r = send(&app, get(&format!("/p/P001/episodes/LOG0?q={}", PATIENTS[0][0]), "")).await;
            assert_eq!(r.status, StatusCode::SEE_OTHER);
        });
    }
    let log = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    // Every request was logged (a dozen or more requests on each back end).
    assert!(
        log.matches("answered").count() >= 24,
        "the log was captured:\n{log}"
    );
    for p in &PATIENTS {
        for form in forms(p) {
            assert!(!log.contains(&form), "'{form}' is in the server's log");
            assert!(!error_pages.contains(&form), "'{form}' is on an error page");
        }
    }
}
