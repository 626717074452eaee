//! A small W3C WebDriver client for the browser tests: Debian's `chromedriver` driving
//! headless `chromium`, spoken to as JSON over plain HTTP/1.1 on loopback. Only the few
//! commands the tests need. Kept rather than `fantoccini` or `thirtyfour`, measured on
//! 2026-12-07: fantoccini 0.22 adds 52 crates to the build (49 with rustls instead of
//! OpenSSL: the `url`/ICU stack, `hyper-tls`, `time`, `cookie`, `webdriver`), all async, for
//! tests that are synchronous and already speak HTTP; CI compiles on 2 cores.
#![allow(dead_code, clippy::unwrap_used)]

use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The key of an element reference in WebDriver responses.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Chromium and its driver, if this machine has them. Without them the browser tests skip
/// with a notice, unless `CI` or `CREST_REQUIRE_BROWSER` is set, when they fail.
pub fn available() -> Option<(PathBuf, PathBuf)> {
    let driver = PathBuf::from(
        std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into()),
    );
    let chromium =
        PathBuf::from(std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()));
    if driver.exists() && chromium.exists() {
        return Some((driver, chromium));
    }
    let msg = format!(
        "browser tests need {} and {} (apt-get install -y chromium chromium-driver)",
        chromium.display(),
        driver.display()
    );
    crest_store::testing::skip(&msg, "CREST_REQUIRE_BROWSER");
    None
}

/// axe-core's source, read once. Without it the check is skipped with a notice, unless `CI` or
/// `CREST_REQUIRE_BROWSER` is set, when it fails.
fn axe_source() -> Option<&'static str> {
    static AXE: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    AXE.get_or_init(|| {
        let path = std::env::var("AXE_CORE")
            .map(PathBuf::from)
            .unwrap_or_else(|_| {
                PathBuf::from(std::env::var("HOME").unwrap_or_default())
                    .join(".cache/crest-npm/node_modules/axe-core/axe.min.js")
            });
        match std::fs::read_to_string(&path) {
            Ok(s) => Some(s),
            Err(e) => {
                let msg = format!(
                    "the accessibility check needs axe-core at {}: {e}",
                    path.display()
                );
                crest_store::testing::skip(&msg, "CREST_REQUIRE_BROWSER");
                None
            }
        }
    })
    .as_deref()
}

/// A running chromedriver with one headless Chromium session; both end on drop.
pub struct Browser {
    driver: Child,
    port: u16,
    session: String,
    shots: PathBuf,
}

/// An element reference.
#[derive(Clone)]
pub struct Element(String);

impl Browser {
    /// Starts chromedriver on a free port and opens a session; screenshots go to `shots`.
    pub fn start(driver: &Path, chromium: &Path, shots: PathBuf) -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut b = Browser {
            driver: child,
            port,
            session: String::new(),
            shots,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while b.http("GET", "/status", None).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium.to_string_lossy(),
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1280,1000"]
            }
        }}});
        let v = b.cmd("POST", "/session", Some(caps));
        b.session = v["sessionId"].as_str().unwrap().to_string();
        std::fs::create_dir_all(&b.shots).unwrap();
        b
    }

    fn http(&self, method: &str, path: &str, body: Option<&Value>) -> std::io::Result<Value> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port))?;
        s.set_read_timeout(Some(Duration::from_secs(60)))?;
        let body = body.map(Value::to_string).unwrap_or_default();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.port,
            body.len()
        )?;
        // chromedriver keeps the connection open, so read by Content-Length (or chunks).
        let mut raw = Vec::new();
        let mut buf = [0u8; 65536];
        let (split, head) = loop {
            let n = s.read(&mut buf)?;
            if n == 0 {
                return Err(std::io::Error::other("connection closed before the header"));
            }
            raw.extend_from_slice(&buf[..n]);
            if let Some(p) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                break (p, String::from_utf8_lossy(&raw[..p]).to_ascii_lowercase());
            }
        };
        let length = head.lines().find_map(|l| {
            l.strip_prefix("content-length:")
                .and_then(|v| v.trim().parse::<usize>().ok())
        });
        let chunked = head.contains("transfer-encoding: chunked");
        loop {
            let body = &raw[split + 4..];
            let done = match length {
                Some(n) => body.len() >= n,
                None if chunked => body.windows(5).any(|w| w == b"0\r\n\r\n"),
                None => false,
            };
            if done {
                break;
            }
            let n = s.read(&mut buf)?;
            if n == 0 {
                break;
            }
            raw.extend_from_slice(&buf[..n]);
        }
        let mut payload = raw[split + 4..].to_vec();
        if chunked {
            payload = dechunk(&payload);
        }
        serde_json::from_slice(&payload).map_err(std::io::Error::other)
    }

    /// Sends a command; panics with the driver's message if it fails.
    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let v = self.http(method, path, body.as_ref()).unwrap();
        let value = v.get("value").cloned().unwrap_or(Value::Null);
        if let Some(err) = value.get("error") {
            panic!("WebDriver {method} {path}: {err} {}", value["message"]);
        }
        if v.get("sessionId").is_some() {
            return v;
        }
        value
    }

    fn s(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    /// Opens a URL and waits for it to load.
    pub fn goto(&self, url: &str) {
        self.cmd("POST", &self.s("/url"), Some(json!({ "url": url })));
    }

    /// The current URL.
    pub fn url(&self) -> String {
        self.cmd("GET", &self.s("/url"), None)
            .as_str()
            .unwrap()
            .to_string()
    }

    /// The page's HTML as the browser now has it.
    pub fn source(&self) -> String {
        self.cmd("GET", &self.s("/source"), None)
            .as_str()
            .unwrap()
            .to_string()
    }

    /// The first element matching a CSS selector, waiting up to 10 s for it (a page may still
    /// be loading after a click); panics (with the page) if none appears.
    pub fn find(&self, css: &str) -> Element {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let v = self
                .http(
                    "POST",
                    &self.s("/element"),
                    Some(&json!({"using": "css selector", "value": css})),
                )
                .unwrap();
            if let Some(id) = v["value"][ELEMENT].as_str() {
                return Element(id.to_string());
            }
            if Instant::now() > deadline {
                panic!("no element {css} on {}:\n{}", self.url(), self.source());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Every element matching a CSS selector.
    pub fn find_all(&self, css: &str) -> Vec<Element> {
        let v = self.cmd(
            "POST",
            &self.s("/elements"),
            Some(json!({"using": "css selector", "value": css})),
        );
        v.as_array()
            .unwrap()
            .iter()
            .map(|e| Element(e[ELEMENT].as_str().unwrap().to_string()))
            .collect()
    }

    /// Types into an element (replacing nothing: clear it first if needed).
    pub fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css);
        self.cmd(
            "POST",
            &self.s(&format!("/element/{}/value", e.0)),
            Some(json!({ "text": text })),
        );
    }

    /// Clears a text input.
    pub fn clear(&self, css: &str) {
        let e = self.find(css);
        self.cmd(
            "POST",
            &self.s(&format!("/element/{}/clear", e.0)),
            Some(json!({})),
        );
    }

    /// Clicks an element.
    pub fn click(&self, css: &str) {
        let e = self.find(css);
        self.cmd(
            "POST",
            &self.s(&format!("/element/{}/click", e.0)),
            Some(json!({})),
        );
    }

    /// Picks an option of a select by its value.
    pub fn select(&self, select_css: &str, value: &str) {
        self.click(&format!("{select_css} option[value=\"{value}\"]"));
    }

    /// The visible text of an element.
    /// Retries while a navigation replaces the page under it.
    pub fn text(&self, css: &str) -> String {
        for _ in 0..200 {
            let e = self.find(css);
            let v = self
                .http("GET", &self.s(&format!("/element/{}/text", e.0)), None)
                .unwrap();
            match v["value"].as_str() {
                Some(t) => return t.to_string(),
                // The page changed between finding the element and reading it: Chromium says
                // "stale element reference", or (since 156) that the node no longer belongs to
                // the document. Either way, find it again.
                None if v["value"]["error"] == "stale element reference"
                    || v["value"]["message"]
                        .as_str()
                        .is_some_and(|m| m.contains("does not belong to the document")) =>
                {
                    std::thread::sleep(Duration::from_millis(100))
                }
                None => panic!("WebDriver text of {css}: {}", v["value"]),
            }
        }
        panic!("{css} kept going stale")
    }

    /// Waits (up to 20 s) until the element's text contains `needle`, as after a click that
    /// submits a form; returns the text.
    pub fn wait_text(&self, css: &str, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let found = self.find_all(css);
            if !found.is_empty() {
                let t = self.text(css);
                if t.contains(needle) {
                    return t;
                }
                if Instant::now() > deadline {
                    panic!("{css} never showed {needle:?}; it shows:\n{t}");
                }
            } else if Instant::now() > deadline {
                panic!("no {css} on {}", self.url());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits (up to 20 s) until an input's current value is not empty (a file input fills in
    /// after its path is typed).
    pub fn wait_value(&self, css: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let e = self.find(css);
            let v = self.cmd(
                "GET",
                &self.s(&format!("/element/{}/property/value", e.0)),
                None,
            );
            if v.as_str().is_some_and(|v| !v.is_empty()) {
                return;
            }
            assert!(Instant::now() < deadline, "{css} stayed empty");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits (up to 20 s) until the URL ends with `suffix`.
    pub fn wait_url(&self, suffix: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let u = self.url();
            if u.ends_with(suffix) {
                return u;
            }
            assert!(
                Instant::now() < deadline,
                "the URL stayed {u}, not …{suffix}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The id of the element that has the keyboard focus.
    pub fn focused_id(&self) -> String {
        let e = self.cmd("GET", &self.s("/element/active"), None);
        let id = e[ELEMENT].as_str().unwrap().to_string();
        self.cmd("GET", &self.s(&format!("/element/{id}/attribute/id")), None)
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// An attribute of the first element matching `css`.
    pub fn attribute(&self, css: &str, name: &str) -> String {
        let e = self.find(css);
        self.cmd(
            "GET",
            &self.s(&format!("/element/{}/attribute/{name}", e.0)),
            None,
        )
        .as_str()
        .unwrap_or("")
        .to_string()
    }

    /// The value of one of the browser's cookies for the current site.
    pub fn cookie(&self, name: &str) -> String {
        self.cmd("GET", &self.s(&format!("/cookie/{name}")), None)["value"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// Presses one key on the keyboard, wherever the focus is (W3C actions; unlike sending
    /// keys to an element, this works on a file input too).
    pub fn press(&self, key: &str) {
        self.cmd(
            "POST",
            &self.s("/actions"),
            Some(json!({ "actions": [{
                "type": "key",
                "id": "keyboard",
                "actions": [{ "type": "keyDown", "value": key }, { "type": "keyUp", "value": key }]
            }]})),
        );
    }

    /// Presses keys on the focused element (WebDriver key codes, e.g. `\u{E004}` for Tab).
    pub fn keys(&self, keys: &str) {
        let e = self.cmd("GET", &self.s("/element/active"), None);
        let id = e[ELEMENT].as_str().unwrap().to_string();
        self.cmd(
            "POST",
            &self.s(&format!("/element/{id}/value")),
            Some(json!({ "text": keys })),
        );
    }

    /// Saves a PNG screenshot of the page as `name.png`, and one 390 px wide as a phone shows
    /// it as `name-phone.png`; at both widths axe-core checks the page and any violation fails
    /// the test (ux.md, WCAG 2.1 AA). Returns the desktop screenshot's path.
    pub fn screenshot(&self, name: &str) -> PathBuf {
        let desktop = self.capture_whole(name, 1280);
        self.check_accessibility(name);
        self.resize(390, 844);
        self.capture_whole(&format!("{name}-phone"), 390);
        self.check_accessibility(&format!("{name}-phone"));
        self.no_sideways_scroll(name);
        self.no_broken_words(name);
        self.resize(1280, 1000);
        desktop
    }

    /// A PNG of one element (a chart, say) as `name.png`, to look at it closely.
    pub fn element_screenshot(&self, css: &str, name: &str) -> PathBuf {
        use base64::Engine;
        let e = self.find(css);
        let v = self.cmd(
            "GET",
            &self.s(&format!("/element/{}/screenshot", e.0)),
            None,
        );
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a real PNG");
        let path = self.shots.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    /// A screenshot of the whole page (up to 8,000 px tall) at `width`.
    fn capture_whole(&self, name: &str, width: u32) -> PathBuf {
        self.resize(width, 1000);
        let tall = self.cmd(
            "POST",
            &self.s("/execute/sync"),
            Some(json!({ "script": "return document.documentElement.scrollHeight;", "args": [] })),
        );
        let height = tall.as_u64().unwrap_or(1000).clamp(600, 8000) as u32;
        self.resize(width, height);
        let shot = self.capture(name);
        self.resize(width, if width < 600 { 844 } else { 1000 });
        shot
    }

    /// At phone width the page itself never scrolls sideways (a wide table scrolls inside its
    /// own box).
    fn no_sideways_scroll(&self, name: &str) {
        let wide = self.cmd(
            "POST",
            &self.s("/execute/sync"),
            Some(json!({
                "script": "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
                "args": []
            })),
        );
        if wide.as_i64().unwrap_or(0) > 1 {
            // Name the elements that stick out, innermost first, to say what to fix.
            let culprits = self.cmd(
                "POST",
                &self.s("/execute/sync"),
                Some(json!({
                    "script": "const w = document.documentElement.clientWidth; \
                        return Array.from(document.querySelectorAll('body *')) \
                          .filter(e => e.getBoundingClientRect().right > w + 1 && e.children.length === 0) \
                          .slice(0, 5).map(e => e.tagName + ' ' + (e.className || '') + ': ' + \
                            (e.textContent || '').slice(0, 40));",
                    "args": []
                })),
            );
            panic!("{name}: at 390 px the page scrolls sideways by {wide} px: {culprits}");
        }
    }

    /// At phone width no word in a table is split across lines (a table too wide for the
    /// screen scrolls in its own box rather than squeezing its words); words that may break
    /// at a hyphen, dash or slash are left out.
    fn no_broken_words(&self, name: &str) {
        let broken = self.cmd(
            "POST",
            &self.s("/execute/sync"),
            Some(json!({
                "script": r#"
                    const broken = [];
                    for (const cell of document.querySelectorAll('th, td')) {
                      const walk = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
                      let node;
                      while ((node = walk.nextNode())) {
                        const re = /\S+/g;
                        let m;
                        while ((m = re.exec(node.textContent))) {
                          if (m[0].length < 2 || /[-–—\/]/.test(m[0])) continue;
                          const r = document.createRange();
                          r.setStart(node, m.index);
                          r.setEnd(node, m.index + m[0].length);
                          const lines = new Set(Array.from(r.getClientRects())
                            .filter(x => x.width > 0).map(x => Math.round(x.top)));
                          if (lines.size > 1) broken.push(m[0]);
                        }
                      }
                    }
                    return broken.slice(0, 10);"#,
                "args": []
            })),
        );
        let words: Vec<&str> = broken
            .as_array()
            .map(|a| a.iter().filter_map(|w| w.as_str()).collect())
            .unwrap_or_default();
        assert!(
            words.is_empty(),
            "{name}: at 390 px these words in tables are split across lines: {words:?}"
        );
    }

    /// Runs axe-core (`AXE_CORE`, else the copy `.ci/run` installs with npm) on the page and
    /// fails on any violation, naming the rule and the elements.
    pub fn check_accessibility(&self, name: &str) {
        let Some(axe) = axe_source() else {
            return;
        };
        let script = format!(
            "{axe}\nconst done = arguments[arguments.length - 1];\n\
             axe.run(document).then(r => done(r.violations.map(v => ({{id: v.id, impact: v.impact, \
             help: v.help, targets: v.nodes.slice(0, 5).map(n => n.target.join(' '))}})))) \
             .catch(e => done([{{id: 'axe-error', help: String(e)}}]));"
        );
        self.cmd(
            "POST",
            &self.s("/timeouts"),
            Some(json!({ "script": 60_000 })),
        );
        let found = self.cmd(
            "POST",
            &self.s("/execute/async"),
            Some(json!({ "script": script, "args": [] })),
        );
        let list = found.as_array().cloned().unwrap_or_default();
        assert!(
            list.is_empty(),
            "{name}: axe-core found accessibility violations at {}: {}",
            self.url(),
            serde_json::to_string_pretty(&found).unwrap()
        );
    }

    fn resize(&self, width: u32, height: u32) {
        self.cmd(
            "POST",
            &self.s("/window/rect"),
            Some(json!({ "width": width, "height": height })),
        );
    }

    fn capture(&self, name: &str) -> PathBuf {
        use base64::Engine;
        let v = self.cmd("GET", &self.s("/screenshot"), None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a real PNG");
        let path = self.shots.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.http("DELETE", &format!("/session/{}", self.session), None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = b.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&b[..eol])
                .split(';')
                .next()
                .unwrap()
                .trim(),
            16,
        )
        .unwrap_or(0);
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + size]);
        b = &b[eol + 2 + size + 2..];
    }
}
