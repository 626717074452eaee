-- Frozen: a released migration is never edited. A schema change (a dataset change included)
-- is a new file with the next version.
ALTER TABLE national_episodes DROP CONSTRAINT national_episodes_pkey;

ALTER TABLE national_episodes ADD PRIMARY KEY (programme_code, episode_key);

ALTER TABLE api_tokens ADD COLUMN expires_at TEXT;

ALTER TABLE api_tokens ADD COLUMN revoked_at TEXT;
