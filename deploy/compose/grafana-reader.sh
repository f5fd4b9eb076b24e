#!/bin/sh
# TimescaleDB container init (/docker-entrypoint-initdb.d, first start only): a read-only role for Grafana.
# The tables are created later by `tinyfleet db upgrade` (as POSTGRES_USER), so SELECT is granted through default
# privileges of that user as well as on whatever exists already.
set -eu
: "${TINYFLEET_GRAFANA_DB_PASSWORD:?set TINYFLEET_GRAFANA_DB_PASSWORD}"
psql -v ON_ERROR_STOP=1 -v pw="$TINYFLEET_GRAFANA_DB_PASSWORD" --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<'SQL'
SELECT format('CREATE ROLE grafana_reader LOGIN PASSWORD %L', :'pw')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'grafana_reader') \gexec
GRANT CONNECT ON DATABASE :"DBNAME" TO grafana_reader;
GRANT USAGE ON SCHEMA public TO grafana_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO grafana_reader;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO grafana_reader;
SQL
