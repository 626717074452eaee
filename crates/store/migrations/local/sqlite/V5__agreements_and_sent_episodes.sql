-- Frozen: a released migration is never edited. A schema change (a dataset change included)
-- is a new file with the next version.
CREATE TABLE agreements (id TEXT PRIMARY KEY, recipient TEXT NOT NULL, legal_basis TEXT NOT NULL, fields TEXT NOT NULL, opt_out_exempt TEXT NOT NULL, valid_from TEXT NOT NULL, valid_to TEXT NOT NULL);

CREATE TABLE sent_episodes (programme_code TEXT NOT NULL REFERENCES programmes (programme_code), episode_id TEXT NOT NULL, PRIMARY KEY (programme_code, episode_id));
