#!/usr/bin/env bash
# `make test`: lint, then every test against a fresh local stack on its own ports and folder,
# which is always stopped afterwards (even when tests fail or are interrupted).
set -uo pipefail
cd "$(dirname "$0")/.."
UV=.tools/bin/uv

export PORTAL_STACK_DATA_DIR="${PORTAL_STACK_DATA_DIR:-$PWD/.stack-test}"
export PORTAL_STACK_PORT_BASE="${PORTAL_STACK_PORT_BASE:-29000}"
mkdir -p artifacts

stop_stack() { $UV run --no-sync portal down || true; }
trap stop_stack EXIT INT TERM

echo "== lint (ruff, mypy)"
make --no-print-directory lint || exit 1

echo "== local test stack: $PORTAL_STACK_DATA_DIR, ports from $PORTAL_STACK_PORT_BASE"
stop_stack
rm -rf "$PORTAL_STACK_DATA_DIR"
$UV run --no-sync portal stack up || exit 1

echo "== tests"
$UV run --no-sync pytest "$@"
