#!/usr/bin/env bash
# Installs what the local stack needs from Debian's packages if it is missing:
# a Java 17 runtime (Kafka 4 and OpenSearch 2.19) and Maven (resolves their jars).
set -euo pipefail
need=()
if ! ls /usr/lib/jvm/*17* >/dev/null 2>&1 && ! java -version 2>&1 | grep -q '"17\.'; then
  need+=(openjdk-17-jdk-headless)
fi
command -v mvn >/dev/null 2>&1 || need+=(maven)
command -v python3.11 >/dev/null 2>&1 || need+=(python3.11 python3.11-venv)
if ((${#need[@]})); then
  echo "installing from Debian packages: ${need[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}"
fi
