#!/usr/bin/env bash
# docker-compose, before OpenSearch's first start: its security configuration, into the volume
# OpenSearch mounts at config/opensearch-security. The image's defaults, then our roles and two
# users: `admin` (operators, OPENSEARCH_ADMIN_PASSWORD) and `search` (the search service,
# SEARCH_OPENSEARCH_PASSWORD, role portal_search). Passwords are stored as bcrypt hashes.
# OpenSearch reads these files once, into its security index; later changes need securityadmin.sh.
set -euo pipefail
DEFAULTS=/usr/share/opensearch/config/opensearch-security
OUT=/security
HASH=/usr/share/opensearch/plugins/opensearch-security/tools/hash.sh

cp -n "$DEFAULTS"/*.yml "$OUT"/
hash() { "$HASH" -p "$1" | tail -n 1; }
umask 077
cat > "$OUT/internal_users.yml" <<YAML
_meta:
  type: "internalusers"
  config_version: 2
admin:
  hash: "$(hash "${OPENSEARCH_ADMIN_PASSWORD:?set OPENSEARCH_ADMIN_PASSWORD}")"
  reserved: true
  description: "operators"
search:
  hash: "$(hash "${SEARCH_OPENSEARCH_PASSWORD:?set SEARCH_OPENSEARCH_PASSWORD}")"
  reserved: true
  description: "the search service"
YAML
cp /portal/opensearch/roles.yml /portal/opensearch/roles_mapping.yml "$OUT"/
chown -R 1000:1000 "$OUT" 2>/dev/null || true
echo "opensearch-security-init: users and roles written"
