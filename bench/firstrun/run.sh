#!/usr/bin/env bash
# How long `make run` takes: on a fresh clone with empty package caches (uv, Maven, npm, the
# portal's build cache and Helm's all point into a new temporary folder, so everything is
# downloaded and built), then warm (the same clone again after `make down`).
#   bash bench/firstrun/run.sh [--json PATH]
# The clone's stack uses PORTAL_STACK_PORT_BASE (default 24000) and is stopped at the end.
set -euo pipefail
json=""
if [[ "${1:-}" == "--json" ]]; then json="$(realpath -m "$2")"; fi
repo="$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
work="$(mktemp -d /tmp/portal-firstrun.XXXXXX)"
git clone -q "$repo" "$work/clone"
export PORTAL_CACHE="$work/portal" PORTAL_HELM_CACHE="$work/helm" UV_CACHE_DIR="$work/uv" \
  npm_config_cache="$work/npm" MAVEN_OPTS="-Dmaven.repo.local=$work/m2" \
  PORTAL_STACK_PORT_BASE="${PORTAL_STACK_PORT_BASE:-24000}" PORTAL_STACK_DATA_DIR="$work/clone/.stack"
cd "$work/clone"
stop() { .tools/bin/uv run --no-sync portal down >>"$work/down.log" 2>&1 || true; }
trap 'stop; rm -rf "$work"' EXIT
load() { cut -d' ' -f1 /proc/loadavg; }

timed() {  # seconds a `make run` takes; its output goes to $work/$1.log
  local start end
  start=$(date +%s)
  make run >"$work/$1.log" 2>&1 || { tail -30 "$work/$1.log" >&2; exit 1; }
  end=$(date +%s)
  echo $((end - start))
}

load_start=$(load)
fresh=$(timed fresh)
stop
warm=$(timed warm)
load_end=$(load)
echo "make run, fresh clone with empty caches: ${fresh} s (target <= 300)"
echo "make run, warm:                          ${warm} s (target <= 60)"
echo "load average ${load_start} at the start, ${load_end} at the end, on $(nproc) cores"
if [[ -n "$json" ]]; then
  printf '{"fresh_s": %s, "warm_s": %s, "load_start": %s, "load_end": %s}\n' \
    "$fresh" "$warm" "$load_start" "$load_end" >"$json"
  echo "figures written to $json"
fi
