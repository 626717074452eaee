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

/// The number of pages of a PDF (0 if it cannot be read).
pub(crate) fn pdf_pages(pdf: &[u8]) -> usize {
    lopdf::Document::load_mem(pdf).map_or(0, |d| d.get_pages().len())
}

/// The pages (from 1) of a PDF's named destinations, by name: Chromium lists every link
/// target of the document in the catalog's `/Dests` (`/summary [25 0 R /XYZ …]`). Empty if
/// the PDF cannot be read.
pub(crate) fn pdf_destinations(pdf: &[u8]) -> HashMap<String, usize> {
    let mut found = HashMap::new();
    let Ok(doc) = lopdf::Document::load_mem(pdf) else {
        return found;
    };
    let pages: HashMap<lopdf::ObjectId, usize> = doc
        .get_pages()
        .into_iter()
        .map(|(number, id)| (id, number as usize))
        .collect();
    let dests = doc
        .catalog()
        .and_then(|c| c.get(b"Dests"))
        .and_then(|d| doc.dereference(d))
        .and_then(|(_, d)| d.as_dict());
    let Ok(dests) = dests else {
        return found;
    };
    for (name, target) in dests.iter() {
        let page = doc
            .dereference(target)
            .and_then(|(_, t)| t.as_array())
            .ok()
            .and_then(|a| a.first())
            .and_then(|p| p.as_reference().ok())
            .and_then(|id| pages.get(&id));
        if let Some(page) = page {
            found.insert(String::from_utf8_lossy(name).into_owned(), *page);
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
