//! The deployment recipe in `deploy/`: the compose file's structure, and the least-privilege
//! PostgreSQL roles it sets up, tried on the real server (the app's role imports and reads but
//! cannot drop a table).
#![allow(clippy::unwrap_used)]

use common::crest;
use std::path::PathBuf;
use std::process::Command;

mod common;

fn deploy() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

#[test]
fn the_compose_file_has_its_services_locked_down_behind_the_proxy() {
    let compose = deploy().join("compose.yaml");
    let docker_compose = Command::new("docker")
        .args(["compose", "version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if docker_compose {
        let o = Command::new("docker")
            .args([
                "compose",
                "-f",
                compose.to_str().unwrap(),
                "config",
                "--quiet",
            ])
            .envs([
                ("POSTGRES_PASSWORD", "x"),
                ("CREST_OWNER_PASSWORD", "x"),
                ("CREST_APP_PASSWORD", "x"),
            ])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    // The structure is checked either way (docker compose only says the file is valid).
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/deploy_check.py");
    let o = Command::new("python3")
        .arg(&script)
        .arg(&compose)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let dockerfile = std::fs::read_to_string(deploy().join("Dockerfile")).unwrap();
    assert!(dockerfile.contains("USER crest") && dockerfile.matches("FROM ").count() >= 2);
    assert!(
        dockerfile.contains("chromium"),
        "the PDF reports need Chromium"
    );
}

#[test]
fn the_app_role_imports_but_cannot_drop_tables() {
    let Some(db) = crest_store::testing::postgres_db() else {
        return; // PostgreSQL is required in CI (CREST_REQUIRE_POSTGRES), skipped elsewhere.
    };
    // The script's own roles, under this test's names, in a database of its own.
    let suffix = db.url.rsplit('/').next().unwrap().to_string();
    let (name, owner, app) = (
        format!("{suffix}_dep"),
        format!("{suffix}_owner"),
        format!("{suffix}_app"),
    );
    let base = db.url.rsplit_once('/').unwrap().0.to_string();
    let host = base.rsplit_once('@').map_or("127.0.0.1:5432", |(_, h)| h);
    let (host, port) = host.split_once(':').unwrap_or((host, "5432"));
    let psql = |sql: &str, user: &str, database: &str| {
        Command::new("psql")
            .args([
                "-h",
                host,
                "-p",
                port,
                "-U",
                user,
                "-d",
                database,
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ])
            .output()
            .unwrap()
    };
    let o = Command::new("sh")
        .arg(deploy().join("postgres-roles.sh"))
        .envs([
            ("PGHOST", host),
            ("PGPORT", port),
            ("PGUSER", "postgres"),
            ("PGDATABASE", "postgres"),
            ("CREST_DB_NAME", &name),
            ("CREST_OWNER_ROLE", &owner),
            ("CREST_APP_ROLE", &app),
            ("CREST_OWNER_PASSWORD", "owner-pw"),
            ("CREST_APP_PASSWORD", "app-pw"),
        ])
        .output()
        .unwrap();
    let cleanup = || {
        psql(
            &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            "postgres",
            "postgres",
        );
        psql(
            &format!("DROP ROLE IF EXISTS {app}"),
            "postgres",
            "postgres",
        );
        psql(
            &format!("DROP ROLE IF EXISTS {owner}"),
            "postgres",
            "postgres",
        );
    };
    if !o.status.success() {
        cleanup();
        panic!("{}", String::from_utf8_lossy(&o.stderr));
    }
    let as_owner = format!("postgres://{owner}:owner-pw@{host}:{port}/{name}");
    let as_app = format!("postgres://{app}:app-pw@{host}:{port}/{name}");
    let dir = crest_store::testing::scratch_dir("deploy");
    let result = std::panic::catch_unwind(|| {
        let (code, out) = crest(&as_owner, &["init"]);
        assert_eq!(code, 0, "{out}");
        // The app's role cannot apply migrations, but does everything a server does.
        let programmes = dir.join("programmes.csv");
        std::fs::write(
            &programmes,
            "programme_code,name,nation,region\nP001,One,england,South London\n",
        )
        .unwrap();
        let (code, out) = crest(
            &as_app,
            &["programmes", "import", programmes.to_str().unwrap()],
        );
        assert_eq!(code, 0, "{out}");
        let episodes = dir.join("episodes.csv");
        std::fs::write(
            &episodes,
            "programme_code,episode_id,nhs_number,date_of_birth,sex,initiating_event,treatment,event_date,referral_date,status\nP001,E1,9434765854,1950-01-01,male,mi_stemi,pci,2025-01-10,2025-01-12,referred\n",
        )
        .unwrap();
        let (code, out) = crest(&as_app, &["import", episodes.to_str().unwrap()]);
        assert_eq!(code, 0, "{out}");
        let (code, out) = crest(&as_app, &["audit", "verify"]);
        assert_eq!(code, 0, "{out}");
        for sql in [
            "DROP TABLE episodes",
            "ALTER TABLE episodes ADD COLUMN x TEXT",
            "CREATE TABLE t (x INT)",
        ] {
            let o = psql(sql, &app, &name);
            assert!(!o.status.success(), "the app's role could run {sql}");
            assert!(
                String::from_utf8_lossy(&o.stderr).contains("must be owner")
                    || String::from_utf8_lossy(&o.stderr).contains("permission denied"),
                "{}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        let o = psql("SELECT count(*) FROM episodes", &owner, &name);
        assert!(
            String::from_utf8_lossy(&o.stdout).contains(" 1"),
            "{}",
            String::from_utf8_lossy(&o.stdout)
        );
    });
    cleanup();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}
