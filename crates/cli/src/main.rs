//! `crest`: the command line. Thin: parses arguments, calls the library crates, prints.

mod args;
mod cli;
mod cmd_agreements;
mod cmd_ascertainment;
mod cmd_config;
mod cmd_dataset;
mod cmd_demo;
mod cmd_export;
mod cmd_import;
mod cmd_keys;
mod cmd_kpis;
mod cmd_report;
mod cmd_research;
mod cmd_serve;
mod cmd_spc;
mod cmd_store;
mod cmd_submission;
mod cmd_synth;
mod cmd_tokens;
mod cmd_users;
mod common;
mod progress;

use clap::Parser;

fn main() {
    // crest.toml fills in the environment variables not already set, before the options are
    // read (so the command line wins, then the environment, then the file).
    cmd_config::load_at_start();
    let args = args::Cli::parse();
    // Files holding identifiable data (stores and their logs, extracts, rejected rows, keys,
    // uploads) are readable by their owner only. Published outputs (reports, the results
    // site, templates, the dataset reference) are meant to be shared and keep the usual mask.
    if !matches!(
        args.command,
        args::Command::Report { .. }
            | args::Command::Template { .. }
            | args::Command::Dataset { .. }
    ) {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    }
    match cli::run(args) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(2);
        }
    }
}

/// Today's date in the UK, the bound for every date in imported data.
pub(crate) fn today() -> crest_core::Date {
    crest_core::date::uk_today()
}

// The import moves millions of small allocations between its reading and writing threads,
// which glibc's allocator handles poorly (measured: about a tenth of import time).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
