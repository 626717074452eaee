//! `crest synth`: calibrated synthetic data.

use crate::today;
use anyhow::{anyhow, Result};
use crest_stats::Period;
use std::path::Path;

pub(crate) fn synth(
    out: &Path,
    programmes: usize,
    episodes: usize,
    seed: u64,
    period: Period,
) -> Result<String> {
    let s = crest_ingest::synth::write(
        out,
        &crest_ingest::synth::Config {
            programmes,
            episodes,
            seed,
            period,
            today: today(),
        },
    )
    .map_err(|e| anyhow!("{e}"))?;
    Ok(s)
}
