//! FHIR R4 (UK Core) import and export.
//!
//! A hospital's Bundle (`collection`, `transaction`, `searchset`) or bulk-export NDJSON is read
//! resource by resource ([`read`]), assembled into episodes patient by patient ([`assemble`])
//! and handed to the import as rows of dataset cells, so a FHIR file goes through exactly the
//! checks, transaction and idempotence of a CSV. [`write`] turns episodes back into FHIR with
//! the same [`mapping`].

pub mod assemble;
mod cores;
pub mod facts;
pub mod mapping;
pub mod model;
pub mod read;
pub mod texts;
pub mod value;
pub mod write;

pub use read::{expand, is_fhir};

use crate::ImportError;
use crest_core::validate::{Checked, Issue};
use std::path::PathBuf;

/// Episodes read from FHIR files, served as rows to the import.
pub struct FhirSource {
    rows: assemble::Rows,
    /// Where the current row's cells came from, and what assembling it found.
    current: Option<assemble::Episode>,
}

impl FhirSource {
    /// Reads the files (all of them, before the first row: an episode's resources may be in
    /// any file). Refuses them whole when any is not FHIR JSON of the kinds crest reads.
    pub fn open(
        files: &[PathBuf],
        progress: &mut dyn FnMut(f64),
    ) -> Result<FhirSource, ImportError> {
        let facts = read::read_files(files, progress)?;
        if facts.problem_count > 0 {
            let mut msg = if facts.problem_count == 1 {
                "the FHIR file cannot be read: ".to_string()
            } else {
                format!(
                    "{} problems make the FHIR files unreadable: ",
                    facts.problem_count
                )
            };
            msg.push_str(&facts.problems.join("; "));
            if facts.problem_count > facts.problems.len() {
                msg.push_str(&format!(
                    "; and {} more",
                    facts.problem_count - facts.problems.len()
                ));
            }
            return Err(ImportError::File(msg));
        }
        if facts.read.values().sum::<usize>() == 0 {
            return Err(ImportError::File(format!(
                "the FHIR file holds no resources crest reads (Patient, Condition, Procedure, ServiceRequest, EpisodeOfCare, Encounter, Observation){}",
                if facts.ignored.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; it holds {}",
                        facts.ignored.iter().map(|(t, n)| format!("{t} ({n})")).collect::<Vec<_>>().join(", ")
                    )
                }
            )));
        }
        let rows = assemble::Rows::new(facts);
        Ok(FhirSource {
            rows,
            current: None,
        })
    }

    /// Warnings about the files as a whole.
    pub fn notes(&self) -> &[String] {
        &self.rows.notes
    }

    /// The programme for episodes whose files do not name one.
    pub fn set_default_programme(&mut self, p: Option<String>) {
        self.rows.set_default_programme(p);
    }

    /// Fraction assembled.
    pub fn progress(&self) -> f64 {
        self.rows.progress()
    }

    /// The next episode's cells, or why resources could not make one.
    pub fn next_row(&mut self, cells: &mut Vec<String>) -> Option<Result<(), facts::Unusable>> {
        match self.rows.next_built()? {
            assemble::Built::Failed(why) => {
                self.current = None;
                Some(Err(facts::Unusable(why)))
            }
            assemble::Built::Episode(mut ep) => {
                std::mem::swap(cells, &mut ep.cells);
                self.current = Some(ep);
                Some(Ok(()))
            }
        }
    }

    /// Says the checked row's problems against the resources they came from, and adds what
    /// assembling the episode found.
    pub fn explain(&mut self, checked: &mut Checked) {
        let Some(ep) = self.current.take() else {
            return;
        };
        let own: Vec<String> = ep.errors.iter().map(|e| e.column.clone()).collect();
        // A field the assembly already explained is not blamed again by the dataset check.
        checked.errors.retain(|e| !own.contains(&e.column));
        let name = |column: &str| -> String {
            match assemble::index(column).and_then(|i| ep.origin(i)) {
                Some(origin) => format!("{origin} ({column})"),
                None => column.to_string(),
            }
        };
        let rename = |list: &mut Vec<Issue>| {
            for i in list {
                i.column = name(&i.column);
            }
        };
        let mut errors = ep.errors.clone();
        let mut warnings = ep.warnings.clone();
        rename(&mut checked.errors);
        rename(&mut checked.warnings);
        rename(&mut errors);
        rename(&mut warnings);
        checked.errors.extend(errors);
        checked.warnings.extend(warnings);
        if !checked.errors.is_empty() {
            checked.record = None;
        }
    }
}
