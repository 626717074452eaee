//! `crest expected import`: the expected-patients file (per programme or region, quarter and
//! condition), all or nothing. The synthetic generator writes one consistent with its episodes.

use crate::read::Source;
use crate::ImportError;
use crest_core::expected::{Area, Expected, COLUMNS};
use std::path::Path;

/// Reads and checks an expected-patients file (CSV or XLSX). Any bad row refuses the whole
/// file, naming every row and problem in one round.
pub fn read_expected(path: &Path) -> Result<Vec<Expected>, ImportError> {
    let (mut source, header) = Source::open(path, None)?;
    let find = |name: &str| {
        header.iter().position(|h| {
            h.trim_start_matches('\u{feff}')
                .trim()
                .eq_ignore_ascii_case(name)
        })
    };
    let (programme, region) = (find("programme_code"), find("region"));
    let rest: Vec<Option<usize>> = COLUMNS[1..].iter().map(|c| find(c)).collect();
    let mut missing: Vec<&str> = COLUMNS[1..]
        .iter()
        .zip(&rest)
        .filter(|(_, p)| p.is_none())
        .map(|(c, _)| *c)
        .collect();
    match (programme, region) {
        (None, None) => missing.insert(0, "programme_code (or region)"),
        (Some(_), Some(_)) => {
            return Err(ImportError::File(
                "the expected-patients file has both programme_code and region columns: give one \
                 file per kind, either counts per programme or counts per region"
                    .into(),
            ))
        }
        _ => {}
    }
    if !missing.is_empty() {
        return Err(ImportError::File(format!(
            "the expected-patients file needs the column(s) {}; expected {} (or region in place of programme_code)",
            missing.join(", "),
            COLUMNS.join(",")
        )));
    }
    let mut out: Vec<Expected> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut problems = Vec::new();
    let mut cells = Vec::new();
    while let Some(next) = source.next_row(&mut cells) {
        match next {
            Err((row, e)) => problems.push(format!("row {row}: {e}")),
            Ok(_) if cells.iter().all(|c| c.trim().is_empty()) => {}
            Ok(row) => {
                let cell =
                    |p: Option<usize>| p.and_then(|p| cells.get(p)).map_or("", String::as_str);
                let area = match programme {
                    Some(p) => Area::Programme(cell(Some(p)).trim().to_string()),
                    None => Area::Region(cell(region).trim().to_string()),
                };
                match Expected::parse(area, cell(rest[0]), cell(rest[1]), cell(rest[2])) {
                    Ok(e) if !seen.insert((e.area.clone(), e.quarter, e.condition)) => problems
                        .push(format!(
                            "row {row}: {} {} {} appears twice",
                            e.area.name(),
                            e.quarter,
                            e.condition.code()
                        )),
                    Ok(e) => out.push(e),
                    Err(es) => problems.extend(es.into_iter().map(|e| format!("row {row}: {e}"))),
                }
            }
        }
    }
    if !problems.is_empty() {
        return Err(ImportError::File(format!(
            "the expected-patients file was refused; nothing was changed:\n  {}",
            problems.join("\n  ")
        )));
    }
    if out.is_empty() {
        return Err(ImportError::File(
            "the expected-patients file has no rows in it".into(),
        ));
    }
    Ok(out)
}
