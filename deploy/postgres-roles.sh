#!/bin/sh
# Least-privilege roles for crest (run once by the postgres image on first start):
# crest_owner owns the schema and applies migrations (`crest init`); crest_app, which the
# servers use, may read and write rows but not create, alter or drop tables. The national
# store gets its own database and roles in the same way (crest_national, crest_national_owner,
# crest_national_app), so a programme server's credentials never reach it.
# The names can be changed (CREST_DB_NAME, CREST_OWNER_ROLE, CREST_APP_ROLE); psql's
# connection comes from the usual PG* variables.
set -eu
db="${CREST_DB_NAME:-crest}"
owner="${CREST_OWNER_ROLE:-crest_owner}"
app="${CREST_APP_ROLE:-crest_app}"
psql -v ON_ERROR_STOP=1 --username "${PGUSER:-postgres}" <<SQL
CREATE ROLE $owner LOGIN PASSWORD '${CREST_OWNER_PASSWORD}';
CREATE ROLE $app LOGIN PASSWORD '${CREST_APP_PASSWORD}';
CREATE DATABASE $db OWNER $owner;
REVOKE ALL ON DATABASE $db FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE $db TO $app;
\\connect $db
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO $app;
ALTER DEFAULT PRIVILEGES FOR ROLE $owner IN SCHEMA public
  GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO $app;
ALTER DEFAULT PRIVILEGES FOR ROLE $owner IN SCHEMA public
  GRANT USAGE, SELECT ON SEQUENCES TO $app;
SQL
