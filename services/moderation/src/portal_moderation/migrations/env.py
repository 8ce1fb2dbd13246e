import portal_moderation.submissions.db  # noqa: F401 - registers the submissions tables
from portal_moderation.db import metadata
from portal_runtime.migrations_env import run_env

run_env(metadata)
