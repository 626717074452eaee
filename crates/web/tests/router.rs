//! The web app through its router: real stores (SQLite and PostgreSQL), real Argon2id
//! passwords, sessions and CSRF tokens, every page and form.
#![allow(clippy::unwrap_used)]

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use common::http::{
    cookie_value, enc, get, hidden, login, multipart_files, post, reading, send, try_sign_in, words,
};
use common::{open, rt, setup, PASSWORD};
use crest_store::testing::{databases, scratch_dir};
use http_body_util::BodyExt;
use std::sync::Arc;
use tower::ServiceExt;

mod common;

#[test]
fn login_sessions_csrf_and_rate_limit() {
    for db in databases() {
        let app = setup(&db);
        rt().block_on(async {
            // Not signed in: every page sends you to the login.
            let r = send(&app, get("/p/P001/episodes", "")).await;
            assert_eq!(
                (r.status, r.location.as_str()),
                (StatusCode::SEE_OTHER, "/login")
            );
            // A wrong password is refused, and after five the user is locked out for a while.
            let page = send(&app, get("/login", "")).await;
            let pre = cookie_value(&page.cookies, "crest_login").unwrap();
            let csrf = hidden(&page.body, "csrf");
            for _ in 0..5 {
                let r = try_sign_in(&app, &pre, &csrf, "staff2", "wrong-password").await;
                assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", db.backend);
                assert!(r.body.contains("not right"));
            }
            let r = try_sign_in(&app, &pre, &csrf, "staff2", PASSWORD).await;
            assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
            assert!(
                r.body.contains("Wait 1 second"),
                "a short delay, not a lock-out: {}",
                r.body
            );
            // After the delay the real user gets in.
            tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
            let r = try_sign_in(&app, &pre, &csrf, "staff2", PASSWORD).await;
            assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
            // 40 wrong passwords at once: the limit holds before the slow hash, so only the
            // free five are even tried, and beyond them only as many as the doubling delays
            // (1 s, 2 s, 4 s, …) allow in the time the burst took (none on a quiet machine).
            let burst = std::time::Instant::now();
            let guesses = (0..40).map(|_| {
                let app = app.clone();
                let (pre, csrf) = (pre.clone(), csrf.clone());
                tokio::spawn(
                    async move { try_sign_in(&app, &pre, &csrf, "lead", "guess").await.status },
                )
            });
            let mut statuses = Vec::new();
            for g in guesses.collect::<Vec<_>>() {
                statuses.push(g.await.unwrap());
            }
            let tried = statuses
                .iter()
                .filter(|s| **s == StatusCode::UNAUTHORIZED)
                .count();
            let waited = burst.elapsed().as_secs_f64();
            let later = (waited + 1.0).log2().floor() as usize;
            assert!(
                (5..=5 + later).contains(&tried),
                "{tried} tried in {waited:.1} s: {statuses:?}"
            );
            assert!(statuses
                .iter()
                .all(|s| *s == StatusCode::UNAUTHORIZED || *s == StatusCode::TOO_MANY_REQUESTS));
            // Login CSRF: a form without the matching cookie is refused.
            let r = send(
                &app,
                post(
                    "/login",
                    "",
                    &[
                        ("username", "staff"),
                        ("password", PASSWORD),
                        ("csrf", &csrf),
                    ],
                ),
            )
            .await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST);
            // Sessions rotate: two logins, two tokens.
            let (a, csrf_a) = login(&app, "staff").await;
            let (b, _) = login(&app, "staff").await;
            assert_ne!(a, b);
            // A form without the session's CSRF token changes nothing.
            let r = send(
                &app,
                post("/p/P001/episodes/E1", &a, &[("family_name", "Changed")]),
            )
            .await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST);
            let r = send(&app, post("/logout", &a, &[("csrf", &csrf_a)])).await;
            assert_eq!(r.location, "/login");
            let r = send(&app, get("/p/P001/episodes", &a)).await;
            assert_eq!(r.location, "/login", "a signed-out session is dead");
            // Logins are in the access log, failed and successful, without passwords.
            let log = open(&db).run(|s| s.access_log(100).unwrap());
            assert!(log
                .iter()
                .any(|e| e.action == "login" && e.outcome == "failed" && e.username == "staff2"));
            assert!(log
                .iter()
                .any(|e| e.action == "login" && e.outcome == "ok" && e.username == "staff"));
            assert!(!log.iter().any(|e| format!("{e:?}").contains(PASSWORD)));
        });
    }
}

/// Many people signing in at once queue for the password hash; none is answered 500.
#[test]
fn concurrent_sign_ins_queue_and_never_fail() {
    for db in databases() {
        let app = setup(&db);
        open(&db).run(|s| {
            for i in 0..40 {
                crest_web::add_user(
                    s,
                    &format!("nurse{i}"),
                    crest_store::Role::ProgrammeStaff,
                    &["P001".to_string()],
                    PASSWORD,
                )
                .unwrap();
            }
        });
        rt().block_on(async {
            let page = send(&app, get("/login", "")).await;
            let pre = cookie_value(&page.cookies, "crest_login").unwrap();
            let csrf = hidden(&page.body, "csrf");
            // Forty staff of one hospital (one address) sign in at the same moment.
            let all = (0..40).map(|i| {
                let app = app.clone();
                let (pre, csrf) = (pre.clone(), csrf.clone());
                let user = format!("nurse{i}");
                let user = user.as_str().to_owned();
                tokio::spawn(async move { try_sign_in(&app, &pre, &csrf, &user, PASSWORD).await })
            });
            for r in all.collect::<Vec<_>>() {
                let r = r.await.unwrap();
                assert_eq!(
                    r.status,
                    StatusCode::SEE_OTHER,
                    "{}: {}",
                    db.backend,
                    r.body
                );
            }
        });
    }
}

/// Request bodies: a programme's large spreadsheet and a large submission go through; over
/// the limit, the answer names the limit.
#[test]
fn large_uploads_and_submissions_go_through_and_the_limit_is_named() {
    let db = &databases()[0];
    let app = setup(db);
    rt().block_on(async {
        let (cookie, csrf) = login(&app, "lead").await;
        let upload = |bytes: Vec<u8>| {
            let b = "LIMITB";
            let mut body = format!("--{b}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.csv\"\r\n\r\n").into_bytes();
            body.extend_from_slice(&bytes);
            body.extend_from_slice(format!("\r\n--{b}--\r\n").as_bytes());
            Request::post("/p/P001/upload")
                .header(header::COOKIE, &cookie)
                .header(header::CONTENT_TYPE, format!("multipart/form-data; boundary={b}"))
                .body(Body::from(body))
                .unwrap()
        };
        // About 3 MB of episodes (over the old 2 MB default).
        let mut csv = String::from("programme_code,episode_id,nhs_number,date_of_birth,sex,initiating_event,treatment,event_date,referral_date,status,notes\n");
        let pad = "x".repeat(300);
        for i in 0..10_000 {
            csv.push_str(&format!("P001,BIG{i},,1950-01-01,male,mi_stemi,pci,2025-01-10,2025-01-12,referred,{pad}\n"));
        }
        assert!(csv.len() > 3_000_000);
        let r = send(&app, upload(csv.into_bytes())).await;
        assert_eq!(r.status, StatusCode::OK, "{}", &r.body[..r.body.len().min(500)]);
        assert!(r.body.contains("10000 row(s)"), "{}", &r.body[..r.body.len().min(2000)]);
        // Over the limit: 413, naming it; nothing is left behind.
        let r = send(&app, upload(vec![b'a'; crest_web::UPLOAD_LIMIT + 1])).await;
        assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(r.body.contains("limit of 100 MB"), "{}", r.body);
        let sizes: Vec<u64> = std::fs::read_dir(app.uploads_dir()).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).collect();
        assert!(sizes.iter().all(|n| *n < 10_000_000), "the refused file is not kept: {sizes:?}");
    });
}

/// Security headers on every response, error pages with the layout, links only to what the
/// role may open, and episode ids with URL characters that open from the list.
#[test]
fn headers_error_pages_links_and_awkward_ids() {
    let db = &databases()[0];
    let app = setup(db);
    let dir = scratch_dir("ids");
    let f = dir.join("ids.csv");
    std::fs::write(
        &f,
        "programme_code,episode_id,nhs_number,date_of_birth,sex,initiating_event,treatment,event_date,referral_date,status\n\
         P001,SL/1,9434765854,1950-01-01,male,mi_stemi,pci,2025-01-10,2025-01-12,referred\n\
         P001,Q?1,9434765862,1950-01-01,male,mi_stemi,pci,2025-01-10,2025-01-12,referred\n\
         P001,H#1,9434765870,1950-01-01,male,mi_stemi,pci,2025-01-10,2025-01-12,referred\n",
    )
    .unwrap();
    open(db).run(move |s| {
        let sum = crest_ingest::import_file(
            s,
            &f,
            &crest_ingest::ImportOptions::new(crest_core::Date::from_ymd(2025, 6, 1).unwrap()),
            None,
            &mut |_| {},
        )
        .unwrap();
        assert_eq!(sum.imported, 3, "{:?}", sum.errors);
    });
    rt().block_on(async {
        let r = crest_web::router(app.clone())
            .oneshot(get("/login", ""))
            .await
            .unwrap();
        let h = r.headers();
        assert_eq!(h[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(h[header::REFERRER_POLICY], "same-origin");
        assert!(h[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'"));
        let (staff, _) = login(&app, "staff").await;
        // Downloads carry a CSP too.
        let r = crest_web::router(app.clone())
            .oneshot(get("/template.csv", &staff))
            .await
            .unwrap();
        assert!(r.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .contains("default-src 'none'"));
        assert_eq!(r.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        // Unknown addresses: a page with the layout and the user's navigation.
        let r = send(&app, get("/no/such/page", &staff)).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert!(
            r.body.contains("<h1>Page not found</h1>") && r.body.contains("Sign out"),
            "{}",
            r.body
        );
        // A programme's staff keep their programme's links, none marked as the page.
        assert!(r.body.contains("href=\"/p/P001/episodes\""), "{}", r.body);
        assert!(!r.body.contains("aria-current"), "{}", r.body);
        // The navigation marks the page the user is on, and only that one.
        let r = send(&app, get("/p/P001/upload", &staff)).await;
        assert!(
            r.body
                .contains("<a href=\"/p/P001/upload\" aria-current=\"page\">Upload</a>"),
            "{}",
            r.body
        );
        assert_eq!(r.body.matches("aria-current=\"page\"").count(), 1);
        // Every page starts with a link past the navigation.
        assert!(r.body.contains("Skip to main content"));
        // Staff are not offered Submit (lead only); the lead is.
        let r = send(&app, get("/p/P001/episodes", &staff)).await;
        assert!(!r.body.contains("/p/P001/submit"), "{}", r.body);
        let (lead, _) = login(&app, "lead").await;
        assert!(send(&app, get("/p/P001/episodes", &lead))
            .await
            .body
            .contains("/p/P001/submit"));
        // Ids with /, ? and # are linked encoded, and open.
        let list = send(&app, get("/p/P001/episodes", &staff)).await.body;
        for (id, enc) in [("SL/1", "SL%2F1"), ("Q?1", "Q%3F1"), ("H#1", "H%231")] {
            let href = format!("href=\"/p/P001/episodes/{enc}\"");
            assert!(list.contains(&href), "{href} in {list}");
            let r = send(&app, get(&format!("/p/P001/episodes/{enc}"), &staff)).await;
            assert_eq!(r.status, StatusCode::OK, "{id}: {}", r.body);
            let r = send(&app, get(&format!("/p/P001/episodes/{enc}/report"), &staff)).await;
            assert_eq!(r.status, StatusCode::OK, "{id} report");
            assert!(
                r.body.contains("data-print")
                    && r.body.contains("/assets/print.js")
                    && !r.body.contains("onclick"),
                "{}",
                r.body
            );
        }
        let r = crest_web::router(app.clone())
            .oneshot(get("/assets/print.js", ""))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    });
}

/// The form follows the upload's rules: an unusual value is shown for checking and saved once
/// confirmed; a BMI crest derived is derived again when the weight changes.
#[test]
fn form_warnings_are_confirmed_and_a_derived_bmi_follows_the_weight() {
    for db in databases() {
        let app = setup(&db);
        rt().block_on(async {
            let (cookie, csrf) = login(&app, "staff").await;
            let a1 = |weight: &str, bmi: &str, confirm: bool| {
                let mut form = vec![
                    ("csrf", csrf.clone()),
                    ("status", "completed".to_string()),
                    ("assessment1_date", "2024-04-20".to_string()),
                    ("a1_hads_anxiety", "12".to_string()),
                    ("a1_weight_kg", weight.to_string()),
                    ("a1_height_cm", "175".to_string()),
                    ("a1_bmi", bmi.to_string()),
                ];
                if confirm {
                    form.push(("confirm_warnings", "yes".to_string()));
                }
                let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
                post("/p/P001/episodes/E1/assessment1", &cookie, &form)
            };
            let bmi = |app: &std::sync::Arc<crest_web::App>| {
                let _ = app;
                open(&db).run(|s| {
                    s.episode("P001", "E1")
                        .unwrap()
                        .unwrap()
                        .num(crest_core::Col::A1Bmi)
                })
            };
            let r = send(&app, a1("80", "", false)).await;
            assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
            assert_eq!(bmi(&app), Some(26.1));
            // The form shows the derived 26.1; the weight changes, the BMI follows.
            let r = send(&app, a1("90", "26.1", false)).await;
            assert_eq!(
                r.status,
                StatusCode::SEE_OTHER,
                "{}: {}",
                db.backend,
                r.body
            );
            assert_eq!(bmi(&app), Some(29.4));
            // 210 kg is unusual: shown for checking, not saved silently.
            let r = send(&app, a1("210", "29.4", false)).await;
            assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
            assert!(
                r.body.contains("Please check") && r.body.contains("name=\"confirm_warnings\""),
                "{}",
                r.body
            );
            // Said once, starting with a capital: no "please check it" after "Please check:".
            assert!(
                r.body.contains("Please check: 210 is unusual (expected ")
                    && !r.body.to_lowercase().contains("please check it"),
                "{}",
                r.body
            );
            assert_eq!(bmi(&app), Some(29.4), "nothing saved yet");
            let r = send(&app, a1("210", "29.4", true)).await;
            assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
            assert_eq!(bmi(&app), Some(68.6));
        });
    }
}

#[test]
fn staff_cannot_reach_another_programme_by_any_url() {
    for db in databases() {
        let app = setup(&db);
        rt().block_on(async {
            let (cookie, csrf) = login(&app, "staff").await;
            for path in [
                "/p/P002/episodes",
                "/p/P002/episodes/X1",
                "/p/P002/episodes/X1/report",
                "/p/P002/episodes/X1/assessment1",
                "/p/P002/episodes/X1/assessment2",
                "/p/P002/episodes/new",
                "/p/P002/dashboard",
                "/p/P002/upload",
                "/p/P002/export.csv",
                "/p/P002/export.xlsx",
                "/p/P002/export.json",
                "/p/P002/profile",
                "/p/P001/episodes/X1",
                "/p/P001/episodes/X1/report",
                "/p/NOPE/episodes",
            ] {
                let r = send(&app, get(path, &cookie)).await;
                assert_eq!(r.status, StatusCode::NOT_FOUND, "{}: {path}", db.backend);
                assert!(
                    !r.body.contains("Otherperson") && !r.body.contains("9434765870"),
                    "{path}"
                );
            }
            let r = send(
                &app,
                post(
                    "/p/P002/episodes/X1",
                    &cookie,
                    &[("csrf", &csrf), ("family_name", "Hacked")],
                ),
            )
            .await;
            assert_eq!(r.status, StatusCode::NOT_FOUND);
            // Admins see no patient data at all.
            let (admin, _) = login(&app, "admin").await;
            let r = send(&app, get("/p/P001/episodes/E1", &admin)).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND);
            let stored = open(&db).run(|s| s.episode("P002", "X1").unwrap().unwrap());
            assert_eq!(
                stored.text(crest_core::Col::FamilyName),
                Some("Otherperson")
            );
        });
    }
}

#[test]
fn episode_form_shows_import_errors_keeps_input_then_saves() {
    for db in databases() {
        let app = setup(&db);
        rt().block_on(async {
            let (cookie, csrf) = login(&app, "staff").await;
            let r = send(&app, get("/p/P001/episodes", &cookie)).await;
            assert!(
                r.body.contains("E1") && !r.body.contains("X1"),
                "{}",
                r.body
            );
            let r = send(&app, get("/p/P001/episodes?q=943+476+5919", &cookie)).await;
            assert!(r.body.contains("1 episode(s)"), "{}", r.body);
            // The search form posts: the NHS number stays out of the address.
            assert!(
                r.body
                    .contains("<form method=\"post\" action=\"/p/P001/episodes\" role=\"search\">"),
                "{}",
                r.body
            );
            let r = send(
                &app,
                post(
                    "/p/P001/episodes",
                    &cookie,
                    &[("csrf", &csrf), ("q", "943 476 5919")],
                ),
            )
            .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            assert!(r.body.contains("1 episode(s)"), "{}", r.body);
            let r = send(
                &app,
                post("/p/P001/episodes", &cookie, &[("q", "943 476 5919")]),
            )
            .await;
            assert_eq!(
                r.status,
                StatusCode::BAD_REQUEST,
                "a search needs the form's token"
            );
            let r = send(&app, get("/p/P001/episodes/new?whole=1", &cookie)).await;
            // Questions in words: a label, radios for a short list, a select of labelled
            // codes for a long one, three boxes for a date, ticks for several codes.
            for want in [
                "<legend>Sex</legend>",
                "type=\"radio\" id=\"f-sex\" name=\"sex\" value=\"male\"",
                "<label for=\"f-initiating_event\">What led to the referral</label>",
                "<option value=\"mi_nstemi\">Heart attack (NSTEMI)</option>",
                "name=\"referral_date-day\"",
                "type=\"checkbox\" id=\"f-comorbidities\" name=\"comorbidities\" value=\"diabetes\"",
                "value=\"yes\"",
            ] {
                assert!(r.body.contains(want), "{want}: {}", r.body);
            }
            assert!(!r.body.contains(">mi_nstemi<"), "codes never shown as words");
            let mut form = vec![
                ("csrf", csrf.as_str()),
                ("episode_id", "N1"),
                ("nhs_number", "9434765918"),
                ("date_of_birth", "15/06/1960"),
                ("sex", "female"),
                ("initiating_event", "mi_nstemi"),
                ("treatment", "pci"),
                ("event_date", "01/02/2025"),
                ("referral_date", "03/02/2025"),
                ("status", "referred"),
                ("family_name", "Newperson"),
            ];
            let r = send(&app, post("/p/P001/episodes/new", &cookie, &form)).await;
            assert_eq!(
                r.status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{}: {}",
                db.backend,
                r.body
            );
            assert!(
                r.body.contains("There is a problem") && r.body.contains("not a valid NHS number"),
                "{}",
                r.body
            );
            assert!(
                r.body.contains("value=\"Newperson\""),
                "what the user typed is kept"
            );
            assert!(
                r.body.contains("id=\"e-nhs_number\""),
                "the message sits next to its field"
            );
            form[2] = ("nhs_number", "9434765862");
            let r = send(&app, post("/p/P001/episodes/new", &cookie, &form)).await;
            assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
            assert_eq!(r.location, "/p/P001/episodes/N1?saved=1");
            let s = open(&db);
            let n1 = s.run(|s| s.episode("P001", "N1").unwrap().unwrap());
            assert_eq!(n1.text(crest_core::Col::NhsNumber), Some("9434765862"));
            // Change it: the access log keeps old and new values (identifiers only by name).
            // Opening the patient shows the summary first; the form is a step away.
            let page = send(&app, get("/p/P001/episodes/N1", &cookie)).await;
            assert!(!page.body.contains("value=\"Newperson\""));
            assert!(page.body.contains("href=\"/p/P001/episodes/N1/edit\""));
            let page = send(&app, get("/p/P001/episodes/N1/edit", &cookie)).await;
            assert!(page.body.contains("value=\"Newperson\""));
            form.retain(|(k, _)| *k != "episode_id");
            form.push(("core_start_date", "2025-03-01"));
            form.push(("assessment1_date", "2025-02-20"));
            form.push(("delivery_mode", "home_based"));
            form[8] = ("status", "in_progress");
            let r = send(&app, post("/p/P001/episodes/N1", &cookie, &form)).await;
            assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
            assert_eq!(r.location, "/p/P001/episodes/N1?saved=1");
            // The summary says where the patient is and what is due, by the standards:
            // at least 56 days of core rehabilitation from 1 March, assessment 2 within
            // 140 days of assessment 1 (20 February).
            let summary = send(&app, get(&r.location, &cookie)).await;
            let text = words(&summary.body);
            for due in [
                "Saved.",
                "Where the patient is now: In core rehabilitation",
                "End core rehabilitation: from 26 April 2025",
                "Assessment 2: from 26 April 2025, by 10 July 2025",
                "Core rehabilitation started: 1 March 2025",
                "Assessment 2: not yet",
            ] {
                assert!(text.contains(due), "{due}: {text}");
            }
            let log = s.run(|s| s.access_log(50).unwrap());
            let change = log
                .iter()
                .find(|e| e.action == "change" && e.target == "N1")
                .unwrap();
            assert!(
                change.detail.contains("status: 'referred' → 'in_progress'"),
                "{}",
                change.detail
            );
            assert!(log.iter().any(|e| e.action == "view" && e.target == "N1"));
            // The report shows both assessments with a HADS interpretation.
            let r = send(&app, get("/p/P001/episodes/E1/report", &cookie)).await;
            // In the patient's words: labels, a HADS meaning and dates written out.
            assert!(
                r.body.contains("HADS anxiety score")
                    && r.body.contains("(normal)")
                    && !r.body.contains("a1_")
                    && !r.body.contains("worked out from"),
                "{}",
                r.body
            );
            assert!(
                writes_a_long_date(&r.body),
                "dates are written as '3 March 2025': {}",
                r.body
            );
        });
    }
}

/// issue 25: the programme's episodes download as a FHIR Bundle and upload back unchanged;
/// the upload takes a hospital's bulk-export NDJSON files chosen together and previews them
/// exactly as a CSV, each problem naming its resource; rows to fix come back as CSV.
#[test]
fn fhir_download_upload_preview_and_rows_to_fix() {
    for db in databases() {
        let app = setup(&db);
        rt().block_on(async {
        let (cookie, csrf) = login(&app, "lead").await;
        let r = crest_web::router(app.clone()).oneshot(get("/p/P001/export.json", &cookie)).await.unwrap();
        assert_eq!(r.headers()[header::CONTENT_TYPE], "application/fhir+json");
        let bytes = r.into_body().collect().await.unwrap().to_bytes();
        let bundle: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(bundle["resourceType"], "Bundle");
        assert_eq!(bundle["type"], "collection");
        let s = open(&db);
        let stored = s.run(|s| s.find_episodes("P001", &crest_store::EpisodeQuery::everything()).unwrap().len());
        let eocs = bundle["entry"].as_array().unwrap().iter().filter(|e| e["resource"]["resourceType"] == "EpisodeOfCare").count();
        assert_eq!(eocs, stored);
        // Uploaded back as it is: every episode unchanged.
        let send_files = |files: Vec<(&'static str, Vec<u8>)>| {
            let app = app.clone();
            let (cookie, csrf) = (cookie.clone(), csrf.clone());
            async move {
                let refs: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (*n, b.as_slice())).collect();
                let (ct, body) = multipart_files(&csrf, &refs);
                let req = Request::post("/p/P001/upload")
                    .header(header::COOKIE, &cookie)
                    .header(header::CONTENT_TYPE, ct)
                    .body(Body::from(body))
                    .unwrap();
                send(&app, req).await
            }
        };
        let r = send_files(vec![("P001-episodes.fhir.json", bytes.to_vec())]).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert!(r.body.contains(&format!("{stored} episode(s): 0 new, 0 changed, {stored} unchanged, <strong>0 rejected")), "{}", r.body);
        let log = s.run(|s| s.access_log(100).unwrap());
        assert!(log.iter().any(|e| e.action == "export" && e.target == "P001-episodes.fhir.json"));

        // A hospital's bulk export, one file per resource type, chosen together.
        let patient = |id: &str, nhs: Option<&str>| serde_json::json!({"resourceType": "Patient", "id": id,
            "identifier": nhs.map(|n| vec![serde_json::json!({"system": "https://fhir.nhs.uk/Id/nhs-number", "value": n})]).unwrap_or_default(),
            "birthDate": "1949-05-05", "gender": "male"}).to_string();
        let condition = |id: &str, p: &str| serde_json::json!({"resourceType": "Condition", "id": id,
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "401303003"}]},
            "subject": {"reference": format!("Patient/{p}")}, "onsetDateTime": "2025-01-20T09:00:00Z"}).to_string();
        let referral = |id: &str, p: &str| serde_json::json!({"resourceType": "ServiceRequest", "id": id, "status": "active", "intent": "order",
            "subject": {"reference": format!("Patient/{p}")}, "authoredOn": "2025-01-22"}).to_string();
        let files = vec![
            ("Patient.ndjson", format!("{}\n{}", patient("h1", Some("9434765854")), patient("h2", None)).into_bytes()),
            ("Condition.ndjson", format!("{}\n{}\n", condition("hc1", "h1"), condition("hc2", "h2")).into_bytes()),
            ("ServiceRequest.ndjson", format!("{}\n{}\n", referral("hs1", "h1"), referral("hs2", "h2")).into_bytes()),
        ];
        let r = send_files(files).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert!(r.body.contains("Patient.ndjson and 2 more"), "{}", r.body);
        assert!(r.body.contains("2 episode(s): 1 new, 0 changed, 0 unchanged, <strong>1 rejected"), "{}", r.body);
        assert!(r.body.contains("<caption>Rejected episodes</caption>") && r.body.contains("<th scope=\"col\">Episode</th>"), "{}", r.body);
        assert!(r.body.contains("(<code>nhs_number</code>), from <code>Patient/h2 identifier</code>") && r.body.contains("no NHS number"), "{}", r.body);
        assert!(r.body.contains("Store the 1 valid episode(s)"), "{}", r.body);
        assert!(s.run(|s| s.episode("P001", "cond-hc1").unwrap().is_none()), "a preview stores nothing");
        let token = hidden(&r.body, "token");
        let fix = send(&app, get(&format!("/p/P001/upload/{token}/rows-to-fix"), &cookie)).await;
        assert!(fix.body.starts_with("programme_code,episode_id"), "{}", fix.body);
        assert!(fix.body.contains("P001,cond-hc2,") && fix.body.contains("no NHS number"), "{}", fix.body);
        assert_eq!(fix.body.lines().count(), 2, "{}", fix.body);
        let r = send(&app, post("/p/P001/upload/confirm", &cookie, &[("csrf", &csrf), ("token", &token), ("name", "Patient.ndjson")])).await;
        assert!(r.body.contains("Stored: 1 new"), "{}", r.body);
        let e = s.run(|s| s.episode("P001", "cond-hc1").unwrap().unwrap());
        assert_eq!(e.text(crest_core::Col::InitiatingEvent), Some("mi_stemi"));
        assert_eq!(e.date(crest_core::Col::ReferralDate).unwrap().to_string(), "2025-01-22");

        // A Bundle chosen with a CSV is refused in words; nothing waits.
        let r = send_files(vec![("a.csv", b"programme_code\n".to_vec()), ("b.ndjson", patient("x", None).into_bytes())]).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
        assert!(r.body.contains("several files can be chosen together only as the .ndjson files"), "{}", r.body);
        // Broken JSON: the whole file is refused, with where.
        let r = send_files(vec![("broken.json", b"{\"resourceType\": \"Bundle\", \"entry\": [".to_vec())]).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
        assert!(r.body.contains("is not valid JSON"), "{}", r.body);
        });
    }
}

/// privacy.md, "Files holding identifiable data": an upload waiting for confirmation and its
/// rejected rows are held in the store (any server can confirm it), nothing of it stays on the
/// server's disk, and it is gone once confirmed, cancelled or an hour old.
#[test]
fn uploads_wait_in_the_store_and_are_never_left_behind() {
    use std::os::unix::fs::PermissionsExt;
    for db in databases() {
        let app = setup(&db);
        let dir = app.uploads_dir().to_path_buf();
        let on_disk = || std::fs::read_dir(&dir).unwrap().count();
        assert_eq!(
            std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        // Raw SQL on its own thread: the PostgreSQL client must not run inside the runtime.
        let waiting = || {
            std::thread::scope(|t| {
                t.spawn(|| db.query_i64("SELECT count(*) FROM pending_uploads"))
                    .join()
                    .unwrap()
            })
        };
        let age = || {
            std::thread::scope(|t| {
                t.spawn(|| db.execute_raw("UPDATE pending_uploads SET created = created - 7200"))
                    .join()
                    .unwrap()
            })
        };
        rt().block_on(async {
            let (cookie, csrf) = login(&app, "lead").await;
            let csv = "programme_code,episode_id,nhs_number,date_of_birth,sex,initiating_event,treatment,event_date,referral_date,status\n\
                       P001,U1,9434765854,1950-01-01,male,mi_stemi,pci,2025-01-10,2025-01-12,referred\n\
                       P001,U2,9434765919,1950-01-01,x,mi_stemi,pci,2025-01-10,2025-01-12,referred\n";
            let upload = || {
                let b = "XB";
                let body = format!(
                    "--{b}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"up.csv\"\r\n\r\n{csv}\r\n--{b}--\r\n"
                );
                Request::post("/p/P001/upload")
                    .header(header::COOKIE, &cookie)
                    .header(header::CONTENT_TYPE, format!("multipart/form-data; boundary={b}"))
                    .body(Body::from(body))
                    .unwrap()
            };
            // Waiting: in the store, not on disk.
            let r = send(&app, upload()).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            let token = hidden(&r.body, "token");
            assert_eq!((waiting(), on_disk()), (1, 0), "{}", db.backend);
            let r = send(&app, get(&format!("/p/P001/upload/{token}/rows-to-fix"), &cookie)).await;
            assert!(r.body.contains("sex: '"), "{}", r.body);
            // Another programme's staff cannot reach it.
            let (other, _) = login(&app, "staff2").await;
            let r = send(&app, get(&format!("/p/P001/upload/{token}/rows-to-fix"), &other)).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND);
            // Confirmed: gone.
            let r = send(&app, post("/p/P001/upload/confirm", &cookie, &[("csrf", &csrf), ("token", &token), ("name", "up.csv")])).await;
            assert!(r.body.contains("Stored: 1 new"), "{}", r.body);
            assert_eq!((waiting(), on_disk()), (0, 0));
            let r = send(&app, get(&format!("/p/P001/upload/{token}/rows-to-fix"), &cookie)).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND);
            // Cancelled: gone, nothing stored.
            let r = send(&app, upload()).await;
            let token = hidden(&r.body, "token");
            assert!(r.body.contains("Cancel this upload"), "{}", r.body);
            let r = send(&app, post("/p/P001/upload/cancel", &cookie, &[("csrf", &csrf), ("token", &token)])).await;
            assert!(r.body.contains("Upload cancelled"), "{}", r.body);
            assert_eq!(waiting(), 0);
            // An hour old: refused, and swept.
            let r = send(&app, upload()).await;
            let token = hidden(&r.body, "token");
            age();
            let r = send(&app, get(&format!("/p/P001/upload/{token}/rows-to-fix"), &cookie)).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND);
            let r = send(&app, post("/p/P001/upload/confirm", &cookie, &[("csrf", &csrf), ("token", &token), ("name", "up.csv")])).await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
            assert!(r.body.contains("no longer waiting"), "{}", r.body);
            let _ = send(&app, upload()).await;
            age();
            let app2 = app.clone();
            let swept = std::thread::spawn(move || app2.sweep_uploads(std::time::Duration::from_secs(3600)))
                .join()
                .unwrap()
                .unwrap();
            assert_eq!((swept, waiting(), on_disk()), (1, 0, 0));
        });
    }
}

#[test]
fn upload_preview_then_confirm_dashboard_export_and_profile() {
    for db in databases() {
        let app = setup(&db);
        rt().block_on(async {
        let (cookie, csrf) = login(&app, "lead").await;
        let dashboard = "/p/P001/dashboard?from=2024-04-01&to=2025-03-31";
        let r = send(&app, get(dashboard, &cookie)).await;
        assert!(r.body.contains("1 referred, 1 started"), "{}", r.body);
        // Excel's "CSV UTF-8": CRLF line endings.
        let csv = "programme_code,episode_id,nhs_number,date_of_birth,sex,initiating_event,treatment,event_date,referral_date,status\r\n\
                   P001,U1,9434765854,1950-01-01,male,mi_stemi,pci,2025-01-10,2025-01-12,referred\r\n\
                   P001,U2,9434765919,1950-01-01,male,mi_stemi,pci,2025-01-10,31/02/2025,referred\r\n\
                   P002,U3,9434765870,1950-01-01,male,mi_stemi,pci,2025-01-11,2025-01-12,referred\r\n";
        let boundary = "XBOUNDARYX";
        let body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"up.csv\"\r\nContent-Type: text/csv\r\n\r\n{csv}\r\n--{boundary}--\r\n"
        );
        let req = Request::post("/p/P001/upload")
            .header(header::COOKIE, &cookie)
            .header(header::CONTENT_TYPE, format!("multipart/form-data; boundary={boundary}"))
            .body(Body::from(body))
            .unwrap();
        let r = send(&app, req).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert!(r.body.contains("3 row(s): 1 new, 0 changed, 0 unchanged, <strong>2 rejected"), "{}", r.body);
        assert!(r.body.contains("31/02/2025") && r.body.contains("this upload is for programme P001"), "{}", r.body);
        // Row numbers as the spreadsheet shows them (header = row 1).
        assert!(r.body.contains("<tr><td>3</td><td>Date of referral to cardiac rehabilitation (<code>referral_date</code>)</td><td><code>31/02/2025</code></td>"), "{}", r.body);
        assert!(r.body.contains("<tr><td>4</td><td>Programme (<code>programme_code</code>)</td>"), "{}", r.body);
        let s = open(&db);
        assert!(s.run(|s| s.episode("P001", "U1").unwrap().is_none()), "a preview stores nothing");
        let token = hidden(&r.body, "token");
        let errors = send(&app, get(&format!("/p/P001/upload/{token}/rows-to-fix"), &cookie)).await;
        // The rows to fix: the file's own columns and rows, with what is wrong with each.
        assert!(errors.body.lines().next().unwrap().ends_with(",problems"), "{}", errors.body);
        assert_eq!(errors.body.lines().count(), 3, "{}", errors.body);
        assert!(errors.body.contains(",31/02/2025,") && errors.body.contains("referral_date: '31/02/2025' is not a real date"), "{}", errors.body);
        let r = send(&app, post("/p/P001/upload/confirm", &cookie, &[("csrf", &csrf), ("token", &token), ("name", "up.csv")])).await;
        assert!(r.body.contains("Stored: 1 new"), "{}", r.body);
        assert!(s.run(|s| s.episode("P001", "U1").unwrap().is_some()));
        assert!(s.run(|s| s.episode("P002", "U3").unwrap().is_none()));

        // The dashboard seen before the upload is not served again: the data changed.
        let r = send(&app, get(dashboard, &cookie)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert!(r.body.contains("2 referred, 1 started"), "{}", r.body);
        // Charts with axes: waits by week, uptake by group, the three-year trend; KPIs by name.
        assert!(r.body.contains("<svg role=\"img\"") && r.body.contains("<title id=\"wt-t\">Waits from referral"), "{}", r.body);
        assert!(r.body.contains("<title id=\"ug0-t\">Uptake by sex</title>"), "{}", r.body);
        assert!(r.body.contains("<title id=\"trend-t\">"), "{}", r.body);
        assert!(r.body.contains("<th scope=\"row\">Wait from referral to start, CABG</th>"), "{}", r.body);
        // Without a national store the page says so.
        assert!(r.body.contains("This server has no national store"), "{}", r.body);
        assert!(r.body.contains("Uptake by deprivation quintile") && r.body.contains("Uptake by priority group"));
        // E1: MI treated with PCI, referred 2024-04-03, started 2024-05-01 (28 days).
        assert!(r.body.contains("<tr><th scope=\"row\">MI/PCI</th><td>1</td><td>28 (IQR 28–28)</td><td>33</td></tr>"), "{}", r.body);
        assert!(r.body.contains("<tr><th scope=\"row\">CABG</th><td>0</td><td>–</td><td>46</td></tr>"), "{}", r.body);
        // Its HADS anxiety went from 12 to 6: one pair, a change of −6, no interval from one.
        assert!(r.body.contains("<tr><th scope=\"row\">HADS anxiety score</th><td>1</td><td>12.0</td><td>6.0</td><td>-6.0</td><td>–</td></tr>"), "{}", r.body);
        assert!(r.body.contains("<tr><th scope=\"row\">HADS anxiety score</th><td>1</td><td>100.0%</td><td>0.0%</td></tr>"), "{}", r.body);
        // Ethnicity in the broad groups of core, as nationally (empty = Not known).
        assert!(r.body.contains("<th scope=\"row\">Not known</th>") && !r.body.contains(">not stated<"), "{}", r.body);
        let r = send(&app, get("/p/P001/dashboard?from=31/02/2025", &cookie)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(r.body.contains("There is a problem") && r.body.contains("31/02/2025"), "{}", r.body);
        assert!(r.body.contains("Sign out") && r.body.contains("<nav"), "the error page has the navigation: {}", r.body);
        // A period with nobody referred has no grade.
        let r = send(&app, get("/p/P001/dashboard?from=2010-04-01&to=2011-03-31", &cookie)).await;
        assert!(r.body.contains("Grade: <strong class=\"grade-no-data\">no data</strong>: nobody was referred"), "{}", r.body);

        let r = send(&app, get("/p/P001/export.csv", &cookie)).await;
        assert!(r.body.starts_with("programme_code,episode_id") && r.body.contains("U1") && !r.body.contains("X1"));
        let r = crest_web::router(app.clone()).oneshot(get("/p/P001/export.xlsx", &cookie)).await.unwrap();
        assert_eq!(r.headers()[header::CONTENT_TYPE], "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet");
        let xlsx = r.into_body().collect().await.unwrap().to_bytes();
        assert!(xlsx.starts_with(b"PK"));
        // The XLSX export uploads again as it is: every row unchanged.
        let mut body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"back.xlsx\"\r\nContent-Type: application/vnd.openxmlformats-officedocument.spreadsheetml.sheet\r\n\r\n"
        ).into_bytes();
        body.extend_from_slice(&xlsx);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let req = Request::post("/p/P001/upload")
            .header(header::COOKIE, &cookie)
            .header(header::CONTENT_TYPE, format!("multipart/form-data; boundary={boundary}"))
            .body(Body::from(body))
            .unwrap();
        let r = send(&app, req).await;
        assert!(r.body.contains("2 row(s): 0 new, 0 changed, 2 unchanged, <strong>0 rejected"), "{}", r.body);
        let log = s.run(|s| s.access_log(100).unwrap());
        assert!(log.iter().any(|e| e.action == "export" && e.target == "P001-episodes.csv"));
        assert!(log.iter().any(|e| e.action == "export" && e.target == "P001-episodes.xlsx" && e.detail == "2 episodes"));
        assert!(log.iter().any(|e| e.action == "import" && e.detail.contains("1 new")));

        let r = send(&app, post("/p/P001/profile", &cookie, &[("csrf", &csrf), ("profession", "nurse"), ("profession", "dietitian"), ("offer", "cabg")])).await;
        assert!(r.body.contains("Profile saved"), "{}", r.body);
        // The saved page shows what was saved: ticked, and only those.
        let ticked = r.body.matches(" checked").count();
        assert_eq!(ticked, 3, "{}", r.body);
        assert!(r.body.contains("value=\"dietitian\" checked"), "{}", r.body);
        assert!(r.body.contains("Save profile"));
        let p = s.run(|s| s.programmes().unwrap().into_iter().find(|p| p.code == "P001").unwrap());
        assert_eq!(p.professions, Some(vec!["nurse".to_string(), "dietitian".to_string()]));
        // Nor after a profile change: KPI 1 now counts two professions.
        let r = send(&app, get(dashboard, &cookie)).await;
        assert!(r.body.contains("<tr><th scope=\"row\">Multidisciplinary team</th><td>2 professions</td>"), "{}", r.body);
        // Staff may see the profile but not change it.
        let (staff, staff_csrf) = login(&app, "staff").await;
        let r = send(&app, post("/p/P001/profile", &staff, &[("csrf", &staff_csrf), ("profession", "nurse")])).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let r = send(&app, get("/p/P001/profile", &staff)).await;
        assert!(r.body.contains("Only the programme lead can change the profile."), "{}", r.body);
        assert!(r.body.contains("value=\"nurse\" checked disabled"), "{}", r.body);
        assert!(!r.body.contains("Save profile"), "{}", r.body);
        });
    }
}

#[test]
fn assessment_quick_forms_change_only_their_fields() {
    for db in databases() {
        let app = setup(&db);
        rt().block_on(async {
            let (cookie, csrf) = login(&app, "staff").await;
            let r = send(&app, get("/p/P001/episodes/E1/assessment1", &cookie)).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            assert!(
                r.body
                    .contains("id=\"f-a1_hads_anxiety\" name=\"a1_hads_anxiety\" value=\"12\""),
                "{}",
                r.body
            );
            assert!(!r.body.contains("f-family_name") && !r.body.contains("f-a2_hads_anxiety"));
            let mut form = vec![
                ("csrf", csrf.as_str()),
                ("status", "completed"),
                ("core_end_date", "2024-07-01"),
                ("assessment2_date", "2024-07-05"),
                ("a2_hads_anxiety", "25"),
                ("a2_weight_kg", "81.5"),
            ];
            let r = send(
                &app,
                post("/p/P001/episodes/E1/assessment2", &cookie, &form),
            )
            .await;
            assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
            assert!(r.body.contains("id=\"e-a2_hads_anxiety\""), "{}", r.body);
            assert!(
                r.body.contains("value=\"25\"") && r.body.contains("Assessment 2 – episode E1")
            );
            form[4] = ("a2_hads_anxiety", "4");
            let r = send(
                &app,
                post("/p/P001/episodes/E1/assessment2", &cookie, &form),
            )
            .await;
            assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
            // Saved: back to the patient's summary, with the new score among the measures.
            assert_eq!(r.location, "/p/P001/episodes/E1?saved=1");
            let summary = words(&send(&app, get(&r.location, &cookie)).await.body);
            assert!(
                summary.contains("Saved.")
                    && summary
                        .contains("HADS anxiety score 12 (needs attention) 4 (normal) down 8"),
                "{summary}"
            );
            let e1 = open(&db).run(|s| s.episode("P001", "E1").unwrap().unwrap());
            assert_eq!(
                e1.get(crest_core::Col::A2HadsAnxiety),
                &crest_core::Value::Int(4)
            );
            assert_eq!(
                e1.get(crest_core::Col::A2WeightKg),
                &crest_core::Value::Num(81.5)
            );
            // Everything not on the quick form is as it was.
            assert_eq!(e1.text(crest_core::Col::FamilyName), Some("Testperson"));
            assert_eq!(
                e1.get(crest_core::Col::A1HadsAnxiety),
                &crest_core::Value::Int(12)
            );
            let r = send(
                &app,
                get("/p/P001/episodes/E1/assessment2?saved=1", &cookie),
            )
            .await;
            assert!(r.body.contains("Saved.") && r.body.contains("value=\"81.5\""));
            // A cross-field rule still holds: assessment 2 cannot come before assessment 1.
            form[3] = ("assessment2_date", "2024-04-01");
            let r = send(
                &app,
                post("/p/P001/episodes/E1/assessment2", &cookie, &form),
            )
            .await;
            assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
            let r = send(&app, get("/p/P001/episodes/NOPE/assessment1", &cookie)).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND);
        });
    }
}

#[test]
fn search_filters_templates_and_the_remaining_pages() {
    for db in databases() {
        let app = setup(&db);
        rt().block_on(async {
            let (cookie, csrf) = login(&app, "lead").await;
            // A second episode to tell the filters apart: a referred CABG patient in 2025.
            let form = [
                ("csrf", csrf.as_str()),
                ("episode_id", "E2"),
                ("nhs_number", "9434765862"),
                ("family_name", "Secondperson"),
                ("local_patient_id", "H-77"),
                ("date_of_birth", "1950-01-01"),
                ("sex", "male"),
                ("initiating_event", "mi_stemi"),
                ("treatment", "cabg"),
                ("event_date", "2025-01-10"),
                ("referral_date", "2025-01-12"),
                ("status", "referred"),
            ];
            let r = send(&app, post("/p/P001/episodes/new", &cookie, &form)).await;
            assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
            let ids = |body: &str| {
                ["E1", "E2"]
                    .into_iter()
                    .filter(|id| body.contains(&format!("/p/P001/episodes/{id}\"")))
                    .collect::<Vec<_>>()
            };
            for (query, want) in [
                ("", vec!["E1", "E2"]),
                ("?q=secondPERSON", vec!["E2"]),
                ("?q=H-77", vec!["E2"]),
                ("?q=943-476-5919", vec!["E1"]),
                ("?q=E1", vec!["E1"]),
                ("?status=referred", vec!["E2"]),
                ("?status=completed", vec!["E1"]),
                ("?pathway=mi_nstemi", vec!["E1"]),
                ("?from=01/01/2025", vec!["E2"]),
                ("?to=2024-12-31", vec!["E1"]),
                ("?from=2025-02-01", vec![]),
            ] {
                let r = send(&app, get(&format!("/p/P001/episodes{query}"), &cookie)).await;
                assert_eq!(r.status, StatusCode::OK);
                assert_eq!(ids(&r.body), want, "{}: {query}", db.backend);
            }
            // The filters keep what was chosen, and searched text comes back as text only.
            let r = send(
                &app,
                get(
                    "/p/P001/episodes?status=referred&q=%22%3E%3Cscript%3Ex%3C%2Fscript%3E",
                    &cookie,
                ),
            )
            .await;
            assert!(
                r.body.contains(
                    "<option value=\"referred\" selected>Referred, waiting to start</option>"
                ),
                "{}",
                r.body
            );
            assert!(!r.body.contains("<script>x"), "{}", r.body);
            assert!(
                r.body.contains("value=\"&quot;&gt;&lt;script&gt;x"),
                "{}",
                r.body
            );
            let r = send(&app, get("/p/P001/episodes?from=31/02/2025", &cookie)).await;
            assert!(r.body.contains("Referred from"), "{}", r.body);
            assert!(r.body.contains("role=\"alert\""), "a bad date is explained");
            let log = open(&db).run(|s| s.access_log(200).unwrap());
            assert!(log.iter().any(|e| e.action == "search"));
            assert!(
                !log.iter().any(|e| e.detail.contains("943-476-5919")
                    || e.detail.contains("Secondperson")),
                "search terms that identify a patient are not copied into the log"
            );

            // Templates, for signed-in users.
            let r = send(&app, get("/template.csv", "")).await;
            assert_eq!(r.location, "/login");
            let r = send(&app, get("/template.csv", &cookie)).await;
            assert_eq!(r.status, StatusCode::OK);
            assert!(r.body.starts_with("programme_code,episode_id,"));
            let t = crest_web::router(app.clone())
                .oneshot(get("/template.xlsx", &cookie))
                .await
                .unwrap();
            assert_eq!(t.status(), StatusCode::OK);
            assert!(t
                .into_body()
                .collect()
                .await
                .unwrap()
                .to_bytes()
                .starts_with(b"PK"));

            // The other pages render for the lead.
            for (path, text) in [
                ("/p/P001/upload", "Check file"),
                ("/p/P001/profile", "Save profile"),
                ("/p/P001/episodes/E2", "Secondperson"),
                ("/p/P001/episodes/E1/report", "Print"),
                ("/p/P001/dashboard", "Grade"),
            ] {
                let r = send(&app, get(path, &cookie)).await;
                assert_eq!(r.status, StatusCode::OK, "{path}");
                assert!(r.body.contains(text), "{path}: {}", r.body);
            }
            // A lead with one programme lands on its patient list; an admin on the start page.
            let r = send(&app, get("/", &cookie)).await;
            assert_eq!(r.location, "/p/P001/episodes");
            let (admin, _) = login(&app, "admin").await;
            let r = send(&app, get("/", &admin)).await;
            assert_eq!(r.status, StatusCode::OK);
            assert!(!r.body.contains("Testperson"));
            let r = send(&app, get("/no/such/page", &cookie)).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND);
        });
    }
}

fn multipart(boundary: &str, parts: &[(&str, Option<&str>, &str)]) -> String {
    let mut body = String::new();
    for (name, file, value) in parts {
        let disposition = match file {
            Some(f) => {
                format!("form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: text/csv")
            }
            None => format!("form-data; name=\"{name}\""),
        };
        body.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n{value}\r\n"
        ));
    }
    body.push_str(&format!("--{boundary}--\r\n"));
    body
}

#[test]
fn leads_build_a_national_submission_in_the_browser() {
    for db in databases() {
        let app = setup(&db);
        rt().block_on(async {
            let (staff, _) = login(&app, "staff").await;
            assert_eq!(
                send(&app, get("/p/P001/submit", &staff)).await.status,
                StatusCode::NOT_FOUND
            );
            let (cookie, csrf) = login(&app, "lead").await;
            let r = send(&app, get("/p/P001/submit", &cookie)).await;
            assert_eq!(r.status, StatusCode::OK);
            assert!(r.body.contains("National Data Opt-out"), "{}", r.body);
            let post = |parts: Vec<(&str, Option<&str>, &str)>| {
                let b = "SUBMITBOUNDARY";
                Request::post("/p/P001/submit")
                    .header(header::COOKIE, &cookie)
                    .header(
                        header::CONTENT_TYPE,
                        format!("multipart/form-data; boundary={b}"),
                    )
                    .body(Body::from(multipart(b, &parts)))
                    .unwrap()
            };
            let period = |ndoo: Option<&'static str>| {
                let mut v = vec![
                    ("csrf", None, csrf.as_str()),
                    ("from", None, "2024-04-01"),
                    ("to", None, "2025-03-31"),
                ];
                if let Some(n) = ndoo {
                    v.push(("ndoo", Some("ndoo.csv"), n));
                    v.push(("list", None, "opted_out"));
                }
                v
            };
            let r = send(&app, post(period(None))).await;
            assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
            assert!(
                r.body.contains("no submission key") && !r.body.contains("--"),
                "{}",
                r.body
            );
            app.set_submission_key(crest_privacy::Key::from_secret([5; 32]));
            app.set_signing_keys(common::setup_signing_keys());
            let r = send(&app, post(period(None))).await;
            assert!(r.body.contains("No data sharing agreement"), "{}", r.body);
            open(&db).run(|s| s.put_agreement(&common::agreement(false)).unwrap());
            let r = send(&app, post(period(None))).await;
            assert!(
                r.body.contains("National Data Opt-out applies") && !r.body.contains("--ndoo"),
                "fail closed, in words: {}",
                r.body
            );
            let r = send(
                &app,
                post(period(Some(
                    "nhs_number,checked_on\n9434765870,2025-05-30\n",
                ))),
            )
            .await;
            // First what would be sent, and under which agreement; nothing recorded yet.
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            assert!(
                r.body.contains(
                    "<th scope=\"row\">Episodes sent (pseudonymised, minimised)</th><td>1</td>"
                ),
                "{}",
                r.body
            );
            assert!(
                r.body.contains(
                    "<th scope=\"row\">Left out: the National Data Opt-out</th><td>0</td>"
                ),
                "{}",
                r.body
            );
            assert!(r.body.contains("<dt>Agreement</dt>"), "{}", r.body);
            assert!(
                open(&db)
                    .run(|s| s.sent_episodes("P001").unwrap())
                    .is_empty(),
                "a check records nothing"
            );
            let token = hidden(&r.body, "token");
            let confirm = |token: &str| {
                crate::post(
                    "/p/P001/submit/confirm",
                    &cookie,
                    &[("csrf", csrf.as_str()), ("token", token)],
                )
            };
            let (other, other_csrf) = login(&app, "staff2").await;
            let r = send(
                &app,
                crate::post(
                    "/p/P001/submit/confirm",
                    &other,
                    &[("csrf", &other_csrf), ("token", &token)],
                ),
            )
            .await;
            assert_eq!(
                r.status,
                StatusCode::NOT_FOUND,
                "another programme cannot build it"
            );
            let r = send(&app, confirm(&token)).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            assert!(
                r.body.starts_with("{\"agreement\"") || r.body.starts_with("{\""),
                "{}",
                r.body
            );
            assert!(
                r.body.contains("\"programme_code\":\"P001\"") && r.body.contains("\"episodes\":1"),
                "{}",
                r.body
            );
            assert!(
                !r.body.contains("9434765919")
                    && !r.body.contains("Testperson")
                    && !r.body.contains("1960-06-15")
            );
            let (sent, log) =
                open(&db).run(|s| (s.sent_episodes("P001").unwrap(), s.access_log(5).unwrap()));
            assert_eq!(sent, ["E1"]);
            assert!(
                log.iter()
                    .any(|e| e.action == "submission" && e.detail.starts_with("1 episodes")),
                "{log:?}"
            );
            // Used once: the opt-out result is gone.
            let r = send(&app, confirm(&token)).await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
            assert!(r.body.contains("no longer waiting"), "{}", r.body);
        });
    }
}

/// The id `crest tokens list` shows for a token: the start of its SHA-256.
fn n_hash_prefix(token: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(token.as_bytes()))[..12].to_string()
}

#[test]
fn national_analysts_receive_submissions_by_upload_and_programmes_by_api() {
    use crest_privacy::Key;
    for (db, ndb) in databases().into_iter().zip(databases()) {
        let app = setup(&db);
        let (sk, nk) = (Key::from_secret([3; 32]), Key::from_secret([4; 32]));
        let mut n = crest_store::NationalStore::open(&ndb.url).unwrap();
        n.migrate().unwrap();
        let progs = open(&db).run(|s| s.programmes().unwrap());
        n.upsert_programmes(&progs).unwrap();
        common::register_signing_keys(&mut n, &progs);
        n.add_api_token(
            "token-for-p002",
            "P002",
            "2025-06-01T00:00:00Z",
            "2099-01-01T00:00:00Z",
        )
        .unwrap();
        n.add_api_token(
            "token-for-p001",
            "P001",
            "2025-06-01T00:00:00Z",
            "2099-01-01T00:00:00Z",
        )
        .unwrap();
        n.add_api_token(
            "expired-p002",
            "P002",
            "2024-06-01T00:00:00Z",
            "2025-06-01T00:00:00Z",
        )
        .unwrap();
        n.add_api_token(
            "revoked-p002",
            "P002",
            "2025-06-01T00:00:00Z",
            "2099-01-01T00:00:00Z",
        )
        .unwrap();
        let revoked = n
            .api_tokens()
            .unwrap()
            .into_iter()
            .find(|t| {
                t.revoked_at.is_none()
                    && t.created_at.starts_with("2025")
                    && t.programme == "P002"
                    && n_hash_prefix("revoked-p002") == t.id
            })
            .unwrap();
        assert!(n
            .revoke_api_token(&revoked.id, "2025-06-01T01:00:00Z")
            .unwrap());
        assert!(
            !n.revoke_api_token(&revoked.id, "2025-06-01T02:00:00Z")
                .unwrap(),
            "only once"
        );
        drop(n);
        app.set_submission_key(sk.clone());
        app.set_signing_keys(common::setup_signing_keys());
        app.set_national(&ndb.url, nk.clone()).unwrap();
        open(&db).run(|s| {
            crest_web::add_user(
                s,
                "analyst",
                crest_store::Role::NationalAnalyst,
                &[],
                PASSWORD,
            )
            .unwrap();
            s.put_agreement(&common::agreement(false)).unwrap()
        });
        let build_at = |now: &str| {
            let now = now.to_string();
            let key = sk.clone();
            open(&db).run(move |s| {
                let req = crest_privacy::submission::BuildRequest {
                    programme: "P002",
                    period: crest_core::Period {
                        from: crest_core::Date::from_ymd(2024, 4, 1).unwrap(),
                        to: crest_core::Date::from_ymd(2025, 3, 31).unwrap(),
                    },
                    key: &key,
                    signing_key: &common::signing_key("P002"),
                    ndoo: None,
                    ndoo_max_age_days: 30,
                    today: crest_core::Date::from_ymd(2025, 6, 1).unwrap(),
                    now,
                };
                crest_privacy::submission::build(s, &req).unwrap().bytes
            })
        };
        let first = build_at("2025-06-01T10:00:00Z");
        rt().block_on(async {
            let (staff, _) = login(&app, "staff").await;
            assert_eq!(send(&app, get("/national", &staff)).await.status, StatusCode::NOT_FOUND);
            let (cookie, csrf) = login(&app, "analyst").await;
            let r = send(&app, get("/", &cookie)).await;
            assert_eq!(r.location, "/national");
            let r = send(&app, get("/p/P002/episodes", &cookie)).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "analysts see no identifiable records");
            let upload = |bytes: &[u8]| {
                let b = "NATBOUNDARY";
                let mut body = format!("--{b}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"p002.jsonl\"\r\n\r\n").into_bytes();
                body.extend_from_slice(bytes);
                body.extend_from_slice(format!("\r\n--{b}--\r\n").as_bytes());
                Request::post("/national/receive")
                    .header(header::COOKIE, &cookie)
                    .header(header::CONTENT_TYPE, format!("multipart/form-data; boundary={b}"))
                    .body(Body::from(body))
                    .unwrap()
            };
            let r = send(&app, upload(&first)).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            assert!(r.body.contains("stored 1 episode(s)"), "{}", r.body);
            assert!(r.body.contains("<th scope=\"row\">P002</th>"), "{}", r.body);
            assert!(send(&app, upload(&first)).await.body.contains("already received"));
            let mut tampered = first.clone();
            let at = tampered.len() - 5;
            tampered[at] ^= 1;
            let r = send(&app, upload(&tampered)).await;
            assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
            assert!(r.body.contains("Refused; nothing was stored") && r.body.contains("checksum"), "{}", r.body);
            // P001 builds its own, correctly signed file and relabels it as P002's: refused
            // here and by the API (with P002's own token), and P002's data stays as it was.
            let relabelled = {
                let key = sk.clone();
                let p001 = open(&db).run(move |s| {
                    let ndoo = crest_privacy::submission::NdooCheck::parse(
                        b"nhs_number,checked_on\n9000000009,2025-05-30\n",
                        "check",
                        crest_privacy::submission::NdooList::OptedOut,
                    )
                    .unwrap();
                    let req = crest_privacy::submission::BuildRequest {
                        programme: "P001",
                        period: crest_core::Period {
                            from: crest_core::Date::from_ymd(2024, 4, 1).unwrap(),
                            to: crest_core::Date::from_ymd(2025, 3, 31).unwrap(),
                        },
                        key: &key,
                        signing_key: &common::signing_key("P001"),
                        ndoo: Some(&ndoo),
                        ndoo_max_age_days: 30,
                        today: crest_core::Date::from_ymd(2025, 6, 1).unwrap(),
                        now: "2025-06-02T10:00:00Z".into(),
                    };
                    crest_privacy::submission::build(s, &req).unwrap().bytes
                });
                String::from_utf8(p001).unwrap().replace("\"P001\"", "\"P002\"").into_bytes()
            };
            let held = common::sync(|| crest_store::NationalStore::open(&ndb.url).unwrap().episodes(Some("P002")).unwrap());
            let r = send(&app, upload(&relabelled)).await;
            assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
            assert!(r.body.contains("signature does not verify against programme P002"), "{}", r.body);
            let r = send(
                &app,
                Request::post("/api/v1/submissions")
                    .header(header::AUTHORIZATION, "Bearer token-for-p002")
                    .body(Body::from(relabelled.clone()))
                    .unwrap(),
            )
            .await;
            assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
            assert!(r.body.contains("signature does not verify against programme P002"), "{}", r.body);
            let now_held = common::sync(|| crest_store::NationalStore::open(&ndb.url).unwrap().episodes(Some("P002")).unwrap());
            assert_eq!(now_held, held, "{}", db.backend);
            // A file over the old 2 MB default is read and checked, not refused unread.
            let mut big = first.clone();
            big.extend(std::iter::repeat_n(b'x', 3_000_000));
            let r = send(&app, upload(&big)).await;
            assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
            assert!(r.body.contains("checksum"), "{}", r.body);

            // The API: a programme's system pushes with its own token only.
            let api = |token: Option<&str>, bytes: Vec<u8>| {
                let mut r = Request::post("/api/v1/submissions");
                if let Some(t) = token {
                    r = r.header(header::AUTHORIZATION, format!("Bearer {t}"));
                }
                r.body(Body::from(bytes)).unwrap()
            };
            // A correction at the programme makes a new submission for the same period.
            open(&db).run(|s| {
                let mut x1 = s.episode("P002", "X1").unwrap().unwrap();
                x1.set(crest_core::Col::DeliveryMode, crest_core::Value::Text("home_based".into()));
                let mut tx = s.begin().unwrap();
                tx.update(&x1).unwrap();
                tx.commit().unwrap();
            });
            let second = build_at("2025-06-02T10:00:00Z");
            assert_eq!(send(&app, api(None, second.clone())).await.status, StatusCode::UNAUTHORIZED);
            assert_eq!(send(&app, api(Some("nope"), second.clone())).await.status, StatusCode::UNAUTHORIZED);
            let r = send(&app, api(Some("token-for-p001"), second.clone())).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
            // A large body is read, not refused at 2 MB.
            let r = send(&app, api(Some("token-for-p002"), vec![b'x'; 3_000_000])).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
            let r = send(&app, api(Some("expired-p002"), second.clone())).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
            assert!(r.body.contains("expired") && r.body.contains("\"code\":\"token_expired\""), "{}", r.body);
            let r = send(&app, api(Some("revoked-p002"), second.clone())).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
            assert!(r.body.contains("revoked") && r.body.contains("\"code\":\"token_revoked\""), "{}", r.body);
            // Every refused call is in the national access log; no token ever is.
            let url = ndb.url.clone();
            let log = std::thread::spawn(move || crest_store::NationalStore::open(&url).unwrap().access_log(50).unwrap())
                .join()
                .unwrap();
            let refused: Vec<_> = log.iter().filter(|e| e.action == "api_submission").collect();
            assert_eq!(
                refused.iter().map(|e| e.outcome.as_str()).collect::<Vec<_>>(),
                ["refused 401", "refused 401", "refused 403", "refused 403", "refused 401", "refused 401"],
                "{log:?}"
            );
            assert!(refused.iter().any(|e| e.outcome == "refused 403" && e.programme == "P001"), "{refused:?}");
            assert!(!format!("{log:?}").contains("token-for") && !format!("{log:?}").contains("revoked-p002"));
            let r = send(&app, api(Some("token-for-p002"), second)).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            assert!(r.body.contains("\"status\":\"stored\"") && r.body.contains("\"replaced\":1"), "{}", r.body);

            // A funnel plot as a PNG, rendered in process (no browser), at the chart's size.
            let r = crest_web::router(app.clone())
                .oneshot(get("/national/funnel.png?kpi=uptake&from=2024-04-01&to=2025-03-31", &cookie))
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            assert_eq!(r.headers()[header::CONTENT_TYPE], "image/png");
            let png = r.into_body().collect().await.unwrap().to_bytes();
            assert!(png.starts_with(b"\x89PNG") && png.len() > 2_000, "{} bytes", png.len());
            let (w, h) = (
                u32::from_be_bytes(png[16..20].try_into().unwrap()),
                u32::from_be_bytes(png[20..24].try_into().unwrap()),
            );
            assert_eq!((w, h), (700, 400));
            let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("funnel-uptake.png");
            std::fs::write(&shot, &png).unwrap();
            let r = send(&app, get("/national/funnel.png?kpi=duration", &cookie)).await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST);

            // The national dashboard, from the national store.
            assert_eq!(send(&app, get("/national/dashboard", &staff)).await.status, StatusCode::NOT_FOUND);
            let r = send(&app, get("/national/dashboard?from=2024-04-01&to=2025-03-31", &cookie)).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            assert!(r.body.contains("2 programme(s): 1 referred, 1 started core CR (uptake 100.0%)"), "{}", r.body);
            assert!(r.body.contains(">P002</a></th><td>Wales</td><td>North</td><td class=\"num\">1</td><td class=\"num\">100.0%</td>"), "{}", r.body);
            // The roll-up: Wales, then its region North, with P002's figures.
            assert!(r.body.contains("<tr><th scope=\"row\"><strong>Wales</strong></th><td class=\"num\">1</td><td class=\"num\">1</td><td class=\"num\">100.0%</td>"), "{}", r.body);
            assert!(r.body.contains("<tr><th scope=\"row\">\u{a0}\u{a0}North</th><td class=\"num\">1</td><td class=\"num\">1</td><td class=\"num\">100.0%</td>"), "{}", r.body);
            assert!(r.body.contains("<title id=\"f-uptake-t\">Funnel plot: Uptake"), "{}", r.body);
            assert!(r.body.contains("/national/funnel.png?kpi=uptake&amp;from=2024-04-01"), "{}", r.body);
            assert!(r.body.contains("&amp;kpi=assessment1\">Assessment 1 recorded"), "the other funnels: {}", r.body);
            assert!(r.body.contains("<tr><th scope=\"row\">1 April 2024 to 31 March 2025</th><td class=\"num\">1</td><td class=\"num\">100.0%</td>"), "year on year: {}", r.body);
            assert!(r.body.contains("<tr><th scope=\"row\">1 April 2023 to 31 March 2024</th><td class=\"num\">0</td><td class=\"num\">–</td><td class=\"num\">–</td><td class=\"num\">–</td><td>0 / 0 / 0</td>"), "year on year: nobody referred is no grade: {}", r.body);
            // P002's MI/PCI wait is 28 days against Wales's 26: named as above its threshold.
            assert!(r.body.contains("Median wait, referral to start: MI/PCI: 1 programme(s); above their threshold: P002 (28 days)."), "{}", r.body);
            let r = send(&app, get("/national/programme?code=P002&from=2024-04-01&to=2025-03-31", &cookie)).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            assert!(r.body.contains("<th scope=\"row\">1 April 2024 to 31 March 2025</th><td class=\"num\">1</td><td class=\"num\">100.0%</td>"), "{}", r.body);
            assert!(r.body.contains("<th scope=\"row\">1 April 2022 to 31 March 2023</th><td class=\"num\">0</td>"), "three years: {}", r.body);
            assert!(r.body.contains("Grade<span class=\"visually-hidden\">, sort ascending</span></a></th></tr></thead>") && r.body.contains("<td>no data</td></tr>"), "{}", r.body);
            assert!(r.body.contains(">Uptake (started / referred)</a></th><td class=\"num\">1/1 = 100.0%</td><td class=\"num\">100.0%</td><td><strong>within the limits</strong></td>"), "{}", r.body);
            // Each table downloads with its exact values.
            let t = send(&app, get("/national/programme.csv?code=P002&from=2024-04-01&to=2025-03-31&table=kpis", &cookie)).await;
            assert_eq!(t.status, StatusCode::OK, "{}", t.body);
            let lines: Vec<&str> = t.body.lines().collect();
            assert!(lines[0].starts_with("period_from,period_to,referred,started,uptake,mdt,mdt_met,"), "{}", t.body);
            assert!(lines[3].starts_with("2024-04-01,2025-03-31,1,1,1.0000,"), "{}", t.body);
            assert_eq!(lines.len(), 4, "three years: {}", t.body);
            let t = send(&app, get("/national/programme.csv?code=P002&from=2024-04-01&to=2025-03-31&table=uptake", &cookie)).await;
            assert!(t.body.starts_with("grouping,group,referred,started,uptake,ci_low,ci_high\n") && t.body.contains("\nsex,"), "{}", t.body);
            let t = send(&app, get("/national/programme.xlsx?code=P002&from=2024-04-01&to=2025-03-31&table=funnels", &cookie)).await;
            assert!(t.bytes.starts_with(b"PK"));
            assert_eq!(send(&app, get("/national/programme.csv?code=P002&table=nope", &cookie)).await.status, StatusCode::BAD_REQUEST);
            assert_eq!(send(&app, get("/national/programme.csv?code=P002&table=kpis", &staff)).await.status, StatusCode::NOT_FOUND);
            assert!(r.body.contains("Uptake by deprivation quintile"), "{}", r.body);
            assert_eq!(send(&app, get("/national/programme?code=NOPE", &cookie)).await.status, StatusCode::NOT_FOUND);
            let r = send(&app, get("/national/quality?from=2024-04-01&to=2025-03-31&programme=P002", &cookie)).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            assert!(r.body.contains("1 of 2 programmes have submitted"), "{}", r.body);
            let (missing, received) = (r.body.find("<th scope=\"row\">One (P001)</th><td><strong>missing</strong>").unwrap(), r.body.find("<th scope=\"row\">Two (P002)</th><td>received</td>").unwrap());
            assert!(missing < received, "missing first");
            assert!(r.body.contains("<a href=\"/national/quality?from=2024-04-01&amp;to=2025-03-31&amp;programme=P002#fields\">Two (P002)</a>"), "{}", r.body);
            assert!(r.body.contains("Every field of Two (P002)") && r.body.contains("<tr><th scope=\"row\">How core rehabilitation is delivered</th><td class=\"num\">100.0%</td></tr>"), "{}", r.body);
            // Sorted by a column: the heading says so, and the order follows it.
            let r = send(&app, get("/national/quality?from=2024-04-01&to=2025-03-31&submissions-sort=0&submissions-order=descending", &cookie)).await;
            assert!(r.body.contains("aria-sort=\"descending\""), "{}", r.body);
            assert!(r.body.find("Two (P002)").unwrap() < r.body.find("One (P001)").unwrap(), "{}", r.body);
            let r = send(&app, get("/national/inequalities?from=2024-04-01&to=2025-03-31", &cookie)).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            assert!(r.body.contains("Nationally: 1 referred, 1 started") && r.body.contains("Uptake by priority group"), "{}", r.body);
            assert!(r.body.contains("Slope index of inequality: not enough data"), "{}", r.body);
            assert_eq!(send(&app, get("/national/inequalities", &staff)).await.status, StatusCode::NOT_FOUND);
            let r = send(&app, get("/national/dashboard?from=2024-04-01&to=2025-03-31&nation=england", &cookie)).await;
            assert!(r.body.contains("1 programme(s): 0 referred") && !r.body.contains(">P002</a></th>"), "{}", r.body);
        });
        let mut n = crest_store::NationalStore::open(&ndb.url).unwrap();
        let check = n.verify_access_log().unwrap();
        // Five receipts by upload (three refused), two by the API (the relabelled one refused),
        // six refused API calls.
        assert_eq!((check.entries, check.broken), (13, None), "{}", ndb.backend);
    }
}

#[test]
fn outlier_cases_move_forward_with_dated_notes() {
    for (db, ndb) in databases().into_iter().zip(databases()) {
        let app = setup(&db);
        common::synthetic_national(&app, &db, &ndb);
        rt().block_on(async {
            let (cookie, csrf) = login(&app, "analyst").await;
            let q = "?from=2024-04-01&to=2025-03-31";
            let r = send(&app, get(&format!("/national/outliers{q}"), &cookie)).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            // The first outlier listed, with its KPI.
            let marker = "<input type=\"hidden\" name=\"programme\" value=\"";
            let i = r
                .body
                .find(marker)
                .unwrap_or_else(|| panic!("no outlier: {}", r.body))
                + marker.len();
            let code = r.body[i..].split('"').next().unwrap().to_string();
            let kpi = hidden(&r.body[i..], "kpi");
            let form = [
                ("csrf", csrf.as_str()),
                ("programme", code.as_str()),
                ("kpi", kpi.as_str()),
                ("from", "2024-04-01"),
                ("to", "2025-03-31"),
            ];
            let r = send(&app, post("/national/outliers", &cookie, &form)).await;
            assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
            let case_url = r.location.clone();
            let page = send(&app, get(&case_url, &cookie)).await;
            assert!(
                page.body.contains("Stage: <strong>open</strong>")
                    && page.body.contains("opened: al"),
                "{}",
                page.body
            );
            let id = hidden(&page.body, "id");
            let step = |status: &'static str, note: &'static str| {
                post(
                    "/national/outliers/case",
                    &cookie,
                    &[
                        ("csrf", csrf.as_str()),
                        ("id", id.as_str()),
                        ("status", status),
                        ("note", note),
                    ],
                )
            };
            let r = send(&app, step("contacted", "Emailed the programme lead")).await;
            assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
            let r = send(&app, step("open", "")).await;
            assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
            assert!(r.body.contains("cannot go back"), "{}", r.body);
            send(&app, step("response_received", "Staffing gap explained")).await;
            send(&app, step("closed", "Action plan agreed")).await;
            let page = send(&app, get(&case_url, &cookie)).await;
            assert!(
                page.body.contains("Stage: <strong>closed</strong>"),
                "{}",
                page.body
            );
            for text in [
                "Emailed the programme lead",
                "Staffing gap explained",
                "Action plan agreed",
            ] {
                assert!(page.body.contains(text), "the history keeps every note");
            }
            assert!(
                !page.body.contains("<button>Record</button>"),
                "a closed case takes no more steps"
            );
            // Opening it again changes nothing; the list shows its stage.
            let r = send(&app, post("/national/outliers", &cookie, &form)).await;
            assert_eq!(r.location, case_url);
            let r = send(&app, get(&format!("/national/outliers{q}"), &cookie)).await;
            assert!(r.body.contains(">closed</a>"), "{}", r.body);
            // Its links are the case's own address, the id URL-encoded as the redirect has it.
            assert!(
                r.body.contains(&format!("href=\"{case_url}\">closed</a>")),
                "{case_url}: {}",
                r.body
            );
        });
    }
}

#[test]
fn admins_record_agreements_that_govern_what_leaves() {
    for db in databases() {
        let app = setup(&db);
        rt().block_on(async {
            for user in ["staff", "lead"] {
                let (cookie, _) = login(&app, user).await;
                let r = send(&app, get("/admin/agreements", &cookie)).await;
                assert_eq!(r.status, StatusCode::NOT_FOUND, "{user}");
            }
            let (cookie, csrf) = login(&app, "admin").await;
            let r = send(&app, get("/", &cookie)).await;
            assert!(r.body.contains("href=\"/admin/agreements\""), "{}", r.body);
            let r = send(&app, get("/admin/agreements", &cookie)).await;
            assert_eq!(r.status, StatusCode::OK);
            assert!(r.body.contains("No agreement is on record"), "{}", r.body);
            // The choices are the dictionary's national fields: never a local one.
            assert!(r.body.contains("id=\"c-a1_hads_anxiety\""));
            assert!(r.body.contains("id=\"c-age_at_event\""));
            assert!(!r.body.contains("c-nhs_number") && !r.body.contains("c-date_of_birth"));

            let required = [
                "sex",
                "initiating_event",
                "treatment",
                "event_date",
                "referral_date",
                "status",
            ];
            let submit = |from: &'static str, scope: &'static str, fields: Vec<&'static str>| {
                let mut form = vec![
                    ("csrf", csrf.as_str()),
                    ("id", "ncpcr-2025"),
                    ("recipient", "National audit of cardiac rehabilitation"),
                    ("legal_basis", "CAG 99/CAG/0001"),
                    ("valid_from", from),
                    ("valid_to", "2025-12-31"),
                    ("opt_out", "exempt"),
                    ("scope", scope),
                ];
                form.extend(fields.into_iter().map(|f| ("fields", f)));
                post("/admin/agreements", &cookie, &form)
            };
            let r = send(&app, submit("31/02/2025", "all", vec![])).await;
            assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
            assert!(
                r.body.contains("href=\"#f-valid_from\"")
                    && r.body.contains("'31/02/2025' is not a real date"),
                "{}",
                r.body
            );
            assert!(
                r.body
                    .contains("value=\"National audit of cardiac rehabilitation\""),
                "typed values are kept"
            );
            let mut with_local = required.to_vec();
            with_local.push("nhs_number");
            let r = send(&app, submit("2025-01-01", "listed", with_local)).await;
            assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
            assert!(r.body.contains("'nhs_number' is tier L"), "{}", r.body);
            let r = send(&app, submit("2025-01-01", "listed", vec!["a1_bmi"])).await;
            assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
            assert!(
                r.body.contains("href=\"#f-fields\"") && r.body.contains("needs sex"),
                "{}",
                r.body
            );
            assert!(
                r.body
                    .contains("id=\"c-a1_bmi\" name=\"fields\" value=\"a1_bmi\" checked"),
                "ticked fields are kept"
            );
            assert!(open(&db).run(|s| s.agreements().unwrap()).is_empty());

            let mut approved = required.to_vec();
            approved.push("a1_hads_anxiety");
            let r = send(&app, submit("01/01/2025", "listed", approved)).await;
            assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
            let r = send(&app, get(&r.location, &cookie)).await;
            assert!(
                r.body.contains("Agreement ncpcr-2025 recorded."),
                "{}",
                r.body
            );
            assert!(
                r.body.contains(
                    "<td>ncpcr-2025</td><td>yes</td><td>1 January 2025 to 31 December 2025</td>"
                ),
                "{}",
                r.body
            );
            let log = open(&db).run(|s| s.access_log(5).unwrap());
            assert!(
                log.iter().any(|e| e.action == "agreement"
                    && e.username == "admin"
                    && e.detail.contains("fields: sex, initiating_event")
                    && e.detail.contains("Opt-out exempt")),
                "{log:?}"
            );

            // A lead's submission now carries the approved fields and nothing else; the
            // recorded exemption means no opt-out check result is asked for.
            app.set_submission_key(crest_privacy::Key::from_secret([5; 32]));
            app.set_signing_keys(common::setup_signing_keys());
            let (lead, lead_csrf) = login(&app, "lead").await;
            let b = "AGREEMENTBOUNDARY";
            let parts = [
                ("csrf", None, lead_csrf.as_str()),
                ("from", None, "2024-04-01"),
                ("to", None, "2025-03-31"),
            ];
            let r = send(
                &app,
                Request::post("/p/P001/submit")
                    .header(header::COOKIE, &lead)
                    .header(
                        header::CONTENT_TYPE,
                        format!("multipart/form-data; boundary={b}"),
                    )
                    .body(Body::from(multipart(b, &parts)))
                    .unwrap(),
            )
            .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            // The check names the agreement; building it downloads the file.
            assert!(r.body.contains("<dt>Fields</dt><dd>"), "{}", r.body);
            let token = hidden(&r.body, "token");
            let r = send(
                &app,
                post(
                    "/p/P001/submit/confirm",
                    &lead,
                    &[("csrf", &lead_csrf), ("token", &token)],
                ),
            )
            .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            let episode = r.body.lines().nth(1).unwrap();
            assert!(episode.contains("\"a1_hads_anxiety\":12"), "{episode}");
            for unapproved in [
                "a2_hads_anxiety",
                "delivery_mode",
                "age_at_event",
                "ethnicity",
            ] {
                assert!(
                    !episode.contains(unapproved),
                    "{unapproved} left: {episode}"
                );
            }
        });
    }
}

/// Text typed by one person is only ever text on another's page: a programme name and region,
/// and a patient's names, all holding markup, appear escaped on every programme page.
#[test]
fn hostile_text_is_shown_as_text_on_every_programme_page() {
    const EVIL: &str = "<script>alert(1)</script>";
    for db in databases() {
        let app = setup(&db);
        let s = open(&db);
        let evil_name = format!("One {EVIL}");
        let evil_region = format!("London {EVIL}");
        let p = crest_core::Programme::parse([
            "P001",
            &evil_name,
            "england",
            &evil_region,
            "nurse",
            "mi",
        ])
        .unwrap();
        s.run(|s| s.upsert_programmes(&[p]).unwrap());
        let f = scratch_dir("hostile").join("e.csv");
        std::fs::write(
            &f,
            format!(
                "programme_code,episode_id,nhs_number,family_name,given_name,date_of_birth,sex,initiating_event,treatment,event_date,referral_date,status\n\
                 P001,H1,9434765919,\"Smith {EVIL}\",\"Ann {EVIL}\",1960-06-15,female,mi_nstemi,pci,2024-05-01,2024-05-03,referred\n"
            ),
        )
        .unwrap();
        let sum = s.run(|s| {
            crest_ingest::import_file(
                s,
                &f,
                &crest_ingest::ImportOptions::new(common::today()),
                None,
                &mut |_| {},
            )
            .unwrap()
        });
        assert_eq!(sum.imported, 1, "{:?}", sum.errors);
        rt().block_on(async {
            let (cookie, _) = login(&app, "lead").await;
            for path in [
                "/p/P001/episodes",
                "/p/P001/episodes?q=Smith",
                "/p/P001/episodes/new",
                "/p/P001/episodes/H1",
                "/p/P001/episodes/H1/assessment1",
                "/p/P001/episodes/H1/report",
                "/p/P001/upload",
                "/p/P001/dashboard?from=2024-04-01&to=2025-03-31",
                "/p/P001/profile",
                "/p/P001/submit",
            ] {
                let r = send(&app, get(path, &cookie)).await;
                assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.body);
                assert!(!r.body.contains("<script>alert"), "{path}: {}", r.body);
            }
            // Where the text is shown, it is shown escaped.
            for (path, want) in [
                (
                    "/p/P001/episodes",
                    "Ann &lt;script&gt;alert(1)&lt;/script&gt; Smith &lt;script&gt;",
                ),
                (
                    "/p/P001/episodes/H1/report",
                    "Ann &lt;script&gt;alert(1)&lt;/script&gt; Smith",
                ),
                (
                    "/p/P001/episodes/H1",
                    "<strong>Ann &lt;script&gt;alert(1)&lt;/script&gt; Smith &lt;script&gt;alert(1)&lt;/script&gt;</strong>",
                ),
                (
                    "/p/P001/episodes/H1/edit",
                    "value=\"Smith &lt;script&gt;alert(1)&lt;/script&gt;\"",
                ),
                (
                    "/p/P001/dashboard",
                    "Dashboard – One &lt;script&gt;alert(1)&lt;/script&gt;",
                ),
            ] {
                let r = send(&app, get(path, &cookie)).await;
                assert!(
                    r.body.contains(want),
                    "{path} should show {want}: {}",
                    r.body
                );
            }
        });
    }
}

/// Programme names and regions in the national register, filter values in the address, case
/// notes and agreement text all come out as text on every national and admin page.
#[test]
fn hostile_text_is_shown_as_text_on_every_national_page() {
    const EVIL: &str = "<script>alert(1)</script>\"'&";
    for (db, ndb) in databases().into_iter().zip(databases()) {
        let app = setup(&db);
        common::synthetic_national(&app, &db, &ndb);
        let mut n = crest_store::NationalStore::open(&ndb.url).unwrap();
        let mut progs = n.programmes().unwrap();
        for p in &mut progs {
            p.name = format!("{} {EVIL}", p.name);
            p.region = format!("{} {EVIL}", p.region);
        }
        n.upsert_programmes(&progs).unwrap();
        drop(n);
        let code = progs[0].code.clone();
        let region = enc(&progs[0].region);
        let q = "from=2024-04-01&to=2025-03-31";
        rt().block_on(async {
            let (cookie, csrf) = login(&app, "analyst").await;
            // A case with a hostile note.
            let r = send(&app, get(&format!("/national/outliers?{q}"), &cookie)).await;
            let marker = "<input type=\"hidden\" name=\"programme\" value=\"";
            let i = r.body.find(marker).expect("an outlier") + marker.len();
            let outlier = r.body[i..].split('"').next().unwrap().to_string();
            let kpi = hidden(&r.body[i..], "kpi");
            let form = [
                ("csrf", csrf.as_str()),
                ("programme", outlier.as_str()),
                ("kpi", kpi.as_str()),
                ("from", "2024-04-01"),
                ("to", "2025-03-31"),
            ];
            let case_url = send(&app, post("/national/outliers", &cookie, &form))
                .await
                .location;
            let page = send(&app, get(&case_url, &cookie)).await;
            let id = hidden(&page.body, "id");
            let note = [
                ("csrf", csrf.as_str()),
                ("id", id.as_str()),
                ("status", "contacted"),
                ("note", EVIL),
            ];
            let r = send(&app, post("/national/outliers/case", &cookie, &note)).await;
            assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
            // The case's tables download; its hostile note is data there, not markup.
            let history = send(
                &app,
                get(
                    &format!(
                        "{}&table=history",
                        case_url
                            .replace("/national/outliers/case?", "/national/outliers/case.csv?")
                    ),
                    &cookie,
                ),
            )
            .await;
            assert_eq!(history.status, StatusCode::OK, "{}", history.body);
            assert!(
                history.body.starts_with("at,username,stage,note\n")
                    && history.body.contains("alert(1)"),
                "{}",
                history.body
            );
            let years = send(
                &app,
                get(
                    &format!(
                        "{}&table=years",
                        case_url
                            .replace("/national/outliers/case?", "/national/outliers/case.xlsx?")
                    ),
                    &cookie,
                ),
            )
            .await;
            assert!(years.bytes.starts_with(b"PK"));
            let evil = enc(EVIL);
            for path in [
                "/national".to_string(),
                format!("/national/dashboard?{q}"),
                format!("/national/dashboard?{q}&region={region}"),
                format!("/national/dashboard?{q}&region={evil}&nation={evil}&sort={evil}"),
                format!("/national/programme?code={code}&{q}"),
                format!("/national/inequalities?{q}"),
                format!("/national/inequalities?{q}&region={region}"),
                format!("/national/inequalities?{q}&region={evil}"),
                format!("/national/outliers?{q}"),
                case_url.clone(),
                format!("/national/quality?{q}"),
            ] {
                let r = send(&app, get(&path, &cookie)).await;
                assert!(
                    r.status == StatusCode::OK || r.status == StatusCode::BAD_REQUEST,
                    "{path}: {} {}",
                    r.status,
                    r.body
                );
                assert!(!r.body.contains("<script>alert"), "{path}: {}", r.body);
            }
            // Where the text is shown, it is shown escaped.
            for (path, want) in [
                (
                    format!("/national/dashboard?{q}"),
                    "&lt;script&gt;alert(1)&lt;/script&gt;&quot;'&amp;",
                ),
                (
                    format!("/national/programme?code={code}&{q}"),
                    "&lt;script&gt;alert(1)&lt;/script&gt;",
                ),
                (case_url.clone(), "&lt;script&gt;alert(1)&lt;/script&gt;"),
            ] {
                let r = send(&app, get(&path, &cookie)).await;
                assert!(
                    r.body.contains(want),
                    "{path} should show {want}: {}",
                    r.body
                );
            }

            // An admin's agreement with hostile text, refused and then shown in the form.
            let (cookie, csrf) = login(&app, "admin").await;
            let form = [
                ("csrf", csrf.as_str()),
                ("id", EVIL),
                ("recipient", EVIL),
                ("legal_basis", EVIL),
                ("valid_from", EVIL),
                ("valid_to", "2025-12-31"),
                ("opt_out", EVIL),
                ("scope", EVIL),
                ("fields", EVIL),
            ];
            let r = send(&app, post("/admin/agreements", &cookie, &form)).await;
            assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
            assert!(!r.body.contains("<script>alert"), "{}", r.body);
            assert!(r.body.contains("value=\"&lt;script&gt;"), "{}", r.body);
            let r = send(&app, get("/admin/agreements", &cookie)).await;
            assert!(!r.body.contains("<script>alert"), "{}", r.body);
        });
    }
}

/// Whether a page writes some date as a day, a month's name and a year.
fn writes_a_long_date(body: &str) -> bool {
    // Month names as crest writes them, from a date in each month.
    let months: Vec<String> = (1..=12)
        .map(|m| {
            let long = crest_core::Date::from_ymd(2000, m, 1).unwrap().long();
            long.split(' ').nth(1).unwrap().to_string()
        })
        .collect();
    months.iter().any(|m| {
        body.match_indices(&format!(" {m} ")).any(|(i, _)| {
            body[..i].chars().last().is_some_and(|c| c.is_ascii_digit())
                && body[i + m.len() + 2..]
                    .chars()
                    .take(4)
                    .all(|c| c.is_ascii_digit())
        })
    })
}

/// ux.md: every problem of a submitted form in one round, field rules and rules between fields
/// together, with the values to confirm; each error linked to its field, which is marked invalid.
#[test]
fn the_episode_form_reports_every_problem_in_one_round() {
    for db in databases() {
        let app = setup(&db);
        rt().block_on(async {
            let (cookie, csrf) = login(&app, "lead").await;
            let form = [
                ("csrf", csrf.as_str()),
                ("episode_id", "R1"),
                ("nhs_number", "9434765918"),
                ("date_of_birth-day", "15"),
                ("date_of_birth-month", "6"),
                ("date_of_birth-year", "1960"),
                ("sex", ""),
                ("initiating_event", "mi_nstemi"),
                ("treatment", "pci"),
                ("event_date", "01/02/2025"),
                ("referral_date-day", "3"),
                ("referral_date-month", "1"),
                ("referral_date-year", "2025"),
                ("status", "completed"),
                ("comorbidities", "diabetes"),
                ("comorbidities", "asthma"),
                ("assessment1_date", "20/01/2025"),
                ("a1_weight_kg", "230"),
            ];
            let r = send(&app, post("/p/P001/episodes/new", &cookie, &form)).await;
            assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
            let summary = &r.body[r.body.find("error-summary").unwrap()..];
            let summary = &summary[..summary.find("</ul>").unwrap()];
            // A wrong NHS number and an empty sex (field rules), referral before the event,
            // a completed episode with no start date (rules between fields), and an unusual
            // weight to confirm: all in the first answer.
            for field in [
                "nhs_number",
                "sex",
                "referral_date",
                "core_start_date",
                "a1_weight_kg",
            ] {
                assert!(
                    summary.contains(&format!("href=\"#f-{field}\"")),
                    "{field} missing from {summary}"
                );
            }
            assert!(r.body.contains("I have checked the values above"));
            assert!(
                r.body.contains("id=\"f-nhs_number\" name=\"nhs_number\" value=\"9434765918\" aria-describedby=\"h-nhs_number e-nhs_number\" aria-invalid=\"true\""),
                "{}",
                r.body
            );
            // What was typed and ticked is kept.
            assert!(r.body.contains("name=\"referral_date-year\" value=\"2025\""));
            assert!(r.body.contains("value=\"asthma\" checked"), "{}", r.body);
        });
    }
}

/// A valid synthetic NHS number (starting with 9) for the `i`th test patient.
fn test_nhs_number(i: u32) -> String {
    (0..)
        .map(|k| 900_000_000 + i * 97 + k)
        .find_map(|n| {
            let digits: Vec<u32> = n
                .to_string()
                .chars()
                .filter_map(|c| c.to_digit(10))
                .collect();
            crest_core::checks::nhs_check_digit(&digits).map(|d| format!("{n}{d}"))
        })
        .unwrap()
}

/// ux.md, Tables: the patient list pages (no silent cap), sorts, finds a full name and any
/// part of it, says what to do when empty, and downloads exactly the rows it lists.
#[test]
fn the_patient_list_pages_sorts_finds_full_names_and_downloads_what_it_shows() {
    for db in databases() {
        let app = setup(&db);
        let mut csv = String::from("programme_code,episode_id,nhs_number,family_name,given_name,date_of_birth,sex,initiating_event,treatment,event_date,referral_date,status\n");
        for i in 0..57u32 {
            let (family, given) = if i == 7 {
                ("Dummer", "Arun")
            } else {
                ("Patient", "Test")
            };
            csv.push_str(&format!(
                "P001,L{i:02},{},{family},{given},1960-06-15,female,mi_nstemi,pci,2024-05-01,2024-05-{:02},referred\n",
                test_nhs_number(i),
                1 + i % 28
            ));
        }
        let f = scratch_dir("list").join("e.csv");
        std::fs::write(&f, csv).unwrap();
        let s = open(&db);
        let sum = s.run(move |s| {
            crest_ingest::import_file(
                s,
                &f,
                &crest_ingest::ImportOptions::new(common::today()),
                None,
                &mut |_| {},
            )
            .unwrap()
        });
        assert_eq!(sum.rejected, 0, "{:?}", sum.errors);
        rt().block_on(async {
            let (cookie, csrf) = login(&app, "lead").await;
            let r = send(&app, get("/p/P001/episodes", &cookie)).await;
            // E1 from the setup, and 57 more: 58 in two pages.
            assert!(
                r.body.contains("Showing 1 to 50 of 58 episode(s)."),
                "{}",
                r.body
            );
            assert!(r.body.contains("Page 1 of 2"), "{}", r.body);
            let r = send(
                &app,
                post(
                    "/p/P001/episodes",
                    &cookie,
                    &[("csrf", &csrf), ("page", "2"), ("sort", "episode")],
                ),
            )
            .await;
            assert!(
                r.body.contains("Showing 51 to 58 of 58 episode(s)."),
                "{}",
                r.body
            );
            // Sorted by episode ID, the last page ends with L56.
            assert!(
                r.body.contains(">L56</a>") && !r.body.contains(">L00</a>"),
                "{}",
                r.body
            );
            // A full name, either way round, and one word of it.
            for q in ["arun dummer", "Dummer, Arun", "dumm"] {
                let r = send(
                    &app,
                    post("/p/P001/episodes", &cookie, &[("csrf", &csrf), ("q", q)]),
                )
                .await;
                assert!(
                    r.body.contains("Showing 1 to 1 of 1 episode(s).")
                        && r.body.contains(">L07</a>"),
                    "{q}: {}",
                    r.body
                );
            }
            let r = send(
                &app,
                post(
                    "/p/P001/episodes",
                    &cookie,
                    &[("csrf", &csrf), ("q", "arun smith")],
                ),
            )
            .await;
            assert!(
                r.body.contains("No episodes match this search"),
                "{}",
                r.body
            );
            // The download holds what the list shows: the one matching episode.
            let r = send(
                &app,
                post(
                    "/p/P001/export.csv",
                    &cookie,
                    &[("csrf", &csrf), ("q", "arun dummer")],
                ),
            )
            .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            assert_eq!(r.body.lines().count(), 2, "{}", r.body);
            assert!(r.body.contains("L07,"), "{}", r.body);
            let r = send(
                &app,
                post("/p/P001/export.csv", &cookie, &[("q", "arun dummer")]),
            )
            .await;
            assert_eq!(
                r.status,
                StatusCode::BAD_REQUEST,
                "a download needs the form's token"
            );
        });
    }
}

/// Signs `user` in with `password`: the session cookie and a CSRF token, or `None` if refused.
async fn sign_in_with(
    app: &Arc<crest_web::App>,
    user: &str,
    password: &str,
) -> Option<(String, String)> {
    let page = send(app, get("/login", "")).await;
    let pre = cookie_value(&page.cookies, "crest_login").unwrap();
    let csrf = hidden(&page.body, "csrf");
    let r = try_sign_in(app, &pre, &csrf, user, password).await;
    if r.status != StatusCode::SEE_OTHER {
        return None;
    }
    let cookie = format!(
        "crest_session={}",
        cookie_value(&r.cookies, "crest_session")?
    );
    let form = send(app, get("/account/password", &cookie)).await;
    Some((cookie, hidden(&form.body, "csrf")))
}

/// The text of the `<strong><code>` that shows a new password once.
fn shown_password(body: &str) -> String {
    let start = body.find("<strong><code>").expect("a password is shown") + "<strong><code>".len();
    body[start..body[start..].find('<').unwrap() + start].to_string()
}

/// Accounts on the web: an admin adds a user (every problem of the form in one round), the
/// user signs in and changes their password; the admin disables, enables and resets them; only
/// admins reach the users page; every change is in the access log.
#[test]
fn admins_manage_accounts_on_the_web_and_everyone_changes_their_password() {
    for db in databases() {
        let app = setup(&db);
        rt().block_on(async {
            let (lead, _) = login(&app, "lead").await;
            assert_eq!(
                send(&app, get("/admin/users", &lead)).await.status,
                StatusCode::NOT_FOUND
            );
            let (admin, csrf) = login(&app, "admin").await;
            let r = send(&app, get("/admin/users", &admin)).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            // Each account links to its own page; the list holds no forms per user.
            assert!(
                r.body.contains(
                    "<th scope=\"row\"><a href=\"/admin/users/change?username=lead\">lead</a></th><td>Programme lead</td>"
                ),
                "{}",
                r.body
            );
            assert!(!r.body.contains("value=\"remove_code\""));
            let page = send(&app, get("/admin/users/change?username=lead", &admin)).await;
            assert_eq!(page.status, StatusCode::OK, "{}", page.body);
            // Programmes come grouped by region, only the lead's own region unfolded.
            assert!(
                words(&page.body).contains("London (1 programme, 1 ticked)")
                    && page.body.contains("<details class=\"region\" open>")
                    && page.body.contains("<details class=\"region\">"),
                "{}",
                page.body
            );
            assert_eq!(
                send(&app, get("/admin/users/change?username=nobody", &admin))
                    .await
                    .status,
                StatusCode::NOT_FOUND
            );
            // A name with a space and no role: both problems at once.
            let r = send(
                &app,
                post(
                    "/admin/users",
                    &admin,
                    &[("csrf", &csrf), ("username", "new nurse")],
                ),
            )
            .await;
            assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
            assert!(
                r.body.contains("href=\"#f-username\"") && r.body.contains("href=\"#f-role\""),
                "{}",
                r.body
            );
            assert!(r.body.contains("<title>Error: Users"), "{}", r.body);
            // Programme staff with no programme is refused in words, not with a flag.
            let r = send(
                &app,
                post(
                    "/admin/users",
                    &admin,
                    &[
                        ("csrf", &csrf),
                        ("username", "nurse2"),
                        ("role", "programme_staff"),
                    ],
                ),
            )
            .await;
            assert!(
                r.body.contains("needs at least one programme") && !r.body.contains("--programme"),
                "{}",
                r.body
            );
            let r = send(
                &app,
                post(
                    "/admin/users",
                    &admin,
                    &[
                        ("csrf", &csrf),
                        ("username", "nurse2"),
                        ("role", "programme_staff"),
                        ("programmes", "P001"),
                    ],
                ),
            )
            .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            let first = shown_password(&r.body);
            assert!(first.len() >= 10, "{first}");
            // The new user signs in, sees P001, and changes the password.
            let (nurse, ncsrf) = sign_in_with(&app, "nurse2", &first)
                .await
                .expect("the new user signs in");
            assert_eq!(
                send(&app, get("/p/P001/episodes", &nurse)).await.status,
                StatusCode::OK
            );
            let r = send(
                &app,
                post(
                    "/account/password",
                    &nurse,
                    &[
                        ("csrf", &ncsrf),
                        ("current", "wrong"),
                        ("new", "short"),
                        ("again", "different"),
                    ],
                ),
            )
            .await;
            assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
            for field in ["current", "new", "again"] {
                assert!(
                    r.body.contains(&format!("href=\"#f-{field}\"")),
                    "{field}: {}",
                    r.body
                );
            }
            let new = "a much longer new password";
            let r = send(
                &app,
                post(
                    "/account/password",
                    &nurse,
                    &[
                        ("csrf", &ncsrf),
                        ("current", &first),
                        ("new", new),
                        ("again", new),
                    ],
                ),
            )
            .await;
            assert_eq!(
                (r.status, r.location.as_str()),
                (StatusCode::SEE_OTHER, "/login?changed=1")
            );
            assert_eq!(
                send(&app, get("/p/P001/episodes", &nurse)).await.status,
                StatusCode::SEE_OTHER,
                "the old session ends"
            );
            assert!(sign_in_with(&app, "nurse2", &first).await.is_none());
            let (nurse, _) = sign_in_with(&app, "nurse2", new)
                .await
                .expect("the new password works");
            // Disabled: signed out at once and refused; enabled: back.
            let change = |action: &'static str| {
                post(
                    "/admin/users/change",
                    &admin,
                    &[("csrf", &csrf), ("username", "nurse2"), ("action", action)],
                )
            };
            let r = send(&app, change("disable")).await;
            assert!(r.body.contains("is disabled and signed out"), "{}", r.body);
            assert_eq!(
                send(&app, get("/p/P001/episodes", &nurse)).await.status,
                StatusCode::SEE_OTHER
            );
            assert!(sign_in_with(&app, "nurse2", new).await.is_none());
            send(&app, change("enable")).await;
            assert!(sign_in_with(&app, "nurse2", new).await.is_some());
            let r = send(&app, change("reset")).await;
            let reset = shown_password(&r.body);
            assert!(sign_in_with(&app, "nurse2", new).await.is_none());
            assert!(sign_in_with(&app, "nurse2", &reset).await.is_some());
            // Role and programmes: P002 instead of P001.
            let r = send(
                &app,
                post(
                    "/admin/users/change",
                    &admin,
                    &[
                        ("csrf", &csrf),
                        ("username", "nurse2"),
                        ("action", "save"),
                        ("role", "programme_staff"),
                        ("programmes", "P002"),
                    ],
                ),
            )
            .await;
            assert!(
                r.body.contains("role, programmes and regions are saved"),
                "{}",
                r.body
            );
            let (nurse, _) = sign_in_with(&app, "nurse2", &reset).await.unwrap();
            assert_eq!(
                send(&app, get("/p/P001/episodes", &nurse)).await.status,
                StatusCode::NOT_FOUND
            );
            assert_eq!(
                send(&app, get("/p/P002/episodes", &nurse)).await.status,
                StatusCode::OK
            );
            // An admin cannot lock themselves out.
            let r = send(
                &app,
                post(
                    "/admin/users/change",
                    &admin,
                    &[
                        ("csrf", &csrf),
                        ("username", "admin"),
                        ("action", "disable"),
                    ],
                ),
            )
            .await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST);
            let log = open(&db).run(|s| s.access_log(200).unwrap());
            for action in [
                "add user",
                "change password",
                "disable user",
                "enable user",
                "reset user",
                "save user",
            ] {
                assert!(
                    log.iter()
                        .any(|e| e.action == action && e.target == "nurse2"),
                    "{action} not logged"
                );
            }
            assert!(
                !log.iter()
                    .any(|e| e.detail.contains(new) || e.detail.contains(&reset)),
                "passwords never logged"
            );
        });
    }
}

/// The progress report downloads as a one-page A4 PDF printed by Chromium from the same page:
/// the patient's words and charts, without the site's navigation.
#[test]
fn the_progress_report_is_a_one_page_pdf() {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    use std::process::Command;
    if !std::path::Path::new(&chromium).exists()
        || Command::new("pdftotext").arg("-v").output().is_err()
    {
        crest_store::testing::skip(
            "the progress report PDF needs Chromium and poppler-utils",
            "CREST_REQUIRE_BROWSER",
        );
        return;
    }
    for db in databases() {
        let app = setup(&db);
        // The fullest report: every measure at both assessments still fits one page.
        let f = scratch_dir("full-report").join("e.csv");
        let measures = [
            ("weight_kg", "80", "78"),
            ("height_cm", "175", "175"),
            ("waist_cm", "95", "92"),
            ("systolic_bp", "140", "130"),
            ("diastolic_bp", "85", "80"),
            ("total_cholesterol", "5.1", "4.2"),
            ("smoking", "current", "ex"),
            ("activity_minutes", "60", "150"),
            ("iswt_m", "300", "420"),
            ("six_mwt_m", "350", "420"),
            ("hads_anxiety", "12", "6"),
            ("hads_depression", "9", "5"),
            ("eq5d_vas", "60", "80"),
        ];
        let mut head = "programme_code,episode_id,nhs_number,family_name,given_name,date_of_birth,sex,initiating_event,treatment,event_date,referral_date,status,assessment1_date,core_start_date,core_end_date,assessment2_date,delivery_mode".to_string();
        let mut row = "P001,E1,9434765919,Testperson,Ann,1960-06-15,female,mi_nstemi,pci,2024-04-01,2024-04-03,completed,2024-04-20,2024-05-01,2024-07-01,2024-07-05,group_supervised".to_string();
        for (m, a1, a2) in measures {
            head.push_str(&format!(",a1_{m},a2_{m}"));
            row.push_str(&format!(",{a1},{a2}"));
        }
        std::fs::write(&f, format!("{head}\n{row}\n")).unwrap();
        let sum = open(&db).run(move |s| {
            crest_ingest::import_file(
                s,
                &f,
                &crest_ingest::ImportOptions::new(common::today()),
                None,
                &mut |_| {},
            )
            .unwrap()
        });
        assert_eq!((sum.updated, sum.rejected), (1, 0), "{:?}", sum.errors);
        rt().block_on(async {
            let (cookie, _) = login(&app, "lead").await;
            let page = send(&app, get("/p/P001/episodes/E1/report", &cookie)).await;
            assert!(
                page.body.contains("Six-minute walk test (metres)")
                    && page.body.contains("Ex-smoker"),
                "{}",
                page.body
            );
            assert!(
                page.body
                    .contains("<svg role=\"img\" aria-labelledby=\"c-hads_anxiety-t"),
                "{}",
                page.body
            );
            assert!(page
                .body
                .contains("href=\"/p/P001/episodes/E1/report.pdf\""));
            let r = send(&app, get("/p/P001/episodes/E1/report.pdf", &cookie)).await;
            assert_eq!(r.status, StatusCode::OK);
            let pdf = r.bytes;
            assert!(pdf.starts_with(b"%PDF"), "a PDF");
            let pages = pdf
                .windows(12)
                .filter(|w| w.starts_with(b"/Type /Page") && !w[11].is_ascii_alphabetic())
                .count();
            assert_eq!(pages, 1, "one A4 page");
            let file = scratch_dir("report-pdf").join("r.pdf");
            std::fs::write(&file, &pdf).unwrap();
            let out = Command::new("pdftotext")
                .arg(&file)
                .arg("-")
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                text.contains("Cardiac rehabilitation progress report")
                    && text.contains("HADS anxiety score"),
                "{text}"
            );
            assert!(!text.contains("Sign out"), "no navigation on paper: {text}");
            // Another programme's staff cannot print it.
            let (other, _) = login(&app, "staff2").await;
            assert_eq!(
                send(&app, get("/p/P001/episodes/E1/report.pdf", &other))
                    .await
                    .status,
                StatusCode::NOT_FOUND
            );
        });
    }
}

/// The lead's dashboard beside the national picture: each KPI nationally (disclosure-controlled,
/// checked here against the national store's own episodes), the programme ringed and named on
/// the four funnel plots, the trend, and why local and national figures can differ.
#[test]
fn the_leads_dashboard_shows_the_national_picture_and_its_funnel_position() {
    for (db, ndb) in databases().into_iter().zip(databases()) {
        let app = setup(&db);
        common::synthetic_national(&app, &db, &ndb);
        // Worked out here from the national store's episodes: the pooled share of started
        // episodes with assessment 1, as published (counts rounded to 5).
        let mut n = crest_store::NationalStore::open(&ndb.url).unwrap();
        let progs = n.programmes().unwrap();
        let (from, to) = (
            crest_core::Date::from_ymd(2024, 4, 1).unwrap(),
            crest_core::Date::from_ymd(2025, 3, 31).unwrap(),
        );
        let eps = n.kpi_episodes(from, to, &progs).unwrap();
        let started = eps.iter().filter(|e| e.core_start.is_some()).count() as u64;
        let with_a1 = eps
            .iter()
            .filter(|e| e.core_start.is_some() && e.assessment1.is_some())
            .count() as u64;
        let want = crest_stats::disclosure::percentage(with_a1, started).to_string();
        drop(n);
        rt().block_on(async {
            let (cookie, _) = login(&app, "lead").await;
            let r = send(
                &app,
                get("/p/P001/dashboard?from=2024-04-01&to=2025-03-31", &cookie),
            )
            .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            assert!(
                r.body.contains("Against the national picture"),
                "{}",
                r.body
            );
            let section = &r.body[r.body.find("Against the national picture").unwrap()..];
            let row = &section[section
                .find("<th scope=\"row\">Assessment 1 recorded</th><td>")
                .expect("the national KPI table")..];
            let row = &row[..row.find("</tr>").unwrap()];
            assert!(
                row.contains(&format!("<td>{want}</td>")),
                "national {want}%: {row}"
            );
            // One funnel at a time, uptake first, with a chooser for the others.
            assert!(r.body.contains("<title id=\"nf-uptake-t\">Funnel plot: "));
            assert!(!r.body.contains("<title id=\"nf-assessment1-t\">"));
            assert!(r.body.contains("Funnel plot of"), "{}", r.body);
            assert!(
                r.body.contains("P001 (you)") && r.body.contains("P001 (the larger ringed dot)"),
                "{}",
                r.body
            );
            assert!(r.body.contains("National Data Opt-out, are never sent"));
            assert!(r.body.contains("The last three years"));
            let chosen = send(
                &app,
                get(
                    "/p/P001/dashboard?from=2024-04-01&to=2025-03-31&funnel=assessment1",
                    &cookie,
                ),
            )
            .await;
            assert!(
                chosen
                    .body
                    .contains("<title id=\"nf-assessment1-t\">Funnel plot: ")
                    && !chosen.body.contains("<title id=\"nf-uptake-t\">"),
                "{}",
                chosen.body
            );
            let unknown = send(&app, get("/p/P001/dashboard?funnel=nonsense", &cookie)).await;
            assert_eq!(unknown.status, StatusCode::BAD_REQUEST, "{}", unknown.body);
            // Other programmes' figures come on the published grid only: a period across two
            // quarters shows the national picture for the financial year it ends in (and says
            // so), so overlapping periods cannot be subtracted; one inside a quarter shows that
            // quarter. The lead's own figures keep the period asked for.
            for (asked, shown) in [
                (
                    "from=2024-05-01&to=2024-08-31",
                    "National figures for <strong>1 April 2024 to 31 March 2025</strong>",
                ),
                (
                    "from=2024-07-01&to=2024-08-31",
                    "National figures for <strong>1 July 2024 to 30 September 2024</strong>",
                ),
            ] {
                let r = send(&app, get(&format!("/p/P001/dashboard?{asked}"), &cookie)).await;
                assert_eq!(r.status, StatusCode::OK, "{}", r.body);
                assert!(r.body.contains(shown), "{asked}: {}", r.body);
            }
            // Another programme's figures are never shown exactly: no count of 1 to 7 in a
            // funnel caption.
            assert!(
                !r.body.contains("= 1/") && !r.body.contains("/3 ="),
                "{}",
                r.body
            );
        });
    }
}

/// A new episode step by step along the pathway: each step reports its own problems at once,
/// the answers travel with the form, the summary lists every problem of the whole episode at
/// once (rules between fields too) with the values to confirm, and saving stores it.
#[test]
fn a_new_episode_is_entered_step_by_step_and_checked_before_saving() {
    for db in databases() {
        let app = setup(&db);
        rt().block_on(async {
            let (cookie, csrf) = login(&app, "lead").await;
            let r = send(&app, get("/p/P001/episodes/new", &cookie)).await;
            assert!(
                r.body.contains("New episode: Patient") && r.body.contains("Step 1 of 7"),
                "{}",
                r.body
            );
            assert!(
                !r.body.contains("name=\"referral_date-day\""),
                "one step at a time"
            );
            // The form proposes the programme's next free episode id, and promises nothing
            // it would refuse.
            let proposed = r
                .body
                .split("name=\"episode_id\" value=\"")
                .nth(1)
                .and_then(|v| v.split('"').next())
                .unwrap_or_else(|| panic!("no proposed id: {}", r.body))
                .to_string();
            assert!(proposed.starts_with("P001-"), "{proposed}");
            assert!(open(&db).run(|s| s.episode("P001", &proposed).unwrap().is_none()));
            assert!(!r.body.contains("changes that episode"), "{}", r.body);
            // Step 1 with two problems: both at once.
            let mut answers: Vec<(&str, &str)> = vec![
                ("csrf", &csrf),
                ("episode_id", "S1"),
                ("nhs_number", "9434765918"),
                ("date_of_birth-day", "15"),
                ("date_of_birth-month", "6"),
                ("date_of_birth-year", "1960"),
            ];
            let step = |answers: &Vec<(&str, &str)>, n: &str, go: &str| {
                let mut form = answers.clone();
                form.push(("step", n));
                form.push(("go", go));
                post(
                    "/p/P001/episodes/new",
                    &cookie,
                    &form.iter().map(|(a, b)| (*a, *b)).collect::<Vec<_>>(),
                )
            };
            let r = send(&app, step(&answers, "1", "next")).await;
            assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
            assert!(
                r.body.contains("href=\"#f-nhs_number\"") && r.body.contains("href=\"#f-sex\""),
                "{}",
                r.body
            );
            answers[2] = ("nhs_number", "943 476 5862");
            answers.push(("sex", "female"));
            let r = send(&app, step(&answers, "1", "next")).await;
            assert!(
                r.body.contains("New episode: Event and treatment"),
                "{}",
                r.body
            );
            // The answers so far travel with the form.
            assert!(
                r.body.contains("name=\"episode_id\" value=\"S1\""),
                "{}",
                r.body
            );
            answers.extend([
                ("initiating_event", "mi_nstemi"),
                ("treatment", "pci"),
                ("event_date", "01/02/2025"),
                // Referral before the event, and a completed episode with no dates: rules
                // between fields, for the summary.
                ("referral_date", "03/01/2025"),
                ("status", "completed"),
                ("assessment1_date", "20/01/2025"),
                ("a1_weight_kg", "230"),
            ]);
            // The steps follow the patient's pathway: referral, assessment 1, core
            // rehabilitation, assessment 2, outcome.
            for (n, next) in [
                ("2", "Referral"),
                ("3", "Assessment 1"),
                ("4", "Core rehabilitation"),
                ("5", "Assessment 2"),
                ("6", "Outcome"),
            ] {
                let r = send(&app, step(&answers, n, "next")).await;
                assert_eq!(r.status, StatusCode::OK, "step {n}: {}", r.body);
                assert!(
                    r.body.contains(&format!("New episode: {next}")),
                    "after step {n}, {next}: {}",
                    r.body
                );
            }
            let r = send(&app, step(&answers, "7", "next")).await;
            assert!(
                r.body.contains("New episode: check your answers"),
                "{}",
                r.body
            );
            assert!(
                r.body
                    .contains("<title>Error: New episode: check your answers"),
                "{}",
                r.body
            );
            for field in [
                "referral_date",
                "core_start_date",
                "core_end_date",
                "a1_weight_kg",
            ] {
                assert!(
                    r.body.contains(&format!("href=\"#f-{field}\"")),
                    "{field}: {}",
                    r.body
                );
            }
            assert!(
                r.body
                    .contains("<dd id=\"f-initiating_event\">Heart attack (NSTEMI)"),
                "{}",
                r.body
            );
            assert!(r.body.contains("I have checked the values above"));
            // Saving is refused while the problems stand; nothing is stored.
            let r = send(&app, step(&answers, "summary", "save")).await;
            assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
            assert!(open(&db).run(|s| s.episode("P001", "S1").unwrap().is_none()));
            // "Change" goes back to the step, with its answers.
            let r = send(&app, step(&answers, "summary", "to:3")).await;
            assert!(
                r.body.contains("New episode: Referral")
                    && r.body
                        .contains("name=\"referral_date-year\" value=\"2025\""),
                "{}",
                r.body
            );
            // Fixed: referral after the event, still waiting; the unusual weight confirmed.
            for (k, v) in answers.iter_mut() {
                match *k {
                    "referral_date" => *v = "03/02/2025",
                    "status" => *v = "referred",
                    _ => {}
                }
            }
            let r = send(&app, step(&answers, "summary", "save")).await;
            assert_eq!(
                r.status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "the weight is confirmed first"
            );
            answers.push(("confirm_warnings", "yes"));
            let r = send(&app, step(&answers, "summary", "save")).await;
            assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
            let stored = open(&db).run(|s| s.episode("P001", "S1").unwrap().unwrap());
            assert_eq!(stored.num(crest_core::Col::A1WeightKg), Some(230.0));
            // The whole episode on one page is still there for those who prefer it.
            let r = send(&app, get("/p/P001/episodes/new?whole=1", &cookie)).await;
            assert!(r.body.contains("name=\"a2_eq5d_vas\""), "{}", r.body);
        });
    }
}

/// ux.md and issue 12: an upload with bad rows reports every problem of every row at once; "the
/// rows to fix" is that file's rejected rows with a problems column; fixed, the same file
/// uploads again with nothing rejected.
#[test]
fn rows_to_fix_download_fix_and_upload_again() {
    for db in databases() {
        let app = setup(&db);
        rt().block_on(async {
            let (cookie, csrf) = login(&app, "lead").await;
            let upload = |name: &str, text: &str| {
                let b = "FIXBOUNDARY";
                let body = format!(
                    "--{b}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\r\n{text}\r\n--{b}--\r\n"
                );
                Request::post("/p/P001/upload")
                    .header(header::COOKIE, &cookie)
                    .header(header::CONTENT_TYPE, format!("multipart/form-data; boundary={b}"))
                    .body(Body::from(body))
                    .unwrap()
            };
            // Row 3 has a bad code and a referral before its event: both reported at once.
            let csv = "programme_code,episode_id,nhs_number,date_of_birth,sex,initiating_event,treatment,event_date,referral_date,status,my_notes\n\
                       P001,F1,9434765854,1950-01-01,male,mi_stemi,pci,2025-01-10,2025-01-12,referred,ok\n\
                       P001,F2,9434765870,1950-01-01,x,mi_stemi,pci,2025-01-10,2025-01-02,referred,call back\n";
            let r = send(&app, upload("clinic.csv", csv)).await;
            assert!(r.body.contains("<strong>1 rejected</strong>"), "{}", r.body);
            assert!(r.body.contains("<td>3</td><td>Sex (<code>sex</code>)</td>") && r.body.contains("<td>3</td><td>Date of referral to cardiac rehabilitation (<code>referral_date</code>)</td>"), "one round: {}", r.body);
            let token = hidden(&r.body, "token");
            let fix = send(&app, get(&format!("/p/P001/upload/{token}/rows-to-fix"), &cookie)).await;
            assert_eq!(fix.status, StatusCode::OK);
            let mut lines = fix.body.lines();
            assert_eq!(lines.next().unwrap(), "programme_code,episode_id,nhs_number,date_of_birth,sex,initiating_event,treatment,event_date,referral_date,status,my_notes,problems");
            let row = lines.next().unwrap();
            assert!(row.starts_with("P001,F2,9434765870,1950-01-01,x,mi_stemi,pci,2025-01-10,2025-01-02,referred,call back,"), "{row}");
            assert!(lines.next().is_none(), "only the row to fix");
            // Fixed in that same file and uploaded again: nothing rejected, and stored.
            let fixed = fix.body.replace(",x,", ",male,").replace("2025-01-02", "2025-01-12");
            let r = send(&app, upload("clinic-rows-to-fix.csv", &fixed)).await;
            assert!(r.body.contains("<strong>0 rejected</strong>"), "{}", r.body);
            assert!(!r.body.contains("problems"), "the problems column is not read: {}", r.body);
            let token = hidden(&r.body, "token");
            let r = send(&app, post("/p/P001/upload/confirm", &cookie, &[("csrf", &csrf), ("token", &token), ("name", "fixed.csv")])).await;
            assert!(r.body.contains("Stored: 1 new"), "{}", r.body);
            assert!(open(&db).run(|s| s.episode("P001", "F2").unwrap().is_some()));
        });
    }
}

/// The hidden `secret` of the security-code page, and a code for it now (RFC 6238, tested
/// against the RFC's vectors in crest-store).
fn code_now(body: &str) -> (String, String) {
    let secret = hidden(body, "secret");
    let bytes = crest_store::totp::from_base32(&secret).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    (secret, crest_store::totp::code_at(&bytes, now, 6))
}

/// The code for `secret` in the next 30-second step, after waiting for it (each step's code
/// is accepted once per user).
async fn next_code(secret: &str) -> String {
    let bytes = crest_store::totp::from_base32(secret).unwrap();
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    let step = now() / crest_store::totp::STEP;
    while now() / crest_store::totp::STEP == step {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    crest_store::totp::code_at(&bytes, now(), 6)
}

/// Optional security codes: a user turns them on with a code from their app; then signing in
/// needs it; an admin can require them for a role (whose users reach nothing until they set
/// one up) and remove a user's lost one; every step is logged.
#[test]
fn security_codes_are_a_second_step_at_sign_in() {
    for db in databases() {
        let app = setup(&db);
        rt().block_on(async {
            let (staff, csrf) = login(&app, "staff").await;
            let page = send(&app, get("/account/security-code", &staff)).await;
            assert!(page.body.contains("authenticator"), "{}", page.body);
            // A QR code of the set-up address beside the key, drawn in the page.
            assert!(
                page.body.contains("<figure class=\"qr\"><svg role=\"img\"")
                    && page.body.contains("Or scan this with the app."),
                "{}",
                page.body
            );
            let (secret, code) = code_now(&page.body);
            // Reloading shows the same key until it is confirmed.
            let again = send(&app, get("/account/security-code", &staff)).await;
            assert_eq!(code_now(&again.body).0, secret);
            let wrong = if code == "000000" { "111111" } else { "000000" };
            let r = send(
                &app,
                post(
                    "/account/security-code",
                    &staff,
                    &[
                        ("csrf", &csrf),
                        ("action", "enable"),
                        ("secret", &secret),
                        ("code", wrong),
                    ],
                ),
            )
            .await;
            assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
            let r = send(
                &app,
                post(
                    "/account/security-code",
                    &staff,
                    &[
                        ("csrf", &csrf),
                        ("action", "enable"),
                        ("secret", &secret),
                        ("code", &code),
                    ],
                ),
            )
            .await;
            assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
            // Signing in now needs the code.
            let page = send(&app, get("/login", "")).await;
            let pre = cookie_value(&page.cookies, "crest_login").unwrap();
            let lcsrf = hidden(&page.body, "csrf");
            let r = try_sign_in(&app, &pre, &lcsrf, "staff", PASSWORD).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "no code, no entry");
            let sign_in_with = |code: String| {
                let (pre, lcsrf) = (pre.clone(), lcsrf.clone());
                let app = app.clone();
                async move {
                    send(
                        &app,
                        post(
                            "/login",
                            &format!("crest_login={pre}"),
                            &[
                                ("username", "staff"),
                                ("password", PASSWORD),
                                ("csrf", &lcsrf),
                                ("code", &code),
                            ],
                        ),
                    )
                    .await
                }
            };
            // The code just used to turn codes on is spent: sent again, it is refused.
            let r = sign_in_with(code.clone()).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "a replayed code");
            let code = next_code(&secret).await;
            // A session holder cannot swap in a code of their own without the current one.
            let theirs = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs();
            let their_code = crest_store::totp::code_at(
                &crest_store::totp::from_base32(theirs).unwrap(),
                now,
                6,
            );
            let r = send(
                &app,
                post(
                    "/account/security-code",
                    &staff,
                    &[
                        ("csrf", &csrf),
                        ("action", "enable"),
                        ("secret", theirs),
                        ("code", &their_code),
                    ],
                ),
            )
            .await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
            assert!(r.body.contains("turn it off first"), "{}", r.body);
            let r = sign_in_with(code.clone()).await;
            assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
            // The password was given twice with a wrong (or no) code meanwhile: they are told.
            assert_eq!(r.location, "/account/password?wrong_codes=2");
            let signed_in = format!(
                "crest_session={}",
                cookie_value(&r.cookies, "crest_session").unwrap()
            );
            let page = send(&app, get(&r.location, &signed_in)).await;
            assert!(
                page.body
                    .contains("given 2 times with a wrong security code"),
                "{}",
                page.body
            );
            let r = sign_in_with(code.clone()).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "each step's code once");
            // Nine wrong codes in a row so far; one more and the password stops working, even
            // with a right code, until an administrator resets it.
            open(&db).run(|s| {
                s.put_setting("security_code_wrong:staff", "9").unwrap();
            });
            let r = sign_in_with("000000".to_string()).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED);
            let code = next_code(&secret).await;
            let r = sign_in_with(code).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "locked until reset");
            assert!(open(&db).run(|s| s.user("staff").unwrap().unwrap().password_hash.is_empty()));
            open(&db).run(|s| {
                let mut u = s.user("staff").unwrap().unwrap();
                u.password_hash = crest_store::users::hash_password(PASSWORD).unwrap();
                s.put_user(&u).unwrap();
                crest_store::users::take_wrong_codes(s, "staff").unwrap();
            });
            // An admin requires codes of programme leads: the lead reaches nothing else.
            let (admin, acsrf) = login(&app, "admin").await;
            let r = send(
                &app,
                post(
                    "/admin/users/security",
                    &admin,
                    &[("csrf", &acsrf), ("roles", "programme_lead")],
                ),
            )
            .await;
            assert!(
                r.body.contains("Saved: who must use a security code"),
                "{}",
                r.body
            );
            let page = send(&app, get("/login", "")).await;
            let pre = cookie_value(&page.cookies, "crest_login").unwrap();
            let r = try_sign_in(&app, &pre, &hidden(&page.body, "csrf"), "lead", PASSWORD).await;
            let lead = format!(
                "crest_session={}",
                cookie_value(&r.cookies, "crest_session").unwrap()
            );
            let r = send(&app, get("/p/P001/episodes", &lead)).await;
            assert_eq!(
                (r.status, r.location.as_str()),
                (StatusCode::SEE_OTHER, "/account/security-code")
            );
            let page = send(&app, get("/account/security-code", &lead)).await;
            assert!(
                page.body.contains("Your role needs a security code"),
                "{}",
                page.body
            );
            // The admin removes the staff member's lost code: the password alone works again.
            let r = send(
                &app,
                post(
                    "/admin/users/change",
                    &admin,
                    &[
                        ("csrf", &acsrf),
                        ("username", "staff"),
                        ("action", "remove_code"),
                    ],
                ),
            )
            .await;
            assert!(r.body.contains("security code is removed"), "{}", r.body);
            let page = send(&app, get("/login", "")).await;
            let pre = cookie_value(&page.cookies, "crest_login").unwrap();
            let r = try_sign_in(&app, &pre, &hidden(&page.body, "csrf"), "staff", PASSWORD).await;
            assert_eq!(r.status, StatusCode::SEE_OTHER);
            let log = open(&db).run(|s| s.access_log(100).unwrap());
            for action in [
                "security code enable",
                "require security codes",
                "remove_code user",
            ] {
                assert!(
                    log.iter().any(|e| e.action == action),
                    "{action} not logged"
                );
            }
            assert!(
                !log.iter().any(|e| e.detail.contains(&secret)),
                "the secret is never logged"
            );
        });
    }
}

/// Issue 12: a lead sends the checked submission to the national audit's API (a national
/// server started here) and sees its receipt; only then are the episodes recorded as sent. A
/// refused send records nothing and says why in words.
#[test]
fn leads_send_a_submission_to_the_national_audit_and_see_the_receipt() {
    use crest_privacy::Key;
    for ((db, nlocal), ndb) in databases().into_iter().zip(databases()).zip(databases()) {
        let sk = Key::from_secret([3; 32]);
        let app = setup(&db);
        let audit = common::national_audit_server(&db, &nlocal, &ndb, "p001-system-token");
        // The programme's server, told where to send.
        app.set_submission_key(sk);
        app.set_signing_keys(common::setup_signing_keys());
        open(&db).run(|s| s.put_agreement(&common::agreement(false)).unwrap());
        for url in [
            "http://audit.example.org",
            "http://localhost.example.org",
            "http://127.0.0.1.example.org/",
            "ftp://127.0.0.1",
        ] {
            assert!(
                app.set_send_to(url, "x").is_err(),
                "{url}: never plain http over a network"
            );
        }
        app.set_send_to(&audit, "p001-system-token").unwrap();
        rt().block_on(async {
            let (cookie, csrf) = login(&app, "lead").await;
            let check = || {
                let b = "SENDBOUNDARY";
                let parts = [
                    ("csrf", None, csrf.as_str()),
                    ("from", None, "2024-04-01"),
                    ("to", None, "2025-03-31"),
                    (
                        "ndoo",
                        Some("ndoo.csv"),
                        "nhs_number,checked_on\n9434765870,2025-05-30\n",
                    ),
                    ("list", None, "opted_out"),
                ];
                Request::post("/p/P001/submit")
                    .header(header::COOKIE, &cookie)
                    .header(
                        header::CONTENT_TYPE,
                        format!("multipart/form-data; boundary={b}"),
                    )
                    .body(Body::from(multipart(b, &parts)))
                    .unwrap()
            };
            let r = send(&app, check()).await;
            assert!(r.body.contains("Send to the national audit"), "{}", r.body);
            let token = hidden(&r.body, "token");
            let r = send(
                &app,
                post(
                    "/p/P001/submit/confirm",
                    &cookie,
                    &[("csrf", &csrf), ("token", &token), ("send", "1")],
                ),
            )
            .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            assert!(
                r.body.contains("Received by the national audit")
                    && r.body.contains("Stored 1 episode(s)"),
                "{}",
                r.body
            );
            assert_eq!(open(&db).run(|s| s.sent_episodes("P001").unwrap()), ["E1"]);
            let held = common::sync(|| {
                crest_store::NationalStore::open(&ndb.url)
                    .unwrap()
                    .submissions()
                    .unwrap()
            });
            assert!(
                held.iter().any(|h| h.programme == "P001" && h.current),
                "the audit holds it"
            );
            let log = open(&db).run(|s| s.access_log(10).unwrap());
            assert!(
                log.iter()
                    .any(|e| e.action == "submission sent" && e.outcome == "ok"),
                "{log:?}"
            );
        });
        // A token the audit does not know: refused, in words, and nothing recorded as sent.
        let app = crest_web::App::new(&db.url, scratch_dir("send").join("uploads"), common::today)
            .unwrap();
        app.set_submission_key(Key::from_secret([3; 32]));
        app.set_signing_keys(common::setup_signing_keys());
        app.set_send_to(&audit, "not-a-real-token").unwrap();
        rt().block_on(async {
            let (cookie, csrf) = login(&app, "lead").await;
            let b = "SENDBOUNDARY2";
            let parts = [
                ("csrf", None, csrf.as_str()),
                ("from", None, "2023-04-01"),
                ("to", None, "2024-03-31"),
                (
                    "ndoo",
                    Some("ndoo.csv"),
                    "nhs_number,checked_on\n9434765870,2025-05-30\n",
                ),
            ];
            let req = Request::post("/p/P001/submit")
                .header(header::COOKIE, &cookie)
                .header(
                    header::CONTENT_TYPE,
                    format!("multipart/form-data; boundary={b}"),
                )
                .body(Body::from(multipart(b, &parts)))
                .unwrap();
            let r = send(&app, req).await;
            let token = hidden(&r.body, "token");
            let before = open(&db).run(|s| s.sent_episodes("P001").unwrap());
            let r = send(
                &app,
                post(
                    "/p/P001/submit/confirm",
                    &cookie,
                    &[("csrf", &csrf), ("token", &token), ("send", "1")],
                ),
            )
            .await;
            assert!(
                r.body.contains("The submission was not sent")
                    && r.body.contains("unknown API token"),
                "{}",
                r.body
            );
            assert_eq!(open(&db).run(|s| s.sent_episodes("P001").unwrap()), before);
        });
    }
}

/// A programme's server with no national store: an admin loads the national audit's published
/// programmes.csv and funnels.csv (as its annual report wrote them), and the lead's dashboard
/// shows the programme beside them; a file that is not a published table is refused in words.
#[test]
fn leads_see_the_published_national_figures_an_admin_loaded() {
    for (db, ndb) in databases().into_iter().zip(databases()) {
        let national_app = setup(&db);
        common::synthetic_national(&national_app, &db, &ndb);
        // The audit's published tables, as `crest report annual --tables` writes them.
        let tables = common::sync(|| {
            let mut n = crest_store::NationalStore::open(&ndb.url).unwrap();
            crest_report::annual::annual(
                &mut n,
                common::fy2024(),
                common::today(),
                crest_stats::funnel::Method::Plain,
            )
            .unwrap()
            .tables
        });
        let csv = |name: &str| {
            tables
                .iter()
                .find(|t| t.name == name)
                .unwrap()
                .csv()
                .unwrap()
        };
        let (programmes, funnels) = (csv("programmes"), csv("funnels"));
        // The programme's own server: the same local store, no national side.
        let app = crest_web::App::new(
            &db.url,
            scratch_dir("figures").join("uploads"),
            common::today,
        )
        .unwrap();
        rt().block_on(async {
            let (lead, _) = login(&app, "lead").await;
            let dashboard = "/p/P001/dashboard?from=2024-04-01&to=2025-03-31";
            let r = send(&app, get(dashboard, &lead)).await;
            assert!(
                r.body.contains("no published national figures"),
                "{}",
                r.body
            );
            let (admin, csrf) = login(&app, "admin").await;
            let load = |p: &[u8], f: &[u8]| {
                let b = "FIGURESBOUNDARY";
                let mut body = Vec::new();
                for (name, file, value) in [
                    ("csrf", None, csrf.as_bytes()),
                    ("period", None, b"1 April 2024 to 31 March 2025".as_slice()),
                    ("programmes", Some("programmes.csv"), p),
                    ("funnels", Some("funnels.csv"), f),
                ] {
                    body.extend(
                        format!("--{b}\r\nContent-Disposition: form-data; name=\"{name}\"")
                            .as_bytes(),
                    );
                    if let Some(file) = file {
                        body.extend(format!("; filename=\"{file}\"").as_bytes());
                    }
                    body.extend(b"\r\n\r\n");
                    body.extend(value);
                    body.extend(b"\r\n");
                }
                body.extend(format!("--{b}--\r\n").as_bytes());
                Request::post("/admin/national-figures")
                    .header(header::COOKIE, &admin)
                    .header(
                        header::CONTENT_TYPE,
                        format!("multipart/form-data; boundary={b}"),
                    )
                    .body(Body::from(body))
                    .unwrap()
            };
            let r = send(&app, load(b"a,b\n1,2\n", &funnels)).await;
            assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
            assert!(
                r.body
                    .contains("programmes.csv is not the national audit's published table"),
                "{}",
                r.body
            );
            let r = send(&app, load(&programmes, &funnels)).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            assert!(
                r.body
                    .contains("Loaded: 1 April 2024 to 31 March 2025, 12 programmes."),
                "{}",
                r.body
            );
            let r = send(&app, get(dashboard, &lead)).await;
            assert!(
                r.body.contains(
                    "The national audit&#39;s published figures for 1 April 2024 to 31 March 2025"
                ) || r.body.contains(
                    "The national audit's published figures for 1 April 2024 to 31 March 2025"
                ),
                "{}",
                r.body
            );
            assert!(
                r.body
                    .contains("<title id=\"pf-uptake-t\">Funnel plot: Uptake"),
                "{}",
                r.body
            );
            assert!(
                r.body.contains("P001 (the larger ringed dot)"),
                "{}",
                r.body
            );
            // The published grade, exactly as programmes.csv has it.
            let text = String::from_utf8(programmes.clone()).unwrap();
            let grade = text
                .lines()
                .find(|l| l.starts_with("P001,"))
                .unwrap()
                .rsplit(',')
                .next()
                .unwrap()
                .to_string();
            assert!(
                r.body
                    .contains(&format!("Your published grade: <strong>{grade}</strong>")),
                "{grade}: {}",
                r.body
            );
            // Staff cannot load figures.
            let (staff, scsrf) = login(&app, "staff").await;
            let r = send(
                &app,
                post("/admin/national-figures", &staff, &[("csrf", &scsrf)]),
            )
            .await;
            assert_eq!(r.status, StatusCode::NOT_FOUND);
        });
    }
}

/// Guessing a password or a security code on the account pages is throttled like signing in:
/// after a few wrong tries the next has to wait.
#[test]
fn guessing_on_the_account_pages_is_throttled() {
    for db in databases() {
        let app = setup(&db);
        rt().block_on(async {
            let (cookie, csrf) = login(&app, "staff").await;
            let mut statuses = Vec::new();
            for _ in 0..8 {
                let r = send(
                    &app,
                    post(
                        "/account/password",
                        &cookie,
                        &[
                            ("csrf", &csrf),
                            ("current", "a wrong guess"),
                            ("new", "a new long password"),
                            ("again", "a new long password"),
                        ],
                    ),
                )
                .await;
                statuses.push(r.status);
            }
            assert_eq!(statuses[0], StatusCode::UNPROCESSABLE_ENTITY);
            assert!(
                statuses.contains(&StatusCode::TOO_MANY_REQUESTS),
                "{statuses:?}"
            );
            // The same budget guards signing in with that name.
            let page = send(&app, get("/login", "")).await;
            let pre = cookie_value(&page.cookies, "crest_login").unwrap();
            let r = try_sign_in(&app, &pre, &hidden(&page.body, "csrf"), "staff", PASSWORD).await;
            assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
        });
    }
}

/// A GET with a personal API token and no cookie.
fn bearer(path: &str, token: &str) -> Request<Body> {
    Request::get(path)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap()
}

/// A JSON request with a personal API token.
fn bearer_json(method: &str, path: &str, token: &str, body: serde_json::Value) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

/// Makes a personal API token on the tokens page; returns the secret shown once.
async fn make_token(app: &Arc<crest_web::App>, cookie: &str) -> String {
    let page = send(app, get("/account/tokens", cookie)).await;
    assert_eq!(page.status, StatusCode::OK);
    let csrf = hidden(&page.body, "csrf");
    let r = send(
        app,
        post(
            "/account/tokens",
            cookie,
            &[("csrf", &csrf), ("label", "ward system"), ("days", "30")],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let start = r.body.find("crest_pat_").expect("the token is shown once");
    r.body[start..]
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .next()
        .unwrap()
        .to_string()
}

/// Every count cell of a published table is 0, `*`, or a multiple of 5 of at least 10.
fn assert_published(columns: &[String], rows: &[Vec<String>]) {
    for r in rows {
        for (c, v) in columns.iter().zip(r) {
            if ["referred", "started", "numerator", "denominator", "n"].contains(&c.as_str()) {
                let ok = v == "*"
                    || v.parse::<u64>()
                        .is_ok_and(|n| n == 0 || (n >= 10 && n % 5 == 0));
                assert!(ok, "{c} = {v} is not a published count");
            }
        }
    }
}

/// Commissioners see published figures for their regions only, researchers published national
/// figures and their own projects' extracts, analysts exact figures; a suppressed count can
/// never be recovered from a total and the other cells; nobody else reaches any of it.
#[test]
fn commissioners_and_researchers_see_published_figures_for_their_scope_only() {
    for (db, ndb) in databases().into_iter().zip(databases()) {
        let app = setup(&db);
        common::synthetic_national(&app, &db, &ndb);
        let programmes = crest_store::NationalStore::open(&ndb.url)
            .unwrap()
            .programmes()
            .unwrap();
        let region = programmes[0].region.clone();
        let (mine, others): (Vec<_>, Vec<_>) = programmes.iter().partition(|p| p.region == region);
        assert!(!others.is_empty());
        open(&db).run(|s| {
            crest_web::add_user(
                s,
                "comm",
                crest_store::Role::Commissioner,
                std::slice::from_ref(&region),
                PASSWORD,
            )
            .unwrap();
            crest_web::add_user(s, "res", crest_store::Role::Researcher, &[], PASSWORD).unwrap();
            crest_web::add_user(s, "res2", crest_store::Role::Researcher, &[], PASSWORD).unwrap();
        });
        let mut n = crest_store::NationalStore::open(&ndb.url).unwrap();
        let project = |id: &str, who: &str, to: &str| crest_store::national::Project {
            id: id.into(),
            title: format!("Project {id}"),
            approval: "IRAS 1".into(),
            fields: crest_privacy::research::parse_fields("age_band,sex,referral_date,status")
                .unwrap(),
            researchers: vec![who.into()],
            valid_from: crest_core::Date::from_ymd(2025, 1, 1).unwrap(),
            valid_to: crest_core::Date::parse_iso(to).unwrap(),
            k: 5,
            secret: crest_privacy::research::new_secret(),
            created_at: "2025-01-01T00:00:00Z".into(),
        };
        n.put_project(&project("mine", "res", "2025-12-31"))
            .unwrap();
        n.put_project(&project("theirs", "res2", "2025-12-31"))
            .unwrap();
        n.put_project(&project("ended", "res", "2025-05-31"))
            .unwrap();
        drop(n);
        rt().block_on(async {
            let (comm, _) = login(&app, "comm").await;
            let r = send(&app, get("/region", &comm)).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            assert!(r.body.contains(&region) && r.body.contains("Slope index"));
            for p in &others {
                assert!(
                    !r.body.contains(&format!("({})", p.code)),
                    "{} shown to another region",
                    p.code
                );
            }
            // The KPI table and its CSV are one model: every row of the file is on the page,
            // with the file's exact values.
            let csv = send(&app, get("/region/kpis.csv", &comm)).await;
            assert_eq!(csv.status, StatusCode::OK);
            let mut lines = csv.body.lines();
            let head = lines.next().unwrap_or_default();
            assert!(
                head.starts_with("name,programme_code,")
                    && head.ends_with(",kpis_met,kpis_assessable,grade"),
                "{head}"
            );
            for line in lines {
                let cells: Vec<&str> = line.split(',').collect();
                assert!(
                    r.body.contains(&format!("{} ({})", cells[0], cells[1])),
                    "{line} is not on the page"
                );
            }
            // Each chart on the page downloads, drawn from the same published figures.
            let linked: Vec<&str> = r
                .body
                .match_indices("/region/chart.svg?chart=")
                .map(|(i, _)| {
                    let rest = &r.body[i + "/region/chart.svg?chart=".len()..];
                    &rest[..rest.find('&').unwrap()]
                })
                .collect();
            assert!(
                linked.contains(&"demand") && linked.contains(&"uptake-sex"),
                "{linked:?}"
            );
            for chart in &linked {
                let svg = send(
                    &app,
                    get(&format!("/region/chart.svg?chart={chart}"), &comm),
                )
                .await;
                assert_eq!(svg.status, StatusCode::OK, "{chart}: {}", svg.body);
                assert!(svg.body.starts_with("<svg xmlns="), "{chart}");
            }
            let png = send(&app, get("/region/chart.png?chart=uptake-sex", &comm)).await;
            assert!(png.bytes.starts_with(b"\x89PNG"));
            assert_eq!(
                send(&app, get("/region/chart.svg?chart=nope", &comm))
                    .await
                    .status,
                StatusCode::BAD_REQUEST
            );
            // Aggregates: only the region's programmes, only published counts.
            let r = send(
                &app,
                get("/api/v1/aggregates?by=programme&measure=referred", &comm),
            )
            .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            let t: serde_json::Value = serde_json::from_str(&r.body).unwrap();
            assert_eq!(t["published"], true);
            // Numbers are JSON numbers; text is left only for codes and suppressed cells.
            let cells: Vec<&serde_json::Value> = t["rows"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|r| r.as_array().unwrap())
                .collect();
            assert!(cells.iter().any(|c| c.is_number()), "{}", r.body);
            assert!(
                !cells
                    .iter()
                    .any(|c| c.as_str().is_some_and(|s| s.parse::<f64>().is_ok())),
                "{}",
                r.body
            );
            let rows = text_rows(&t["rows"]);
            let columns: Vec<String> = serde_json::from_value(t["columns"].clone()).unwrap();
            assert_eq!(rows.len(), mine.len());
            assert!(rows.iter().all(|r| mine.iter().any(|p| p.code == r[0])));
            assert_published(&columns, &rows);
            // The analyst's "published" switch is ignored: a commissioner never sees exact values.
            for q in [
                "by=sex,age_band,imd_quintile&measure=uptake&published=0",
                "by=quarter,priority_group&measure=started",
                "by=ethnic_group&measure=wait_days",
            ] {
                let r = send(&app, get(&format!("/api/v1/aggregates?{q}"), &comm)).await;
                if r.status == StatusCode::BAD_REQUEST {
                    assert!(r.body.contains("worked out"), "{}", r.body);
                    continue;
                }
                let t: serde_json::Value = serde_json::from_str(&r.body).unwrap();
                let rows = text_rows(&t["rows"]);
                let columns: Vec<String> = serde_json::from_value(t["columns"].clone()).unwrap();
                assert_published(&columns, &rows);
            }
            // A differencing attack: the total minus the other cells never isolates a hidden one.
            let get_table = |q: String| {
                let app = app.clone();
                let comm = comm.clone();
                async move {
                    let r = send(&app, get(&format!("/api/v1/aggregates?{q}"), &comm)).await;
                    let t: serde_json::Value = serde_json::from_str(&r.body).unwrap();
                    text_rows(&t["rows"])
                }
            };
            let total = get_table("measure=referred".into()).await;
            let by_sex = get_table("by=sex&measure=referred".into()).await;
            if total[0][0] != "*" {
                let hidden = by_sex.iter().filter(|r| r[1] == "*").count();
                assert_ne!(
                    hidden, 1,
                    "one hidden cell beside a published total: {by_sex:?}"
                );
            }
            // Commissioners do not reach analysts' or researchers' pages.
            for path in [
                "/national/dashboard",
                "/research",
                "/api/v1/projects",
                "/api/v1/submissions",
                "/p/P001/episodes",
                "/admin/projects",
            ] {
                assert_eq!(
                    send(&app, get(path, &comm)).await.status,
                    StatusCode::NOT_FOUND,
                    "{path}"
                );
            }

            let (res, _) = login(&app, "res").await;
            let r = send(&app, get("/research", &res)).await;
            assert!(r.body.contains("Project mine") && !r.body.contains("Project theirs"));
            let r = send(&app, get("/research/mine/extract.csv", &res)).await;
            assert_eq!(r.status, StatusCode::OK);
            assert!(
                r.body
                    .starts_with("patient_key,age_band,sex,referral_days,status"),
                "{}",
                &r.body[..80.min(r.body.len())]
            );
            assert_eq!(
                send(&app, get("/research/theirs/extract.csv", &res))
                    .await
                    .status,
                StatusCode::NOT_FOUND
            );
            let r = send(&app, get("/research/ended/extract.csv", &res)).await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST);
            assert!(r.body.contains("refused outside"), "{}", r.body);
            let log = common::sync(|| {
                crest_store::NationalStore::open(&ndb.url)
                    .unwrap()
                    .access_log(100)
                    .unwrap()
            });
            assert!(log.iter().any(|e| e.action == "research extract"
                && e.outcome == "ok"
                && e.username == "res"));
            assert!(log.iter().any(|e| e.action == "research extract"
                && e.outcome == "refused"
                && e.target == "ended"));
            let r = send(&app, get("/aggregates?by=nation&measure=uptake", &res)).await;
            assert_eq!(r.status, StatusCode::OK);
            assert!(r.body.contains("published values"));
            assert_eq!(
                send(&app, get("/region", &res)).await.status,
                StatusCode::NOT_FOUND
            );

            // Analysts see exact values; programme staff and admins see none of it.
            let (analyst, _) = login(&app, "analyst").await;
            let r = send(
                &app,
                get("/api/v1/aggregates?by=programme&measure=referred", &analyst),
            )
            .await;
            let t: serde_json::Value = serde_json::from_str(&r.body).unwrap();
            assert_eq!(t["published"], false);
            for who in ["staff", "lead", "admin"] {
                let (c, _) = login(&app, who).await;
                for path in [
                    "/aggregates",
                    "/aggregates.csv?by=sex",
                    "/region",
                    "/research",
                    "/api/v1/aggregates",
                    "/api/v1/kpis",
                    "/api/v1/projects",
                ] {
                    let r = send(&app, get(path, &c)).await;
                    assert_eq!(r.status, StatusCode::NOT_FOUND, "{who}: {path}");
                }
            }
        });
    }
}

/// Personal API tokens: made on the web and shown once, stored hashed, acting as their user
/// with that user's programmes, refusing other programmes exactly as the pages do, and
/// stopping at once when revoked or when the user is disabled. Episodes are read, created
/// (every problem reported at once), updated and imported through the API.
#[test]
fn personal_api_tokens_act_as_their_user_until_revoked() {
    for db in databases() {
        let app = setup(&db);
        rt().block_on(async {
            let (cookie, _) = login(&app, "staff").await;
            let token = make_token(&app, &cookie).await;
            let stored = open(&db).run(|s| s.user_tokens("staff").unwrap());
            assert_eq!(stored.len(), 1);
            // Only the hash is stored.
            let sql = format!(
                "SELECT count(*) FROM user_tokens WHERE token_hash LIKE '%{}%'",
                &token[10..30]
            );
            assert_eq!(common::sync(|| db.query_i64(&sql)), 0);
            let r = send(&app, bearer("/api/v1/me", &token)).await;
            assert_eq!(r.status, StatusCode::OK);
            assert!(r.body.contains("\"programme_staff\"") && r.body.contains("P001"));
            let r = send(&app, bearer("/api/v1/programmes/P001/episodes", &token)).await;
            assert_eq!(r.status, StatusCode::OK);
            assert!(r.body.contains("\"E1\"") && !r.body.contains("X1"));
            for path in ["/api/v1/programmes/P002/episodes", "/api/v1/programmes/P002/episodes/X1", "/api/v1/programmes/P001/episodes/X1", "/api/v1/submissions", "/api/v1/aggregates"] {
                let r = send(&app, bearer(path, &token)).await;
                assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
                assert!(r.body.contains("\"code\":\"not_found\""), "{}", r.body);
            }
            // Create: every problem at once, then a good one; update just a field.
            let bad = serde_json::json!({"episode_id": "A1", "nhs_number": "123", "sex": "x"});
            let r = send(&app, bearer_json("POST", "/api/v1/programmes/P001/episodes", &token, bad)).await;
            assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
            let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
            assert_eq!(v["code"], "invalid");
            assert!(v["errors"].as_array().unwrap().len() >= 3, "{v}");
            let good = serde_json::json!({
                "episode_id": "A1", "nhs_number": "9434765870", "date_of_birth": "1950-02-02", "sex": "male",
                "initiating_event": "mi_stemi", "treatment": "pci", "event_date": "2025-01-05",
                "referral_date": "2025-01-08", "status": "referred"
            });
            let r = send(&app, bearer_json("POST", "/api/v1/programmes/P001/episodes", &token, good.clone())).await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
            let r = send(&app, bearer_json("POST", "/api/v1/programmes/P001/episodes", &token, good)).await;
            assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
            let r = send(&app, bearer_json("PUT", "/api/v1/programmes/P001/episodes/A1", &token, serde_json::json!({"family_name": "Newname"}))).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            let r = send(&app, bearer("/api/v1/programmes/P001/episodes/A1", &token)).await;
            assert!(r.body.contains("Newname") && r.body.contains("\"programme_code\":\"P001\""));
            let r = send(&app, bearer_json("PUT", "/api/v1/programmes/P002/episodes/X1", &token, serde_json::json!({"family_name": "Hacked"}))).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND);
            // Import a file through the API: rows for another programme are not taken.
            let csv = "programme_code,episode_id,nhs_number,date_of_birth,sex,initiating_event,treatment,event_date,referral_date,status\n\
                       P001,A2,9434765862,1950-02-02,female,mi_stemi,pci,2025-01-05,2025-01-08,referred\n\
                       P002,B2,9434765919,1950-02-02,female,mi_stemi,pci,2025-01-05,2025-01-08,referred\n";
            let req = Request::post("/api/v1/programmes/P001/imports")
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .header(header::CONTENT_TYPE, "text/csv")
                .body(Body::from(csv))
                .unwrap();
            let r = send(&app, req).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
            assert_eq!((v["imported"].as_u64(), v["rejected"].as_u64()), (Some(1), Some(1)), "{v}");
            assert!(open(&db).run(|s| s.episode("P002", "B2").unwrap()).is_none());
            // A token cannot make more tokens.
            let r = send(&app, Request::post("/account/tokens").header(header::AUTHORIZATION, format!("Bearer {token}"))
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded").body(Body::from("csrf=&label=x&days=5")).unwrap()).await;
            assert_ne!(r.status, StatusCode::OK);
            // Revoked: refused at once, in JSON.
            let page = send(&app, get("/account/tokens", &cookie)).await;
            let csrf = hidden(&page.body, "csrf");
            let id = stored[0].id.clone();
            let r = send(&app, post("/account/tokens", &cookie, &[("csrf", &csrf), ("revoke", &id)])).await;
            assert!(r.body.contains("revoked"), "{}", r.body);
            let r = send(&app, bearer("/api/v1/me", &token)).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED);
            assert!(r.body.contains("\"code\":\"sign_in_required\""));
            // A disabled user's tokens stop too.
            let token2 = make_token(&app, &cookie).await;
            assert_eq!(send(&app, bearer("/api/v1/me", &token2)).await.status, StatusCode::OK);
            open(&db).run(|s| {
                let mut u = s.user("staff").unwrap().unwrap();
                u.disabled = true;
                s.put_user(&u).unwrap();
            });
            assert_eq!(send(&app, bearer("/api/v1/me", &token2)).await.status, StatusCode::UNAUTHORIZED);
            assert_eq!(send(&app, bearer("/api/v1/me", "crest_pat_forged")).await.status, StatusCode::UNAUTHORIZED);
        });
    }
}

/// The OpenAPI document is a reviewed snapshot: a change to the API shows up as a change to
/// `tests/snapshots/router__openapi.snap` (rewrite it with `INSTA_UPDATE=always` and review
/// the diff, or use `cargo insta review`).
#[test]
fn the_openapi_document_matches_its_reviewed_snapshot() {
    let doc = crest_web::openapi().to_pretty_json().unwrap();
    insta::assert_snapshot!("openapi", doc);
    let v: serde_json::Value = serde_json::from_str(&doc).unwrap();
    assert!(v["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = v["paths"].as_object().unwrap();
    for p in [
        "/api/v1/programmes/{code}/episodes",
        "/api/v1/aggregates",
        "/api/v1/projects/{id}/extract",
        "/api/v1/submissions",
        "/api/v1/kpis",
        "/api/v1/funnels",
        "/api/v1/inequalities",
    ] {
        assert!(paths.contains_key(p), "{p}");
    }
}

/// Every route of the planning, research and API surface, for every role, signed in by session
/// and (for the API) by personal token: allowed (200) or answered exactly as a page that does not
/// exist (404); without credentials, pages send to sign-in and the API answers 401 in JSON.
#[test]
fn every_route_for_every_role_is_allowed_or_denied_as_specified() {
    for (db, ndb) in databases().into_iter().zip(databases()) {
        let app = setup(&db);
        common::synthetic_national(&app, &db, &ndb);
        common::add_planners(&db, &ndb);
        const ALL: &[&str] = &["staff", "lead", "admin", "analyst", "comm", "res"];
        const PLANNERS: &[&str] = &["analyst", "comm", "res"];
        let routes: &[(&str, &[&str])] = &[
            ("/aggregates", PLANNERS),
            ("/aggregates.csv?by=sex", PLANNERS),
            ("/region", &["comm"]),
            ("/region/kpis.csv", &["comm"]),
            ("/region/kpis.xlsx", &["comm"]),
            ("/region/chart.svg?chart=uptake-sex", &["comm"]),
            ("/region/ascertainment.csv", &["comm"]),
            ("/region/over-time.csv?measure=uptake", &["comm"]),
            ("/national/ascertainment.csv", &["analyst"]),
            ("/api/v1/ascertainment", &["analyst", "comm"]),
            ("/api/v1/programmes/P001/ascertainment", &["staff", "lead"]),
            ("/research", &["res"]),
            ("/admin/projects", &["admin"]),
            ("/admin/users", &["admin"]),
            ("/account/tokens", ALL),
            ("/national/dashboard", &["analyst"]),
            ("/national/report", &["analyst"]),
            ("/national/report.html", &["analyst"]),
            ("/admin/users/change?username=staff", &["admin"]),
            ("/p/P001/episodes/E1/edit", &["staff", "lead"]),
            ("/national/submissions.csv", &["analyst"]),
            ("/national/duplicates.xlsx", &["analyst"]),
            ("/national/programme.csv?code=P001&table=kpis", &["analyst"]),
            ("/p/P001/episodes", &["staff", "lead"]),
            ("/api/v1/me", ALL),
            ("/api/v1/programmes/P001/episodes", &["staff", "lead"]),
            ("/api/v1/programmes/P001/episodes/E1", &["staff", "lead"]),
            ("/api/v1/programmes/P002/episodes/X1", &[]),
            ("/api/v1/programmes/P001/kpis", &["staff", "lead"]),
            ("/api/v1/submissions", &["analyst"]),
            ("/api/v1/kpis", PLANNERS),
            ("/api/v1/funnels?kpi=uptake", PLANNERS),
            ("/api/v1/inequalities?by=sex", PLANNERS),
            ("/api/v1/aggregates?by=nation", PLANNERS),
            ("/api/v1/projects", &["res"]),
        ];
        rt().block_on(async {
            let mut sessions = Vec::new();
            for who in ALL {
                let (cookie, _) = login(&app, who).await;
                let token = make_token(&app, &cookie).await;
                sessions.push((*who, cookie, token));
            }
            for (path, allowed) in routes {
                for (who, cookie, token) in &sessions {
                    let want = if allowed.contains(who) {
                        StatusCode::OK
                    } else {
                        StatusCode::NOT_FOUND
                    };
                    let r = send(&app, get(path, cookie)).await;
                    assert_eq!(
                        r.status,
                        want,
                        "{}: {who} GET {path}: {}",
                        db.backend,
                        &r.body[..r.body.len().min(200)]
                    );
                    if path.starts_with("/api/") {
                        let r = send(&app, bearer(path, token)).await;
                        assert_eq!(r.status, want, "{who} with a token: {path}");
                        if want == StatusCode::NOT_FOUND {
                            assert!(
                                r.body.starts_with("{\"code\":\"not_found\""),
                                "{path}: {}",
                                r.body
                            );
                        }
                    }
                }
                let r = send(&app, get(path, "")).await;
                if path.starts_with("/api/") {
                    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path}");
                    assert!(r.body.contains("sign_in_required"), "{}", r.body);
                } else {
                    assert_eq!(
                        (r.status, r.location.as_str()),
                        (StatusCode::SEE_OTHER, "/login"),
                        "{path}"
                    );
                }
            }
            // The API's own description is public: it holds no data.
            assert_eq!(send(&app, get("/api", "")).await.status, StatusCode::OK);
            assert_eq!(
                send(&app, get("/api/openapi.json", "")).await.status,
                StatusCode::OK
            );
        });
    }
}

/// The aggregates page's table pages and sorts (numbers by value, hidden cells last) and its
/// download holds every row.
#[test]
fn the_aggregates_table_pages_sorts_and_downloads_every_row() {
    let db = crest_store::testing::sqlite_db();
    let ndb = crest_store::testing::sqlite_db();
    let app = setup(&db);
    common::synthetic_national(&app, &db, &ndb);
    rt().block_on(async {
        let (analyst, _) = login(&app, "analyst").await;
        let q = "by=programme&by=month&measure=referred&from=2024-04-01&to=2025-03-31";
        let csv = send(&app, get(&format!("/aggregates.csv?{q}"), &analyst)).await;
        let all = csv.body.lines().count() - 1;
        assert!(all > 100, "{all}");
        let r = send(
            &app,
            get(
                &format!("/aggregates?{q}&run=1&sort=referred&order=desc&page=2"),
                &analyst,
            ),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(
            r.body.contains(&format!("Page 2 of {}", all.div_ceil(50))),
            "{}",
            r.body
        );
        assert!(r.body.contains(&format!("Rows 51 to 100 of {all}")));
        // The page's counts run high to low, and follow on from page 1's.
        let counts = |body: &str| -> Vec<u64> {
            body.split("<td class=\"num\">")
                .skip(1)
                .filter_map(|c| c.split('<').next()?.parse().ok())
                .collect()
        };
        let page2 = counts(&r.body);
        assert_eq!(page2.len(), 50);
        assert!(page2.windows(2).all(|w| w[0] >= w[1]), "{page2:?}");
        let r1 = send(
            &app,
            get(
                &format!("/aggregates?{q}&run=1&sort=referred&order=desc&page=1"),
                &analyst,
            ),
        )
        .await;
        let page1 = counts(&r1.body);
        assert!(page1.last().unwrap() >= page2.first().unwrap());
    });
}

/// Under each funnel method the annual report's funnels.csv, the API, the outliers page and the
/// national dashboard's funnel plots name the same programmes at the same levels; the adjusted
/// methods flag no more programmes than the plain one.
#[test]
fn report_dashboard_outliers_and_funnels_csv_agree_under_each_method() {
    use crest_stats::funnel::Method;
    // Downloads name the method used: the automatic choice resolves to plain or multiplicative.
    fn resolved(asked: Method, written: &str) -> &str {
        match asked {
            Method::Auto if written == "plain" || written == "multiplicative" => written,
            _ => asked.code(),
        }
    }
    for (db, ndb) in databases().into_iter().zip(databases()) {
        let app = setup(&db);
        common::synthetic_national(&app, &db, &ndb);
        let mut flagged = Vec::new();
        for method in Method::ALL {
            let tables = common::sync(|| {
                let mut n = crest_store::NationalStore::open(&ndb.url).unwrap();
                crest_report::annual::annual(&mut n, common::fy2024(), common::today(), method)
                    .unwrap()
                    .tables
            });
            // By nation and region: every programme counted once under its published grade.
            let places = tables.iter().find(|t| t.name == "nations_regions").unwrap();
            for r in &places.rows {
                let graded: usize = r[8..13].iter().map(|c| c.parse::<usize>().unwrap()).sum();
                assert_eq!(graded.to_string(), r[2], "{r:?}");
                for c in &r[3..5] {
                    assert!(
                        c == "*" || c.parse::<u64>().is_ok_and(|n| n == 0 || n % 5 == 0),
                        "{r:?}"
                    );
                }
            }
            let funnels = tables
                .iter()
                .find(|t| t.name == "funnels")
                .unwrap()
                .csv()
                .unwrap();
            let mut r = csv::Reader::from_reader(funnels.as_slice());
            assert_eq!(r.headers().unwrap().iter().next_back(), Some("method"));
            let records: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
            // Rows with hidden counts are published too few: their level is the analysts' own.
            // So are the levels of a programme with a hidden result where the level would
            // narrow it.
            let kpi_rows = &tables.iter().find(|t| t.name == "programmes").unwrap().rows;
            let hidden = |code: &str| {
                records
                    .iter()
                    .any(|x| &x[1] == code && (&x[2] == "*" || &x[3] == "*"))
                    || kpi_rows
                        .iter()
                        .any(|r| r[0] == code && (r[8] == "*" || r[14] == "*"))
            };
            let too_few: std::collections::HashSet<(String, String)> = records
                .iter()
                .filter(|x| &x[4] == "too_few")
                .inspect(|x| assert!(hidden(&x[1]), "{x:?}"))
                .map(|x| (x[0].to_string(), x[1].to_string()))
                .collect();
            let mut from_csv: Vec<(String, String, String)> = records
                .iter()
                .inspect(|x| assert_eq!(&x[5], resolved(method, &x[5])))
                .filter(|x| &x[4] != "within" && &x[4] != "too_few")
                .map(|x| (x[0].to_string(), x[1].to_string(), x[4].to_string()))
                .collect();
            from_csv.sort();
            rt().block_on(async {
                let (analyst, _) = login(&app, "analyst").await;
                let q = format!("from=2024-04-01&to=2025-03-31&method={}", method.code());
                let mut from_api = Vec::new();
                // Every level the analysts see (exact), for their dashboard's captions.
                let mut exact_levels = Vec::new();
                for kpi in ["uptake", "completion", "assessment1", "assessment2"] {
                    let r = send(
                        &app,
                        get(&format!("/api/v1/funnels?kpi={kpi}&{q}"), &analyst),
                    )
                    .await;
                    let t: serde_json::Value = serde_json::from_str(&r.body).unwrap();
                    for row in t["rows"].as_array().unwrap() {
                        let level = row[4].as_str().unwrap();
                        let code = row[1].as_str().unwrap().to_string();
                        if level != "within" {
                            exact_levels.push((kpi.to_string(), code.clone(), level.to_string()));
                        }
                        if level != "within" && !too_few.contains(&(kpi.to_string(), code)) {
                            from_api.push((
                                kpi.to_string(),
                                row[1].as_str().unwrap().to_string(),
                                level.to_string(),
                            ));
                        }
                    }
                }
                from_api.sort();
                assert_eq!(
                    from_api,
                    from_csv,
                    "{}: the API and funnels.csv",
                    method.code()
                );
                let page = send(&app, get(&format!("/national/outliers?{q}"), &analyst)).await;
                assert_eq!(page.status, StatusCode::OK);
                for (_, code, level) in &from_csv {
                    let words = level.replace('_', " ");
                    assert!(
                        page.body.contains(&words) && page.body.contains(code.as_str()),
                        "{code} {words} not on the outliers page"
                    );
                }
                // The dashboard leads with the chosen KPI's funnel: its caption counts the
                // programmes at each level, as the analysts see them (exact).
                for kpi in ["uptake", "completion", "assessment1", "assessment2"] {
                    let count = |level: &str| {
                        exact_levels
                            .iter()
                            .filter(|(k, _, l)| k == kpi && l == level)
                            .count()
                    };
                    let counts = crest_report::charts::FunnelCounts {
                        alarm: (count("alarm_low"), count("alarm_high")),
                        alert: (count("alert_low"), count("alert_high")),
                    };
                    let dash = send(
                        &app,
                        get(&format!("/national/dashboard?{q}&kpi={kpi}"), &analyst),
                    )
                    .await;
                    assert_eq!(dash.status, StatusCode::OK);
                    assert!(
                        dash.body.contains(&counts.to_string()),
                        "{counts} not under the dashboard's {kpi} funnel"
                    );
                }
                // Each flagged programme's own page gives the same levels (its funnel table
                // downloads with them).
                let mut codes: Vec<&String> = from_csv.iter().map(|(_, c, _)| c).collect();
                codes.dedup();
                for code in codes.into_iter().take(6) {
                    let t = send(
                        &app,
                        get(
                            &format!("/national/programme.csv?code={code}&{q}&table=funnels"),
                            &analyst,
                        ),
                    )
                    .await;
                    assert_eq!(t.status, StatusCode::OK, "{}", t.body);
                    let mut mine: Vec<(String, String, String)> = t
                        .body
                        .lines()
                        .skip(1)
                        .map(|l| l.split(',').collect::<Vec<_>>())
                        .inspect(|c| assert_eq!(c[6], resolved(method, c[6])))
                        .filter(|c| c[5] != "within")
                        .map(|c| (c[0].to_string(), code.clone(), c[5].to_string()))
                        .collect();
                    mine.sort();
                    let want: Vec<_> = from_csv.iter().filter(|x| &x.1 == code).cloned().collect();
                    assert_eq!(mine, want, "{code}'s page under {}", method.code());
                }
                // The plots download as SVG and PNG with their title, axes, limits and legend.
                let svg = send(
                    &app,
                    get(&format!("/national/funnel.svg?kpi=uptake&{q}"), &analyst),
                )
                .await;
                assert_eq!(svg.status, StatusCode::OK);
                assert!(
                    svg.body
                        .starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""),
                    "{}",
                    &svg.body[..60]
                );
                for words in [
                    "Uptake (started / referred)",
                    "patients (denominator)",
                    "99.8% limits",
                    "alert: outside 95%",
                    "pooled ",
                ] {
                    assert!(svg.body.contains(words), "{words} not in the SVG");
                }
                let png = send(
                    &app,
                    get(&format!("/national/funnel.png?kpi=uptake&{q}"), &analyst),
                )
                .await;
                assert!(png.bytes.starts_with(b"\x89PNG"));
                // So do the wait plots, with a title, tick values and a legend.
                let waits = send(
                    &app,
                    get(
                        &format!("/national/waits.svg?kpi=wait_mi_pci&{q}"),
                        &analyst,
                    ),
                )
                .await;
                assert_eq!(waits.status, StatusCode::OK, "{}", waits.body);
                for words in [
                    "Median wait, referral to start: MI/PCI",
                    "median days from referral",
                    "above the threshold",
                    "the nation's threshold",
                    ">0</text>",
                ] {
                    assert!(waits.body.contains(words), "{words} not in the wait plot");
                }
                let png = send(
                    &app,
                    get(&format!("/national/waits.png?kpi=wait_cabg&{q}"), &analyst),
                )
                .await;
                assert!(png.bytes.starts_with(b"\x89PNG"));
                assert_eq!(
                    send(
                        &app,
                        get(&format!("/national/waits.svg?kpi=duration&{q}"), &analyst)
                    )
                    .await
                    .status,
                    StatusCode::BAD_REQUEST
                );
                // Nothing else is called an outlier on the page: one row per finding.
                let rows = page.body.matches("name=\"programme\"").count()
                    + page.body.matches("/national/outliers/case?id=").count();
                assert!(rows >= from_csv.len().min(50));
            });
            flagged.push(from_csv.len());
        }
        assert!(
            // In Method::ALL's order: auto, plain, multiplicative, additive.
            flagged[0] <= flagged[1] && flagged[2] <= flagged[1] && flagged[3] <= flagged[1],
            "{flagged:?}"
        );
    }
}

/// Outlier triage: the summary counts every finding, the filters (KPI, level, direction, case
/// stage) narrow the list, and the list downloads as CSV and XLSX with the same filters.
#[test]
fn outlier_triage_filters_summarises_and_exports() {
    let db = crest_store::testing::sqlite_db();
    let ndb = crest_store::testing::sqlite_db();
    let app = setup(&db);
    common::synthetic_national(&app, &db, &ndb);
    rt().block_on(async {
        let (analyst, _) = login(&app, "analyst").await;
        let q = "from=2024-04-01&to=2025-03-31";
        let all = send(&app, get(&format!("/national/outliers.csv?{q}"), &analyst)).await;
        assert_eq!(all.status, StatusCode::OK);
        let rows: Vec<&str> = all.body.lines().skip(1).collect();
        assert!(!rows.is_empty());
        let page = send(&app, get(&format!("/national/outliers?{q}"), &analyst)).await;
        let alarms = rows
            .iter()
            .filter(|r| r.split(',').nth(2) == Some("alarm"))
            .count();
        assert!(
            page.body
                .contains(&format!("<strong>{alarms}</strong> alarm(s)")),
            "{}",
            page.body
        );
        assert!(page
            .body
            .contains(&format!("{} of {} finding(s) outside the limits", rows.len(), rows.len())));
        // Filtered: only uptake alerts that are low and have no case.
        let f = "kpi=uptake&level=alert&direction=low&stage=none";
        let some = send(
            &app,
            get(&format!("/national/outliers.csv?{q}&{f}"), &analyst),
        )
        .await;
        let kept: Vec<&str> = some.body.lines().skip(1).collect();
        assert!(
            kept.iter()
                .all(|r| r.starts_with('P') && r.contains(",uptake,alert,low,")),
            "{kept:?}"
        );
        let want = rows
            .iter()
            .filter(|r| r.contains(",uptake,alert,low,"))
            .count();
        assert_eq!(kept.len(), want);
        let page = send(&app, get(&format!("/national/outliers?{q}&{f}"), &analyst)).await;
        assert!(page
            .body
            .contains(&format!("{want} of {} finding(s) outside the limits", rows.len())));
        let xlsx = send(
            &app,
            get(&format!("/national/outliers.xlsx?{q}&{f}"), &analyst),
        )
        .await;
        assert_eq!(xlsx.status, StatusCode::OK);
        assert!(xlsx.bytes.starts_with(b"PK"));
        assert_eq!(
            send(&app, get(&format!("/national/outliers.pdf?{q}"), &analyst))
                .await
                .status,
            StatusCode::NOT_FOUND
        );
        // The dashboard's programme table downloads with its filters.
        let reds = send(
            &app,
            get(&format!("/national/programmes.csv?{q}&grade=red"), &analyst),
        )
        .await;
        let lines: Vec<&str> = reds.body.lines().skip(1).collect();
        assert!(
            !lines.is_empty() && lines.iter().all(|l| l.contains(",red,")),
            "{}",
            reds.body
        );
        let page = send(
            &app,
            get(&format!("/national/dashboard?{q}&grade=red"), &analyst),
        )
        .await;
        assert!(
            page.body
                .contains(&format!("{} of the 12 programme(s) in the nation and region chosen match", lines.len())),
            "{}",
            page.body
        );
        let xlsx = send(
            &app,
            get(&format!("/national/programmes.xlsx?{q}"), &analyst),
        )
        .await;
        assert!(xlsx.bytes.starts_with(b"PK"));
        // The dashboard's roll-up and year on year download too: the nations' referrals add
        // up to the programmes'.
        let all = send(&app, get(&format!("/national/programmes.csv?{q}"), &analyst)).await;
        let referred: u64 = csv::Reader::from_reader(all.body.as_bytes())
            .records()
            .map(|r| r.unwrap()[4].parse::<u64>().unwrap())
            .sum();
        let places = send(
            &app,
            get(&format!("/national/dashboard.csv?table=places&{q}"), &analyst),
        )
        .await;
        assert!(
            places.body.starts_with(
                "nation,region,programmes,referred,started,uptake,assessment1,assessment2,green,amber,red\n"
            ),
            "{}",
            places.body
        );
        let nations: u64 = csv::Reader::from_reader(places.body.as_bytes())
            .records()
            .map(|r| r.unwrap())
            .filter(|r| r[1].is_empty())
            .map(|r| r[3].parse::<u64>().unwrap())
            .sum();
        assert_eq!(nations, referred);
        let years = send(
            &app,
            get(&format!("/national/dashboard.csv?table=years&{q}"), &analyst),
        )
        .await;
        let lines: Vec<&str> = years.body.lines().collect();
        assert_eq!(lines.len(), 4, "{}", years.body);
        assert!(lines[3].starts_with(&format!("2024-04-01,2025-03-31,{referred},")), "{}", years.body);
        assert!(send(&app, get(&format!("/national/dashboard.xlsx?table=years&{q}"), &analyst))
            .await
            .bytes
            .starts_with(b"PK"));
        assert_eq!(
            send(&app, get(&format!("/national/dashboard.csv?table=nope&{q}"), &analyst))
                .await
                .status,
            StatusCode::BAD_REQUEST
        );
        let fields = send(
            &app,
            get(&format!("/national/quality?{q}&programme=P001&download=fields.csv"), &analyst),
        )
        .await;
        assert!(fields.body.starts_with("field,complete\n"), "{}", fields.body);
        let cases = send(&app, get("/national/cases.csv", &analyst)).await;
        assert!(
            cases.body.starts_with(
                "programme_code,kpi,period_from,period_to,level,direction,finding,stage,opened_at\n"
            ),
            "{}",
            cases.body
        );
        // The national overview: submissions and patients seen by several programmes, a page
        // at a time, every row downloadable.
        let subs = send(&app, get("/national/submissions.csv", &analyst)).await;
        assert!(
            subs.body.starts_with(
                "programme_code,period_from,period_to,episodes,key_id,current,sha256\n"
            ),
            "{}",
            subs.body
        );
        let held = subs.body.lines().count() - 1;
        assert!(held > 0);
        let page = send(&app, get("/national", &analyst)).await;
        assert!(
            page.body
                .contains(&format!("<caption>{held} submission(s), newest first</caption>")),
            "{}",
            page.body
        );
        let last = send(&app, get("/national?submissions-page=999", &analyst)).await;
        assert_eq!(last.status, StatusCode::OK);
        let dups = send(&app, get("/national/duplicates.xlsx", &analyst)).await;
        assert!(dups.bytes.starts_with(b"PK"));
        assert_eq!(
            send(&app, get("/national/duplicates.pdf", &analyst))
                .await
                .status,
            StatusCode::NOT_FOUND
        );
        let agg = send(&app, get(&format!("/aggregates.xlsx?by=sex&{q}"), &analyst)).await;
        assert!(agg.bytes.starts_with(b"PK"));
        let ineq = send(
            &app,
            get(&format!("/national/inequalities.csv?{q}"), &analyst),
        )
        .await;
        assert!(
            ineq.body
                .starts_with("grouping,group,referred,started,uptake,ci_low,ci_high\n"),
            "{}",
            ineq.body
        );
        // Each grouping is drawn too, and the chart downloads.
        let chart = send(
            &app,
            get(&format!("/national/inequalities/chart.svg?by=3&{q}"), &analyst),
        )
        .await;
        assert_eq!(chart.status, StatusCode::OK, "{}", chart.body);
        assert!(
            chart.body.contains("Uptake by deprivation quintile")
                && chart.body.contains("The dashed line is the overall uptake"),
            "{}",
            chart.body
        );
        assert!(send(&app, get(&format!("/national/inequalities/chart.png?by=0&{q}"), &analyst))
            .await
            .bytes
            .starts_with(b"\x89PNG"));
        assert_eq!(
            send(&app, get(&format!("/national/inequalities/chart.svg?by=9&{q}"), &analyst))
                .await
                .status,
            StatusCode::BAD_REQUEST
        );
        let page = send(&app, get(&format!("/national/inequalities?{q}"), &analyst)).await;
        assert_eq!(page.body.matches("/national/inequalities/chart.svg?by=").count(), 5);
        let subs = send(
            &app,
            get(
                &format!("/national/quality?{q}&download=submissions.csv"),
                &analyst,
            ),
        )
        .await;
        assert!(
            subs.body
                .starts_with("programme_code,status,episodes,key_id\n"),
            "{}",
            subs.body
        );
        assert_eq!(
            subs.body.lines().count(),
            13,
            "twelve programmes: {}",
            subs.body
        );
        let comp = send(
            &app,
            get(
                &format!("/national/quality?{q}&download=completeness.xlsx"),
                &analyst,
            ),
        )
        .await;
        assert!(comp.bytes.starts_with(b"PK"));
        let bad = send(
            &app,
            get(
                &format!("/national/quality?{q}&download=secrets.csv"),
                &analyst,
            ),
        )
        .await;
        assert_eq!(bad.status, StatusCode::NOT_FOUND);
        for grouping in ["sex", "age band", "ethnic group", "priority group"] {
            assert!(ineq.body.contains(&format!("\n{grouping},")), "{grouping}");
        }
    });
}

/// Every form route (and page) of the app, the way a personal API token would drive it.
const FORM_ROUTES: &[&str] = &[
    "/",
    "/account/password",
    "/account/tokens",
    "/admin/agreements",
    "/admin/national-figures",
    "/admin/projects",
    "/admin/users",
    "/admin/users/change",
    "/admin/users/security",
    "/logout",
    "/national/outliers",
    "/national/outliers.csv",
    "/national/outliers/case",
    "/national/receive",
    "/national/report",
    "/national/report.html",
    "/p/P001/episodes",
    "/p/P001/episodes/new",
    "/p/P001/episodes/E1",
    "/p/P001/episodes/E1/edit",
    "/p/P001/episodes/E1/assessment1",
    "/p/P001/episodes/E1/assessment2",
    "/p/P001/export.csv",
    "/p/P001/export.xlsx",
    "/p/P001/export.json",
    "/p/P001/profile",
    "/p/P001/submit",
    "/p/P001/submit/confirm",
    "/p/P001/upload",
    "/p/P001/upload/cancel",
    "/p/P001/upload/confirm",
    "/research",
    "/research/demo/extract.csv",
    "/account/security-code",
];

/// privacy.md, "Access control": a personal API token authenticates the JSON API only. With
/// every role's token and no cookie, every form route and page answers as for someone not
/// signed in (the admin's token cannot create users or reset a lead's password); the API's
/// cookie calls that change something need the session's CSRF token in a header; a new
/// password revokes the user's tokens, and says so.
#[test]
fn personal_api_tokens_never_drive_forms() {
    for (db, ndb) in databases().into_iter().zip(databases()) {
        let app = setup(&db);
        common::synthetic_national(&app, &db, &ndb);
        rt().block_on(async {
            for who in ["staff", "lead", "admin", "analyst"] {
                let (cookie, _) = login(&app, who).await;
                let token = make_token(&app, &cookie).await;
                for path in FORM_ROUTES {
                    for method in ["GET", "POST"] {
                        let req = Request::builder()
                            .method(method)
                            .uri(*path)
                            .header(header::AUTHORIZATION, format!("Bearer {token}"))
                            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                            .body(Body::from(
                                "csrf=&action=reset&username=lead&role=national_analyst&password=x",
                            ))
                            .unwrap();
                        let r = send(&app, req).await;
                        assert!(
                            r.status == StatusCode::METHOD_NOT_ALLOWED
                                || (r.status == StatusCode::SEE_OTHER && r.location == "/login"),
                            "{}: {who}'s token, {method} {path}: {} {} {}",
                            db.backend,
                            r.status,
                            r.location,
                            &r.body[..r.body.len().min(200)]
                        );
                    }
                }
            }
            // The lead's password still works: the admin's token reset nothing.
            let (lead, lead_csrf) = login(&app, "lead").await;
            // The API with the session cookie: reading is fine, changing needs the header.
            let episode = serde_json::json!({
                "episode_id": "CSRF1", "nhs_number": "9434765862", "date_of_birth": "1950-02-02", "sex": "male",
                "initiating_event": "mi_stemi", "treatment": "pci", "event_date": "2025-01-05",
                "referral_date": "2025-01-08", "status": "referred"
            });
            let cookie_json = |csrf: Option<&str>| {
                let mut b = Request::post("/api/v1/programmes/P001/episodes")
                    .header(header::COOKIE, &lead)
                    .header(header::CONTENT_TYPE, "application/json");
                if let Some(c) = csrf {
                    b = b.header("X-CSRF-Token", c);
                }
                b.body(Body::from(episode.to_string())).unwrap()
            };
            let r = send(&app, cookie_json(None)).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
            assert!(r.body.contains("\"code\":\"csrf_required\""), "{}", r.body);
            let r = send(&app, cookie_json(Some("not-the-token"))).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
            let r = send(&app, cookie_json(Some(&lead_csrf))).await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
            assert_eq!(send(&app, get("/api/v1/me", &lead)).await.status, StatusCode::OK);
            // A new password revokes the lead's tokens, and the sign-in page says so.
            let token = make_token(&app, &lead).await;
            assert_eq!(send(&app, bearer("/api/v1/me", &token)).await.status, StatusCode::OK);
            let new = "another-long-password-2";
            let r = send(
                &app,
                post(
                    "/account/password",
                    &lead,
                    &[("csrf", &lead_csrf), ("current", PASSWORD), ("new", new), ("again", new)],
                ),
            )
            .await;
            assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
            assert!(r.location.contains("tokens_revoked"), "{}", r.location);
            let page = send(&app, get(&r.location, "")).await;
            assert!(page.body.contains("API tokens no longer work"), "{}", page.body);
            assert_eq!(
                send(&app, bearer("/api/v1/me", &token)).await.status,
                StatusCode::UNAUTHORIZED
            );
            // An administrator's reset revokes them too.
            let (admin, admin_csrf) = login(&app, "admin").await;
            let (staff, _) = login(&app, "staff").await;
            let staff_token = make_token(&app, &staff).await;
            let r = send(
                &app,
                post(
                    "/admin/users/change",
                    &admin,
                    &[("csrf", &admin_csrf), ("username", "staff"), ("action", "reset")],
                ),
            )
            .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            assert!(r.body.contains("API token(s) no longer work"), "{}", r.body);
            assert_eq!(
                send(&app, bearer("/api/v1/me", &staff_token)).await.status,
                StatusCode::UNAUTHORIZED
            );
        });
    }
}

/// A request body that counts the bytes the server pulls from it: `total` bytes in 1 MB
/// chunks, made as they are asked for.
struct CountedBody {
    left: usize,
    pulled: Arc<std::sync::atomic::AtomicUsize>,
}

impl http_body::Body for CountedBody {
    type Data = axum::body::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        if self.left == 0 {
            return std::task::Poll::Ready(None);
        }
        let n = self.left.min(1 << 20);
        self.left -= n;
        self.pulled
            .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        std::task::Poll::Ready(Some(Ok(http_body::Frame::data(axum::body::Bytes::from(
            vec![b'x'; n],
        )))))
    }
}

/// A submission body sent before signing in is never read: without a token, with an unknown,
/// expired or revoked one, the server answers 401 having pulled nothing of 500 MB.
#[test]
fn submission_bodies_are_not_read_before_the_token_is_checked() {
    let (db, ndb) = (
        crest_store::testing::sqlite_db(),
        crest_store::testing::sqlite_db(),
    );
    let app = setup(&db);
    common::synthetic_national(&app, &db, &ndb);
    rt().block_on(async {
        for token in [None, Some("not-a-token")] {
            let pulled = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let mut req = Request::post("/api/v1/submissions");
            if let Some(t) = token {
                req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
            }
            let body = Body::new(CountedBody {
                left: 500 << 20,
                pulled: pulled.clone(),
            });
            let r = send(&app, req.body(body).unwrap()).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
            assert_eq!(
                pulled.load(std::sync::atomic::Ordering::Relaxed),
                0,
                "{token:?}: the body was read before the token was checked"
            );
        }
    });
}

/// An upload preview keeps only what it needs: a refused over-long cell is kept cut short (not
/// whole) for the hour the upload waits, and a programme keeps its newest ten previews, so
/// previews cannot fill the store.
#[test]
fn upload_previews_keep_only_what_they_need() {
    for db in databases() {
        let app = setup(&db);
        rt().block_on(async {
            let (cookie, csrf) = login(&app, "lead").await;
            let upload = |bytes: Vec<u8>| {
                let b = "PREVIEWB";
                let mut body = format!("--{b}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"e.csv\"\r\n\r\n").into_bytes();
                body.extend_from_slice(&bytes);
                body.extend_from_slice(format!("\r\n--{b}--\r\n").as_bytes());
                Request::post("/p/P001/upload")
                    .header(header::COOKIE, &cookie)
                    .header(header::CONTENT_TYPE, format!("multipart/form-data; boundary={b}"))
                    .body(Body::from(body))
                    .unwrap()
            };
            let long = "é".repeat(4_000_000);
            let csv = format!(
                "programme_code,episode_id,nhs_number,date_of_birth,sex,initiating_event,treatment,event_date,referral_date,status,family_name\n\
                 P001,OK1,9434765862,1950-01-01,male,mi_stemi,pci,2025-01-10,2025-01-12,referred,Smith\n\
                 P001,LONG1,9434765870,1950-01-01,male,mi_stemi,pci,2025-01-10,2025-01-12,referred,{long}\n"
            );
            assert!(csv.len() > 8_000_000);
            let r = send(&app, upload(csv.into_bytes())).await;
            assert_eq!(r.status, StatusCode::OK, "{}", &r.body[..r.body.len().min(500)]);
            assert!(r.body.contains("more than 10000 characters"), "{}", &r.body[..r.body.len().min(3000)]);
            let kept = common::sync(|| {
                db.query_i64("SELECT CAST(coalesce(max(length(file) + length(errors)), 0) AS BIGINT) FROM pending_uploads")
            });
            assert!(kept > 0 && kept < 100_000, "{}: the preview keeps {kept} bytes", db.backend);
            // The valid row is still stored on confirmation; the long one is still refused.
            let token = hidden(&r.body, "token");
            let r = send(
                &app,
                post("/p/P001/upload/confirm", &cookie, &[("csrf", &csrf), ("token", &token), ("name", "e.csv")]),
            )
            .await;
            assert!(r.status.is_success() || r.status == StatusCode::SEE_OTHER, "{}", r.body);
            assert!(open(&db).run(|s| s.episode("P001", "OK1").unwrap()).is_some());
            assert!(open(&db).run(|s| s.episode("P001", "LONG1").unwrap()).is_none());
            // Twelve previews: the newest ten wait.
            for i in 0..12 {
                let csv = format!(
                    "programme_code,episode_id,nhs_number,date_of_birth,sex,initiating_event,treatment,event_date,referral_date,status\n\
                     P001,N{i},9434765919,1950-01-01,male,mi_stemi,pci,2025-01-10,2025-01-12,referred\n"
                );
                assert_eq!(send(&app, upload(csv.into_bytes())).await.status, StatusCode::OK);
            }
            let waiting = common::sync(|| {
                db.query_i64("SELECT count(*) FROM pending_uploads WHERE programme_code = 'P001'")
            });
            assert_eq!(waiting, crest_store::MAX_PENDING_UPLOADS as i64, "{}", db.backend);
        });
    }
}

/// Guesses raced in parallel from one address get no further than guesses in turn: of 64
/// wrong passwords sent at once for different names, about the address's twenty free
/// attempts are checked and the rest are refused with a wait.
#[test]
fn parallel_guesses_from_one_address_are_held_to_its_limit() {
    let db = &databases()[0];
    let app = setup(db);
    rt().block_on(async {
        let page = send(&app, get("/login", "")).await;
        let pre = cookie_value(&page.cookies, "crest_login").unwrap();
        let csrf = hidden(&page.body, "csrf");
        let all = (0..64).map(|i| {
            let app = app.clone();
            let (pre, csrf) = (pre.clone(), csrf.clone());
            tokio::spawn(async move {
                try_sign_in(&app, &pre, &csrf, &format!("guess{i}"), "wrong-password").await
            })
        });
        let mut checked = 0;
        for r in all.collect::<Vec<_>>() {
            let r = r.await.unwrap();
            match r.status {
                StatusCode::UNAUTHORIZED => checked += 1,
                StatusCode::TOO_MANY_REQUESTS => {}
                other => panic!("{other}: {}", r.body),
            }
        }
        assert!(
            (20..=23).contains(&checked),
            "{checked} guesses were checked"
        );
    });
}

/// An episode read from the API can be sent back as it was read: the fields crest works out
/// itself (age at event) are set aside, not refused; a field not in the dataset still is.
#[test]
fn an_episode_read_from_the_api_can_be_sent_back() {
    let db = &databases()[0];
    let app = setup(db);
    rt().block_on(async {
        let (cookie, _) = login(&app, "staff").await;
        let token = make_token(&app, &cookie).await;
        let r = send(&app, bearer("/api/v1/programmes/P001/episodes/E1", &token)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let mut episode: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert!(episode.get("age_at_event").is_some(), "{episode}");
        let r = send(
            &app,
            bearer_json(
                "PUT",
                "/api/v1/programmes/P001/episodes/E1",
                &token,
                episode.clone(),
            ),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        episode["episode_id"] = "E1-COPY".into();
        episode["event_date"] = "2024-04-02".into();
        episode["referral_date"] = "2024-04-04".into();
        episode["age_at_event"] = "7".into();
        let r = send(
            &app,
            bearer_json(
                "POST",
                "/api/v1/programmes/P001/episodes",
                &token,
                episode.clone(),
            ),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let copy = open(db).run(|s| s.episode("P001", "E1-COPY").unwrap().unwrap());
        assert_ne!(
            copy.get(crest_core::Col::AgeAtEvent),
            &crest_core::Value::Int(7)
        );
        episode["episode_id"] = "E1-OTHER".into();
        episode["shoe_size"] = "9".into();
        let r = send(
            &app,
            bearer_json("POST", "/api/v1/programmes/P001/episodes", &token, episode),
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
        assert!(r.body.contains("shoe_size"), "{}", r.body);
    });
}

/// Security-code secrets are sealed in the store with the server's key: one set up on the page
/// is stored sealed, never as the key the app shows; one stored in the clear before the server
/// had a key still works and is sealed when its user signs in.
#[test]
fn security_code_secrets_are_sealed_at_rest() {
    for db in databases() {
        let app = setup(&db);
        app.set_server_key(&crest_privacy::Key::from_secret([6; 32]));
        let plain = "JBSWY3DPEHPK3PXPJBSWY3DP";
        open(&db).run(move |s| {
            let mut u = s.user("staff").unwrap().unwrap();
            u.totp_secret = plain.to_string();
            s.put_user(&u).unwrap();
        });
        rt().block_on(async {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs();
            let code =
                crest_store::totp::code_at(&crest_store::totp::from_base32(plain).unwrap(), now, 6);
            let page = send(&app, get("/login", "")).await;
            let pre = cookie_value(&page.cookies, "crest_login").unwrap();
            let r = send(
                &app,
                post(
                    "/login",
                    &format!("crest_login={pre}"),
                    &[
                        ("username", "staff"),
                        ("password", PASSWORD),
                        ("csrf", &hidden(&page.body, "csrf")),
                        ("code", &code),
                    ],
                ),
            )
            .await;
            assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
            let stored = open(&db).run(|s| s.user("staff").unwrap().unwrap().totp_secret);
            assert!(
                stored.starts_with("sealed1:") && !stored.contains(plain),
                "{}: {stored}",
                db.backend
            );
            // Set up on the page: stored sealed.
            let (lead, csrf) = login(&app, "lead").await;
            let page = send(&app, get("/account/security-code", &lead)).await;
            let (secret, code) = code_now(&page.body);
            let r = send(
                &app,
                post(
                    "/account/security-code",
                    &lead,
                    &[
                        ("csrf", &csrf),
                        ("action", "enable"),
                        ("secret", &secret),
                        ("code", &code),
                    ],
                ),
            )
            .await;
            assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
            let stored = open(&db).run(|s| s.user("lead").unwrap().unwrap().totp_secret);
            assert!(
                stored.starts_with("sealed1:") && !stored.contains(&secret),
                "{}: {stored}",
                db.backend
            );
        });
    }
}

/// The text of each row of the first table body after `heading`: its cells (header or data),
/// inner tags stripped and `&amp;` undone.
fn table_after(body: &str, heading: &str) -> Vec<Vec<String>> {
    let at = body
        .find(heading)
        .unwrap_or_else(|| panic!("{heading}: {body}"));
    let t = &body[at..];
    let t = &t[t.find("<tbody>").unwrap()..t.find("</tbody>").unwrap()];
    t.split("</tr>")
        .filter(|row| row.contains("<t"))
        .map(|row| {
            let mut cells = Vec::new();
            let mut rest = row;
            while let Some(open) = [rest.find("<td"), rest.find("<th")]
                .into_iter()
                .flatten()
                .min()
            {
                let inner = &rest[open..];
                let content_at = inner.find('>').unwrap() + 1;
                let close = inner.find("</t").unwrap();
                let mut text = String::new();
                let mut in_tag = false;
                for c in inner[content_at..close].chars() {
                    match c {
                        '<' => in_tag = true,
                        '>' => in_tag = false,
                        c if !in_tag => text.push(c),
                        _ => {}
                    }
                }
                cells.push(text.replace("&amp;", "&").trim().to_string());
                rest = &inner[close + 3..];
            }
            cells
        })
        .collect()
}

/// Every row of the lead's "Against the national picture" table, for every programme of a
/// synthetic national store, shows the programme's own KPI and the pooled national figure of
/// the same key, each with its unit, and counts the programmes meeting that same KPI.
#[test]
fn the_national_comparison_matches_every_kpi_by_key_with_its_unit() {
    use crest_stats::published::{self, Met};
    for (db, ndb) in databases().into_iter().zip(databases()) {
        let app = setup(&db);
        common::synthetic_national(&app, &db, &ndb);
        let period = common::fy2024();
        let mut n = crest_store::NationalStore::open(&ndb.url).unwrap();
        let progs = n.programmes().unwrap();
        let eps = n.kpi_episodes(period.from, period.to, &progs).unwrap();
        drop(n);
        let report = crest_stats::compute(
            &progs,
            &eps,
            period,
            &crest_stats::kpis::Thresholds::default(),
        );
        let codes: Vec<String> = progs.iter().map(|p| p.code.clone()).collect();
        open(&db).run(|s| {
            crest_web::add_user(
                s,
                "network",
                crest_store::Role::ProgrammeLead,
                &codes,
                PASSWORD,
            )
            .unwrap();
        });
        let publ: Vec<published::PublishedProgramme> =
            report.programmes.iter().map(published::programme).collect();
        let with_unit = |key: &str, v: &str| -> String {
            if v == "*" || v == "–" {
                return v.to_string();
            }
            match key {
                "duration" | "wait_cabg" | "wait_mi_pci" => format!("{v} days"),
                "mdt" if v == "1" => "1 profession".to_string(),
                "mdt" => format!("{v} professions"),
                "priority_groups" => format!("{v} of 5 groups"),
                _ => {
                    assert!(v.ends_with('%'), "{key}: {v}");
                    v.to_string()
                }
            }
        };
        rt().block_on(async {
            let (cookie, _) = login(&app, "network").await;
            for (p, mine) in report.programmes.iter().zip(&publ) {
                let r = send(
                    &app,
                    get(
                        &format!(
                            "/p/{}/dashboard?from=2024-04-01&to=2025-03-31",
                            p.programme_code
                        ),
                        &cookie,
                    ),
                )
                .await;
                assert_eq!(r.status, StatusCode::OK, "{}", r.body);
                let rows = table_after(
                    &r.body,
                    "Each KPI: your programme as the national audit holds it",
                );
                let keys = crest_stats::kpis::KPI_KEYS;
                assert_eq!(rows.len(), keys.len(), "{rows:?}");
                for (row, key) in rows.iter().zip(keys) {
                    assert_eq!(row[0], crest_stats::kpis::kpi_label(key), "{rows:?}");
                    let local = mine.kpis.iter().find(|k| k.key == key).unwrap();
                    assert_eq!(
                        row[1],
                        with_unit(key, &local.value),
                        "{} {key}: {row:?}",
                        p.programme_code
                    );
                    let national = report
                        .national
                        .kpis
                        .iter()
                        .find(|k| k.key == key)
                        .map_or("–".to_string(), |k| {
                            with_unit(key, &published::kpi(k).value)
                        });
                    assert_eq!(row[2], national, "{key}: {row:?}");
                    let count = |m: Met| {
                        publ.iter()
                            .filter(|q| q.kpis.iter().any(|k| k.key == key && k.met == m))
                            .count()
                    };
                    let (yes, no) = (count(Met::Yes), count(Met::No));
                    assert_eq!(row[3], format!("{yes} of {}", yes + no), "{key}: {row:?}");
                }
            }
        });
    }
}

/// What on a page is not in people's words: database names, bare codes, dates as stored,
/// numbers without thousands separators. Each finding names the user and the page.
fn words_found(user: &str, path: &str, body: &str, bare_codes: &[String]) -> Vec<String> {
    let mut found = Vec::new();
    let text = readable_text(body);
    for w in database_words(&text) {
        found.push(format!("{user} {path}: {w}"));
    }
    // A code alone in a cell or a line ("female", "england") is shown by its label.
    for code in bare_codes {
        let lone = text
            .split(['\n', '·', '(', ')', ','])
            .any(|piece| piece.trim() == code.as_str());
        if lone {
            found.push(format!("{user} {path}: the code {code}"));
        }
    }
    // Moments and dates as people write them, not as stored.
    for line in text.lines() {
        let b = line.as_bytes();
        let iso = (0..b.len().saturating_sub(9)).any(|i| {
            b[i..i + 10].iter().enumerate().all(|(j, c)| {
                if j == 4 || j == 7 {
                    *c == b'-'
                } else {
                    c.is_ascii_digit()
                }
            })
        });
        if iso {
            found.push(format!(
                "{user} {path}: a date as stored in {:?}",
                line.trim()
            ));
        }
    }
    // Numbers of 1,000 or more carry thousands separators (92,441; 1,105); a four-digit
    // number from 1900 to 2100 reads as a year.
    // An NHS number's last group (943 476 5919) and an id's digits (0001) are not counts.
    for line in text.lines() {
        let pieces: Vec<&str> = line
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == ',' || c == '.' || c == '-'))
            .filter(|w| !w.is_empty())
            .collect();
        for (i, w) in pieces.iter().enumerate() {
            let year = w.len() == 4 && w.parse::<u32>().is_ok_and(|y| (1900..=2100).contains(&y));
            let three = |j: Option<usize>| {
                j.and_then(|j| pieces.get(j))
                    .is_some_and(|p| p.len() == 3 && p.chars().all(|c| c.is_ascii_digit()))
            };
            let nhs = three(i.checked_sub(1)) && three(i.checked_sub(2));
            if w.len() >= 4
                && w.len() <= 9
                && w.chars().all(|c| c.is_ascii_digit())
                && !year
                && !nhs
                && !w.starts_with('0')
            {
                found.push(format!(
                    "{user} {path}: the number {w} without separators in {:?}",
                    line.trim()
                ));
            }
        }
    }
    found
}

/// The text a person reads on a page: no tags, scripts, styles or `<code>` (where a code a
/// person must type into a file is shown as such).
fn readable_text(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some(i) = rest.find('<') {
        out.push_str(&rest[..i]);
        // Each element's text on a line of its own.
        out.push('\n');
        let tail = &rest[i..];
        let skip_to = ["<code", "<script", "<style", "<pre"]
            .iter()
            .find(|t| tail.starts_with(**t))
            .map(|t| format!("</{}>", &t[1..]));
        rest = match skip_to {
            Some(end) => tail.find(&end).map_or("", |j| &tail[j + end.len()..]),
            None => tail.find('>').map_or("", |j| &tail[j + 1..]),
        };
    }
    out.push_str(rest);
    out
}

/// Words joined by underscores (`initiating_event`, `a1_six_mwt_m`): how a database names
/// things, never how a person reads them.
fn database_words(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| {
            w.contains('_')
                && !w.starts_with('_')
                && !w.ends_with('_')
                && w.chars().any(|c| c.is_ascii_lowercase())
        })
        .map(str::to_string)
        .collect()
}

/// Every page each role can reach by following links from its start page, its navigation and
/// the pages it is sent to speaks to people: no database word outside `<code>`.
#[test]
fn every_page_of_every_role_speaks_words_not_database_names() {
    let (db, ndb) = (
        crest_store::testing::sqlite_db(),
        crest_store::testing::sqlite_db(),
    );
    let app = setup(&db);
    common::synthetic_national(&app, &db, &ndb);
    let region = common::sync(|| {
        let mut n = crest_store::NationalStore::open(&ndb.url).unwrap();
        n.programmes().unwrap()[0].region.clone()
    });
    open(&db).run(|s| {
        crest_web::add_user(
            s,
            "commissioner",
            crest_store::Role::Commissioner,
            &[region],
            PASSWORD,
        )
        .unwrap();
        crest_web::add_user(s, "res", crest_store::Role::Researcher, &[], PASSWORD).unwrap();
    });
    // Codes that differ from their labels ("female" is shown "Female", "mi_stemi" as words).
    let mut bare_codes: Vec<String> = crest_core::FIELDS
        .iter()
        .filter_map(|f| match f.kind {
            crest_core::Kind::Code(codes) => Some(codes),
            _ => None,
        })
        .flatten()
        .filter(|c| c.code != c.label)
        .map(|c| c.code.to_string())
        .collect();
    bare_codes.extend(["england", "wales", "northern_ireland"].map(String::from));
    bare_codes.sort();
    bare_codes.dedup();
    rt().block_on(async {
        let mut found: Vec<String> = Vec::new();
        for (user, start) in [
            ("lead", "/p/P001/episodes"),
            ("staff", "/p/P001/episodes"),
            ("analyst", "/national"),
            ("admin", "/"),
            ("commissioner", "/region"),
            ("res", "/research"),
        ] {
            let (cookie, _) = login(&app, user).await;
            let mut queue = vec!["/".to_string(), start.to_string()];
            let mut seen = std::collections::HashSet::new();
            let mut per_page: std::collections::HashMap<String, usize> = Default::default();
            let mut visited = Vec::new();
            while let Some(path) = queue.pop() {
                // Up to three queries of each page (a query narrows or details the same page),
                // at most 120 pages a role.
                let page_key = path.split('?').next().unwrap_or("").to_string();
                let times = per_page.entry(page_key).or_default();
                *times += 1;
                if *times > 3 || !seen.insert(path.clone()) || seen.len() > 120 {
                    continue;
                }
                let r = send(&app, get(&path, &cookie)).await;
                if r.status != StatusCode::OK || !r.body.starts_with("<!DOCTYPE") {
                    continue;
                }
                found.extend(words_found(user, &path, &r.body, &bare_codes));
                visited.push(path.clone());
                for part in r.body.split("href=\"").skip(1) {
                    let href = part.split('"').next().unwrap_or("").replace("&amp;", "&");
                    let plain = href.split('?').next().unwrap_or("");
                    let download = [
                        ".csv", ".xlsx", ".png", ".svg", ".pdf", ".json", ".js", ".css", ".zip",
                        ".parquet",
                    ]
                    .iter()
                    .any(|x| plain.ends_with(x));
                    if href.starts_with('/')
                        && !href.starts_with("//")
                        && !download
                        && !href.contains("/api/")
                    {
                        queue.push(href);
                    }
                }
            }
            // The crawl reaches the role's pages, not only its start.
            assert!(visited.len() >= 5, "{user}: only {visited:?}");
        }
        // Pages that answer a form: an upload's check with a wrong code, a date before the
        // event and a missing column's neighbour, and the upload's result.
        let (cookie, csrf) = login(&app, "lead").await;
        let upload = |csv: &str| {
            let b = "WORDSBOUNDARY";
            Request::post("/p/P001/upload")
                .header(header::COOKIE, &cookie)
                .header(
                    header::CONTENT_TYPE,
                    format!("multipart/form-data; boundary={b}"),
                )
                .body(Body::from(multipart(
                    b,
                    &[("csrf", None, &csrf), ("file", Some("up.csv"), csv)],
                )))
                .unwrap()
        };
        let bad = "programme_code,episode_id,nhs_number,date_of_birth,sex,initiating_event,treatment,event_date,referral_date,status\n\
                   P001,W1,9434765854,1950-01-01,male,heart_attack,pci,2025-01-10,2025-01-02,referred\n\
                   P001,W2,9434765919,1950-01-01,female,mi_stemi,pci,2025-01-10,2025-01-12,referred\n";
        let r = send(&app, upload(bad)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert!(r.body.contains("rejected"), "{}", r.body);
        // What the file holds stays as the file has it, in code; the rest reads as words.
        let text = words(&r.body);
        for want in [
            "What led to the referral (initiating_event)",
            "'heart_attack' is not one of the codes for What led to the referral (column initiating_event); use one of: Heart attack (STEMI) (mi_stemi)",
            "is before date of the event (10 January 2025)",
        ] {
            assert!(text.contains(want), "{want}: {text}");
        }
        assert!(r.body.contains("<code>heart_attack</code>") && r.body.contains("(<code>mi_stemi</code>)"));
        found.extend(words_found("lead", "POST /p/P001/upload", &r.body, &bare_codes));
        let confirm = send(
            &app,
            post(
                "/p/P001/upload/confirm",
                &cookie,
                &[("csrf", &csrf), ("token", &hidden(&r.body, "token")), ("name", "up.csv")],
            ),
        )
        .await;
        found.extend(words_found(
            "lead",
            "POST /p/P001/upload/confirm",
            &confirm.body,
            &bare_codes,
        ));
        found.sort();
        found.dedup();
        assert!(
            found.is_empty(),
            "{} database words on pages:\n{}",
            found.len(),
            found.join("\n")
        );
    });
}

/// National analysts read the annual report on the web: a chosen period and method, the
/// report at once as a page (the same as `crest report annual` writes), and the PDF as a
/// download, with a waiting message once pressed. Nobody else reaches it.
#[test]
fn analysts_read_the_annual_report_on_the_web_and_download_its_pdf() {
    let (db, ndb) = (databases().remove(0), databases().remove(0));
    let app = setup(&db);
    common::synthetic_national(&app, &db, &ndb);
    let mut n = crest_store::NationalStore::open(&ndb.url).unwrap();
    let expected = crest_report::annual::annual(
        &mut n,
        common::fy2024(),
        common::today(),
        crest_stats::funnel::Method::Plain,
    )
    .unwrap()
    .html();
    drop(n);
    rt().block_on(async {
        let (analyst, _) = login(&app, "analyst").await;
        let page = send(
            &app,
            get(
                "/national/report?from=01/04/2024&to=31/03/2025&method=plain",
                &analyst,
            ),
        )
        .await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let html_href = "/national/report.html?from=2024-04-01&amp;to=2025-03-31&amp;method=plain";
        let pdf_href = "/national/report.pdf?from=2024-04-01&amp;to=2025-03-31&amp;method=plain";
        assert!(
            page.body.contains(html_href)
                && page.body.contains(pdf_href)
                && page.body.contains("data-wait=\"pdf-wait\""),
            "{}",
            page.body
        );
        let report = send(&app, get(&html_href.replace("&amp;", "&"), &analyst)).await;
        assert_eq!(report.status, StatusCode::OK);
        assert_eq!(
            report.body, expected,
            "the same report as the command line's"
        );
        assert!(report.body.contains("1 April 2024"));
        // An unknown method is refused with a reason, not guessed.
        let r = send(&app, get("/national/report.html?method=guess", &analyst)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
        for who in ["lead", "staff", "admin"] {
            let (cookie, _) = login(&app, who).await;
            let r = send(&app, get(&html_href.replace("&amp;", "&"), &cookie)).await;
            assert_ne!(r.status, StatusCode::OK, "{who}");
            assert!(!r.body.contains("Methods"), "{who}");
        }
        // The PDF needs Chromium, which CI always has.
        if std::process::Command::new("chromium")
            .arg("--version")
            .output()
            .is_err()
        {
            crest_store::testing::skip(
                "the annual report's PDF download needs Chromium",
                "CREST_REQUIRE_BROWSER",
            );
            return;
        }
        let pdf = send(&app, get(&pdf_href.replace("&amp;", "&"), &analyst)).await;
        assert_eq!(pdf.status, StatusCode::OK, "{}", pdf.body);
        assert!(pdf.bytes.starts_with(b"%PDF"));
        let file = scratch_dir("annual-web").join("annual.pdf");
        std::fs::write(&file, &pdf.bytes).unwrap();
        let text = std::process::Command::new("pdftotext")
            .arg(&file)
            .arg("-")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&text.stdout);
        assert!(
            text.contains("Methods") && text.contains("Disclosure control"),
            "{text}"
        );
    });
}

/// An API table's rows as its CSV has them: numbers written out, null as empty.
fn text_rows(rows: &serde_json::Value) -> Vec<Vec<String>> {
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|c| match c {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Null => String::new(),
                    other => other.to_string(),
                })
                .collect()
        })
        .collect()
}

/// The differencing attack of the second review, by a researcher and a commissioner: every
/// whole-month window of a financial year, by programme, through the API. Each answer is cut
/// from the published grid (the year or one of its quarters), monthly breakdowns are refused,
/// and an attacker solving all the answers together by integer programming
/// (`attack_aggregates.py`, scipy's milp) recovers no suppressed count.
#[test]
fn overlapping_periods_cannot_be_differenced_into_a_suppressed_count() {
    let (db, ndb) = (databases().remove(0), databases().remove(0));
    let app = setup(&db);
    common::synthetic_national(&app, &db, &ndb);
    common::add_planners(&db, &ndb);
    let month_start = |i: u32| {
        let (y, m) = if i < 9 { (2024, i + 4) } else { (2025, i - 8) };
        crest_core::Date::from_ymd(y, m, 1).unwrap()
    };
    let month_end = |i: u32| {
        let (y, m) = if i < 9 { (2024, i + 4) } else { (2025, i - 8) };
        crest_core::Date::from_ymd(y, m, crest_core::date::days_in_month(y, m)).unwrap()
    };
    rt().block_on(async {
        for who in ["res", "comm"] {
            let (cookie, _) = login(&app, who).await;
            let mut answers = Vec::new();
            let mut periods = std::collections::BTreeSet::new();
            for i in 0..12 {
                for j in i..12 {
                    let path = format!(
                        "/api/v1/aggregates?by=programme&measure=referred&from={}&to={}",
                        month_start(i),
                        month_end(j)
                    );
                    let r = send(&app, get(&path, &cookie)).await;
                    assert_eq!(r.status, StatusCode::OK, "{who} {path}: {}", r.body);
                    let t: serde_json::Value = serde_json::from_str(&r.body).unwrap();
                    periods.insert((t["from"].to_string(), t["to"].to_string()));
                    answers.push(serde_json::json!({
                        "from": t["from"], "to": t["to"], "rows": text_rows(&t["rows"]),
                    }));
                }
            }
            // 78 questions, five answers: the year and its four quarters.
            assert_eq!(periods.len(), 5, "{who}: {periods:?}");
            assert!(periods.contains(&("\"2024-04-01\"".into(), "\"2025-03-31\"".into())));
            assert!(periods.contains(&("\"2024-10-01\"".into(), "\"2024-12-31\"".into())));
            // Months are not on the grid.
            let r = send(
                &app,
                get(
                    "/api/v1/aggregates?by=programme,month&measure=referred&from=2024-04-01&to=2025-03-31",
                    &cookie,
                ),
            )
            .await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
            assert!(r.body.contains("not broken down by month"), "{}", r.body);
            let mut child = std::process::Command::new("python3")
                .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/attack_aggregates.py"))
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            {
                use std::io::Write;
                let input = serde_json::json!({ "answers": answers }).to_string();
                child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
            }
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            let found: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(found["recovered"], serde_json::json!([]), "{who}: {found}");
        }
    });
}

/// Recording a research project says at once what its approved fields would release (the
/// records an extract would keep, and how each quasi-identifier would be generalised), and
/// warns when that is under 90%.
#[test]
fn recording_a_project_previews_what_its_fields_release() {
    let (db, ndb) = (databases().remove(0), databases().remove(0));
    let app = setup(&db);
    common::synthetic_national(&app, &db, &ndb);
    common::add_planners(&db, &ndb);
    rt().block_on(async {
        let (admin, csrf) = login(&app, "admin").await;
        let record = |id: &'static str, fields: &'static str, k: &'static str| {
            post(
                "/admin/projects",
                &admin,
                &[
                    ("csrf", csrf.as_str()),
                    ("id", id),
                    ("title", "Uptake"),
                    ("approval", "IRAS 1"),
                    ("fields", fields),
                    ("researchers", "res"),
                    ("from", "01/01/2025"),
                    ("to", "31/12/2027"),
                    ("k", k),
                ],
            )
        };
        let r = send(&app, record("sex-only", "sex", "5")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let text = words(&r.body);
        assert!(
            text.contains("Project sex-only is recorded. An extract would release")
                && text.contains("(100.0%), with sex: as recorded.")
                && !text.contains("Warning"),
            "{text}"
        );
        // Every quasi-identifier at a k larger than most classes: generalised, and warned.
        let r = send(
            &app,
            record(
                "everything",
                "age_band,sex,ethnicity,imd_quintile,nation,priority_group,event_month",
                "50",
            ),
        )
        .await;
        let text = words(&r.body);
        assert!(text.contains("Project everything is recorded."), "{text}");
        assert!(text.contains("event_month: "), "{text}");
        let n = crest_store::NationalStore::open(&ndb.url)
            .unwrap()
            .projects()
            .unwrap();
        let p = n.iter().find(|p| p.id == "everything").unwrap();
        let preview = crest_privacy::research::preview(
            &mut crest_store::NationalStore::open(&ndb.url).unwrap(),
            p,
        )
        .unwrap();
        assert_eq!(
            text.contains("Warning: that is under 90%"),
            preview.share() < 0.9,
            "{text}"
        );
    });
}

/// What each role sees first, as words in reading order, is a reviewed snapshot
/// (`tests/snapshots/router__*.snap`): a change to what people see shows in review. Both back
/// ends must give the same words.
#[test]
fn each_roles_first_page_reads_as_reviewed() {
    for (db, ndb) in databases().into_iter().zip(databases()) {
        let app = setup(&db);
        common::synthetic_national(&app, &db, &ndb);
        common::add_planners(&db, &ndb);
        rt().block_on(async {
            let q = "from=2024-04-01&to=2025-03-31";
            for (user, path, name) in [
                (
                    "staff",
                    "/p/P001/episodes".to_string(),
                    "page_staff_episodes",
                ),
                (
                    "lead",
                    format!("/p/P001/dashboard?{q}"),
                    "page_lead_dashboard",
                ),
                (
                    "analyst",
                    format!("/national/dashboard?{q}"),
                    "page_analyst_dashboard",
                ),
                ("comm", format!("/region?{q}"), "page_commissioner_region"),
                (
                    "res",
                    format!("/aggregates?by=sex&{q}"),
                    "page_researcher_aggregates",
                ),
                ("admin", "/admin/users".to_string(), "page_admin_users"),
            ] {
                let (cookie, _) = login(&app, user).await;
                let r = send(&app, get(&path, &cookie)).await;
                assert_eq!(r.status, StatusCode::OK, "{user} {path}: {}", r.body);
                insta::assert_snapshot!(name, reading(&r.body));
            }
        });
    }
}

/// The dashboard charts each measure over the 24 months to the period's end, with its icons in
/// words; each chart downloads as SVG and PNG and its months as CSV and XLSX, the months'
/// counts those of the store; another programme's staff cannot download them.
#[test]
fn the_dashboard_charts_each_measure_over_time_and_downloads_them() {
    for (db, ndb) in databases().into_iter().zip(databases()) {
        let app = setup(&db);
        common::synthetic_national(&app, &db, &ndb);
        let fy = common::fy2024();
        let referred = open(&db).run(|s| {
            let programmes = s.programmes().unwrap();
            let mine: Vec<_> = programmes
                .into_iter()
                .filter(|p| p.code == "P001")
                .collect();
            s.kpi_episodes(fy.from, fy.to, &mine).unwrap().len()
        });
        rt().block_on(async {
            let (lead, _) = login(&app, "lead").await;
            let q = "from=2024-04-01&to=2025-03-31";
            let r = send(&app, get(&format!("/p/P001/dashboard?{q}"), &lead)).await;
            assert_eq!(r.status, StatusCode::OK);
            let text = words(&r.body);
            assert!(
                text.contains("Over time: April 2023 to March 2025"),
                "{text}"
            );
            for label in [
                "Uptake (started / referred)",
                "Median wait from referral to start (days)",
                "Referrals",
            ] {
                assert!(r.body.contains(&format!("<h3>{label}</h3>")), "{label}");
            }
            assert!(r.body.contains("id=\"spc-uptake-t\""), "{}", r.body);
            let csv = send(
                &app,
                get(&format!("/p/P001/over-time.csv?measure=uptake&{q}"), &lead),
            )
            .await;
            // A month with a referral is a point; 12 points are enough for limits.
            let drawn = csv
                .body
                .lines()
                .skip(1)
                .filter(|l| l.split(',').nth(2) != Some("0"))
                .count();
            let desc = r
                .body
                .split("id=\"spc-uptake-d\">")
                .nth(1)
                .unwrap()
                .split("</desc>")
                .next()
                .unwrap();
            assert!(desc.contains(&format!("{drawn} month(s) drawn")), "{desc}");
            assert_eq!(
                desc.contains("too few points for limits"),
                drawn < 12,
                "{desc}"
            );
            // Referrals count from the first month with one: 12 months, with limits.
            let desc = r
                .body
                .split("id=\"spc-referrals-d\">")
                .nth(1)
                .unwrap()
                .split("</desc>")
                .next()
                .unwrap();
            assert!(
                desc.contains("12 month(s) drawn") && desc.contains("process limits"),
                "{desc}"
            );

            assert_eq!(csv.status, StatusCode::OK, "{}", csv.body);
            let lines: Vec<&str> = csv.body.lines().collect();
            assert_eq!(
                lines[0],
                "month,numerator,denominator,value,centre,lower,upper,signal,variation"
            );
            assert_eq!(lines.len(), 25);
            assert!(lines[1].starts_with("2023-04,0,0,,"), "{}", lines[1]);
            let denominators: usize = lines[1..]
                .iter()
                .map(|l| l.split(',').nth(2).unwrap().parse::<usize>().unwrap())
                .sum();
            assert_eq!(denominators, referred, "{}", csv.body);
            let xlsx = send(
                &app,
                get(&format!("/p/P001/over-time.xlsx?measure=wait&{q}"), &lead),
            )
            .await;
            assert!(xlsx.bytes.starts_with(b"PK"));
            let svg = send(
                &app,
                get(
                    &format!("/p/P001/over-time.svg?measure=assessment1&{q}"),
                    &lead,
                ),
            )
            .await;
            assert!(
                svg.body.starts_with("<svg") || svg.body.starts_with("<?xml"),
                "{}",
                svg.body
            );
            let png = send(
                &app,
                get(
                    &format!("/p/P001/over-time.png?measure=referrals&{q}"),
                    &lead,
                ),
            )
            .await;
            assert!(png.bytes.starts_with(b"\x89PNG"));
            let bad = send(
                &app,
                get(
                    &format!("/p/P001/over-time.csv?measure=happiness&{q}"),
                    &lead,
                ),
            )
            .await;
            assert_eq!(bad.status, StatusCode::BAD_REQUEST);
            assert!(bad.body.contains("Choose a measure"), "{}", bad.body);
            assert_eq!(
                send(
                    &app,
                    get(&format!("/p/P001/over-time.pdf?measure=uptake&{q}"), &lead)
                )
                .await
                .status,
                StatusCode::NOT_FOUND
            );
            let (other, _) = login(&app, "staff2").await;
            assert_eq!(
                send(
                    &app,
                    get(&format!("/p/P001/over-time.csv?measure=uptake&{q}"), &other)
                )
                .await
                .status,
                StatusCode::NOT_FOUND
            );

            // The lead records a service change: the charts split at it and uptake before and
            // after it is compared over equal windows (six months each: the data end in March).
            let (lead, csrf) = login(&app, "lead").await;
            assert!(r.body.contains("Record a service change"));
            let change = |csrf: &str, date: &str, text: &str| {
                vec![("csrf".to_string(), csrf.to_string()), ("date".into(), date.into()), ("text".into(), text.into())]
            };
            fn form(v: &[(String, String)]) -> Vec<(&str, &str)> {
                v.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect()
            }
            let bad = send(&app, post("/p/P001/changes", &lead, &form(&change(&csrf, "01/10/2024", " ")))).await;
            assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
            assert!(bad.body.contains("Say what changed") && bad.body.contains("value=\"01/10/2024\""), "{}", bad.body);
            let bad = send(&app, post("/p/P001/changes", &lead, &form(&change(&csrf, "31/02/2024", "x")))).await;
            assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
            assert!(bad.body.contains("Enter the date it took effect"), "{}", bad.body);
            let (staff, staff_csrf) = login(&app, "staff").await;
            let refused = send(&app, post("/p/P001/changes", &staff, &form(&change(&staff_csrf, "01/10/2024", "x")))).await;
            assert_eq!(refused.status, StatusCode::NOT_FOUND, "staff do not record changes");
            let ok = send(&app, post("/p/P001/changes", &lead, &form(&change(&csrf, "01/10/2024", "Second <class> added")))).await;
            assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.body);
            assert_eq!(ok.location, "/p/P001/dashboard#changes");
            let r = send(&app, get(&format!("/p/P001/dashboard?{q}"), &lead)).await;
            assert!(r.body.contains("1 October 2024: Second &lt;class&gt; added"), "{}", r.body);
            let text = words(&r.body);
            assert!(text.contains("Uptake from 1 October 2024 to 31 March 2025 against 1 April 2024 to 30 September 2024"), "{text}");
            // The counts on either side, recounted from the store.
            let (before, after) = open(&db).run(|s| {
                let mine: Vec<_> = s.programmes().unwrap().into_iter().filter(|p| p.code == "P001").collect();
                let facts = s.kpi_episodes(fy.from, fy.to, &mine).unwrap();
                let count = |from: crest_core::Date, to: crest_core::Date| {
                    let these: Vec<_> = facts.iter().filter(|e| e.referral_date >= from && e.referral_date <= to).collect();
                    (these.iter().filter(|e| e.core_start.is_some()).count(), these.len())
                };
                (
                    count(fy.from, crest_core::Date::from_ymd(2024, 9, 30).unwrap()),
                    count(crest_core::Date::from_ymd(2024, 10, 1).unwrap(), fy.to),
                )
            });
            assert!(text.contains(&format!("({} of {}) ", before.0, before.1)) && text.contains(&format!("({} of {}) ", after.0, after.1)), "{before:?} {after:?}: {text}");
            assert!(text.contains("slope index of inequality"), "{text}");
            // The referrals chart now has two phases, and the change is drawn on the charts.
            let csv = send(&app, get(&format!("/p/P001/over-time.csv?measure=referrals&{q}"), &lead)).await;
            let centres: std::collections::BTreeSet<&str> = csv.body.lines().skip(1).filter_map(|l| l.split(',').nth(4)).filter(|c| !c.is_empty()).collect();
            assert_ne!(centres.len(), 1, "the referrals chart is split at the change: {}", csv.body);
            assert!(r.body.contains(">Second &lt;class&gt; added</text>"), "the change is drawn");
        });
    }
}

/// The national dashboard charts the nation's measures over time and a programme's national
/// page its own, from the national store's exact figures, drawing the service changes that
/// concern them; the months download with the counts the store holds; only analysts see them.
#[test]
fn national_pages_chart_measures_over_time() {
    for (db, ndb) in databases().into_iter().zip(databases()) {
        let app = setup(&db);
        common::synthetic_national(&app, &db, &ndb);
        let fy = common::fy2024();
        open(&db).run(|s| {
            use crest_core::changes::{ChangeScope, ServiceChange};
            let d = crest_core::Date::from_ymd(2024, 10, 1).unwrap();
            for (scope, text) in [
                (ChangeScope::National, "New national standard"),
                (ChangeScope::Programme("P002".into()), "P002's own change"),
            ] {
                let c =
                    ServiceChange::new(scope, d, text, "analyst", "2025-01-01T00:00:00Z").unwrap();
                s.add_service_change(&c).unwrap();
            }
        });
        // Everyone's uptake before (April to September 2024) and after (October 2024 to March
        // 2025) the nation's change, recounted from the national store.
        let (all, p001, windows) = common::sync(|| {
            let mut n = crest_store::NationalStore::open(&ndb.url).unwrap();
            let programmes = n.programmes().unwrap();
            let facts = n.kpi_episodes(fy.from, fy.to, &programmes).unwrap();
            let all = facts.len();
            let change = crest_core::Date::from_ymd(2024, 10, 1).unwrap();
            let mut windows = [(0u64, 0u64); 2];
            for e in &facts {
                let w = &mut windows[usize::from(e.referral_date >= change)];
                w.0 += u64::from(e.core_start.is_some());
                w.1 += 1;
            }
            let one: Vec<_> = programmes
                .into_iter()
                .filter(|p| p.code == "P001")
                .collect();
            (
                all,
                n.kpi_episodes(fy.from, fy.to, &one).unwrap().len(),
                windows,
            )
        });
        rt().block_on(async {
            let (analyst, _) = login(&app, "analyst").await;
            let q = "from=2024-04-01&to=2025-03-31";
            let r = send(&app, get(&format!("/national/dashboard?{q}"), &analyst)).await;
            assert_eq!(r.status, StatusCode::OK);
            assert!(words(&r.body).contains("Over time: April 2023 to March 2025"));
            assert_eq!(r.body.matches("<figure class=\"spc\">").count(), 6);
            assert!(
                r.body.contains(">New national standard</text>"),
                "the nation's change is drawn"
            );
            assert!(
                !r.body.contains("P002's own change"),
                "a programme's change is not the nation's"
            );
            // Its before/after comparison, from the national store's exact facts.
            let share = |(k, n): (u64, u64)| format!("{:.1}% ({k} of {n})", 100.0 * k as f64 / n as f64);
            let text = words(&r.body);
            assert!(
                text.contains(&format!("Everyone {} {}", share(windows[0]), share(windows[1]))),
                "{text}"
            );
            let denominators = |body: &str| -> usize {
                body.lines()
                    .skip(1)
                    .map(|l| l.split(',').nth(2).unwrap().parse::<usize>().unwrap())
                    .sum()
            };
            let csv = send(
                &app,
                get(
                    &format!("/national/over-time.csv?measure=uptake&{q}"),
                    &analyst,
                ),
            )
            .await;
            assert_eq!(csv.status, StatusCode::OK, "{}", csv.body);
            assert_eq!(csv.body.lines().count(), 25);
            assert_eq!(denominators(&csv.body), all, "{}", csv.body);
            let page = send(
                &app,
                get(&format!("/national/programme?code=P001&{q}"), &analyst),
            )
            .await;
            assert!(page.body.contains("id=\"spc-wait-t\""), "{}", page.body);
            let p002 = send(&app, get(&format!("/national/programme?code=P002&{q}"), &analyst)).await;
            let text = words(&p002.body);
            assert!(text.contains("P002's own change") && text.contains("Uptake before and after, by group"), "{text}");
            let csv = send(
                &app,
                get(
                    &format!("/national/over-time.csv?measure=uptake&code=P001&{q}"),
                    &analyst,
                ),
            )
            .await;
            assert_eq!(denominators(&csv.body), p001);
            let png = send(
                &app,
                get(
                    &format!("/national/over-time.png?measure=wait&{q}"),
                    &analyst,
                ),
            )
            .await;
            assert!(png.bytes.starts_with(b"\x89PNG"));
            let none = send(
                &app,
                get(
                    &format!("/national/over-time.csv?measure=uptake&code=NOPE&{q}"),
                    &analyst,
                ),
            )
            .await;
            assert_eq!(none.status, StatusCode::NOT_FOUND);
            let (lead, _) = login(&app, "lead").await;
            assert_eq!(
                send(
                    &app,
                    get(
                        &format!("/national/over-time.csv?measure=uptake&{q}"),
                        &lead
                    )
                )
                .await
                .status,
                StatusCode::NOT_FOUND
            );
            // The same series through the API, scoped as the pages are.
            let json = |body: &str| serde_json::from_str::<serde_json::Value>(body).unwrap();
            let r = send(
                &app,
                get(&format!("/api/v1/spc?measure=uptake&{q}"), &analyst),
            )
            .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            let v = json(&r.body);
            assert_eq!(v["months"].as_array().unwrap().len(), 24);
            assert_eq!(v["improvement"], "higher is better");
            assert_eq!(v["changes"][0]["text"], "New national standard");
            let sum: u64 = v["months"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["denominator"].as_u64().unwrap())
                .sum();
            assert_eq!(sum as usize, all);
            let r = send(
                &app,
                get(&format!("/api/v1/spc?measure=nope&{q}"), &analyst),
            )
            .await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST);
            let r = send(&app, get("/api/v1/changes", &analyst)).await;
            assert_eq!(json(&r.body).as_array().unwrap().len(), 2);
            let r = send(
                &app,
                get(
                    &format!("/api/v1/programmes/P001/spc?measure=wait&{q}"),
                    &lead,
                ),
            )
            .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            assert_eq!(json(&r.body)["improvement"], "lower is better");
            assert_eq!(
                send(&app, get(&format!("/api/v1/spc?measure=uptake&{q}"), &lead))
                    .await
                    .status,
                StatusCode::NOT_FOUND
            );
            assert_eq!(
                send(&app, get("/api/v1/changes", &lead)).await.status,
                StatusCode::NOT_FOUND
            );
            let (other, _) = login(&app, "staff2").await;
            assert_eq!(
                send(
                    &app,
                    get(
                        &format!("/api/v1/programmes/P001/spc?measure=uptake&{q}"),
                        &other
                    )
                )
                .await
                .status,
                StatusCode::NOT_FOUND
            );
            // An analyst records a change to every programme's services; a commissioner one to
            // their region's. Each page lists the changes it draws.
            let (analyst, csrf) = login(&app, "analyst").await;
            let form = |csrf: &str, scope: &str, text: &str| {
                post(
                    if scope.starts_with("region") || scope == "national" { "/national/changes" } else { "/region/changes" },
                    &analyst,
                    &[("csrf", csrf), ("scope", scope), ("date", "01/11/2024"), ("text", text)],
                )
            };
            let bad = send(&app, form(&csrf, "region:Nowhere", "x")).await;
            assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
            assert!(bad.body.contains("Choose whose services changed"), "{}", bad.body);
            let ok = send(&app, form(&csrf, "national", "Analyst's national change")).await;
            assert_eq!((ok.status, ok.location.as_str()), (StatusCode::SEE_OTHER, "/national/dashboard#changes"));
            let r = send(&app, get(&format!("/national/dashboard?{q}"), &analyst)).await;
            assert!(r.body.contains(">Analyst&#39;s national change</text>") || r.body.contains(">Analyst's national change</text>"), "drawn");
            assert!(words(&r.body).contains("1 November 2024: Analyst's national change Recorded by analyst (every programme)."), "{}", words(&r.body));
            let lead_post = send(&app, post("/national/changes", &lead, &[("csrf", "x"), ("scope", "national"), ("date", "01/11/2024"), ("text", "x")])).await;
            assert_eq!(lead_post.status, StatusCode::NOT_FOUND);
            common::add_planners(&db, &ndb);
            let (comm, comm_csrf) = login(&app, "comm").await;
            let ok = send(&app, post("/region/changes", &comm, &[("csrf", &comm_csrf), ("scope", ""), ("date", "01/12/2024"), ("text", "Community programme started")])).await;
            assert_eq!((ok.status, ok.location.as_str()), (StatusCode::SEE_OTHER, "/region#changes"), "{}", ok.body);
            let r = send(&app, get(&format!("/region?{q}"), &comm)).await;
            let text = words(&r.body);
            assert!(text.contains("1 December 2024: Community programme started Recorded by comm (the region "), "{text}");
            assert!(text.contains("Analyst's national change"), "{text}");
            // Compared from published figures: the whole quarters either side (July to
            // September 2024 against January to March 2025), each quarter's counts rounded as
            // the aggregates page publishes them, recounted here from the national store.
            let region = common::sync(|| {
                crest_store::NationalStore::open(&ndb.url).unwrap().programmes().unwrap()[0].region.clone()
            });
            let quarters = common::sync(|| {
                let mut n = crest_store::NationalStore::open(&ndb.url).unwrap();
                let mine: Vec<_> = n.programmes().unwrap().into_iter().filter(|p| p.region == region).collect();
                let mut by: std::collections::BTreeMap<(i32, u32), (u64, u64)> = Default::default();
                for e in n.kpi_episodes(fy.from, fy.to, &mine).unwrap() {
                    let (y, m, _) = e.referral_date.ymd();
                    let slot = by.entry((y, (m - 1) / 3 + 1)).or_default();
                    slot.0 += u64::from(e.core_start.is_some());
                    slot.1 += 1;
                }
                by
            });
            let published = |q: (i32, u32)| {
                let (k, n) = quarters[&q];
                match (crest_stats::disclosure::count(k), crest_stats::disclosure::count(n)) {
                    (crest_stats::disclosure::Cell::Count(k), crest_stats::disclosure::Cell::Count(n)) => (k, n),
                    other => panic!("a suppressed quarter in the synthetic region: {other:?}"),
                }
            };
            let share = |(k, n): (u64, u64)| format!("{:.1}% ({k} of {n})", 100.0 * k as f64 / n as f64);
            assert!(text.contains("Uptake from 1 January 2025 to 31 March 2025 against 1 July 2024 to 30 September 2024"), "{text}");
            assert!(
                text.contains(&format!("Everyone {} {}", share(published((2024, 3))), share(published((2025, 1))))),
                "{text}"
            );
            assert!(text.contains("From published counts: whole quarters either side"), "{text}");
        });
    }
}

/// Case ascertainment on every page that shows it: before expected patients are loaded each
/// page says so; after, the analyst's dashboard and download hold each programme's referrals
/// (recounted here from the national store) against the file's expected counts, with those
/// under 80% named; the commissioner's region page and its download publish the same as
/// rounded counts; the API answers each role as its pages do.
#[test]
fn case_ascertainment_is_shown_to_analysts_exactly_and_to_commissioners_as_published() {
    use crest_stats::disclosure::{count, Cell};
    for (db, ndb) in databases().into_iter().zip(databases()) {
        let app = setup(&db);
        common::synthetic_national(&app, &db, &ndb);
        common::add_planners(&db, &ndb);
        let fy = common::fy2024();
        let q = "from=2024-04-01&to=2025-03-31";
        rt().block_on(async {
            let (analyst, _) = login(&app, "analyst").await;
            let r = send(&app, get(&format!("/national/dashboard?{q}"), &analyst)).await;
            assert!(
                words(&r.body).contains("No expected patients are loaded"),
                "{}",
                words(&r.body)
            );
        });
        let rows = common::load_expected(&ndb);
        // Each programme's referrals in the year, from the store, and its expected patients
        // from the file.
        let (programmes, referred) = common::sync(|| {
            let mut n = crest_store::NationalStore::open(&ndb.url).unwrap();
            let programmes = n.programmes().unwrap();
            let episodes = n.kpi_episodes(fy.from, fy.to, &programmes).unwrap();
            let mut referred = vec![0u64; programmes.len()];
            episodes.iter().for_each(|e| referred[e.programme] += 1);
            (programmes, referred)
        });
        let expected = |code: &str| -> u64 {
            rows.iter()
                .filter(|e| {
                    e.area == crest_core::expected::Area::Programme(code.into())
                        && e.quarter.within(fy.from, fy.to)
                })
                .map(|e| u64::from(e.count))
                .sum()
        };
        rt().block_on(async {
            let (analyst, _) = login(&app, "analyst").await;
            let r = send(&app, get(&format!("/national/dashboard?{q}"), &analyst)).await;
            let text = words(&r.body);
            assert!(
                text.contains("Case ascertainment: referred of the eligible"),
                "{text}"
            );
            let csv = send(
                &app,
                get(&format!("/national/ascertainment.csv?{q}"), &analyst),
            )
            .await;
            assert_eq!(csv.status, StatusCode::OK, "{}", csv.body);
            let mut file = csv::Reader::from_reader(csv.body.as_bytes());
            let head = file.headers().unwrap().clone();
            let col = |n: &str| head.iter().position(|h| h == n).unwrap();
            let mut seen = 0;
            let mut flagged = Vec::new();
            for row in file.records() {
                let row = row.unwrap();
                let code = &row[col("programme_code")];
                let i = programmes.iter().position(|p| p.code == code).unwrap();
                assert_eq!(
                    row[col("referred")].parse::<u64>().unwrap(),
                    referred[i],
                    "{code}"
                );
                assert_eq!(
                    row[col("expected")].parse::<u64>().unwrap(),
                    expected(code),
                    "{code}"
                );
                let ratio = referred[i] as f64 / expected(code) as f64;
                let shown: f64 = row[col("ascertainment")].parse().unwrap();
                assert!(
                    (shown - ratio).abs() < 6e-5,
                    "{code}: {shown} against {ratio}"
                );
                assert_eq!(
                    &row[col("under_80")],
                    if ratio < 0.8 { "yes" } else { "no" },
                    "{code}"
                );
                if ratio < 0.8 {
                    flagged.push(code.to_string());
                }
                seen += 1;
            }
            assert_eq!(seen, programmes.len());
            assert!(
                !flagged.is_empty(),
                "the synthetic file has programmes under 80%: {}",
                csv.body
            );
            assert!(
                text.contains(&format!(
                    "{} programme(s) under 80% ascertainment",
                    flagged.len()
                )),
                "{text}"
            );
            for code in &flagged {
                assert!(text.contains(code.as_str()), "{code} named: {text}");
            }
            let page = send(
                &app,
                get(&format!("/national/programme?code=P001&{q}"), &analyst),
            )
            .await;
            assert!(words(&page.body).contains("Eligible patients referred"));
            assert!(!words(&page.body).contains("No expected patients are loaded"));

            // The commissioner: their region's programmes as published.
            let (comm, _) = login(&app, "comm").await;
            let page = send(&app, get(&format!("/region?{q}"), &comm)).await;
            assert_eq!(page.status, StatusCode::OK);
            assert!(words(&page.body).contains("Eligible, referred and started"));
            let region = &programmes[0].region;
            let csv = send(&app, get(&format!("/region/ascertainment.csv?{q}"), &comm)).await;
            assert_eq!(csv.status, StatusCode::OK, "{}", csv.body);
            let mut file = csv::Reader::from_reader(csv.body.as_bytes());
            let head = file.headers().unwrap().clone();
            let col = |n: &str| head.iter().position(|h| h == n).unwrap();
            let mut mine = 0;
            for row in file.records() {
                let row = row.unwrap();
                let area = &row[col("area")];
                let Some(i) = programmes.iter().position(|p| p.code == area) else {
                    assert_eq!(area, region.as_str(), "only the region's own rows");
                    continue;
                };
                assert_eq!(&programmes[i].region, region);
                let (r, e) = (count(referred[i]), count(expected(area)));
                assert_eq!(row[col("referred")], r.to_string(), "{area}");
                assert_eq!(row[col("expected")], e.to_string(), "{area}");
                if let (Cell::Count(r), Cell::Count(e)) = (r, e) {
                    let shown: f64 = row[col("ascertainment")].parse().unwrap();
                    assert!(
                        (shown - r as f64 / e as f64).abs() < 6e-5,
                        "{area}: from the rounded counts"
                    );
                }
                for c in ["expected", "referred", "started"] {
                    let v = &row[col(c)];
                    assert!(
                        v == "*" || v.parse::<u64>().unwrap() % 5 == 0,
                        "{area} {c} {v}"
                    );
                }
                mine += 1;
            }
            let in_region = programmes.iter().filter(|p| &p.region == region).count();
            assert_eq!(mine, in_region);

            // The API, as the pages: exact for the analyst, published for the commissioner.
            let api = send(&app, get(&format!("/api/v1/ascertainment?{q}"), &analyst)).await;
            let json: serde_json::Value = serde_json::from_str(&api.body).unwrap();
            assert_eq!(json["published"], false);
            assert!(json["rows"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r[0] == "nation"));
            let api = send(&app, get(&format!("/api/v1/ascertainment?{q}"), &comm)).await;
            let json: serde_json::Value = serde_json::from_str(&api.body).unwrap();
            assert_eq!(json["published"], true, "{json}");
            assert_eq!(
                json["rows"].as_array().unwrap().len(),
                mine + usize::from(json["rows"].as_array().unwrap().len() > mine)
            );
            assert!(
                !api.body.contains("\"nation\""),
                "a commissioner sees only their region"
            );

            // A lead whose local store holds the same expected patients: their dashboard and
            // the API give their programme's figures, which match the national recount.
            // The lead's dashboard, cached before the file is loaded, is not shown again after.
            let (lead, _) = login(&app, "lead").await;
            let before = send(&app, get(&format!("/p/P001/dashboard?{q}"), &lead)).await;
            assert!(words(&before.body).contains("No expected patients are loaded"));
            let local = rows.clone();
            open(&db).run(move |s| {
                s.load_expected(&local).unwrap();
            });
            let i = programmes.iter().position(|p| p.code == "P001").unwrap();
            let page = send(&app, get(&format!("/p/P001/dashboard?{q}"), &lead)).await;
            let text = words(&page.body);
            assert!(
                text.contains(&format!(
                    "{} eligible patients expected, {} referred",
                    expected("P001"),
                    referred[i]
                )),
                "{text}"
            );
            let api = send(
                &app,
                get(&format!("/api/v1/programmes/P001/ascertainment?{q}"), &lead),
            )
            .await;
            assert_eq!(api.status, StatusCode::OK, "{}", api.body);
            let json: serde_json::Value = serde_json::from_str(&api.body).unwrap();
            let all = json["rows"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r[4] == "all")
                .unwrap()
                .clone();
            assert_eq!(all[1], "P001");
            assert_eq!(all[6].as_u64(), Some(referred[i]));
            assert_eq!(all[5].as_u64(), Some(expected("P001")));
            let api = send(
                &app,
                get(&format!("/api/v1/programmes/P002/ascertainment?{q}"), &lead),
            )
            .await;
            assert_eq!(api.status, StatusCode::NOT_FOUND, "another programme's");
        });
    }
}

/// The commissioner's charts over time carry published values only: no month's counts, each
/// value from the counts rounded to 5 (recounted here from the national store), a month with
/// 1 to 7 patients not drawn and neither is the rest of its quarter; referrals per month are
/// not published; another region's programme is not there.
#[test]
fn a_commissioner_charts_published_values_only() {
    use crest_stats::disclosure::{count, percentage_of, Percentage};
    for (db, ndb) in databases().into_iter().zip(databases()) {
        let app = setup(&db);
        common::synthetic_national(&app, &db, &ndb);
        common::add_planners(&db, &ndb);
        let fy = common::fy2024();
        let (region, mine, other, exact) = common::sync(|| {
            let mut n = crest_store::NationalStore::open(&ndb.url).unwrap();
            let programmes = n.programmes().unwrap();
            let region = programmes[0].region.clone();
            let mine: Vec<_> = programmes
                .iter()
                .filter(|p| p.region == region)
                .cloned()
                .collect();
            let other = programmes
                .iter()
                .find(|p| p.region != region)
                .unwrap()
                .code
                .clone();
            // Referred and started by month of referral, for the region's programmes.
            let mut exact: std::collections::BTreeMap<String, (u64, u64)> = Default::default();
            for e in n
                .kpi_episodes(fy.from.add_days(-365), fy.to, &mine)
                .unwrap()
            {
                let (y, m, _) = e.referral_date.ymd();
                let slot = exact.entry(format!("{y}-{m:02}")).or_default();
                slot.0 += 1;
                slot.1 += u64::from(e.core_start.is_some());
            }
            (region, mine, other, exact)
        });
        rt().block_on(async {
            let (comm, _) = login(&app, "comm").await;
            let q = "from=2024-04-01&to=2025-03-31";
            let page = send(&app, get(&format!("/region?{q}"), &comm)).await;
            assert_eq!(page.status, StatusCode::OK);
            assert_eq!(page.body.matches("<figure class=\"spc\">").count(), 5);
            assert!(words(&page.body).contains("Referrals per month are not published"));
            let csv = send(
                &app,
                get(&format!("/region/over-time.csv?measure=uptake&{q}"), &comm),
            )
            .await;
            assert_eq!(csv.status, StatusCode::OK, "{}", csv.body);
            let rows: Vec<Vec<String>> = csv::Reader::from_reader(csv.body.as_bytes())
                .records()
                .map(|r| r.unwrap().iter().map(String::from).collect())
                .collect();
            assert_eq!(rows.len(), 24);
            let small = |n: u64| (1..=7).contains(&n);
            let quarter = |m: &str| (m[..4].to_string(), (m[5..].parse::<u32>().unwrap() - 1) / 3);
            let hidden_quarters: Vec<(String, u32)> = exact
                .iter()
                .filter(|(_, (r, s))| small(*r) || small(*s))
                .map(|(m, _)| quarter(m))
                .collect();
            let mut drawn = 0;
            for r in &rows {
                assert!(
                    r[1].is_empty() && r[2].is_empty(),
                    "no month's counts: {r:?}"
                );
                let (referred, started) = exact.get(&r[0]).copied().unwrap_or_default();
                if hidden_quarters.contains(&quarter(&r[0])) {
                    assert_eq!(r[3], "", "{r:?} is not drawn");
                    continue;
                }
                match percentage_of(count(started), count(referred)) {
                    Percentage::Value(p) => {
                        let v: f64 = r[3].parse().unwrap();
                        assert!((v - p / 100.0).abs() < 1e-9, "{r:?}: {p}");
                        drawn += 1;
                    }
                    _ => assert_eq!(r[3], "", "{r:?}"),
                }
            }
            assert!(drawn > 0, "{}", csv.body);
            let r = send(
                &app,
                get(
                    &format!("/region/over-time.csv?measure=referrals&{q}"),
                    &comm,
                ),
            )
            .await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST);
            let one = &mine[0].code;
            let r = send(&app, get(&format!("/region?{q}&chart={one}"), &comm)).await;
            assert_eq!(r.status, StatusCode::OK);
            assert!(
                words(&r.body).contains(&format!("Charts for: {region} (all programmes)")),
                "{}",
                words(&r.body)
            );
            let r = send(
                &app,
                get(
                    &format!("/region/over-time.svg?measure=uptake&chart={other}&{q}"),
                    &comm,
                ),
            )
            .await;
            assert_eq!(
                r.status,
                StatusCode::NOT_FOUND,
                "another region's programme"
            );
            let r = send(&app, get(&format!("/region?{q}&chart={other}"), &comm)).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND);
            // The API answers the commissioner as the page: the same values, no counts.
            let r = send(&app, get(&format!("/api/v1/spc?measure=uptake&{q}"), &comm)).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            let json: serde_json::Value = serde_json::from_str(&r.body).unwrap();
            let months = json["months"].as_array().unwrap();
            assert_eq!(months.len(), 24);
            for (m, row) in months.iter().zip(&rows) {
                assert!(
                    m["numerator"].is_null() && m["denominator"].is_null(),
                    "{m}"
                );
                assert_eq!(m["month"], row[0].as_str());
                match m["value"].as_f64() {
                    Some(v) => assert!((v - row[3].parse::<f64>().unwrap()).abs() < 1e-12),
                    None => assert_eq!(row[3], ""),
                }
            }
            let r = send(
                &app,
                get(&format!("/api/v1/spc?measure=referrals&{q}"), &comm),
            )
            .await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST);
            let r = send(
                &app,
                get(
                    &format!("/api/v1/spc?measure=uptake&code={other}&{q}"),
                    &comm,
                ),
            )
            .await;
            assert_eq!(r.status, StatusCode::NOT_FOUND);
            let (res, _) = login(&app, "res").await;
            let r = send(&app, get(&format!("/api/v1/spc?measure=uptake&{q}"), &res)).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND);
        });
    }
}

/// A request from an address, as the server's listener records it.
fn from_address(path: &str, ip: &str) -> Request<Body> {
    let mut r = get(path, "");
    r.extensions_mut()
        .insert(axum::extract::ConnectInfo(std::net::SocketAddr::new(
            ip.parse().unwrap(),
            40000,
        )));
    r
}

/// Operators' endpoints: `/healthz` and `/readyz` answer anyone (and say nothing of the data);
/// `/metrics` counts requests by route pattern and refused sign-ins, and answers only the
/// loopback address, a listed address or the monitoring token, never a request a proxy
/// forwarded; a store missing a migration is not ready.
#[test]
fn health_readiness_and_metrics_for_operators() {
    for db in databases() {
        let app = setup(&db);
        rt().block_on(async {
            let stranger = "203.0.113.9";
            let r = send(&app, from_address("/healthz", stranger)).await;
            assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "ok\n"));
            let r = send(&app, from_address("/readyz", stranger)).await;
            assert_eq!(
                (r.status, r.body.as_str()),
                (StatusCode::OK, "ready\n"),
                "{}",
                db.backend
            );
            // A page asked for without signing in, and a wrong password.
            let r = send(&app, from_address("/p/P001/episodes", stranger)).await;
            assert_eq!(r.status, StatusCode::SEE_OTHER);
            let page = send(&app, get("/login", "")).await;
            let pre = cookie_value(&page.cookies, "crest_login").unwrap();
            let csrf = hidden(&page.body, "csrf");
            let r = try_sign_in(&app, &pre, &csrf, "staff2", "wrong-password").await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED);
            let r = send(&app, from_address("/metrics", "127.0.0.1")).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            let text = r.body;
            for line in [
                r#"crest_http_request_duration_seconds_count{route="/p/{code}/episodes",method="GET",status="303"} 1"#,
                r#"crest_http_request_duration_seconds_count{route="/login",method="POST",status="401"} 1"#,
                "crest_sign_in_refusals_total 1",
                "crest_imports_total 0",
                "crest_worker_queue_depth 0",
            ] {
                assert!(text.contains(line), "{line} not in\n{text}");
            }
            assert!(
                !text.contains("P001") && !text.contains("staff2"),
                "metrics name route patterns, never paths or users:\n{text}"
            );
            // Strangers are told nothing is there; so is a request with no known address.
            let r = send(&app, from_address("/metrics", stranger)).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND);
            assert!(!r.body.contains("crest_"));
            let r = send(&app, get("/metrics", "")).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND);
            // Behind a proxy, a forwarded request is a stranger's even though the proxy is local.
            app.set_behind_proxy(true);
            let mut forwarded = from_address("/metrics", "127.0.0.1");
            forwarded
                .headers_mut()
                .insert("x-forwarded-for", stranger.parse().unwrap());
            assert_eq!(send(&app, forwarded).await.status, StatusCode::NOT_FOUND);
            app.set_behind_proxy(false);
            // A monitoring server: by token from anywhere, or by its listed address.
            app.set_metrics_access(crest_web::MetricsAccess {
                token: Some("monitor-token-0123456789".into()),
                allow: vec!["198.51.100.7".parse().unwrap()],
            });
            let with = |token: &str| {
                let mut r = from_address("/metrics", stranger);
                r.headers_mut().insert(
                    axum::http::header::AUTHORIZATION,
                    format!("Bearer {token}").parse().unwrap(),
                );
                r
            };
            assert_eq!(send(&app, with("monitor-token-0123456789")).await.status, StatusCode::OK);
            assert_eq!(send(&app, with("monitor-token-012345678")).await.status, StatusCode::NOT_FOUND);
            let r = send(&app, from_address("/metrics", "198.51.100.7")).await;
            assert_eq!(r.status, StatusCode::OK);
        });
        // A store whose last migration has not been applied is not ready, and says why.
        db.execute_raw("DELETE FROM crest_migrations WHERE version = (SELECT MAX(version) FROM crest_migrations)");
        rt().block_on(async {
            // A readiness answer is reused for a second.
            tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
            let r = send(&app, from_address("/readyz", "127.0.0.1")).await;
            assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", db.backend);
            assert!(
                r.body.contains("needs 1 migration(s); run crest init"),
                "{}",
                r.body
            );
        });
    }
}
