# The two commands: `make run` (the whole portal on the local stack) and `make test`.
# Everything else here is what they are made of.

SHELL := /bin/bash
PYTHON ?= python3.11
UV_VERSION := 0.13.8
TOOLS := .tools
UV := $(TOOLS)/bin/uv
export UV_PYTHON := $(PYTHON)
export UV_PYTHON_DOWNLOADS := never
export UV_LINK_MODE := copy

.PHONY: bench-pipeline bench-load bench-web run test install system-deps stack-prepare lint format contracts down clean-test-stack

## make run: install, start the stack, migrate, start the services and the website, print URLs
run: install
	$(UV) run --no-sync portal up

## make test: install, start a stack on its own ports and folder, run every test, stop it
test: install
	bash deploy/run-tests.sh

# Jaeger (the trace backend) is built only when traces are asked for (PORTAL_STACK_TRACES=1),
# or by the first test that needs it.
# Bytecode is compiled once here: every process then starts from .pyc files (several seconds of
# CPU less per service start, and on machines with PYTHONDONTWRITEBYTECODE, on every start).
install: system-deps $(UV) node_modules/.installed
	$(UV) sync --all-packages --frozen --compile-bytecode
	$(UV) run --no-sync python -m compileall -q -j 0 libs/*/src services/*/src deploy/launcher/src
	$(UV) run --no-sync portal stack prepare

# npm packages (package.json): the browser tests' and benchmark's tooling (axe-core,
# Lighthouse), and the desk's rich text editor (Quill), copied into the desk's static assets.
DESK_VENDOR := services/moderation/src/portal_moderation/desk/static/vendor
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	mkdir -p $(DESK_VENDOR)
	cp node_modules/quill/dist/quill.js node_modules/quill/dist/quill.snow.css $(DESK_VENDOR)/
	touch $@

# Java 17 and Maven run Kafka and OpenSearch; installed from Debian's packages when missing.
system-deps:
	@bash deploy/system-deps.sh

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

lint: $(UV)
	$(UV) run --no-sync ruff check .
	$(UV) run --no-sync ruff format --check .
	$(UV) run --no-sync mypy libs/text/src libs/contracts/src libs/runtime/src deploy/launcher/src services/*/src

format: $(UV)
	$(UV) run --no-sync ruff check --fix .
	$(UV) run --no-sync ruff format .

## regenerate docs/schemas and docs/asyncapi.yaml from libs/contracts, and the files
## docker-compose applies from them (deploy/compose: topics, ACLs, services, MinIO policies)
contracts: $(UV)
	$(UV) run --no-sync python -m portal_contracts.export
	$(UV) run --no-sync python -m portal_launcher.compose_files

down: $(UV)
	$(UV) run --no-sync portal down

## benchmarks (print figures; see bench/README.md)
bench-pipeline: install
	$(UV) run --no-sync python bench/pipeline/run.py
bench-load: install
	$(UV) run --no-sync python bench/load/run.py
bench-web: install
	$(UV) run --no-sync python bench/web/lighthouse.py
