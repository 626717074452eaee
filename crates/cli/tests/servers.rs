//! Two `crest serve` processes on one PostgreSQL database keep no state of their own: a
//! request sequence alternating between them (sign in, upload preview, confirm, dashboard,
//! sign-in throttling) behaves as one server would.
#![allow(clippy::unwrap_used)]

use common::{cookie, form, free_port, hidden, http, serve, Server, URLENC};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

#[test]
fn two_servers_share_one_database_and_keep_no_state_of_their_own() {
    let Some(db) = crest_store::testing::postgres_db() else {
        return;
    };
    let dir = crest_store::testing::scratch_dir("two-servers");
    let crest = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_crest"))
            .arg("--db")
            .arg(&db.url)
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    crest(&["init"]);
    let programmes = dir.join("programmes.csv");
    std::fs::write(
        &programmes,
        "programme_code,name,nation,region,professions,offers\nP001,One,england,London,nurse,mi\n",
    )
    .unwrap();
    crest(&["programmes", "import", programmes.to_str().unwrap()]);
    let password = common::add_lead(&db.url);
    let (a, b) = (
        serve(&db.url, &dir.join("a")),
        serve(&db.url, &dir.join("b")),
    );

    // Signed in on A with the form from B.
    let page = http(b.port, "GET", "/login", "", URLENC, b"");
    let pre = cookie(&page, "crest_login");
    let csrf = hidden(&page.body, "csrf");
    let r = http(
        a.port,
        "POST",
        "/login",
        &format!("crest_login={pre}"),
        URLENC,
        &form(&[
            ("username", "lead1"),
            ("password", &password),
            ("csrf", &csrf),
        ]),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let session = format!("crest_session={}", cookie(&r, "crest_session"));

    // The upload form from A, the upload checked on B, confirmed on A.
    let r = http(a.port, "GET", "/p/P001/upload", &session, URLENC, b"");
    assert_eq!(r.status, 200, "{}", r.body);
    let csrf = hidden(&r.body, "csrf");
    let csv = "programme_code,episode_id,nhs_number,date_of_birth,sex,initiating_event,treatment,event_date,referral_date,status\n\
               P001,T1,9434765919,1950-01-01,male,mi_stemi,pci,2025-01-10,2025-01-12,referred\n";
    let boundary = "TWOSERVERS";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n--{boundary}\r\n\
         Content-Disposition: form-data; name=\"file\"; filename=\"t.csv\"\r\n\r\n{csv}\r\n--{boundary}--\r\n"
    );
    let r = http(
        b.port,
        "POST",
        "/p/P001/upload",
        &session,
        &format!("multipart/form-data; boundary={boundary}"),
        body.as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let token = hidden(&r.body, "token");
    let r = http(
        a.port,
        "POST",
        "/p/P001/upload/confirm",
        &session,
        URLENC,
        &form(&[("csrf", &csrf), ("token", &token), ("name", "t.csv")]),
    );
    assert!(r.body.contains("Stored: 1 new"), "{}", r.body);

    // The dashboard on B sees it.
    let r = http(
        b.port,
        "GET",
        "/p/P001/dashboard?from=2024-04-01&to=2025-03-31",
        &session,
        URLENC,
        b"",
    );
    assert!(r.body.contains("1 referred"), "{}", r.body);

    // Sign-in throttling is shared: five failures on A slow the name on B too.
    for _ in 0..5 {
        let r = http(
            a.port,
            "POST",
            "/login",
            &format!("crest_login={pre}"),
            URLENC,
            &form(&[
                ("username", "lead1"),
                ("password", "wrong"),
                ("csrf", &hidden(&page.body, "csrf")),
            ]),
        );
        assert_eq!(r.status, 401, "{}", r.body);
    }
    let r = http(
        b.port,
        "POST",
        "/login",
        &format!("crest_login={pre}"),
        URLENC,
        &form(&[
            ("username", "lead1"),
            ("password", &password),
            ("csrf", &hidden(&page.body, "csrf")),
        ]),
    );
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(r.location.is_empty());
}

/// `crest demo` serves its programme side connected to its own national side: the demo lead
/// builds a submission on the Submit page, presses "Send to the national audit" and reads the
/// audit's receipt.
#[test]
fn the_demo_lead_sends_a_submission_to_the_demos_national_side() {
    use std::io::BufRead;
    let dir = std::env::temp_dir().join(format!("crest-demo-send-{}", std::process::id()));
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_crest"))
        .arg("--db")
        .arg(dir.join("unused.sqlite"))
        .args(["demo", "--programmes", "4"])
        .args(["--episodes", "600", "--addr", &format!("127.0.0.1:{port}")])
        .arg("--dir")
        .arg(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let server = Server { child, port };
    // The lead's password and programme, as the demo prints them.
    let mut lead = None;
    let mut said_send = false;
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if line.trim_start().starts_with("demo-lead ") {
            let words: Vec<&str> = line.split_whitespace().collect();
            let programme = words.last().unwrap().trim_end_matches(')').to_string();
            lead = Some((words[1].to_string(), programme));
        }
        said_send |= line.contains("sends") && line.contains("national side");
        if line.starts_with("crest web app on") {
            break;
        }
    }
    let (password, code) = lead.expect("the demo prints the lead's password");
    assert!(said_send, "the demo says where submissions go");
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(50));
    }
    let page = http(port, "GET", "/login", "", URLENC, b"");
    let pre = format!("crest_login={}", cookie(&page, "crest_login"));
    let body = form(&[
        ("username", "demo-lead"),
        ("password", &password),
        ("csrf", &hidden(&page.body, "csrf")),
    ]);
    let r = http(port, "POST", "/login", &pre, URLENC, &body);
    assert_eq!(r.status, 303, "{}", r.body);
    let session = format!("crest_session={}", cookie(&r, "crest_session"));
    let submit = format!("/p/{code}/submit");
    let page = http(port, "GET", &submit, &session, URLENC, b"");
    assert_eq!(page.status, 200, "{}", page.body);
    let csrf = hidden(&page.body, "csrf");
    let (from, to) = (hidden(&page.body, "from"), hidden(&page.body, "to"));
    // The period and the demo's opt-out check result, as the browser sends the form.
    let ndoo = std::fs::read(dir.join("ndoo-check.csv")).unwrap();
    let boundary = "crestdemoboundary";
    let mut multipart = Vec::new();
    for (name, value) in [("csrf", csrf.as_str()), ("from", &from), ("to", &to)] {
        multipart.extend(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                .bytes(),
        );
    }
    multipart.extend(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"ndoo\"; filename=\"ndoo-check.csv\"\r\nContent-Type: text/csv\r\n\r\n")
            .bytes(),
    );
    multipart.extend(ndoo);
    multipart.extend(format!("\r\n--{boundary}--\r\n").bytes());
    let check = http(
        port,
        "POST",
        &submit,
        &session,
        &format!("multipart/form-data; boundary={boundary}"),
        &multipart,
    );
    assert_eq!(check.status, 200, "{}", check.body);
    assert!(
        check.body.contains("Send to the national audit"),
        "{}",
        check.body
    );
    let body = form(&[
        ("csrf", &csrf),
        ("token", &hidden(&check.body, "token")),
        ("send", "1"),
    ]);
    let receipt = http(
        port,
        "POST",
        &format!("/p/{code}/submit/confirm"),
        &session,
        URLENC,
        &body,
    );
    assert_eq!(receipt.status, 200, "{}", receipt.body);
    assert!(
        receipt.body.contains("Received by the national audit"),
        "{}",
        receipt.body
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
