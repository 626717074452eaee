//! `crest demo`: both sides of crest, filled with synthetic data, served.

use crate::cmd_keys::keys_new;
use crate::cmd_synth::synth;
use crate::common::*;
use crate::progress::Progress;
use crate::today;
use anyhow::{anyhow, Context, Result};
use crest_ingest::{import_file, ImportOptions};
use crest_stats::{compute, Period, Thresholds};
use std::path::Path;

/// Financial years the demo covers, so "three years" and "year on year" have something to show.
pub(crate) const DEMO_YEARS: i32 = 3;

/// The demo's national side: keys, an agreement, a synthetic opt-out check result, and every
/// programme's submission for each of `years` (oldest first) built locally and received into a
/// separate national store.
pub(crate) fn demo_national(
    dir: &Path,
    store: &mut dyn crest_store::Store,
    progs: &[crest_core::Programme],
    years: &[Period],
) -> Result<String> {
    let first = years.first().ok_or_else(|| anyhow!("no years to submit"))?;
    use crest_privacy::submission::{build, BuildRequest, NdooCheck, NdooList};
    for name in [
        "submission.key",
        "national.key",
        "server.key",
        "ndoo-check.csv",
    ] {
        let _ = std::fs::remove_file(dir.join(name));
    }
    keys_new(&dir.join("submission.key"))?;
    keys_new(&dir.join("national.key"))?;
    keys_new(&dir.join("server.key"))?;
    let load = |name: &str| -> Result<crest_privacy::Key> {
        crest_privacy::Key::parse(&std::fs::read_to_string(dir.join(name))?).map_err(|e| anyhow!(e))
    };
    let (sk, nk) = (load("submission.key")?, load("national.key")?);
    store.put_agreement(&crest_core::governance::Agreement {
        id: "demo-ncpcr".into(),
        recipient: "National audit of cardiac rehabilitation (demo)".into(),
        legal_basis: "CAG 99/CAG/0001 (synthetic)".into(),
        fields: None,
        opt_out_exempt: false,
        valid_from: first.from,
        valid_to: today().add_days(365),
    })?;
    // A synthetic National Data Opt-out result: every 50th patient of the synthetic file.
    let mut ndoo = String::from("nhs_number,checked_on\n");
    let mut r = csv::Reader::from_path(dir.join("episodes.csv"))?;
    let col = r
        .headers()?
        .iter()
        .position(|h| h == "nhs_number")
        .ok_or_else(|| anyhow!("episodes.csv has no nhs_number"))?;
    for row in r.records().step_by(50).take(2_000) {
        ndoo.push_str(&format!("{},{}\n", &row?[col], today()));
    }
    std::fs::write(dir.join("ndoo-check.csv"), ndoo)?;
    let check =
        NdooCheck::read(&dir.join("ndoo-check.csv"), NdooList::OptedOut).map_err(|e| anyhow!(e))?;
    let national = dir.join("crest-national.sqlite");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", national.display()));
    }
    let url = format!("sqlite:{}", national.display());
    let mut n = crest_store::NationalStore::open(&url)?;
    n.migrate()?;
    n.upsert_programmes(progs)?;
    // Each programme's own signing key (its public key registered nationally), so every
    // submission proves which programme built it.
    let signing_dir = dir.join("signing-keys");
    let _ = std::fs::remove_dir_all(&signing_dir);
    std::fs::create_dir_all(&signing_dir)?;
    let mut signing = crest_privacy::SigningKeys::default();
    for p in progs {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|e| anyhow!("no random source: {e}"))?;
        let key = crest_privacy::SigningKey::from_secret(&p.code, secret);
        crate::cmd_keys::write_secret_file(
            &signing_dir.join(format!("{}.key", p.code)),
            &key.to_file_text(),
        )?;
        crest_privacy::signing::register(&mut n, &key.public_key(), &p.code, (first.from, None))?;
        signing.add(key);
    }
    let subs = dir.join("submissions");
    std::fs::create_dir_all(&subs)?;
    let (mut sent, mut own, mut nd) = (0, 0, 0);
    let mut bar = Progress::new("submitting each programme's years to the national store");
    let steps = (progs.len() * years.len()).max(1);
    for (y, period) in years.iter().enumerate() {
        for (i, p) in progs.iter().enumerate() {
            let signing_key = signing
                .get(&p.code)
                .ok_or_else(|| anyhow!("{}: no signing key", p.code))?;
            let req = BuildRequest {
                programme: &p.code,
                period: *period,
                key: &sk,
                signing_key,
                ndoo: Some(&check),
                ndoo_max_age_days: crest_privacy::submission::NDOO_MAX_AGE_DAYS,
                today: today(),
                now: crest_store::utc_now(),
            };
            let b = build(store, &req).map_err(|e| anyhow!("{}: {e}", p.code))?;
            let name = format!("{}-{}-{}.jsonl", p.code, period.from, period.to);
            std::fs::write(subs.join(&name), &b.bytes)?;
            store.record_sent(&p.code, &b.sent, &b.withdrawn)?;
            crest_privacy::submission::receive_logged(
                &mut n,
                &b.bytes,
                (&sk, &nk),
                ("demo", "national_analyst"),
                &name,
            )
            .map_err(|e| anyhow!("{}: {e}", p.code))?;
            sent += b.sent.len();
            own += b.left_out_own_request;
            nd += b.left_out_ndoo;
            bar.set((y * progs.len() + i + 1) as f64 / steps as f64);
        }
    }
    bar.finish();
    println!(
        "\nnational store {}: {} submissions ({} programmes, {} years), {sent} pseudonymised episodes; left out {own} at the patient's request and {nd} by the National Data Opt-out; {} initiating events seen in more than one programme",
        national.display(),
        progs.len() * years.len(),
        progs.len(),
        years.len(),
        n.cross_programme_duplicates(None)?.len()
    );
    Ok(url)
}

pub(crate) fn demo(
    dir: &Path,
    programmes: usize,
    episodes: usize,
    serve_on: Option<&str>,
) -> Result<i32> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let db = dir.join("crest-demo.sqlite");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let period = Period::last_financial_year(today());
    let years: Vec<Period> = (0..DEMO_YEARS).rev().map(|k| period.earlier(k)).collect();
    let covered = Period {
        from: years[0].from,
        to: period.to,
    };
    let total = episodes * DEMO_YEARS as usize;
    println!(
        "crest demo: generating {total} synthetic episodes ({episodes} a year for {DEMO_YEARS} years, {}) across {programmes} programmes …",
        covered.long()
    );
    println!("{}", synth(dir, programmes, total, 1, covered)?);
    let db_url = format!("sqlite:{}", db.display());
    let mut store = crest_store::open(&db_url)?;
    store.migrate()?;
    let progs = crest_ingest::programmes::read_programmes(&dir.join("programmes.csv"))?;
    store.upsert_programmes(&progs)?;
    let file = dir.join("episodes.csv");
    let mut bar = Progress::new("importing episodes.csv");
    let t = std::time::Instant::now();
    let s = import_file(
        store.as_mut(),
        &file,
        &ImportOptions::new(today()),
        None,
        &mut |f| bar.set(f),
    )?;
    bar.finish();
    println!(
        "imported {} episodes into {} in {:.1} s ({} rejected)\n",
        s.imported,
        db.display(),
        t.elapsed().as_secs_f64(),
        s.rejected
    );
    let episodes = store.kpi_episodes(period.from, period.to, &progs)?;
    let mut progs = progs;
    progs.sort_by(|a, b| a.code.cmp(&b.code));
    print!(
        "{}",
        compute(&progs, &episodes, period, &Thresholds::default()).to_table()
    );
    println!(
        "\nTry: crest --db {} kpis --programme P001 --from {} --to {}",
        db.display(),
        period.from,
        period.to
    );
    let national_url = demo_national(dir, store.as_mut(), &progs, &years)?;
    // The eligible patients a hospital episode count would give, for case ascertainment: the
    // national audit holds them for every programme, and each programme may hold its own.
    let expected = crest_ingest::expected::read_expected(&dir.join("expected.csv"))?;
    crest_store::NationalStore::open(&national_url)?.load_expected(&expected)?;
    store.load_expected(&expected)?;
    println!(
        "loaded {} expected-patient counts (programme, quarter, condition) for case ascertainment",
        expected.len()
    );
    let code = progs.first().map(|p| p.code.clone()).unwrap_or_default();
    // The demo commissioner plans for the region with the most programmes.
    let region = {
        let mut count: std::collections::BTreeMap<&str, usize> = Default::default();
        for p in &progs {
            *count.entry(p.region.as_str()).or_default() += 1;
        }
        count
            .into_iter()
            .max_by_key(|(r, n)| (*n, std::cmp::Reverse(*r)))
            .map(|(r, _)| r.to_string())
            .unwrap_or_default()
    };
    println!("\nDemo logins (passwords are new each run):");
    for (name, role) in [
        ("demo-lead", crest_store::Role::ProgrammeLead),
        ("demo-staff", crest_store::Role::ProgrammeStaff),
        ("demo-admin", crest_store::Role::Admin),
        ("demo-analyst", crest_store::Role::NationalAnalyst),
        ("demo-commissioner", crest_store::Role::Commissioner),
        ("demo-researcher", crest_store::Role::Researcher),
    ] {
        let password = crest_store::users::new_password();
        let scope = if role == crest_store::Role::Commissioner {
            std::slice::from_ref(&region)
        } else {
            std::slice::from_ref(&code)
        };
        crest_store::users::add_user(store.as_mut(), name, role, scope, &password)
            .map_err(|e| anyhow!(e))?;
        if role.sees_patients() {
            println!(
                "  {name:<17} {password}  ({}, programme {code})",
                role.code()
            );
        } else if role == crest_store::Role::Commissioner {
            println!(
                "  {name:<17} {password}  ({}, region {region})",
                role.code()
            );
        } else {
            println!("  {name:<17} {password}  ({})", role.code());
        }
    }
    // A research project for the demo researcher: a few quasi-identifiers, so most records
    // survive k-anonymity.
    let mut n = crest_store::NationalStore::open(&national_url)?;
    n.put_project(&crest_store::national::Project {
        id: "demo-uptake".into(),
        title: "Who takes up cardiac rehabilitation (demo)".into(),
        approval: "IRAS 000000 (synthetic)".into(),
        fields: crest_privacy::research::parse_fields(
            "age_band,sex,imd_quintile,priority_group,referral_date,core_start_date,status,a1_bmi",
        )
        .map_err(|e| anyhow!(e))?,
        researchers: vec!["demo-researcher".into()],
        valid_from: period.from,
        valid_to: today().add_days(365),
        k: 5,
        secret: crest_privacy::research::new_secret(),
        created_at: crest_store::utc_now(),
    })?;
    drop(n);
    drop(store);
    match serve_on {
        Some(addr) => {
            // The lead's "Send to the national audit" goes to this same server's national side,
            // with a programme system token for the lead's programme, as a real programme's
            // crest would send to the audit's.
            let port = addr.rsplit_once(':').map_or("8080", |(_, p)| p);
            let host = addr.rsplit_once(':').map_or("", |(h, _)| h);
            let send_to = matches!(
                host,
                "" | "0.0.0.0" | "127.0.0.1" | "localhost" | "[::]" | "[::1]"
            )
            .then(|| format!("http://127.0.0.1:{port}"));
            let mut bytes = [0u8; 32];
            getrandom::fill(&mut bytes).map_err(|e| anyhow!("no random source: {e}"))?;
            let send_token = hex::encode(bytes);
            let now = crest_store::utc_now();
            let expires = format!("{}{}", today().add_days(365), &now[10..]);
            crest_store::NationalStore::open(&national_url)?.add_api_token(
                &send_token,
                &code,
                &now,
                &expires,
            )?;
            let app =
                crest_web::App::new(&db_url, dir.join("uploads"), today).map_err(|e| anyhow!(e))?;
            let key = |name: &str| -> Result<crest_privacy::Key> {
                let text = std::fs::read_to_string(dir.join(name))?;
                crest_privacy::Key::parse(&text).map_err(|e| anyhow!(e))
            };
            app.set_submission_key(key("submission.key")?);
            app.set_server_key(&key("server.key")?);
            app.set_signing_keys(
                crest_privacy::SigningKeys::load(&dir.join("signing-keys"))
                    .map_err(|e| anyhow!(e))?,
            );
            app.set_national(&national_url, key("national.key")?)
                .map_err(|e| anyhow!(e))?;
            if let Some(url) = &send_to {
                app.set_send_to(url, &send_token).map_err(|e| anyhow!(e))?;
                println!(
                    "\nSubmissions: demo-lead's Submit page sends {code}'s submission to this server's national side ({url}) and shows its receipt."
                );
            }
            serve(app, addr)
        }
        None => Ok(0),
    }
}
