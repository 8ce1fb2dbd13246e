"""Tables of the moderation service's own database."""

from __future__ import annotations

from portal_runtime.db import new_metadata
from portal_runtime.outbox import Outbox, inbox_table, outbox_table

metadata = new_metadata()
outbox = Outbox(outbox_table(metadata), inbox_table(metadata))
