#!/usr/bin/env bash
# docker-compose, first start of PostgreSQL: one login role per service (no superuser, no
# CREATEDB/CREATEROLE) that owns its own database, which no other role may connect to. The
# services are listed in services.txt; each password comes from <PREFIX>_DB_PASSWORD.
set -euo pipefail
DATA="${PORTAL_DATA:-/portal}"

while read -r service prefix database _; do
  [[ -z "$service" || "$service" == \#* || "$database" != yes ]] && continue
  var="${prefix}_DB_PASSWORD"
  password="${!var:?set $var}"
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    --set=role="$service" --set=password="$password" <<'SQL'
CREATE ROLE :"role" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
  PASSWORD :'password';
CREATE DATABASE :"role" OWNER :"role";
REVOKE ALL ON DATABASE :"role" FROM PUBLIC;
SQL
done < "$DATA/services.txt"
