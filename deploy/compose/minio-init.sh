#!/bin/sh
# docker-compose, after MinIO answers: the buckets, and one user per service that stores
# objects, with a policy for its own buckets only (minio/portal-<service>.json, generated from
# the code); each secret comes from <PREFIX>_S3_SECRET_KEY. The root account is used here and by
# nothing else. Safe to run again.
set -eu
DATA="${PORTAL_DATA:-/portal}"
mc alias set portal http://minio:9000 "${MINIO_ROOT_USER:?}" "${MINIO_ROOT_PASSWORD:?}"
mc mb --ignore-existing portal/portal-media portal/portal-raw
while read -r service prefix database s3; do
  case "$service" in ''|\#*) continue ;; esac
  [ "$s3" = yes ] || continue
  eval "secret=\${${prefix}_S3_SECRET_KEY:-}"
  [ -n "$secret" ] || { echo "set ${prefix}_S3_SECRET_KEY" >&2; exit 1; }
  mc admin policy create portal "portal-$service" "$DATA/minio/portal-$service.json"
  mc admin user add portal "portal-$service" "$secret"
  # Attaching twice is refused ("already attached"): a second run changes nothing.
  mc admin policy attach portal "portal-$service" --user "portal-$service" || true
done < "$DATA/services.txt"
echo "minio-init: buckets, service users and policies in place"
