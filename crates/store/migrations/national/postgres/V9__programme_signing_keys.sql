-- Frozen: a released migration is never edited. A schema change (a dataset change included)
-- is a new file with the next version.

-- Each programme's public Ed25519 keys: a submission must be signed by one of its programme's
-- keys, in force on the day of receipt and not revoked (privacy.md, "Submission" step 6).
CREATE TABLE programme_signing_keys (
    key_id TEXT PRIMARY KEY,
    programme_code TEXT NOT NULL REFERENCES programmes (programme_code),
    public_key TEXT NOT NULL UNIQUE,
    valid_from TEXT NOT NULL,
    valid_to TEXT,
    added_at TEXT NOT NULL,
    revoked_at TEXT
);

CREATE INDEX programme_signing_keys_programme ON programme_signing_keys (programme_code);

-- Programme API tokens made before expiries existed (migration 6) get one: a year after they
-- were made, as `crest tokens new` gives by default.
UPDATE api_tokens
SET expires_at = to_char((created_at::timestamptz + interval '365 days') AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
WHERE expires_at IS NULL;
