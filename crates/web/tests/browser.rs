//! The web app in a real browser: headless Chromium driven by chromedriver, against the app
//! served on loopback over real SQLite and PostgreSQL stores. Screenshots of each step are
//! saved under the test output (`$CARGO_TARGET_TMPDIR/browser/<backend>/`).
#![allow(clippy::unwrap_used)]

use common::{open, setup, PASSWORD};
use crest_store::testing::databases;
use webdriver::Browser;

mod common;
mod webdriver;

use common::serve;

/// Signs in with the mouse and waits for the user's landing page.
fn sign_in(b: &Browser, base: &str, user: &str, landing: &str) {
    b.goto(&format!("{base}/login"));
    b.type_into("#username", user);
    b.type_into("#password", PASSWORD);
    b.click("form[action=\"/login\"] button");
    b.wait_url(landing);
}

#[test]
fn a_lead_signs_in_fixes_an_episode_uploads_and_opens_the_dashboard() {
    let Some((driver, chromium)) = webdriver::available() else {
        return;
    };
    for db in databases() {
        let app = setup(&db);
        let base = serve(app);
        let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join("browser")
            .join(db.backend);
        let b = Browser::start(&driver, &chromium, shots.clone());

        // Signing in, with the keyboard: type, Tab to the password, Enter to submit.
        b.goto(&format!("{base}/p/P001/dashboard"));
        assert!(b.url().ends_with("/login"), "{}", b.url());
        b.screenshot("01-login");
        b.type_into("#username", "lead");
        b.keys("\u{E004}");
        assert_eq!(
            b.focused_id(),
            "password",
            "Tab moves from user name to password"
        );
        b.keys(&format!("{PASSWORD}\u{E007}"));
        b.wait_url("/p/P001/episodes");
        assert!(b.text("main").contains("E1"));

        // A new episode with a wrong NHS number: refused, explained, nothing typed is lost.
        b.goto(&format!("{base}/p/P001/episodes/new?whole=1"));
        for (field, value) in [
            ("episode_id", "B1"),
            ("nhs_number", "9434765918"),
            ("family_name", "Browserperson"),
        ] {
            // Over the proposed episode id: the team's own is kept.
            b.clear(&format!("#f-{field}"));
            b.type_into(&format!("#f-{field}"), value);
        }
        // Dates in three boxes: day, month, year.
        for (field, [day, month, year]) in [
            ("date_of_birth", ["15", "06", "1960"]),
            ("event_date", ["1", "2", "2025"]),
            ("referral_date", ["3", "2", "2025"]),
        ] {
            b.type_into(&format!("#f-{field}"), day);
            b.type_into(&format!("#f-{field}-month"), month);
            b.type_into(&format!("#f-{field}-year"), year);
        }
        // A short list is radios, labelled in words.
        b.click("label[for=\"f-sex-1\"]");
        for (field, value) in [
            ("initiating_event", "mi_nstemi"),
            ("treatment", "pci"),
            ("status", "referred"),
        ] {
            b.select(&format!("#f-{field}"), value);
        }
        b.click("form[novalidate] button");
        let summary = b.wait_text("#error-summary", "There is a problem");
        assert!(
            summary.contains("There is a problem") && summary.contains("not a valid NHS number"),
            "{summary}"
        );
        assert_eq!(
            b.focused_id(),
            "error-summary",
            "the error summary takes the focus"
        );
        assert!(b.text("#e-nhs_number").contains("not a valid NHS number"));
        let src = b.source();
        assert!(
            src.contains("value=\"Browserperson\"")
                && src.contains("name=\"date_of_birth-year\" value=\"1960\"")
                && src.contains("value=\"female\" checked"),
            "nothing typed is lost"
        );
        b.screenshot("02-episode-error");
        // The summary's link leads to the field; fix it and save.
        b.click("#error-summary a[href=\"#f-nhs_number\"]");
        assert_eq!(b.focused_id(), "f-nhs_number");
        b.clear("#f-nhs_number");
        b.type_into("#f-nhs_number", "943 476 5862");
        b.click("form[novalidate] button");
        b.wait_url("/p/P001/episodes/B1?saved=1");
        b.wait_text("main", "Saved.");
        b.screenshot("03-episode-saved");
        // Saved, the patient's summary: where they are and what is due, with dates.
        let summary = b.text("main");
        assert!(
            summary.contains("Referred, waiting to start")
                && summary.contains("Due next")
                && summary.contains("Start core rehabilitation: by 8 March 2025")
                && summary.contains("days late"),
            "{summary}"
        );
        // Changing the episode is a step away.
        b.click("a[href=\"/p/P001/episodes/B1/edit\"]");
        b.wait_url("/p/P001/episodes/B1/edit");
        assert!(b.source().contains("value=\"Browserperson\""));
        b.screenshot("03b-episode-edit");
        let stored = open(&db).run(|s| s.episode("P001", "B1").unwrap().unwrap());
        assert_eq!(
            stored.text(crest_core::Col::FamilyName),
            Some("Browserperson")
        );

        // Upload a file with one good row and one bad one, check the preview, then confirm.
        let file = crest_store::testing::scratch_dir("browser-upload").join("upload.csv");
        std::fs::write(
            &file,
            "programme_code,episode_id,nhs_number,date_of_birth,sex,initiating_event,treatment,event_date,referral_date,status\n\
             P001,W1,9434765854,1950-01-01,male,mi_stemi,pci,2025-01-10,2025-01-12,referred\n\
             P001,W2,9434765919,1950-01-01,male,mi_stemi,pci,2025-01-10,31/02/2025,referred\n",
        )
        .unwrap();
        b.goto(&format!("{base}/p/P001/upload"));
        b.type_into("#file", &file.to_string_lossy());
        b.wait_value("#file");
        // By keyboard: Tab through the page to "Check file", Enter to press it.
        let mut tabs = 0;
        while b.focused_id() != "check-file" {
            b.press("\u{E004}");
            tabs += 1;
            assert!(tabs < 40, "Tab never reaches the Check file button");
        }
        b.press("\u{E007}");
        let preview = b.wait_text("main", "rejected");
        assert!(
            preview.contains("2 row(s): 1 new") && preview.contains("1 rejected"),
            "{preview}"
        );
        assert!(
            preview.contains("31/02/2025"),
            "the rejected value is shown"
        );
        b.screenshot("04-upload-preview");
        // "Download the rows to fix", as the browser's user would (with their session).
        let href = b.attribute("a[href$=\"/rows-to-fix\"]", "href");
        let fix = ureq::get(&format!("{base}{href}"))
            .header(
                "Cookie",
                &format!("crest_session={}", b.cookie("crest_session")),
            )
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap();
        assert!(
            fix.lines().next().unwrap().ends_with(",problems") && fix.contains("P001,W2,"),
            "{fix}"
        );
        assert!(open(&db).run(|s| s.episode("P001", "W1").unwrap().is_none()));
        b.click("form[action$=\"/upload/confirm\"] button");
        b.wait_text("main", "Stored: 1 new");
        assert!(open(&db).run(|s| s.episode("P001", "W1").unwrap().is_some()));
        // Fixed in that file and uploaded again: nothing rejected.
        let fixed = file.with_file_name("upload-rows-to-fix.csv");
        std::fs::write(&fixed, fix.replace("31/02/2025", "12/01/2025")).unwrap();
        b.goto(&format!("{base}/p/P001/upload"));
        b.type_into("#file", &fixed.to_string_lossy());
        b.wait_value("#file");
        b.click("#check-file");
        let preview = b.wait_text("main", "rejected");
        assert!(
            preview.contains("1 row(s): 1 new") && preview.contains("0 rejected"),
            "{preview}"
        );
        b.click("form[action$=\"/upload/confirm\"] button");
        b.wait_text("main", "Stored: 1 new");
        assert!(open(&db).run(|s| s.episode("P001", "W2").unwrap().is_some()));

        // FHIR from a hospital system: previewed as a CSV is, each problem naming its resource.
        let fhir = file.with_file_name("hospital.ndjson");
        std::fs::write(
            &fhir,
            [
                r#"{"resourceType":"Patient","id":"f1","identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9434765870"}],"birthDate":"1951-02-03","gender":"female"}"#,
                r#"{"resourceType":"Condition","id":"fc1","code":{"coding":[{"system":"http://snomed.info/sct","code":"401314000"}]},"subject":{"reference":"Patient/f1"},"onsetDateTime":"2025-02-01"}"#,
                r#"{"resourceType":"ServiceRequest","id":"fs1","status":"active","intent":"order","subject":{"reference":"Patient/f1"},"authoredOn":"2025-02-03"}"#,
                r#"{"resourceType":"Observation","id":"fo1","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"29463-7"}]},"subject":{"reference":"Patient/f1"},"effectiveDateTime":"2025-02-10","valueQuantity":{"value":180,"unit":"[lb_av]","code":"[lb_av]"}}"#,
                r#"{"resourceType":"Patient","id":"f2","identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9434765862"}],"birthDate":"1948-07-08","gender":"male"}"#,
                r#"{"resourceType":"Condition","id":"fc2","code":{"coding":[{"system":"http://snomed.info/sct","code":"84114007"}]},"subject":{"reference":"Patient/f2"},"onsetDateTime":"2025-02-04"}"#,
                r#"{"resourceType":"Observation","id":"fo2","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"29463-7"}]},"subject":{"reference":"Patient/f2"},"effectiveDateTime":"2025-02-12","valueQuantity":{"value":12,"unit":"st","code":"[stone_av]"}}"#,
            ]
            .join("\n"),
        )
        .unwrap();
        b.goto(&format!("{base}/p/P001/upload"));
        b.type_into("#file", &fhir.to_string_lossy());
        b.wait_value("#file");
        b.click("#check-file");
        let preview = b.wait_text("main", "rejected");
        assert!(
            preview.contains("2 episode(s): 1 new") && preview.contains("1 rejected"),
            "{preview}"
        );
        assert!(
            preview.contains("Observation/fo2 valueQuantity")
                && preview.contains("no referral to cardiac rehabilitation"),
            "{preview}"
        );
        b.screenshot("53-upload-fhir-preview");
        b.click("form[action$=\"/upload/confirm\"] button");
        b.wait_text("main", "Stored: 1 new");
        let e = open(&db).run(|s| s.episode("P001", "cond-fc1").unwrap().unwrap());
        assert_eq!(e.num(crest_core::Col::A1WeightKg), Some(81.65));

        // The dashboard, with its chart and KPI table.
        b.goto(&format!(
            "{base}/p/P001/dashboard?from=2024-04-01&to=2025-03-31"
        ));
        let main = b.text("main");
        assert!(
            main.contains("KPI") && main.contains("Uptake by sex"),
            "{main}"
        );
        assert!(!b.find_all("svg[role=img] title").is_empty());
        let shot = b.screenshot("05-dashboard");
        assert!(std::fs::metadata(&shot).unwrap().len() > 10_000, "{shot:?}");
        // The charts over time, each with its variation icon in words; the lead records a
        // service change and sees it drawn and compared.
        assert!(
            main.contains("Over time: April 2023 to March 2025"),
            "{main}"
        );
        assert_eq!(b.find_all("figure.spc svg[role=img]").len(), 6);
        assert!(
            main.contains("Too few points for limits") || main.contains("variation in"),
            "{main}"
        );
        b.type_into("#f-change-date", "01/10/2024");
        b.type_into("#f-change-text", "Evening class added");
        b.click("form[action=\"/p/P001/changes\"] button");
        b.wait_url("/p/P001/dashboard#changes");
        b.goto(&format!(
            "{base}/p/P001/dashboard?from=2024-04-01&to=2025-03-31#changes"
        ));
        let main = b.wait_text("main", "1 October 2024: Evening class added");
        assert!(
            main.contains("Uptake from 1 October 2024 to 31 March 2025"),
            "{main}"
        );
        assert!(
            b.source().contains(">Evening class added</text>"),
            "the change is drawn"
        );
        b.screenshot("05b-dashboard-with-change");
        // The rest of a lead's pages, each checked by axe at both widths.
        for (path, wait, name) in [
            ("/p/P001/episodes", "Showing 1 to", "14-patients"),
            ("/p/P001/episodes/E1", "Due next", "14b-patient-summary"),
            (
                "/p/P001/episodes/E1/report",
                "Your measures",
                "15-progress-report",
            ),
            (
                "/p/P001/episodes/B1/assessment1",
                "Assessment 1",
                "16-assessment",
            ),
            ("/p/P001/profile", "Profile", "17-profile"),
            ("/p/P001/submit", "Submit", "18-submit"),
            ("/p/P001/upload", "Upload a CSV", "19-upload"),
            ("/account/password", "Your current password", "20-password"),
            ("/p/P001/no-such-page", "Page not found", "21-not-found"),
        ] {
            b.goto(&format!("{base}{path}"));
            b.wait_text("main", wait);
            b.screenshot(name);
        }
        eprintln!("screenshots: {}", shots.display());
    }
}

#[test]
fn a_national_analyst_receives_a_submission_and_reads_the_national_dashboard() {
    use crest_privacy::Key;
    let Some((driver, chromium)) = webdriver::available() else {
        return;
    };
    for (db, ndb) in databases().into_iter().zip(databases()) {
        let app = setup(&db);
        let (sk, nk) = (Key::from_secret([3; 32]), Key::from_secret([4; 32]));
        let mut n = crest_store::NationalStore::open(&ndb.url).unwrap();
        n.migrate().unwrap();
        let progs = open(&db).run(|s| s.programmes().unwrap());
        n.upsert_programmes(&progs).unwrap();
        common::register_signing_keys(&mut n, &progs);
        drop(n);
        app.set_submission_key(sk.clone());
        app.set_signing_keys(common::setup_signing_keys());
        app.set_national(&ndb.url, nk).unwrap();
        let file = crest_store::testing::scratch_dir("browser-national").join("p002.jsonl");
        let bytes = open(&db).run(|s| {
            crest_web::add_user(
                s,
                "analyst",
                crest_store::Role::NationalAnalyst,
                &[],
                PASSWORD,
            )
            .unwrap();
            s.put_agreement(&common::agreement(false)).unwrap();
            let req = crest_privacy::submission::BuildRequest {
                programme: "P002",
                period: crest_core::Period {
                    from: crest_core::Date::from_ymd(2024, 4, 1).unwrap(),
                    to: crest_core::Date::from_ymd(2025, 3, 31).unwrap(),
                },
                key: &sk,
                signing_key: &common::signing_key("P002"),
                ndoo: None,
                ndoo_max_age_days: 30,
                today: crest_core::Date::from_ymd(2025, 6, 1).unwrap(),
                now: "2025-06-01T10:00:00Z".into(),
            };
            crest_privacy::submission::build(s, &req).unwrap().bytes
        });
        std::fs::write(&file, bytes).unwrap();
        let base = serve(app);
        let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join("browser")
            .join(db.backend);
        let b = Browser::start(&driver, &chromium, shots);
        sign_in(&b, &base, "analyst", "/national");
        b.type_into("#file", &file.to_string_lossy());
        b.wait_value("#file");
        b.click("form[action=\"/national/receive\"] button");
        let main = b.wait_text("main", "stored 1 episode(s)");
        assert!(main.contains("P002"), "{main}");
        b.screenshot("06-national-receipt");
        b.click("a[href=\"/national/dashboard\"]");
        let main = b.wait_text("main", "programme(s)");
        assert!(
            main.contains("P002") && main.contains("Funnel plot: "),
            "{main}"
        );
        let spc = b.find_all("figure.spc svg[role=img]").len();
        assert_eq!(spc, 6, "a chart over time per measure");
        assert_eq!(
            b.find_all("svg[role=img]").len() - spc,
            2,
            "the chosen funnel plot first, and the MI/PCI waits"
        );
        b.select("#nation", "wales");
        b.click("form.noprint button");
        let main = b.wait_text("main", "1 programme(s)");
        assert!(main.contains("P002"), "{main}");
        // Another KPI's funnel leads when chosen, with its limits adjusted if asked.
        b.select("#kpi", "completion");
        b.select("#method", "multiplicative");
        b.click("form.noprint button");
        let main = b.wait_text("main", "Funnel plot: Completion");
        assert!(
            main.contains("Completion (completed / started): level"),
            "{main}"
        );
        b.screenshot("07-national-dashboard");
        // The programme table downloads with the filters shown, as its link gives it.
        let href = b.attribute("a[href^=\"/national/programmes.csv?\"]", "href");
        assert!(href.contains("nation=wales"), "{href}");
        let csv = ureq::get(&format!("{base}{href}"))
            .header(
                "Cookie",
                &format!("crest_session={}", b.cookie("crest_session")),
            )
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap();
        let lines: Vec<&str> = csv.lines().collect();
        assert!(
            lines[0].starts_with("programme_code,name,nation,region,"),
            "{csv}"
        );
        assert!(lines.len() == 2 && lines[1].starts_with("P002,"), "{csv}");
        // Each programme opens its own page.
        b.click("a[href^=\"/national/programme?code=P002\"]");
        let main = b.wait_text("main", "KPIs over three years");
        assert!(main.contains("Position on each funnel plot"), "{main}");
    }
}

#[test]
fn a_national_analyst_tracks_an_outlier_case() {
    let Some((driver, chromium)) = webdriver::available() else {
        return;
    };
    let db = crest_store::testing::sqlite_db();
    let ndb = crest_store::testing::sqlite_db();
    let app = setup(&db);
    common::synthetic_national(&app, &db, &ndb);
    common::load_expected(&ndb);
    let base = serve(app);
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("browser")
        .join("sqlite");
    let b = Browser::start(&driver, &chromium, shots);
    sign_in(&b, &base, "analyst", "/national");
    // Case ascertainment on the dashboard: those under 80% named, every programme's figures.
    b.goto(&format!(
        "{base}/national/dashboard?from=2024-04-01&to=2025-03-31#ascertainment"
    ));
    let main = b.wait_text("main", "under 80% ascertainment");
    assert!(
        main.contains("P004") && main.contains("Eligible not referred"),
        "{main}"
    );
    b.element_screenshot("table#eligible", "51-national-ascertainment");
    b.goto(&format!(
        "{base}/national/outliers?from=2024-04-01&to=2025-03-31"
    ));
    b.wait_text("main", "finding(s) outside the limits");
    b.screenshot("08-outliers");
    // Triage: only the alarms, then all again.
    b.select("#level", "alarm");
    b.click("form.noprint button");
    b.wait_url("stage=");
    let main = b.wait_text("main", "finding(s) outside the limits, with these filters");
    assert!(
        !main.contains(" alert low") && !main.contains(" alert high"),
        "{main}"
    );
    b.screenshot("49-outliers-alarms");
    b.select("#level", "");
    b.click("form.noprint button");
    b.wait_text("main", "finding(s) outside the limits");
    b.click("form[action=\"/national/outliers\"] button");
    b.wait_text("main", "Stage: open");
    b.select("#status", "contacted");
    b.type_into("#note", "Emailed the programme lead about uptake");
    b.click("main form[method=\"post\"] button");
    let main = b.wait_text("main", "Stage: contacted");
    assert!(
        main.contains("Emailed the programme lead about uptake"),
        "{main}"
    );
    assert!(main.contains("year on year"), "{main}");
    b.screenshot("09-outlier-case");
    b.click("a[href=\"/national/outliers\"]");
    b.wait_text("main", "Cases");
    assert!(!b
        .find_all("a[href^=\"/national/outliers/case\"]")
        .is_empty());
    // The rest of the national pages, each checked by axe at both widths.
    let q = "from=2024-04-01&to=2025-03-31";
    for (path, wait, name) in [
        (
            format!("/national/inequalities?{q}"),
            "Who is missed",
            "22-inequalities",
        ),
        (
            format!("/national/quality?{q}"),
            "Submissions for",
            "23-quality",
        ),
        (
            format!("/national/report?{q}"),
            "Download the report as a PDF",
            "23b-annual-report-choice",
        ),
        (
            format!("/national/programme?code=P001&{q}"),
            "P001",
            "24-national-programme",
        ),
        (
            format!("/national/dashboard?{q}"),
            "Funnel plot: ",
            "25-national-dashboard-full",
        ),
    ] {
        b.goto(&format!("{base}{path}"));
        b.wait_text("main", wait);
        b.screenshot(name);
    }
    // A lead's dashboard beside the national picture, with its charts.
    b.click("header details.account summary");
    b.click("header form button");
    b.wait_url("/login");
    sign_in(&b, &base, "lead", "/episodes");
    b.goto(&format!("{base}/p/P001/dashboard?{q}"));
    let main = b.wait_text("main", "Against the national picture");
    assert!(main.contains("The last three years"), "{main}");
    b.screenshot("26-dashboard-national");
    // The charts, close up.
    for (css, name) in [
        ("figure:has(#nf-uptake-t)", "27-chart-funnel-you"),
        ("figure:has(#ug1-t)", "28-chart-uptake-by-age"),
        ("figure:has(#wt-t)", "29-chart-waits"),
        ("figure:has(#trend-t)", "30-chart-trend"),
    ] {
        b.element_screenshot(css, name);
    }
}

#[test]
fn an_admin_records_a_data_sharing_agreement() {
    let Some((driver, chromium)) = webdriver::available() else {
        return;
    };
    let db = crest_store::testing::sqlite_db();
    let base = serve(setup(&db));
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("browser")
        .join("sqlite");
    let b = Browser::start(&driver, &chromium, shots);
    sign_in(&b, &base, "admin", "/");
    b.click("a[href=\"/admin/agreements\"]");
    b.wait_text("main", "No agreement is on record");
    for (field, value) in [
        ("id", "ncpcr-2025"),
        ("recipient", "National audit of cardiac rehabilitation"),
        ("legal_basis", "CAG 99/CAG/0001"),
        ("valid_from", "01/04/2025"),
        ("valid_to", "31/03/2025"),
    ] {
        b.type_into(&format!("#f-{field}"), value);
    }
    b.click("#s2");
    b.click("#c-a1_hads_anxiety");
    b.click("form[action=\"/admin/agreements\"] button");
    let summary = b.wait_text("#error-summary", "There is a problem");
    assert!(summary.contains("before valid from"), "{summary}");
    assert_eq!(b.focused_id(), "error-summary");
    b.screenshot("10-agreement-error");
    // Nothing typed or ticked is lost; the summary's link leads to the field.
    let src = b.source();
    assert!(
        src.contains("value=\"CAG 99/CAG/0001\""),
        "typed values kept"
    );
    assert!(
        src.contains("value=\"a1_hads_anxiety\" checked"),
        "ticks kept"
    );
    b.click("#error-summary a[href=\"#f-valid_to\"]");
    assert_eq!(b.focused_id(), "f-valid_to");
    b.clear("#f-valid_to");
    b.type_into("#f-valid_to", "31/03/2026");
    b.click("form[action=\"/admin/agreements\"] button");
    let main = b.wait_text("main", "Agreement ncpcr-2025 recorded.");
    assert!(main.contains("1 April 2025 to 31 March 2026"), "{main}");
    b.screenshot("11-agreement-recorded");
    // The admin's other pages, each checked by axe at both widths.
    for (path, wait, name) in [
        ("/admin/users", "Security codes", "34-users"),
        (
            "/admin/users/change?username=lead",
            "Save role, programmes and regions",
            "34b-user",
        ),
        (
            "/admin/national-figures",
            "None are loaded yet",
            "35-national-figures",
        ),
        (
            "/account/security-code",
            "authenticator app",
            "36-security-code",
        ),
    ] {
        b.goto(&format!("{base}{path}"));
        b.wait_text("main", wait);
        b.screenshot(name);
    }
    let held = open(&db).run(|s| s.agreements().unwrap());
    assert_eq!(held.len(), 1);
    assert!(held[0].allows("a1_hads_anxiety") && !held[0].allows("a2_hads_anxiety"));
}

#[test]
fn an_admin_adds_a_user_who_signs_in_and_changes_their_password() {
    let Some((driver, chromium)) = webdriver::available() else {
        return;
    };
    let db = crest_store::testing::sqlite_db();
    let base = serve(setup(&db));
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("browser")
        .join("sqlite");
    let b = Browser::start(&driver, &chromium, shots);
    sign_in(&b, &base, "admin", "/");
    b.click("a[href=\"/admin/users\"]");
    b.wait_text("main", "Add a user");
    b.type_into("#f-username", "nurse3");
    b.click("label[for=\"new-role-0\"]");
    // Programmes come folded by region: open the first region, tick its first programme.
    b.click("#f-role details.region summary");
    b.click("label[for=\"new-p-0\"]");
    b.click("form[action=\"/admin/users\"] button");
    let notice = b.wait_text("main", "User nurse3 added");
    b.screenshot("12-user-added");
    let password = notice
        .split("Their password is ")
        .nth(1)
        .and_then(|t| t.split('.').next())
        .unwrap()
        .trim()
        .to_string();
    b.click("header details.account summary");
    b.click("header form button");
    b.wait_url("/login");
    b.type_into("#username", "nurse3");
    b.type_into("#password", &password);
    b.click("form[action=\"/login\"] button");
    b.wait_url("/episodes");
    b.click("header details.account summary");
    b.click("a[href=\"/account/password\"]");
    b.wait_text("main", "Your current password");
    b.type_into("#f-current", &password);
    b.type_into("#f-new", "short");
    b.type_into("#f-again", "other");
    b.click("form[action=\"/account/password\"] button");
    let summary = b.wait_text("#error-summary", "There is a problem");
    assert!(
        summary.contains("at least 10 characters") && summary.contains("not the same"),
        "{summary}"
    );
    b.screenshot("13-password-error");
    b.type_into("#f-current", &password);
    b.type_into("#f-new", "horse battery staple");
    b.type_into("#f-again", "horse battery staple");
    b.click("form[action=\"/account/password\"] button");
    b.wait_text("main", "Your password is changed");
    b.type_into("#username", "nurse3");
    b.type_into("#password", "horse battery staple");
    b.click("form[action=\"/login\"] button");
    b.wait_url("/episodes");
    // The security code: the key shown, a code from it (as an authenticator app works it
    // out), and then signing in asks for it.
    b.click("header details.account summary");
    b.click("a[href=\"/account/security-code\"]");
    b.wait_text("main", "authenticator app");
    b.screenshot("37-security-code-set-up");
    let secret = b.attribute("input[name=\"secret\"]", "value");
    let code = || {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        crest_store::totp::code_at(&crest_store::totp::from_base32(&secret).unwrap(), now, 6)
    };
    // Only the current 30-second step's code counts: start typing early in a step, so the
    // step does not end while the browser types and sends it.
    let unix = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    while unix() % crest_store::totp::STEP > crest_store::totp::STEP - 8 {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let now = unix();
    let enabled_at = now / crest_store::totp::STEP;
    b.type_into(
        "#f-code",
        &crest_store::totp::code_at(&crest_store::totp::from_base32(&secret).unwrap(), now, 6),
    );
    b.click("form[action=\"/account/security-code\"] button");
    b.wait_url("/episodes");
    b.click("header details.account summary");
    b.click("header form button");
    b.wait_url("/login");
    b.type_into("#username", "nurse3");
    b.type_into("#password", "horse battery staple");
    b.click("form[action=\"/login\"] button");
    b.wait_text("main", "security code is not right");
    b.type_into("#password", "horse battery staple");
    // Each step's code is accepted once: the one that turned codes on is spent.
    while std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / crest_store::totp::STEP
        <= enabled_at
    {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    b.type_into("#code", &code());
    b.click("form[action=\"/login\"] button");
    // The sign-in without a code is told: it may not have been them.
    b.wait_text("main", "given once with a wrong security code");
    b.screenshot("37b-wrong-security-codes-told");
}

#[test]
fn a_nurse_enters_an_episode_step_by_step_and_sees_every_problem_at_once() {
    let Some((driver, chromium)) = webdriver::available() else {
        return;
    };
    let db = crest_store::testing::sqlite_db();
    let base = serve(setup(&db));
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("browser")
        .join("sqlite");
    let b = Browser::start(&driver, &chromium, shots);
    sign_in(&b, &base, "staff", "/episodes");
    b.click("a[href=\"/p/P001/episodes/new\"]");
    b.wait_text("main", "Step 1 of 7");
    let date = |field: &str, [d, m, y]: [&str; 3]| {
        for (id, v) in [
            (format!("#f-{field}"), d),
            (format!("#f-{field}-month"), m),
            (format!("#f-{field}-year"), y),
        ] {
            b.clear(&id);
            b.type_into(&id, v);
        }
    };
    // The form proposes an id; the nurse may keep it or write the team's own.
    b.clear("#f-episode_id");
    b.type_into("#f-episode_id", "W9");
    b.type_into("#f-nhs_number", "9434765918");
    date("date_of_birth", ["15", "06", "1960"]);
    b.click("button[value=\"next\"]");
    let summary = b.wait_text("#error-summary", "There is a problem");
    assert!(
        summary.contains("NHS number") && summary.contains("Sex"),
        "both at once: {summary}"
    );
    b.screenshot("31-step-problems");
    b.clear("#f-nhs_number");
    b.type_into("#f-nhs_number", "943 476 5862");
    b.click("label[for=\"f-sex-1\"]");
    b.click("button[value=\"next\"]");
    b.wait_text("main", "Step 2 of 7");
    b.select("#f-initiating_event", "mi_nstemi");
    b.select("#f-treatment", "pci");
    date("event_date", ["1", "2", "2025"]);
    b.click("label[for=\"f-comorbidities-1\"]");
    b.screenshot("32-step-event");
    // By keyboard: Enter in a field moves on to the next step (never back).
    b.type_into("#f-event_date-year", "");
    b.keys("\u{E007}");
    b.wait_text("main", "Step 3 of 7");
    date("referral_date", ["3", "1", "2025"]);
    for n in 3..7 {
        b.click("button[value=\"next\"]");
        b.wait_text("main", &format!("Step {} of 7", n + 1));
    }
    b.select("#f-status", "completed");
    b.click("button[value=\"next\"]");
    let summary = b.wait_text("#error-summary", "There is a problem");
    for problem in [
        "Date of referral",
        "Date core rehabilitation started",
        "Date core rehabilitation ended",
    ] {
        assert!(
            summary.contains(problem),
            "{problem} in one round: {summary}"
        );
    }
    assert!(
        b.text("main").contains("High blood pressure"),
        "ticks kept, in words"
    );
    b.screenshot("33-check-answers");
    b.click("button[value=\"to:3\"]");
    b.wait_text("main", "Step 3 of 7");
    date("referral_date", ["3", "2", "2025"]);
    for n in 3..7 {
        b.click("button[value=\"next\"]");
        b.wait_text("main", &format!("Step {} of 7", n + 1));
    }
    b.select("#f-status", "referred");
    b.click("button[value=\"next\"]");
    b.wait_text("main", "check your answers");
    b.click("button[value=\"save\"]");
    b.wait_text("main", "Saved.");
    let stored = open(&db).run(|s| s.episode("P001", "W9").unwrap().unwrap());
    assert_eq!(
        stored.text(crest_core::Col::Comorbidities),
        Some("hypertension")
    );
}

#[test]
fn a_lead_sends_a_submission_to_a_national_server_and_sees_the_receipt() {
    use crest_privacy::Key;
    let Some((driver, chromium)) = webdriver::available() else {
        return;
    };
    let (db, nlocal, ndb) = (
        crest_store::testing::sqlite_db(),
        crest_store::testing::sqlite_db(),
        crest_store::testing::sqlite_db(),
    );
    let sk = Key::from_secret([3; 32]);
    let app = setup(&db);
    // The national audit's server, started here, with an API token for P001's system.
    let audit = common::national_audit_server(&db, &nlocal, &ndb, "p001-token");
    app.set_submission_key(sk);
    app.set_signing_keys(common::setup_signing_keys());
    app.set_send_to(&audit, "p001-token").unwrap();
    open(&db).run(|s| s.put_agreement(&common::agreement(false)).unwrap());
    let base = serve(app);
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("browser")
        .join("sqlite");
    let b = Browser::start(&driver, &chromium, shots);
    sign_in(&b, &base, "lead", "/episodes");
    b.click("a[href=\"/p/P001/submit\"]");
    b.wait_text("main", "National Data Opt-out");
    let ndoo = crest_store::testing::scratch_dir("browser-send").join("ndoo.csv");
    std::fs::write(&ndoo, "nhs_number,checked_on\n9434765870,2025-05-30\n").unwrap();
    b.clear("#from");
    b.type_into("#from", "01/04/2024");
    b.clear("#to");
    b.type_into("#to", "31/03/2025");
    b.type_into("#ndoo", &ndoo.to_string_lossy());
    b.wait_value("#ndoo");
    b.click("form[enctype] button");
    let check = b.wait_text("main", "What would be sent");
    assert!(
        check.contains("Episodes sent (pseudonymised, minimised)"),
        "{check}"
    );
    b.screenshot("38-submission-check");
    b.click("button[name=\"send\"]");
    let receipt = b.wait_text("main", "Received by the national audit");
    assert!(receipt.contains("Stored 1 episode(s)"), "{receipt}");
    b.screenshot("39-submission-receipt");
    assert_eq!(open(&db).run(|s| s.sent_episodes("P001").unwrap()), ["E1"]);
}

/// A commissioner reads their region and builds an aggregate; a researcher finds their project
/// and downloads its extract; both make an API token; the API page lists every operation.
/// Every page is checked by axe at desktop and phone widths.
#[test]
fn a_commissioner_and_a_researcher_use_the_national_figures() {
    let Some((driver, chromium)) = webdriver::available() else {
        return;
    };
    let db = crest_store::testing::sqlite_db();
    let ndb = crest_store::testing::sqlite_db();
    let app = setup(&db);
    common::synthetic_national(&app, &db, &ndb);
    common::load_expected(&ndb);
    let mut n = crest_store::NationalStore::open(&ndb.url).unwrap();
    let region = n.programmes().unwrap()[0].region.clone();
    n.put_project(&crest_store::national::Project {
        id: "uptake-2025".into(),
        title: "Who takes up cardiac rehabilitation".into(),
        approval: "IRAS 123456".into(),
        fields: crest_privacy::research::parse_fields(
            "age_band,sex,imd_quintile,referral_date,status",
        )
        .unwrap(),
        researchers: vec!["researcher".into()],
        valid_from: crest_core::Date::from_ymd(2025, 1, 1).unwrap(),
        valid_to: crest_core::Date::from_ymd(2025, 12, 31).unwrap(),
        k: 5,
        secret: crest_privacy::research::new_secret(),
        created_at: "2025-01-01T00:00:00Z".into(),
    })
    .unwrap();
    drop(n);
    open(&db).run(|s| {
        crest_web::add_user(
            s,
            "commissioner",
            crest_store::Role::Commissioner,
            std::slice::from_ref(&region),
            PASSWORD,
        )
        .unwrap();
        crest_web::add_user(
            s,
            "researcher",
            crest_store::Role::Researcher,
            &[],
            PASSWORD,
        )
        .unwrap();
    });
    let base = serve(app);
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("browser")
        .join("sqlite");
    let b = Browser::start(&driver, &chromium, shots);
    sign_in(&b, &base, "commissioner", "/region");
    b.goto(&format!("{base}/region?from=2024-04-01&to=2025-03-31"));
    let main = b.wait_text("main", "Who is missed");
    assert!(
        main.contains(&region) && main.contains("Slope index"),
        "{main}"
    );
    // Eligible, referred and started: the region's total and each programme, as published.
    assert!(
        main.contains("Eligible, referred and started") && main.contains("80% or more referred"),
        "{main}"
    );
    b.screenshot("40-region");
    b.element_screenshot("table#eligible", "50-region-ascertainment");
    // Charts over time of published values, for the region or one of its programmes.
    assert!(
        main.contains("Referrals per month are not published"),
        "{main}"
    );
    b.element_screenshot("figure:has(#spc-uptake-t)", "52-region-spc-uptake");
    b.element_screenshot(
        "figure:has(#uptake-age_band-t)",
        "41-chart-region-uptake-by-age",
    );
    b.element_screenshot("figure:has(#demand-t)", "47-chart-region-demand");
    b.element_screenshot("figure:has(#conversion-t)", "48-chart-region-conversion");
    b.click("a[href=\"/aggregates\"]");
    b.wait_text("main", "Breakdown 1");
    b.select("#by0", "age_band");
    b.select("#by1", "sex");
    b.select("#measure", "uptake");
    b.type_into("#from", "01/04/2024");
    b.type_into("#to", "31/03/2025");
    b.click("form[action=\"/aggregates\"] button");
    let main = b.wait_text("main", "Download this table");
    assert!(main.contains("published values"), "{main}");
    b.screenshot("42-aggregates");
    b.goto(&format!("{base}/account/tokens"));
    b.type_into("#label", "planning spreadsheet");
    b.click("main form[action=\"/account/tokens\"] button");
    let main = b.wait_text("main", "crest_pat_");
    assert!(main.contains("not shown again"), "{main}");
    b.screenshot("43-api-token");
    b.goto(&format!("{base}/api"));
    b.wait_text("main", "/api/v1/aggregates");
    b.screenshot("44-api");
    b.click("header details.account summary");
    b.click("header form button");
    b.wait_url("/login");
    sign_in(&b, &base, "researcher", "/research");
    let main = b.wait_text("main", "Who takes up cardiac rehabilitation");
    assert!(main.contains("Download the extract (CSV)"), "{main}");
    b.screenshot("45-research");
    assert_eq!(
        b.attribute(
            "a[href=\"/research/uptake-2025/extract.parquet\"]",
            "download"
        ),
        ""
    );
    b.click("header details.account summary");
    b.click("header form button");
    b.wait_url("/login");
    sign_in(&b, &base, "admin", "/");
    b.goto(&format!("{base}/admin/projects"));
    b.wait_text("main", "Record a research project");
    b.type_into("#f-id", "bad id");
    b.click("main form[action=\"/admin/projects\"] button");
    let main = b.wait_text("main", "There is a problem");
    assert!(
        main.contains("Enter the title")
            && main.contains("Name at least one researcher")
            && main.contains("Enter the first day the approval is valid"),
        "{main}"
    );
    b.screenshot("46-admin-projects-error");
}

/// The public results site, written by `crest report site`'s code from the national store,
/// opened from disk: every page passes axe at both widths, searching finds a programme, its
/// page shows the grade the published table gives, and every table is there as CSV.
#[test]
fn the_public_results_site_opens_from_disk_and_finds_a_programme() {
    let Some((driver, chromium)) = webdriver::available() else {
        return;
    };
    let db = crest_store::testing::sqlite_db();
    let ndb = crest_store::testing::sqlite_db();
    let app = setup(&db);
    common::synthetic_national(&app, &db, &ndb);
    let mut n = crest_store::NationalStore::open(&ndb.url).unwrap();
    let report = crest_report::annual::annual(
        &mut n,
        common::fy2024(),
        common::today(),
        crest_stats::funnel::Method::Additive,
    )
    .unwrap();
    let dir = crest_store::testing::scratch_dir("site");
    let files = crest_report::site::write_site(&report, &dir).unwrap();
    assert!(files > report.programme_list.len() + report.tables.len());
    // Every page starts with a link past the navigation to its main content.
    let mut pages: Vec<std::path::PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "html"))
        .collect();
    assert!(pages.iter().any(|p| p.ends_with("methods.html")));
    pages.extend(
        std::fs::read_dir(dir.join("programmes"))
            .unwrap()
            .map(|e| e.unwrap().path()),
    );
    for page in &pages {
        let html = std::fs::read_to_string(page).unwrap();
        // Headings go down one level at a time (axe's heading-order): h1, then h2, then h3.
        let levels: Vec<u8> = html
            .match_indices("<h")
            .filter_map(|(i, _)| {
                let d = html.as_bytes().get(i + 2)?;
                (b'1'..=b'6').contains(d).then_some(d - b'0')
            })
            .collect();
        for pair in levels.windows(2) {
            assert!(
                pair[1] <= pair[0] + 1,
                "{}: a heading h{} follows h{}",
                page.display(),
                pair[1],
                pair[0]
            );
        }
        assert!(
            html.contains("<a class=\"skip\" href=\"#main\">Skip to main content</a>")
                && html.contains("<main id=\"main\">"),
            "{}",
            page.display()
        );
    }
    for t in &report.tables {
        let csv = std::fs::read(dir.join("tables").join(format!("{}.csv", t.name))).unwrap();
        assert_eq!(csv, t.csv().unwrap(), "{}", t.name);
    }
    let programmes = report
        .tables
        .iter()
        .find(|t| t.name == "programmes")
        .unwrap();
    let grade = programmes.head.iter().position(|h| h == "grade").unwrap();
    let target = &report.programme_list[3];
    let published_grade = programmes
        .rows
        .iter()
        .find(|r| r[0] == target.code)
        .unwrap()[grade]
        .clone();
    // The report's programme tables name each programme, with its code.
    let kpis = std::fs::read_to_string(dir.join("programmes.html")).unwrap();
    assert!(
        kpis.contains(&format!(
            "<th scope=\"row\">{} ({})</th>",
            target.name, target.code
        )),
        "{kpis}"
    );
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("browser")
        .join("sqlite");
    let b = Browser::start(&driver, &chromium, shots);
    b.goto(&format!("file://{}", dir.join("index.html").display()));
    b.wait_text("main", "Find a programme");
    b.screenshot("50-site-index");
    b.type_into("#search", &target.code);
    let shown = b.wait_text("#search-count", "1 of");
    assert!(shown.starts_with("1 of"), "{shown}");
    let visible = b.find_all("#programme-list tbody tr:not([hidden])");
    assert_eq!(visible.len(), 1);
    b.click(&format!("a[href=\"programmes/{}.html\"]", target.code));
    let main = b.wait_text("main", "Grade:");
    assert!(
        main.contains(&format!("Grade: {published_grade}")),
        "{main}"
    );
    b.screenshot("51-site-programme");
    b.goto(&format!("file://{}", dir.join("funnels.html").display()));
    let main = b.wait_text("main", "additive");
    assert!(main.contains("Funnel"), "{main}");
    b.screenshot("52-site-funnels");
    b.goto(&format!(
        "file://{}",
        dir.join("inequalities.html").display()
    ));
    b.wait_text("main", "Uptake");
    b.screenshot("53-site-inequalities");
    b.goto(&format!("file://{}", dir.join("methods.html").display()));
    b.wait_text("main", "Overdispersion");
    b.screenshot("54-site-methods");
}
