//! `crest programmes import`: the programmes file, all or nothing.

use crate::read::Source;
use crate::ImportError;
use crest_core::programme::PROGRAMME_COLUMNS;
use crest_core::Programme;
use std::path::Path;

/// Reads and validates a programmes file. Any bad row refuses the whole file, naming each
/// row and problem.
pub fn read_programmes(path: &Path) -> Result<Vec<Programme>, ImportError> {
    let (mut source, header) = Source::open(path, None)?;
    let pos: Vec<Option<usize>> = PROGRAMME_COLUMNS
        .iter()
        .map(|c| {
            header.iter().position(|h| {
                h.trim_start_matches('\u{feff}')
                    .trim()
                    .eq_ignore_ascii_case(c)
            })
        })
        .collect();
    let missing: Vec<&str> = PROGRAMME_COLUMNS
        .iter()
        .zip(&pos)
        .filter(|(_, p)| p.is_none())
        .map(|(c, _)| *c)
        .take(4)
        .collect();
    // professions and offers may be absent (no staffing return); the first four may not.
    let missing: Vec<&str> = missing
        .into_iter()
        .filter(|c| !matches!(*c, "professions" | "offers"))
        .collect();
    if !missing.is_empty() {
        return Err(ImportError::File(format!(
            "the programmes file needs the column(s) {}; expected {}",
            missing.join(", "),
            PROGRAMME_COLUMNS.join(",")
        )));
    }
    let mut out: Vec<Programme> = Vec::new();
    let mut problems = Vec::new();
    let mut cells = Vec::new();
    while let Some(next) = source.next_row(&mut cells) {
        match next {
            Err((row, e)) => problems.push(format!("row {row}: {e}")),
            Ok(_) if cells.iter().all(|c| c.trim().is_empty()) => {}
            Ok(row) => {
                let cell = |i: usize| pos[i].and_then(|p| cells.get(p)).map_or("", String::as_str);
                match Programme::parse([cell(0), cell(1), cell(2), cell(3), cell(4), cell(5)]) {
                    Ok(p) if out.iter().any(|q| q.code == p.code) => problems.push(format!(
                        "row {row}: programme_code {} appears twice",
                        p.code
                    )),
                    Ok(p) => out.push(p),
                    Err(e) => problems.push(format!("row {row}: {e}")),
                }
            }
        }
    }
    if !problems.is_empty() {
        return Err(ImportError::File(format!(
            "the programmes file was refused; nothing was changed:\n  {}",
            problems.join("\n  ")
        )));
    }
    if out.is_empty() {
        return Err(ImportError::File(
            "the programmes file has no programmes in it".into(),
        ));
    }
    Ok(out)
}
