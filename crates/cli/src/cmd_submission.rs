//! `crest submission`: build a programme's national submission, or receive one.

use crate::args::*;
use crate::common::*;
use crate::today;
use anyhow::{anyhow, Context, Result};

pub(crate) fn submission(db: &str, action: SubmissionAction) -> Result<i32> {
    use crest_privacy::submission::{NdooCheck, NdooList};
    match action {
        SubmissionAction::Build {
            programme,
            from,
            to,
            key,
            signing_key,
            ndoo_opted_out,
            ndoo_may_use,
            ndoo_max_age,
            out,
        } => {
            let key = load_key(key.as_deref(), "CREST_SUBMISSION_KEY", "--key")?;
            let signing_key = load_signing_key(signing_key.as_deref(), &programme)?;
            let ndoo = match (&ndoo_opted_out, &ndoo_may_use) {
                (Some(p), _) => {
                    Some(NdooCheck::read(p, NdooList::OptedOut).map_err(|e| anyhow!(e))?)
                }
                (_, Some(p)) => Some(NdooCheck::read(p, NdooList::MayUse).map_err(|e| anyhow!(e))?),
                _ => None,
            };
            let mut store = crest_store::open(db)?;
            let req = crest_privacy::submission::BuildRequest {
                programme: &programme,
                period: period(from.as_deref(), to.as_deref())?,
                key: &key,
                signing_key: &signing_key,
                ndoo: ndoo.as_ref(),
                ndoo_max_age_days: ndoo_max_age,
                today: today(),
                now: crest_store::utc_now(),
            };
            // The library's words fit every front end; here, say which flag does it.
            let built = crest_privacy::submission::build(store.as_mut(), &req).map_err(|e| {
                let m = e.to_string();
                if m.contains("National Data Opt-out applies") {
                    anyhow!("{m}: use --ndoo-opted-out FILE or --ndoo-may-use FILE")
                } else if m.contains("no data sharing agreement") {
                    anyhow!("{m} with `crest agreements add`")
                } else {
                    anyhow!(m)
                }
            })?;
            std::fs::write(&out, &built.bytes)
                .with_context(|| format!("cannot write {}", out.display()))?;
            store.record_sent(&programme, &built.sent, &built.withdrawn)?;
            store.log(&crest_store::AccessEntry {
                detail: format!(
                    "{} episodes, {} tombstones, key {}",
                    built.sent.len(),
                    built.withdrawn.len(),
                    key.id()
                ),
                ..command_line_entry(
                    &programme,
                    "submission",
                    &out.file_name()
                        .map_or(String::new(), |n| n.to_string_lossy().into_owned()),
                )
            })?;
            println!(
                "{}: {} episode(s), {} tombstone(s); left out: {} at the patient's request, {} by the National Data Opt-out; key {}; sha256 {}",
                out.display(),
                built.sent.len(),
                built.withdrawn.len(),
                built.left_out_own_request,
                built.left_out_ndoo,
                key.id(),
                built.manifest["sha256"].as_str().unwrap_or("")
            );
            Ok(0)
        }
        SubmissionAction::Receive {
            file,
            submission_key,
            national_key,
        } => {
            let sk = load_key(
                submission_key.as_deref(),
                "CREST_SUBMISSION_KEY",
                "--submission-key",
            )?;
            let nk = load_key(
                national_key.as_deref(),
                "CREST_NATIONAL_KEY",
                "--national-key",
            )?;
            std::fs::metadata(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let mut national = crest_store::NationalStore::open(db)?;
            let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
            let name = file
                .file_name()
                .map_or(String::new(), |n| n.to_string_lossy().into_owned());
            // Read as a stream: memory does not grow with the file.
            match crest_privacy::submission::receive_file_logged(
                &mut national,
                &file,
                (&sk, &nk),
                (&user, "command_line"),
                &name,
            ) {
                Ok(crest_store::Received::AlreadyReceived) => {
                    println!("{}: already received; nothing changed", file.display());
                    Ok(0)
                }
                Ok(crest_store::Received::Stored {
                    episodes,
                    replaced,
                    deleted,
                }) => {
                    println!(
                        "{}: stored {episodes} episode(s); replaced {replaced} from the earlier submission for the same programme and period; {deleted} deleted by tombstones",
                        file.display()
                    );
                    let programme =
                        crest_privacy::submission::manifest_programme_in(&file).unwrap_or_default();
                    for d in national.cross_programme_duplicates(Some(&programme))? {
                        println!(
                            "  note: patient {}… has an initiating event on {} in programmes {} (counted once nationally)",
                            &d.patient_key[..12],
                            d.event_date,
                            d.programmes.join(", ")
                        );
                    }
                    Ok(0)
                }
                Err(e) => {
                    println!("{}: refused, nothing was stored: {e}", file.display());
                    Ok(1)
                }
            }
        }
    }
}
