#!/usr/bin/env bash
# Installs what the local stack needs from Debian's packages if it is missing:
# a Java 17 runtime (Kafka 4 and OpenSearch 2.19), Maven (resolves their jars), Go (builds the
# Jaeger trace backend), Chromium (the browser tests of the desk and the website), Node.js and
# npm (axe-core and Lighthouse for the website, from package.json), promtool (alert rules),
# Varnish with varnish-modules (the edge cache and its xkey module), nginx and wrk (the load
# benchmark's static-file baseline and its load generator) and glibc's charmaps (the legacy
# Vietnamese encoding tables are tested against them).
set -euo pipefail
need=()
if ! ls /usr/lib/jvm/*17* >/dev/null 2>&1 && ! java -version 2>&1 | grep -q '"17\.'; then
  need+=(openjdk-17-jdk-headless)
fi
command -v mvn >/dev/null 2>&1 || need+=(maven)
command -v python3.11 >/dev/null 2>&1 || need+=(python3.11 python3.11-venv)
command -v go >/dev/null 2>&1 || need+=(golang-go)
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
# nginx: the load benchmark serves the same responses as static files for comparison.
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
# glibc's charmaps: the tests check the TCVN3 and VISCII tables against them.
[ -f /usr/share/i18n/charmaps/VISCII.gz ] || need+=(locales)
# The edge cache: varnishd and its xkey module (surrogate-key purges).
command -v varnishd >/dev/null 2>&1 || [ -x /usr/sbin/varnishd ] || need+=(varnish)
ls /usr/lib/*/varnish/vmods/libvmod_xkey.so >/dev/null 2>&1 || need+=(varnish-modules)
if ((${#need[@]})); then
  echo "installing from Debian packages: ${need[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}"
  # Debian starts a system-wide varnishd on :6081 at install; the portal runs its own (the
  # launcher's edge component), on the same default port.
  if [[ " ${need[*]} " == *" varnish "* ]] && [ -d /run/systemd/system ]; then
    $SUDO systemctl disable --now varnish.service varnishncsa.service >/dev/null 2>&1 || true
  fi
fi
