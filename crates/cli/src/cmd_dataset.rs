//! The dataset for people: `crest template` (a file to fill in) and `crest dataset` (the
//! reference).

use anyhow::{anyhow, Context, Result};
use std::path::{Path, PathBuf};

/// `crest template --out FILE.csv|FILE.xlsx`.
pub(crate) fn template(out: &Path) -> Result<i32> {
    crest_ingest::template::write_template(out).map_err(|e| anyhow!(e))?;
    println!("template written to {}", out.display());
    Ok(0)
}

/// `crest dataset [--out FILE]`: the dataset reference as Markdown.
pub(crate) fn dataset(out: Option<PathBuf>) -> Result<i32> {
    let md = crest_core::dataset::reference_markdown();
    match out {
        Some(p) => {
            std::fs::write(&p, md).with_context(|| format!("cannot write {}", p.display()))?
        }
        None => print!("{md}"),
    }
    Ok(0)
}
