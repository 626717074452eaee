//! The national receipt of a submission on any payload. The fuzzer's bytes are the payload of a
//! file whose manifest is correctly signed by a registered programme (checksum and counts made
//! right), so they reach the line parser and the dictionary checks, not only the signature
//! check: what a programme holding its own signing key could send.
#![no_main]
use crest_privacy::submission::{receive, FORMAT};
use crest_privacy::{Key, SigningKey};
use crest_store::national::NationalStore;
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};
use std::sync::Mutex;

struct Setup {
    national: NationalStore,
    signer: SigningKey,
    key: Key,
    national_key: Key,
}

fn setup() -> Setup {
    let path = crest_fuzz::scratch_file("national.sqlite", b"");
    std::fs::remove_file(&path).expect("a fresh store");
    let mut national =
        NationalStore::open(&format!("sqlite:{}", path.display())).expect("national store");
    national.migrate().expect("migrations");
    national
        .upsert_programmes(&[crest_core::Programme::parse([
            "P001", "One", "england", "London", "", "",
        ])
        .expect("a programme")])
        .expect("register");
    let signer = SigningKey::from_secret("P001", [7u8; 32]);
    let from = crest_core::Date::parse_iso("2000-01-01").expect("a date");
    crest_privacy::signing::register(&mut national, &signer.public_key(), "P001", (from, None))
        .expect("register key");
    Setup {
        national,
        signer,
        key: Key::from_secret([1u8; 32]),
        national_key: Key::from_secret([2u8; 32]),
    }
}

static SETUP: Mutex<Option<Setup>> = Mutex::new(None);

fuzz_target!(|payload: &[u8]| {
    let mut guard = SETUP.lock().unwrap_or_else(|p| p.into_inner());
    let s = guard.get_or_insert_with(setup);
    let lines = payload.split(|b| *b == b'\n').filter(|l| !l.is_empty());
    let tombstones = lines
        .clone()
        .filter(|l| l.starts_with(b"{\"tombstone\""))
        .count();
    let episodes = lines.count() - tombstones;
    let fields: Vec<&str> = crest_core::FIELDS
        .iter()
        .filter(|f| f.tier == crest_core::Tier::National)
        .map(|f| f.name)
        .collect();
    let manifest = serde_json::json!({
        "format": FORMAT,
        "dataset_version": crest_core::dataset::DATASET_VERSION,
        "programme_code": "P001",
        "period": { "from": "2024-04-01", "to": "2025-03-31" },
        "counts": { "episodes": episodes, "tombstones": tombstones,
                    "left_out_own_request": 0, "left_out_national_data_opt_out": 0 },
        "key_id": s.key.id(),
        "agreement": { "id": "A1", "legal_basis": "fuzzing" },
        "fields": fields,
        "created_at": "2026-12-07T00:00:00Z",
        "sha256": hex::encode(Sha256::digest(payload)),
        "signed_by": s.signer.public_key().id(),
    });
    let mut bytes = s.signer.sign_manifest(&manifest.to_string()).into_bytes();
    bytes.push(b'\n');
    bytes.extend_from_slice(payload);
    let _ = receive(
        &mut s.national,
        &bytes,
        &s.key,
        &s.national_key,
        "2026-12-07T00:00:00Z",
    );
});
