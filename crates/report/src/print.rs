//! Printing HTML to PDF with headless Chromium, and reading back what the PDF holds (its
//! pages and named destinations): the report's only I/O beyond what it is given.

use crate::ReportError;
use std::collections::HashMap;
use std::path::Path;

/// Why a PDF could not be printed or read back.
#[derive(Debug, thiserror::Error)]
pub enum PrintError {
    /// Chromium is not installed (or would not start).
    #[error("this needs Chromium ({program}: {source}); install it (apt-get install chromium), or write --out FILE.html")]
    NoChromium {
        /// The program tried.
        program: String,
        /// Why it would not start.
        #[source]
        source: std::io::Error,
    },
    /// Chromium ran but printed nothing (its last line of errors).
    #[error("Chromium could not print the PDF: {0}")]
    Failed(String),
    /// A file of the print could not be written or read.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The draft PDF lacks a section's named destination (the contents cannot be numbered
    /// from it).
    #[error("the draft PDF has no destination {0:?}")]
    NoDestination(&'static str),
}

impl PrintError {
    /// A file error, naming the file.
    pub(crate) fn file(path: &Path) -> impl FnOnce(std::io::Error) -> PrintError + '_ {
        move |source| PrintError::File {
            path: path.display().to_string(),
            source,
        }
    }
}

/// Runs headless Chromium (`CHROMIUM`, else `chromium` on the path) on a local HTML file with
/// extra arguments.
pub(crate) fn chromium(
    html_file: &Path,
    args: &[String],
) -> Result<std::process::Output, PrintError> {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".into());
    let html = std::fs::canonicalize(html_file).map_err(PrintError::file(html_file))?;
    // A profile of its own, so several can print at once; no network of its own either.
    let profile = html_file.with_extension("profile");
    let out = std::process::Command::new(&chromium)
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(format!("file://{}", html.display()))
        .output()
        .map_err(|source| PrintError::NoChromium {
            program: chromium.clone(),
            source,
        });
    let _ = std::fs::remove_dir_all(&profile);
    out
}

/// The number of pages of a PDF as Chromium writes it (one `/Type /Page` object per page).
pub(crate) fn pdf_pages(pdf: &[u8]) -> usize {
    let needle = b"/Type /Page";
    pdf.windows(needle.len() + 1)
        .filter(|w| w.starts_with(needle) && !w[needle.len()].is_ascii_alphanumeric())
        .count()
}

/// The objects of a PDF as Chromium (Skia) writes them: object number → its dictionary (the
/// bytes after `N 0 obj` up to `stream` or `endobj`). Skia writes dictionaries uncompressed
/// and without object streams.
pub(crate) fn pdf_objects(pdf: &[u8]) -> HashMap<u32, &[u8]> {
    let mut out = HashMap::new();
    let needle = b" 0 obj";
    let mut i = 0;
    while let Some(at) = pdf[i..].windows(needle.len()).position(|w| w == needle) {
        let start = i + at;
        i = start + needle.len();
        let digits = pdf[..start]
            .iter()
            .rev()
            .take_while(|b| b.is_ascii_digit())
            .count();
        let before = start - digits;
        if digits == 0 || (before > 0 && !pdf[before - 1].is_ascii_whitespace()) {
            continue;
        }
        let Some(number) = std::str::from_utf8(&pdf[before..start])
            .ok()
            .and_then(|n| n.parse().ok())
        else {
            continue;
        };
        // Up to `endobj`, then the dictionary alone (before any stream): each byte is read a
        // bounded number of times however many objects there are.
        let rest = &pdf[i..];
        let end = rest
            .windows(6)
            .position(|x| x == b"endobj")
            .unwrap_or(rest.len());
        let body = &rest[..end];
        let dict = body
            .windows(6)
            .position(|x| x == b"stream")
            .unwrap_or(body.len());
        out.insert(number, &body[..dict]);
        i += end;
    }
    out
}

/// The object number after `key` in a dictionary (`/Pages 21 0 R` → 21).
pub(crate) fn pdf_ref(dict: &[u8], key: &[u8]) -> Option<u32> {
    let at = dict.windows(key.len()).position(|w| w == key)? + key.len();
    let text = std::str::from_utf8(&dict[at..]).ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// The object numbers in a dictionary's array after `key` (`/Kids [2 0 R 6 0 R]` → 2, 6).
pub(crate) fn pdf_refs(dict: &[u8], key: &[u8]) -> Vec<u32> {
    let Some(at) = dict.windows(key.len()).position(|w| w == key) else {
        return Vec::new();
    };
    let rest = &dict[at + key.len()..];
    let (Some(open), Some(close)) = (
        rest.iter().position(|b| *b == b'['),
        rest.iter().position(|b| *b == b']'),
    ) else {
        return Vec::new();
    };
    let words: Vec<&str> = std::str::from_utf8(rest.get(open + 1..close).unwrap_or_default())
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    words
        .chunks(3)
        .filter(|w| w.len() == 3 && w[2] == "R")
        .filter_map(|w| w[0].parse().ok())
        .collect()
}

/// The pages (from 1) of a PDF's named destinations, by name: Chromium lists every link
/// target of the document (`/Dests` of the catalog: `/summary [25 0 R /XYZ …]`).
pub(crate) fn pdf_destinations(pdf: &[u8]) -> HashMap<String, usize> {
    let objects = pdf_objects(pdf);
    let Some(catalog) = objects
        .values()
        .find(|d| d.windows(14).any(|w| w == b"/Type /Catalog"))
    else {
        return HashMap::new();
    };
    // The page tree, walked in order: the object numbers of its pages.
    let mut pages = Vec::new();
    let mut stack: Vec<u32> = pdf_ref(catalog, b"/Pages ").into_iter().collect();
    while let Some(node) = stack.pop() {
        let Some(dict) = objects.get(&node) else {
            continue;
        };
        let kids = pdf_refs(dict, b"/Kids");
        if kids.is_empty() {
            pages.push(node);
        } else {
            stack.extend(kids.into_iter().rev());
        }
    }
    let Some(dests) = pdf_ref(catalog, b"/Dests ").and_then(|n| objects.get(&n)) else {
        return HashMap::new();
    };
    let text = String::from_utf8_lossy(dests);
    let mut found = HashMap::new();
    // `/name [N 0 R /XYZ x y z]`, one after another.
    for entry in text.split('/').filter(|e| !e.is_empty()) {
        let mut words = entry.split_whitespace();
        let (Some(name), Some(first)) = (words.next(), words.next()) else {
            continue;
        };
        let Some(page) = first.strip_prefix('[').and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        if let Some(index) = pages.iter().position(|p| *p == page) {
            found.insert(name.trim_start_matches("<<").to_string(), index + 1);
        }
    }
    found
}

/// Prints an HTML report to PDF with headless Chromium. Fonts are embedded in the HTML, so the
/// PDF is the same wherever it is made.
pub fn print_pdf(html_file: &Path, pdf: &Path) -> Result<(), ReportError> {
    Ok(print_pdf_with(html_file, pdf, &[])?)
}

/// [`print_pdf`] with extra Chromium arguments.
pub(crate) fn print_pdf_with(
    html_file: &Path,
    pdf: &Path,
    extra: &[String],
) -> Result<(), PrintError> {
    let mut args = vec![
        "--no-pdf-header-footer".to_string(),
        format!("--print-to-pdf={}", pdf.display()),
    ];
    args.extend_from_slice(extra);
    let out = chromium(html_file, &args)?;
    if !out.status.success() || !pdf.exists() {
        return Err(PrintError::Failed(
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
                .to_string(),
        ));
    }
    Ok(())
}
