//! `crest report annual`: the real binary over a national store filled by real submissions of
//! synthetic programmes, on SQLite and PostgreSQL; the PDF is rendered to images (pdftoppm) and
//! its pages and text checked.
#![allow(clippy::unwrap_used)]

use crest_core::{Date, Period};
use crest_privacy::Key;
use crest_store::testing::{databases, scratch_dir};
use std::process::Command;

fn crest(db: &str, args: &[&str]) -> (i32, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_crest"))
        .arg("--db")
        .arg(db)
        .args(args)
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

/// Whether the PDF tools are here; in CI they must be.
fn pdf_tools() -> bool {
    let have = |c: &str| Command::new(c).arg("-v").output().is_ok();
    let ok = have("pdftoppm")
        && have("pdfinfo")
        && have("pdftotext")
        && Command::new(std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".into()))
            .arg("--version")
            .output()
            .is_ok();
    if !ok {
        let msg =
            "the PDF report test needs chromium and poppler-utils (pdftoppm, pdfinfo, pdftotext)";
        crest_store::testing::skip(msg, "CREST_REQUIRE_BROWSER");
    }
    ok
}

/// Runs axe-core (`AXE_CORE`, else the copy `.ci/run` installs with npm) over the report in
/// headless Chromium and fails on any violation. In CI it must run.
fn axe_finds_no_violations(dir: &std::path::Path, html: &str) {
    let axe = std::env::var("AXE_CORE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| {
            std::path::PathBuf::from(std::env::var("HOME").unwrap_or_default())
                .join(".cache/crest-npm/node_modules/axe-core/axe.min.js")
        });
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".into());
    let have_chromium = Command::new(&chromium).arg("--version").output().is_ok();
    if !axe.exists() || !have_chromium {
        let msg = format!(
            "the accessibility check needs axe-core at {} and {chromium}",
            axe.display()
        );
        crest_store::testing::skip(&msg, "CREST_REQUIRE_BROWSER");
        return;
    }
    let script = std::fs::read_to_string(&axe).unwrap();
    let runner = "<script>axe.run(document).then(r => { const p = document.createElement('pre'); p.id = 'axe-result'; \
        p.textContent = JSON.stringify(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help, \
        targets: v.nodes.slice(0, 5).map(n => n.target.join(' '))}))); document.body.appendChild(p); });</script>";
    let page = html.replacen(
        "</body>",
        &format!("<script>{script}</script>{runner}</body>"),
        1,
    );
    let file = dir.join("axe.html");
    std::fs::write(&file, page).unwrap();
    let out = Command::new(&chromium)
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--virtual-time-budget=60000",
            "--dump-dom",
        ])
        .arg(format!("file://{}", file.canonicalize().unwrap().display()))
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    let start = dom
        .find("<pre id=\"axe-result\">")
        .unwrap_or_else(|| panic!("axe did not run: {}", String::from_utf8_lossy(&out.stderr)));
    let json = &dom[start + "<pre id=\"axe-result\">".len()..];
    let json = json[..json.find("</pre>").unwrap()]
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    let violations: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        violations,
        serde_json::json!([]),
        "axe-core violations in the annual report"
    );
}

#[test]
fn the_annual_report_is_a_typeset_pdf_and_every_count_is_disclosure_controlled() {
    let today = Date::from_ymd(2025, 6, 1).unwrap();
    let period = Period {
        from: Date::from_ymd(2024, 4, 1).unwrap(),
        to: Date::from_ymd(2025, 3, 31).unwrap(),
    };
    let (sk, nk) = (Key::from_secret([1; 32]), Key::from_secret([2; 32]));
    for (local, national) in databases().into_iter().zip(databases()) {
        let dir = scratch_dir("report");
        let cfg = crest_ingest::synth::Config {
            programmes: 14,
            episodes: 2_500,
            seed: 4,
            period,
            today,
        };
        crest_ingest::synth::write(&dir, &cfg).unwrap();
        let programmes =
            crest_ingest::programmes::read_programmes(&dir.join("programmes.csv")).unwrap();
        let mut s = crest_store::open(&local.url).unwrap();
        s.migrate().unwrap();
        s.upsert_programmes(&programmes).unwrap();
        let sum = crest_ingest::import_file(
            s.as_mut(),
            &dir.join("episodes.csv"),
            &crest_ingest::ImportOptions::new(today),
            None,
            &mut |_| {},
        )
        .unwrap();
        assert_eq!(sum.rejected, 0);
        s.put_agreement(&crest_core::governance::Agreement {
            id: "exempt".into(),
            recipient: "National audit".into(),
            legal_basis: "CAG 99/CAG/0001".into(),
            fields: None,
            opt_out_exempt: true,
            valid_from: Date::from_ymd(2025, 1, 1).unwrap(),
            valid_to: Date::from_ymd(2025, 12, 31).unwrap(),
        })
        .unwrap();
        let mut n = crest_store::NationalStore::open(&national.url).unwrap();
        n.migrate().unwrap();
        n.upsert_programmes(&programmes).unwrap();
        for p in &programmes {
            let mut secret = [5u8; 32];
            secret[..p.code.len()].copy_from_slice(p.code.as_bytes());
            let signing_key = crest_privacy::SigningKey::from_secret(&p.code, secret);
            crest_privacy::signing::register(
                &mut n,
                &signing_key.public_key(),
                &p.code,
                (Date::from_ymd(2000, 1, 1).unwrap(), None),
            )
            .unwrap();
            let req = crest_privacy::submission::BuildRequest {
                programme: &p.code,
                period,
                key: &sk,
                signing_key: &signing_key,
                ndoo: None,
                ndoo_max_age_days: 30,
                today,
                now: "2025-06-01T10:00:00Z".into(),
            };
            let b = crest_privacy::submission::build(s.as_mut(), &req).unwrap();
            crest_privacy::submission::receive(&mut n, &b.bytes, &sk, &nk, "2025-06-01T11:00:00Z")
                .unwrap();
        }

        // The expected patients, loaded into the national store at the command line.
        drop(n);
        let (code, out) = crest(
            &national.url,
            &[
                "expected",
                "import",
                "--national",
                dir.join("expected.csv").to_str().unwrap(),
            ],
        );
        assert_eq!(code, 0, "{out}");

        // The HTML version and its published tables.
        let html = dir.join("annual.html");
        let tables = dir.join("tables");
        let (code, out) = crest(
            &national.url,
            &[
                "report",
                "annual",
                "--from",
                "2024-04-01",
                "--to",
                "2025-03-31",
                "--out",
                html.to_str().unwrap(),
                "--tables",
                tables.to_str().unwrap(),
                // Plain limits, so funnels.csv can be checked below against Wilson limits
                // worked out by hand (the automatic choice is checked against scipy in
                // crest-stats' overdispersion test).
                "--funnel-method",
                "plain",
            ],
        );
        assert_eq!(code, 0, "{out}");
        let text = std::fs::read_to_string(&html).unwrap();
        assert!(
            text.contains("<main>") && text.contains("</main>"),
            "a main landmark"
        );
        // A programme's server with no national store loads these published tables for its
        // leads' dashboards; anything else is refused in words.
        let (p, f) = (tables.join("programmes.csv"), tables.join("funnels.csv"));
        let load = |programmes: &std::path::Path| {
            crest(
                &local.url,
                &[
                    "figures",
                    "load",
                    "--period",
                    "1 April 2024 to 31 March 2025",
                    "--programmes",
                    programmes.to_str().unwrap(),
                    "--funnels",
                    f.to_str().unwrap(),
                ],
            )
        };
        let (code, out) = load(&f);
        assert_ne!(code, 0, "{out}");
        assert!(
            out.contains("programmes.csv is not the national audit's published table"),
            "{out}"
        );
        let (code, out) = load(&p);
        assert_eq!(code, 0, "{out}");
        assert!(
            out.contains("national figures for 1 April 2024 to 31 March 2025 loaded"),
            "{out}"
        );
        let read = |name: &str| {
            let mut r = csv::Reader::from_path(tables.join(name)).unwrap();
            let head: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
            let rows: Vec<Vec<String>> = r
                .records()
                .map(|x| x.unwrap().iter().map(String::from).collect())
                .collect();
            (head, rows)
        };
        let published_count = |c: &str| {
            c == "*"
                || c.parse::<u64>()
                    .is_ok_and(|n| n == 0 || (n >= 10 && n % 5 == 0))
        };
        // Case ascertainment: every programme's referrals and starts exactly as the uptake
        // table publishes them, counts through disclosure control, the flag only where the
        // rounded counts decide it, and those under 80% named in the report.
        let (head, rows) = read("ascertainment.csv");
        let (uhead, urows) = read("uptake.csv");
        let at = |h: &[String], n: &str| h.iter().position(|x| x == n).unwrap();
        assert_eq!(rows.len(), programmes.len());
        let mut under = 0;
        for r in &rows {
            let u = urows.iter().find(|u| u[0] == r[0]).unwrap();
            assert_eq!(r[at(&head, "referred")], u[at(&uhead, "referred")], "{r:?}");
            assert_eq!(r[at(&head, "started")], u[at(&uhead, "started")], "{r:?}");
            for c in ["expected", "referred", "started"] {
                assert!(published_count(&r[at(&head, c)]), "{c}: {r:?}");
            }
            let flag = &r[at(&head, "at_least_80")];
            if let (Ok(k), Ok(e)) = (
                r[at(&head, "referred")].parse::<f64>(),
                r[at(&head, "expected")].parse::<f64>(),
            ) {
                // Decided only where every exact count the rounded ones stand for agrees.
                let (lowest, highest) = (
                    (k - 2.0).max(8.0) / (e + 2.0),
                    (k + 2.0) / (e - 2.0).max(8.0),
                );
                let want = if lowest >= 0.8 {
                    "yes"
                } else if highest < 0.8 {
                    "no"
                } else {
                    "*"
                };
                assert_eq!(flag, want, "{r:?}");
            }
            if flag == "no" {
                under += 1;
                let name = programmes.iter().find(|p| p.code == r[0]).unwrap();
                assert!(
                    text.contains(&format!("{} ({})", name.name, r[0])),
                    "{} named",
                    r[0]
                );
            }
        }
        assert!(under > 0, "every fourth synthetic programme is under 80%");
        assert!(text.contains(&format!("{under} of them referred under 80%")));

        // An attacker with the published tables only (written apart from crest's rules):
        // no hidden met flag or withheld grade decided, no published flag contradicted, no
        // level beside hidden counts.
        both_attackers_find_nothing(&tables, &dir.join("programmes.csv"), 1);

        // programmes.csv: the columns of privacy.md, and no combination of cells reveals a
        // suppressed result.
        let (head, rows) = read("programmes.csv");
        let kpi_rows = rows.clone();
        let keys = [
            "mdt",
            "priority_groups",
            "duration",
            "assessment1",
            "wait_cabg",
            "wait_mi_pci",
            "assessment2",
        ];
        let mut want = vec!["programme_code".to_string()];
        for k in keys {
            want.push(k.into());
            want.push(format!("{k}_met"));
        }
        want.extend(["kpis_met", "kpis_assessable", "grade"].map(String::from));
        assert_eq!(head, want);
        assert_eq!(rows.len(), 14, "every programme has a row");
        let grade = |met: usize| match met {
            7.. => "green",
            4..=6 => "amber",
            _ => "red",
        };
        let mut hidden_seen = 0;
        for r in &rows {
            let flags: Vec<&str> = (0..7).map(|i| r[2 + 2 * i].as_str()).collect();
            // A value and its flag are hidden together, except for the two proportions
            // (assessment 1 and 2), whose flag says what their published counts decide: shown
            // beside a hidden value when the counts settle it, hidden beside a shown value
            // when rounding leaves it open.
            for i in 0..7 {
                if (r[1 + 2 * i] == "*") != (flags[i] == "*") {
                    assert!(i == 3 || i == 6, "{r:?}");
                }
            }
            let met = flags.iter().filter(|f| **f == "yes").count();
            let hidden = flags.iter().filter(|f| **f == "*").count();
            hidden_seen += hidden;
            assert_eq!(r[15], met.to_string(), "{r:?}");
            assert_eq!(r[16], (7 - hidden).to_string(), "{r:?}");
            match r[17].as_str() {
                "withheld" => assert_ne!(grade(met), grade(met + hidden), "{r:?}"),
                g => assert!(
                    (0..=hidden).all(|j| grade(met + j) == g),
                    "the grade reveals a hidden result: {r:?}"
                ),
            }
            // The HTML shows exactly these cells, the programme by its name and code.
            let name = &programmes.iter().find(|p| p.code == r[0]).unwrap().name;
            let mut cells = format!("<th scope=\"row\">{name} ({})</th>", r[0]);
            for c in &r[1..] {
                cells.push_str(&format!("<td>{c}</td>"));
            }
            assert!(text.contains(&cells), "{cells} not in the report");
        }
        assert!(
            hidden_seen > 0,
            "the synthetic set has small KPIs to suppress"
        );
        let (_, uptake) = read("uptake.csv");
        for r in &uptake {
            assert!(published_count(&r[2]) && published_count(&r[3]), "{r:?}");
        }

        // funnels.csv: levels from the exact counts, pooled over every programme, computed
        // here independently (Wilson limits by hand).
        let mut n = crest_store::NationalStore::open(&national.url).unwrap();
        let progs = n.programmes().unwrap();
        let eps = n.kpi_episodes(period.from, period.to, &progs).unwrap();
        let exact = crest_stats::compute(&progs, &eps, period, &crest_stats::Thresholds::default());
        let (_, funnels) = read("funnels.csv");
        let mut outliers = 0;
        for kpi in ["uptake", "completion", "assessment1", "assessment2"] {
            let pts: Vec<(String, f64, f64)> = exact
                .programmes
                .iter()
                .map(|p| {
                    let (k, n) = p.proportion(kpi);
                    (p.programme_code.clone(), k as f64, n as f64)
                })
                .collect();
            let p0 = pts.iter().map(|p| p.1).sum::<f64>() / pts.iter().map(|p| p.2).sum::<f64>();
            let wilson = |n: f64, z: f64| {
                let d = 1.0 + z * z / n;
                let c = (p0 + z * z / (2.0 * n)) / d;
                let h = z * (p0 * (1.0 - p0) / n + z * z / (4.0 * n * n)).sqrt() / d;
                (c - h, c + h)
            };
            let level_of = |k: f64, m: f64| {
                let p = k / m;
                let (lo95, hi95) = wilson(m, 1.959964);
                let (lo998, hi998) = wilson(m, 3.090232);
                if p < lo998 {
                    "alarm_low"
                } else if p > hi998 {
                    "alarm_high"
                } else if p < lo95 {
                    "alert_low"
                } else if p > hi95 {
                    "alert_high"
                } else {
                    "within"
                }
            };
            for (code, k, m) in pts.iter().filter(|p| p.2 > 0.0) {
                let level = level_of(*k, *m);
                let row = funnels
                    .iter()
                    .find(|r| r[0] == kpi && &r[1] == code)
                    .unwrap_or_else(|| panic!("{kpi} {code} missing from funnels.csv"));
                // A level beside hidden counts would pin them: published as too few. So is a
                // level of a programme with a hidden result that allows only some of the exact
                // counts its rounded ones stand for.
                let stands_for = |c: &str| -> Vec<f64> {
                    match c.parse::<u64>() {
                        Ok(0) => vec![0.0],
                        Ok(v) => ((v - 2).max(8)..=v + 2).map(|x| x as f64).collect(),
                        Err(_) => (1..=7).map(|x| x as f64).collect(),
                    }
                };
                let says_nothing = stands_for(&row[3]).iter().all(|&n| {
                    stands_for(&row[2])
                        .iter()
                        .filter(|&&k| k <= n)
                        .all(|&k| level_of(k, n) == level)
                });
                let hidden = funnels
                    .iter()
                    .any(|r| &r[1] == code && (r[2] == "*" || r[3] == "*"))
                    || kpi_rows
                        .iter()
                        .any(|r| &r[0] == code && [8, 14].iter().any(|&i| r[i] == "*"));
                let level = if row[2] == "*" || row[3] == "*" || (hidden && !says_nothing) {
                    "too_few"
                } else {
                    level
                };
                assert_eq!(row[4], level, "{kpi} {code}: {k}/{m} around {p0}");
                assert!(
                    published_count(&row[2]) && published_count(&row[3]),
                    "{row:?}"
                );
                if level != "within" && level != "too_few" {
                    outliers += 1;
                    // Named in the report's outliers table, at its level.
                    let list = &text[text.find("id=\"t-outliers\"").expect("an outliers table")..];
                    let list = &list[..list.find("</table>").unwrap()];
                    assert!(
                        list.split("<tr>")
                            .any(|row| row.contains(&format!("({code})</th>"))
                                && row.contains(&level.replace('_', " "))),
                        "{code} {level} named in the report"
                    );
                }
            }
            assert_eq!(
                funnels.iter().filter(|r| r[0] == kpi).count(),
                pts.iter().filter(|p| p.2 > 0.0).count()
            );
        }
        assert!(outliers > 0, "the synthetic set has outliers to name");
        for name in [
            "summary.csv",
            "waits.csv",
            "uptake_by_sex.csv",
            "outcomes.csv",
            "quality.csv",
        ] {
            assert!(tables.join(name).exists(), "{name}");
        }
        // Every published table is a reviewed snapshot (`tests/snapshots/report__published_*`),
        // the same from both back ends: a change to what the audit publishes shows in review.
        let mut published: Vec<std::path::PathBuf> = std::fs::read_dir(&tables)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "csv"))
            .collect();
        published.sort();
        assert!(published.len() >= 10, "{published:?}");
        for path in &published {
            let stem = path.file_stem().unwrap().to_string_lossy();
            insta::assert_snapshot!(
                format!("published_{stem}"),
                std::fs::read_to_string(path).unwrap()
            );
        }
        drop(n);

        axe_finds_no_violations(&dir, &text);

        // Against a local store, the report says what it needs.
        let (code, out) = crest(
            &local.url,
            &["report", "annual", "--out", html.to_str().unwrap()],
        );
        assert_ne!(code, 0);
        assert!(
            out.contains("needs the national store") && out.contains("init --national"),
            "{out}"
        );
        for heading in [
            "National summary",
            "Funnel plots",
            "Waits",
            "Who takes up cardiac rehabilitation",
            "Outcomes",
            "Data quality",
            "Methods",
        ] {
            assert!(text.contains(heading), "{heading}");
        }
        assert!(
            text.contains("@font-face") && text.contains("data:font/ttf;base64,"),
            "fonts are bundled"
        );
        assert!(
            !text.contains("943 ") && !text.contains("EPI-"),
            "nothing identifying"
        );

        // The PDF, printed and rendered to images.
        if !pdf_tools() {
            continue;
        }
        let pdf = dir.join("annual.pdf");
        let (code, out) = crest(
            &national.url,
            &[
                "report",
                "annual",
                "--from",
                "2024-04-01",
                "--to",
                "2025-03-31",
                "--out",
                pdf.to_str().unwrap(),
            ],
        );
        assert_eq!(code, 0, "{out}");
        // The disclosure audit ran and found nothing hidden revealed.
        assert!(
            out.contains("Disclosure audit: ")
                && out.contains(" 0 counts narrowed to one value or results decided"),
            "{out}"
        );
        // Chromium prints in silence: each print is announced, then the pages.
        assert!(
            out.contains("PDF step 1 of 2") && out.contains("PDF step 2 of 2: printing the report"),
            "{out}"
        );
        assert!(out.contains("PDF printed:"), "{out}");
        let info =
            String::from_utf8(Command::new("pdfinfo").arg(&pdf).output().unwrap().stdout).unwrap();
        let pages: usize = info
            .lines()
            .find_map(|l| l.strip_prefix("Pages:"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(
            pages >= 8,
            "a title page, contents and a page per section: {pages}"
        );
        let fonts =
            String::from_utf8(Command::new("pdffonts").arg(&pdf).output().unwrap().stdout).unwrap();
        assert!(
            fonts.contains("LiberationSans") && !fonts.lines().skip(2).any(|l| l.contains(" no ")),
            "embedded: {fonts}"
        );
        let words = String::from_utf8(
            Command::new("pdftotext")
                .arg(&pdf)
                .arg("-")
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap();
        assert!(
            words.contains("National audit of cardiac rehabilitation") && words.contains("Methods")
        );
        assert!(
            words.contains(&format!("Page 2 of {pages}")),
            "page numbers"
        );
        // The contents give each section's page, and the section starts there.
        let text_of = |args: &[&str]| {
            String::from_utf8(
                Command::new("pdftotext")
                    .args(args)
                    .arg(&pdf)
                    .arg("-")
                    .output()
                    .unwrap()
                    .stdout,
            )
            .unwrap()
        };
        let contents = text_of(&["-layout", "-f", "2", "-l", "2"]);
        for section in [
            "At a glance",
            "National summary",
            "By nation and region",
            "Funnel plots",
            "Outcomes",
            "Methods",
        ] {
            let line = contents
                .lines()
                .find(|l| l.contains(section))
                .unwrap_or_else(|| panic!("{section} in {contents}"));
            let page = line.split_whitespace().last().unwrap();
            let text = text_of(&["-f", page, "-l", page]);
            assert!(
                text.trim_start().starts_with(section),
                "{section} is not on page {page}: {text}"
            );
        }
        let prefix = dir.join("page");
        assert!(Command::new("pdftoppm")
            .args(["-r", "30", "-png"])
            .arg(&pdf)
            .arg(&prefix)
            .status()
            .unwrap()
            .success());
        let images = std::fs::read_dir(&dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("page")
            })
            .count();
        assert_eq!(images, pages, "every page renders");
    }
}

/// Runs one of this folder's attackers (Python, written apart from crest's rules) and reads
/// its JSON findings.
fn attack(script: &str, args: &[&std::path::Path]) -> serde_json::Value {
    let out = Command::new("python3")
        .arg(format!("{}/tests/{script}", env!("CARGO_MANIFEST_DIR")))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The second shape of national store: 230 small programmes (about 65 referrals each) in 12
/// regions, filled directly as the report benchmark does. Their regions' totals beside their
/// hidden results give some away; the audit withholds those totals (shown as *) before the
/// report is written, and attackers solving the published tables (each programme's cells, and
/// everything at once) find nothing hidden. The same store answers every whole-month window of
/// the year by programme as researchers get them, and a solver over all the answers recovers no
/// suppressed count.
#[test]
fn totals_that_would_give_a_hidden_result_away_are_withheld_and_nothing_hidden_is_found() {
    let dir = scratch_dir("report-small");
    let fill = Command::new("python3")
        .arg("-c")
        .arg(
            "import sys; sys.path.insert(0, sys.argv[1]); import report; \
             report.fill(sys.argv[2], sys.argv[3], 15000, 230)",
        )
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../../bench"))
        .arg(env!("CARGO_BIN_EXE_crest"))
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        fill.status.success(),
        "{}",
        String::from_utf8_lossy(&fill.stderr)
    );
    let db = dir.join("national.sqlite");
    let tables = dir.join("tables");
    let (code, out) = crest(
        db.to_str().unwrap(),
        &[
            "report",
            "annual",
            "--from",
            "2025-04-01",
            "--to",
            "2026-03-31",
            "--out",
            dir.join("annual.html").to_str().unwrap(),
            "--tables",
            tables.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{out}");
    let withheld: u64 = out
        .split(" totals (a region")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{out}"));
    assert!(withheld > 0, "the audit withheld no total: {out}");
    assert!(
        out.contains(" 0 counts narrowed to one value or results decided"),
        "{out}"
    );
    // The withheld totals are * in the published table, with their percentages; the regions
    // withheld are the ones a commissioner's page withholds for the same period
    // (`withheld_places`, which the region page calls).
    let places = std::fs::read_to_string(tables.join("nations_regions.csv")).unwrap();
    let starred: std::collections::BTreeSet<(String, String)> = places
        .lines()
        .map(|l| l.split(',').map(String::from).collect::<Vec<_>>())
        .filter(|c| c[3] == "*" && c[4] == "*" && c[6] == "*")
        .map(|c| (c[0].clone(), c[1].clone()))
        .collect();
    assert!(!starred.is_empty(), "{places}");
    let mut n = crest_store::NationalStore::open(db.to_str().unwrap()).unwrap();
    let programmes = n.programmes().unwrap();
    let period = Period {
        from: Date::from_ymd(2025, 4, 1).unwrap(),
        to: Date::from_ymd(2026, 3, 31).unwrap(),
    };
    let episodes = n.kpi_episodes(period.from, period.to, &programmes).unwrap();
    let report = crest_stats::compute(
        &programmes,
        &episodes,
        period,
        &crest_stats::Thresholds::default(),
    );
    let withheld: std::collections::BTreeSet<(String, String)> =
        crest_report::publication_audit::withheld_places(
            &report,
            &programmes,
            crest_stats::funnel::Method::Auto,
        )
        .into_iter()
        .map(|(nation, region)| {
            let nation = crest_core::Nation::parse(&nation)
                .unwrap()
                .label()
                .to_string();
            let region = if region.is_empty() {
                "all regions".to_string()
            } else {
                region
            };
            (nation, region)
        })
        .collect();
    assert_eq!(withheld, starred);
    // A commissioner asking the published aggregates for a withheld region's whole totals is
    // refused in words; broken down by programme, or for a region shown, they are answered.
    let region = starred.iter().next().unwrap().1.clone();
    // Regions share names across nations here: a name none of whose lines is withheld.
    let shown = places
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap_or_default().to_string())
        .find(|r| r != "all regions" && !starred.iter().any(|(_, s)| s == r))
        .unwrap();
    let mut ask = |region: &str, by: Vec<crest_stats::aggregate::Dimension>| {
        let q = crest_report::aggregates::Query {
            by,
            measure: crest_stats::aggregate::Measure::Referred,
            period,
            regions: Some(vec![region.to_string()]),
        };
        crest_report::aggregates::answer(&mut n, &q, true).unwrap()
    };
    let refused = ask(&region, vec![]).unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("withheld, as in the annual report"),
        "{refused}"
    );
    assert!(ask(&region, vec![crest_stats::aggregate::Dimension::Programme]).is_ok());
    assert!(ask(&shown, vec![]).is_ok());

    // A server answers aggregates from every episode's facts held in memory: the same answers
    // as from the store, exact and published, for any period and breakdown.
    let held = crest_report::aggregates::Facts::load(&mut n).unwrap();
    assert_eq!(held.len(), 15_000);
    {
        use crest_stats::aggregate::{Dimension as D, Measure as M};
        let quarter = Period {
            from: Date::from_ymd(2025, 7, 1).unwrap(),
            to: Date::from_ymd(2025, 9, 30).unwrap(),
        };
        for (by, measure, period, regions) in [
            (vec![D::Programme], M::Referred, period, None),
            (vec![D::Sex, D::Quarter], M::Uptake, period, None),
            (vec![D::Region], M::Completion, quarter, None),
            (vec![D::AgeBand, D::ImdQuintile], M::WaitDays, period, None),
            (
                vec![D::Ethnicity],
                M::Started,
                quarter,
                Some(vec![shown.clone()]),
            ),
            (
                vec![D::PriorityGroup, D::Nation],
                M::StartedInTime,
                period,
                None,
            ),
        ] {
            let q = crest_report::aggregates::Query {
                by,
                measure,
                period,
                regions,
            };
            for published in [false, true] {
                let from_store = crest_report::aggregates::answer(&mut n, &q, published).unwrap();
                let from_memory =
                    crest_report::aggregates::answer_with(&mut n, &q, published, Some(&held))
                        .unwrap();
                assert_eq!(
                    format!("{:?}", from_store.map(|a| a.rows)),
                    format!("{:?}", from_memory.map(|a| a.rows)),
                    "{q:?}"
                );
            }
        }
    }

    // The aggregates attack on this shape: every whole-month window of the year by programme,
    // as a researcher gets them (the published grid), solved together by integer programming
    // (the web tests' attacker), recovers no suppressed count.
    let mut answers = Vec::new();
    for first in 0..12 {
        for last in first..12 {
            let month = |i: u32| {
                let (y, m) = if i < 9 { (2025, i + 4) } else { (2026, i - 8) };
                (y, m)
            };
            let (fy, fm) = month(first);
            let (ty, tm) = month(last);
            let to = Date::from_ymd(ty, tm, crest_core::date::days_in_month(ty, tm)).unwrap();
            let (code, out) = crest(
                db.to_str().unwrap(),
                &[
                    "aggregate",
                    "--by",
                    "programme",
                    "--measure",
                    "referred",
                    "--published",
                    "--from",
                    &format!("{fy}-{fm:02}-01"),
                    "--to",
                    &to.to_string(),
                    "--format",
                    "json",
                ],
            );
            assert_eq!(code, 0, "{out}");
            let t: serde_json::Value = serde_json::from_str(&out).unwrap();
            let rows: Vec<serde_json::Value> = t["rows"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| serde_json::json!([r["programme"], r["referred"]]))
                .collect();
            answers.push(serde_json::json!({"from": t["from"], "to": t["to"], "rows": rows}));
        }
    }
    answers.sort_by_key(|a| a.to_string());
    answers.dedup();
    assert_eq!(answers.len(), 5, "the year and its quarters");
    let mut child = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../web/tests/attack_aggregates.py"
        ))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(
        &mut child.stdin.take().unwrap(),
        serde_json::json!({ "answers": answers })
            .to_string()
            .as_bytes(),
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let found: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(found["recovered"], serde_json::json!([]), "{found}");
    assert!(found["suppressed"].as_u64().unwrap() > 0, "{found}");
    both_attackers_find_nothing(&tables, &dir.join("programmes.csv"), 100);
}

/// The published tables attacked cell by cell (`attack_published.py`: no hidden met flag or
/// withheld grade decided, no flag contradicted, no level beside hidden counts) and all at once
/// (`attack_report_jointly.py`: regions, nations, the national totals and the groups with the
/// programmes; nothing hidden pinned or decided, over at least `questions` questions).
fn both_attackers_find_nothing(
    tables: &std::path::Path,
    programmes: &std::path::Path,
    questions: u64,
) {
    let found = attack("attack_published.py", &[tables]);
    for list in ["decided", "contradicted", "pinned", "graded"] {
        assert_eq!(found[list], serde_json::json!([]), "{list}: {found}");
    }
    assert!(found["hidden_tried"].as_u64().unwrap() > 0, "{found}");
    let found = attack("attack_report_jointly.py", &[tables, programmes]);
    assert_eq!(found["pinned"], serde_json::json!([]), "{found}");
    assert_eq!(found["decided"], serde_json::json!([]), "{found}");
    assert!(found.get("infeasible").is_none(), "{found}");
    assert!(found["checked"].as_u64().unwrap() >= questions, "{found}");
}
