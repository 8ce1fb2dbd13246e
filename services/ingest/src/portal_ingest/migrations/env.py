from portal_ingest.db import metadata
from portal_runtime.migrations_env import run_env

run_env(metadata)
