//! `crest export` (a programme's episodes as CSV, XLSX or FHIR), `crest fhir mapping`, and the
//! synthetic episodes written as FHIR.

use crate::args::{ExportArgs, ExportFormat, MappingFormat};
use crate::common::{command_line_entry, parse_date};
use crate::today;
use anyhow::{anyhow, bail, Context, Result};
use crest_core::{check_row, Header, Record};
use crest_ingest::fhir;
use crest_store::EpisodeQuery;
use std::io::Write;
use std::path::Path;

/// `crest export --programme P [--from D --to D] --format csv|xlsx|fhir --out FILE`: logged as
/// an export, like the web's download.
pub(crate) fn export(db: &str, args: &ExportArgs) -> Result<i32> {
    let mut store = crest_store::open(db)?;
    if !store.programmes()?.iter().any(|p| p.code == args.programme) {
        bail!(
            "programme {} is not registered in this store; `crest programmes list` shows those that are",
            args.programme
        );
    }
    let mut query = EpisodeQuery::everything();
    query.from = args
        .from
        .as_deref()
        .map(|s| parse_date(s, "from"))
        .transpose()?;
    query.to = args
        .to
        .as_deref()
        .map(|s| parse_date(s, "to"))
        .transpose()?;
    if let (Some(f), Some(t)) = (query.from, query.to) {
        if t < f {
            bail!("--to ({t}) is before --from ({f})");
        }
    }
    let records = store.find_episodes(&args.programme, &query)?;
    let write = |bytes: &[u8]| {
        std::fs::write(&args.out, bytes)
            .with_context(|| format!("cannot write {}", args.out.display()))
    };
    match args.format {
        ExportFormat::Csv => {
            write(&crest_ingest::export::csv_bytes(&records).map_err(|e| anyhow!(e))?)?
        }
        ExportFormat::Xlsx => {
            write(&crest_ingest::export::xlsx_bytes(&records).map_err(|e| anyhow!(e))?)?
        }
        ExportFormat::Fhir => {
            let f = std::fs::File::create(&args.out)
                .with_context(|| format!("cannot write {}", args.out.display()))?;
            let mut w = std::io::BufWriter::new(f);
            fhir::write::bundle(&records, &mut w)
                .and_then(|()| w.flush())
                .with_context(|| format!("cannot write {}", args.out.display()))?;
        }
    }
    let mut entry = command_line_entry(
        &args.programme,
        "export",
        &args
            .out
            .file_name()
            .map_or(String::new(), |n| n.to_string_lossy().into_owned()),
    );
    entry.detail = format!("{} episodes", records.len());
    store.log(&entry)?;
    println!(
        "{} episode(s) of programme {} written to {}",
        records.len(),
        args.programme,
        args.out.display()
    );
    Ok(0)
}

/// `crest fhir mapping`.
pub(crate) fn fhir_mapping(format: MappingFormat) -> Result<i32> {
    match format {
        MappingFormat::Csv => print!("{}", fhir::mapping::as_csv()),
        MappingFormat::Markdown => print!("{}", fhir::mapping::document()),
    }
    Ok(0)
}

/// Writes the synthetic episodes in `episodes_csv` as FHIR bulk-export NDJSON in `dir`.
pub(crate) fn synth_fhir(episodes_csv: &Path, dir: &Path) -> Result<String> {
    let (mut source, names) = crest_ingest::read::Source::open(episodes_csv, None)?;
    let header = Header::parse(&names)?;
    let today = today();
    let mut records: Vec<Record> = Vec::new();
    let mut cells = Vec::new();
    while let Some(next) = source.next_row(&mut cells) {
        if next.is_err() {
            continue;
        }
        if let Some(r) = check_row(&header, &cells, today).record {
            records.push(r);
        }
    }
    let files = fhir::write::ndjson(&records, dir)
        .with_context(|| format!("cannot write FHIR files in {}", dir.display()))?;
    Ok(format!(
        "{} episodes written as FHIR NDJSON: {}",
        records.len(),
        files
            .iter()
            .filter_map(|f| f.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect::<Vec<_>>()
            .join(", ")
    ))
}
