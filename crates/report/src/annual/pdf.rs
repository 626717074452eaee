//! The report as PDF: printed by Chromium twice, the contents numbered from the first print.

use super::*;
use crate::print::*;

impl AnnualReport {
    /// Prints the report to PDF with its contents page numbered, and says how many pages it
    /// has. A draft is printed first, whose link destinations tell the page each section
    /// starts on; those pages go into the contents, and the report is printed again (tagged,
    /// for screen readers). Each section starts on a new page and the contents fill one page,
    /// so the numbers do not move the sections. Where the draft cannot be read, each section is
    /// printed alone to count its pages instead.
    pub fn pdf(&self, pdf: &Path) -> Result<usize, ReportError> {
        self.pdf_with_steps(pdf, &mut |_, _, _| {})
    }

    /// As [`AnnualReport::pdf`], telling `step` (step, of steps, what) as each print starts:
    /// Chromium says nothing while it prints, so the steps are the progress there is.
    pub fn pdf_with_steps(
        &self,
        pdf: &Path,
        step: &mut dyn FnMut(usize, usize, &str),
    ) -> Result<usize, ReportError> {
        Ok(self.print(pdf, step)?)
    }

    fn print(
        &self,
        pdf: &Path,
        step: &mut dyn FnMut(usize, usize, &str),
    ) -> Result<usize, PrintError> {
        let dir = pdf.with_extension("parts");
        std::fs::create_dir_all(&dir).map_err(PrintError::file(&dir))?;
        step(1, 2, "printing a draft to number the contents");
        let printed = self
            .pages_from_destinations(&dir)
            .or_else(|_| {
                step(1, 2, "printing each section alone to count its pages");
                self.pages_section_by_section(&dir)
            })
            .and_then(|pages| {
                step(2, 2, "printing the report");
                let all: Vec<&ReportSection> = self.sections.iter().collect();
                let whole = dir.join("report.html");
                std::fs::write(&whole, self.document(&all, true, &pages))
                    .map_err(PrintError::file(&whole))?;
                print_pdf_with(&whole, pdf, &[])
            });
        let _ = std::fs::remove_dir_all(&dir);
        printed?;
        Ok(pdf_pages(
            &std::fs::read(pdf).map_err(PrintError::file(pdf))?,
        ))
    }

    /// Each section's first page, from one untagged (so quicker) print of the whole report:
    /// the contents link to every section, so the PDF names each section's page among its
    /// destinations.
    fn pages_from_destinations(
        &self,
        dir: &Path,
    ) -> Result<HashMap<&'static str, usize>, PrintError> {
        let all: Vec<&ReportSection> = self.sections.iter().collect();
        let (file, out) = (dir.join("draft.html"), dir.join("draft.pdf"));
        std::fs::write(&file, self.document(&all, true, &HashMap::new()))
            .map_err(PrintError::file(&file))?;
        print_pdf_with(&file, &out, &["--disable-pdf-tagging".into()])?;
        let bytes = std::fs::read(&out).map_err(PrintError::file(&out))?;
        let found = pdf_destinations(&bytes);
        self.sections
            .iter()
            .map(|s| {
                found
                    .get(s.id)
                    .map(|page| (s.id, *page))
                    .ok_or(PrintError::NoDestination(s.id))
            })
            .collect()
    }

    /// Each section's first page, by printing each section alone (side by side, one per core:
    /// Chromium's start-up dominates each print) and counting its pages.
    fn pages_section_by_section(
        &self,
        dir: &Path,
    ) -> Result<HashMap<&'static str, usize>, PrintError> {
        let counts: Vec<std::sync::Mutex<Option<Result<usize, PrintError>>>> = self
            .sections
            .iter()
            .map(|_| std::sync::Mutex::new(None))
            .collect();
        let next = std::sync::atomic::AtomicUsize::new(0);
        let workers = std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .clamp(1, 4);
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some(section) = self.sections.get(i) else {
                        return;
                    };
                    let alone = self.document(&[section], false, &HashMap::new());
                    let (file, out) = (
                        dir.join(format!("{i}-{}.html", section.id)),
                        dir.join(format!("{i}-{}.pdf", section.id)),
                    );
                    let pages = std::fs::write(&file, alone)
                        .map_err(PrintError::file(&file))
                        .and_then(|()| print_pdf_with(&file, &out, &[]))
                        .and_then(|()| std::fs::read(&out).map_err(PrintError::file(&out)))
                        .map(|b| pdf_pages(&b));
                    *counts[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(pages);
                });
            }
        });
        let mut pages = HashMap::new();
        let mut page = 3; // the title page, then the contents
        for (section, count) in self.sections.iter().zip(counts) {
            let taken = count
                .into_inner()
                .unwrap_or_else(|e| e.into_inner())
                .unwrap_or_else(|| Err(PrintError::Failed("a section was not printed".into())))?;
            pages.insert(section.id, page);
            page += taken.max(1);
        }
        Ok(pages)
    }
}
