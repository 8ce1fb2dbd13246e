#!/usr/bin/env bash
# docker-compose, after Kafka answers: the registry's topics, each service's SCRAM user and
# exactly its ACLs (kafka-topics.txt, services.txt, kafka-acls.txt, generated from the code).
# Runs as the operator (PLAIN, KAFKA_ADMIN_PASSWORD); safe to run again.
set -euo pipefail
BIN="${KAFKA_BIN:-/opt/kafka/bin}"
BOOTSTRAP="${KAFKA_BOOTSTRAP:-kafka:9092}"
DATA="${PORTAL_DATA:-/portal}"
umask 077
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cat > "$work/admin.properties" <<CONF
security.protocol=SASL_PLAINTEXT
sasl.mechanism=PLAIN
sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="portal-admin" password="${KAFKA_ADMIN_PASSWORD:?set KAFKA_ADMIN_PASSWORD}";
CONF
admin=(--bootstrap-server "$BOOTSTRAP" --command-config "$work/admin.properties")

while read -r name partitions configs; do
  [[ -z "$name" || "$name" == \#* ]] && continue
  args=()
  IFS=, read -ra pairs <<< "$configs"
  for pair in "${pairs[@]}"; do args+=(--config "$pair"); done
  "$BIN/kafka-topics.sh" "${admin[@]}" --create --if-not-exists --topic "$name" \
    --partitions "$partitions" --replication-factor "${REPLICATION_FACTOR:-1}" "${args[@]}"
done < "$DATA/kafka-topics.txt"

while read -r service prefix _; do
  [[ -z "$service" || "$service" == \#* ]] && continue
  var="${prefix}_KAFKA_PASSWORD"
  # A file, not the command line: the password never shows in a process list.
  printf 'SCRAM-SHA-512=password=%s\n' "${!var:?set $var}" > "$work/scram.properties"
  "$BIN/kafka-configs.sh" "${admin[@]}" --alter --entity-type users --entity-name "$service" \
    --add-config-file "$work/scram.properties"
done < "$DATA/services.txt"

# kafka-acls.sh names operations in camel case: ALTER_CONFIGS -> AlterConfigs.
camel() {
  local IFS=_ out="" part
  for part in ${1,,}; do out+="${part^}"; done
  echo "$out"
}

# One call per principal and resource, with all of its operations.
declare -A operations=()
while read -r principal type pattern resource operation; do
  [[ -z "$principal" || "$principal" == \#* ]] && continue
  key="$principal $type $pattern $resource"
  operations["$key"]+=" --operation $(camel "$operation")"
done < "$DATA/kafka-acls.txt"
for key in "${!operations[@]}"; do
  read -r principal type pattern resource <<< "$key"
  case "$type" in
    TOPIC) target=(--topic "$resource") ;;
    GROUP) target=(--group "$resource") ;;
    CLUSTER) target=(--cluster) ;;
    *) echo "unknown resource type $type" >&2; exit 1 ;;
  esac
  # shellcheck disable=SC2086 # the operations are words on purpose
  "$BIN/kafka-acls.sh" "${admin[@]}" --add --allow-principal "$principal" \
    --resource-pattern-type "${pattern,,}" "${target[@]}" ${operations[$key]}
done
echo "kafka-init: topics, service users and ACLs in place"
