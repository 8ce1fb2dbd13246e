from portal_runtime.migrations_env import run_env
from portal_search.db import metadata

run_env(metadata)
