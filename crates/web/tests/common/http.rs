//! Requests to the router as a browser would send them: forms, cookies, signing in.

use super::PASSWORD;
use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use std::sync::Arc;
use tower::ServiceExt;

/// An answer, read whole.
pub struct Resp {
    pub status: StatusCode,
    pub location: String,
    pub cookies: Vec<String>,
    pub body: String,
    /// The body as sent (a PDF or a workbook is not text).
    pub bytes: Vec<u8>,
}

pub async fn send(app: &Arc<crest_web::App>, req: Request<Body>) -> Resp {
    let r = crest_web::router(app.clone()).oneshot(req).await.unwrap();
    let status = r.status();
    let location = r
        .headers()
        .get(header::LOCATION)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let cookies = r
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    let bytes = r.into_body().collect().await.unwrap().to_bytes().to_vec();
    let body = String::from_utf8_lossy(&bytes).to_string();
    Resp {
        status,
        location,
        cookies,
        body,
        bytes,
    }
}

pub fn get(path: &str, cookie: &str) -> Request<Body> {
    Request::get(path)
        .header(header::COOKIE, cookie)
        .body(Body::empty())
        .unwrap()
}

pub fn post(path: &str, cookie: &str, form: &[(&str, &str)]) -> Request<Body> {
    let body: Vec<String> = form
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect();
    Request::post(path)
        .header(header::COOKIE, cookie)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body.join("&")))
        .unwrap()
}

/// A value percent-encoded for an address or a form body, as the app encodes its own links.
pub fn enc(s: &str) -> String {
    crest_web::html::url_encode(s)
}

pub fn hidden(body: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let i = body
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {body}"))
        + marker.len();
    body[i..].split('"').next().unwrap().to_string()
}

pub fn cookie_value(cookies: &[String], name: &str) -> Option<String> {
    cookies
        .iter()
        .find_map(|c| c.strip_prefix(&format!("{name}=")))
        .map(|c| c.split(';').next().unwrap().to_string())
}

/// One sign-in attempt with the login form's cookie and token.
pub async fn try_sign_in(
    app: &Arc<crest_web::App>,
    pre: &str,
    csrf: &str,
    user: &str,
    password: &str,
) -> Resp {
    send(
        app,
        post(
            "/login",
            &format!("crest_login={pre}"),
            &[("username", user), ("password", password), ("csrf", csrf)],
        ),
    )
    .await
}

/// Signs in; returns the session cookie header and the session's CSRF token.
pub async fn login(app: &Arc<crest_web::App>, user: &str) -> (String, String) {
    let page = send(app, get("/login", "")).await;
    let pre = cookie_value(&page.cookies, "crest_login").unwrap();
    let csrf = hidden(&page.body, "csrf");
    let r = send(
        app,
        post(
            "/login",
            &format!("crest_login={pre}"),
            &[("username", user), ("password", PASSWORD), ("csrf", &csrf)],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let set = r
        .cookies
        .iter()
        .find(|c| c.starts_with("crest_session="))
        .unwrap();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    let cookie = format!(
        "crest_session={}",
        cookie_value(&r.cookies, "crest_session").unwrap()
    );
    let home = send(app, get("/p/P001/episodes", &cookie)).await;
    let csrf = if home.status == StatusCode::OK {
        hidden(&home.body, "csrf")
    } else {
        let start = send(app, get("/", &cookie)).await;
        if start.status == StatusCode::SEE_OTHER {
            hidden(&send(app, get(&start.location, &cookie)).await.body, "csrf")
        } else {
            hidden(&start.body, "csrf")
        }
    };
    (cookie, csrf)
}

/// A page's text as one line, as a person reads it: tags dropped (a cell, item, paragraph or
/// line break reads as a space), spaces collapsed.
pub fn words(body: &str) -> String {
    const BLOCKS: [&str; 15] = [
        "td", "th", "tr", "li", "p", "div", "br", "h1", "h2", "h3", "ul", "ol", "table", "caption",
        "dd",
    ];
    let mut out = String::new();
    let mut rest = body;
    while let Some(i) = rest.find('<') {
        out.push_str(&rest[..i]);
        let tag = &rest[i + 1..];
        let end = tag.find('>').unwrap_or(tag.len());
        let name: String = tag[..end]
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        if BLOCKS.contains(&name.as_str()) {
            out.push(' ');
        }
        rest = tag.get(end + 1..).unwrap_or("");
    }
    out.push_str(rest);
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A page's main content as a person reads it, for a snapshot a reviewer can read: one line per
/// heading, paragraph, list item and table row (cells between `|`), a chart as its title, and
/// the entities people never see written out.
pub fn reading(body: &str) -> String {
    const LINES: [&str; 19] = [
        "tr", "li", "p", "div", "br", "h1", "h2", "h3", "ul", "ol", "table", "caption", "dd", "dt",
        "form", "nav", "label", "button", "legend",
    ];
    let main = body
        .split_once("<main")
        .and_then(|(_, m)| m.split_once("</main>"))
        .map_or(body, |(m, _)| m);
    let mut out = String::new();
    let mut rest = main
        .get(main.find('>').map_or(0, |i| i + 1)..)
        .unwrap_or("");
    while let Some(i) = rest.find('<') {
        out.push_str(&rest[..i]);
        let tag = &rest[i + 1..];
        let end = tag.find('>').unwrap_or(tag.len());
        let closing = tag.starts_with('/');
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        rest = tag.get(end + 1..).unwrap_or("");
        if name == "span" && tag.starts_with("span class=\"visually-hidden\"") {
            // Words for screen readers only ("sort ascending") are not what a reviewer reads.
            rest = rest.split_once("</span>").map_or("", |(_, after)| after);
        } else if name == "option" && !closing {
            out.push_str(" / ");
        } else if name == "svg" && !closing {
            // A chart reads as its title; its ticks and marks are not words.
            let (inside, after) = rest.split_once("</svg>").unwrap_or((rest, ""));
            let title = inside
                .split_once("<title")
                .and_then(|(_, t)| t.split_once('>'))
                .and_then(|(_, t)| t.split_once("</title>"))
                .map_or("", |(t, _)| t);
            out.push_str(&format!("\n[chart: {title}]\n"));
            rest = after;
        } else if (name == "td" || name == "th") && !closing {
            out.push_str(" | ");
        } else if LINES.contains(&name.as_str()) {
            out.push('\n');
        }
    }
    out.push_str(rest);
    let out = out
        .replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'");
    out.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A multipart upload of `files` (name, bytes) in one form, as a browser sends several files
/// chosen together; its content type and body.
pub fn multipart_files(csrf: &str, files: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "XFHIRBOUNDARYX";
    let mut body =
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n")
            .into_bytes();
    for (name, bytes) in files {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}
