//! Runs the command the arguments name: one line per command, each command in its own module.

use crate::args::*;
use crate::common::*;
use crate::{
    cmd_agreements::*, cmd_ascertainment, cmd_dataset, cmd_demo::*, cmd_export, cmd_import::*,
    cmd_keys::*, cmd_kpis::*, cmd_report, cmd_serve, cmd_spc, cmd_store, cmd_submission::*,
    cmd_synth::*, cmd_tokens, cmd_users::*,
};
use anyhow::Result;

/// Runs a command; returns the process exit code.
pub fn run(cli: Cli) -> Result<i32> {
    let db = cli.db.as_str();
    match cli.command {
        Command::Init { national } => cmd_store::init(db, national),
        Command::Programmes {
            action: ProgrammesAction::Import { file, national },
        } => cmd_store::programmes_import(db, &file, national),
        Command::Programmes {
            action: ProgrammesAction::List,
        } => cmd_store::programmes_list(db),
        Command::Programmes {
            action: ProgrammesAction::Keys { action },
        } => signing_keys(db, action),
        Command::Import(args) => import(db, &args),
        Command::Kpis(args) => kpis(db, &args),
        Command::Spc(args) => cmd_spc::spc(db, &args),
        Command::Changes { action } => cmd_spc::changes(db, action),
        Command::Expected { action } => cmd_ascertainment::expected(db, action),
        Command::Ascertainment(args) => cmd_ascertainment::ascertainment(db, &args),
        Command::Export(args) => cmd_export::export(db, &args),
        Command::Fhir {
            action: FhirAction::Mapping { format },
        } => cmd_export::fhir_mapping(format),
        Command::Template { out } => cmd_dataset::template(&out),
        Command::Dataset { out } => cmd_dataset::dataset(out),
        Command::Synth(args) => {
            let period = period(args.from.as_deref(), args.to.as_deref())?;
            println!(
                "{}",
                synth(&args.out, args.programmes, args.episodes, args.seed, period)?
            );
            if let Some(dir) = &args.fhir {
                println!(
                    "{}",
                    cmd_export::synth_fhir(&args.out.join("episodes.csv"), dir)?
                );
            }
            Ok(0)
        }
        Command::Tokens {
            action: TokensAction::New { programme, days },
        } => cmd_tokens::new(db, &programme, days),
        Command::Tokens {
            action: TokensAction::List,
        } => cmd_tokens::list(db),
        Command::Tokens {
            action: TokensAction::Revoke { id },
        } => cmd_tokens::revoke(db, &id),
        Command::Serve(args) => cmd_serve::run(db, args),
        Command::Users { action } => users(db, action),
        Command::Keys {
            action:
                KeysAction::New {
                    out,
                    signing,
                    programme,
                },
        } => {
            if signing {
                signing_key_new(&out, programme.as_deref().unwrap_or_default())
            } else {
                keys_new(&out)
            }
        }
        Command::Agreements { action } => agreements(db, action),
        Command::Projects { action } => crate::cmd_research::projects(db, action),
        Command::Extract {
            project,
            format,
            out,
            for_user,
        } => crate::cmd_research::extract(db, &project, &format, &out, for_user.as_deref()),
        Command::Aggregate {
            by,
            measure,
            from,
            to,
            regions,
            published,
            format,
        } => crate::cmd_research::aggregate(
            db,
            &by,
            &measure,
            period(from.as_deref(), to.as_deref())?,
            regions.as_deref(),
            published,
            &format,
        ),
        Command::Figures {
            action:
                FiguresAction::Load {
                    period,
                    programmes,
                    funnels,
                },
        } => cmd_report::figures_load(db, &period, &programmes, &funnels),
        Command::Report {
            action:
                ReportAction::Site {
                    from,
                    to,
                    out,
                    funnel_method,
                },
        } => cmd_report::site(db, &from, &to, &out, &funnel_method),
        Command::Report {
            action:
                ReportAction::Annual {
                    from,
                    to,
                    out,
                    tables,
                    funnel_method,
                },
        } => cmd_report::annual(db, &from, &to, &out, &tables, &funnel_method),
        Command::Submission { action } => submission(db, action),
        Command::Audit {
            action: AuditAction::Verify { national },
        } => cmd_store::audit_verify(db, national),
        Command::Config {
            action: ConfigAction::Check,
        } => crate::cmd_config::check(db, crate::cmd_config::loaded()),
        Command::Backup { out } => cmd_store::backup(db, &out),
        Command::Restore { file } => cmd_store::restore(&file, db),
        Command::Demo {
            dir,
            programmes,
            episodes,
            no_serve,
            addr,
        } => demo(
            &dir,
            programmes,
            episodes,
            (!no_serve).then_some(addr.as_str()),
        ),
    }
}
