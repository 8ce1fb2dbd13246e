"""`python -m portal_runtime.migrate <service>`: upgrade one service's database and exit.

What a deployment runs once before rolling a release out (the Helm chart's migration Job), with
the service's own settings (``DATABASE_URL``); its instances then start with
``MIGRATE_ON_START=false`` instead of racing each other through the same migrations.
"""

from __future__ import annotations

import importlib
import sys

from portal_runtime.db import run_migrations
from portal_runtime.logs import configure_logging, get_logger
from portal_runtime.settings import ServiceSettings

SERVICES = ("ingest", "normalize", "moderation", "publishing", "engagement", "search")


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in SERVICES:
        print(f"usage: python -m portal_runtime.migrate {{{'|'.join(SERVICES)}}}", file=sys.stderr)
        return 2
    service = argv[0]
    settings = ServiceSettings(service_name=service)
    configure_logging(service, settings.log_level, settings.log_json, settings.instance_id)
    migrations = importlib.import_module(f"portal_{service}.app").MIGRATIONS
    run_migrations(migrations, settings.database_url)
    get_logger(__name__).info("database_migrated", service=service)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
