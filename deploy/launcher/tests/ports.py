"""Ports for the component tests' own servers, derived from the run's stack port base.

The shared test stack takes base+0..base+60; each component test starts its own server at
base+offset, so two runs with different PORTAL_STACK_PORT_BASE values never collide.
"""

from __future__ import annotations

import os

KAFKA_OFFSET = 100
OPENSEARCH_OFFSET = 200
POSTGRES_S3_OFFSET = 300
VARNISH_OFFSET = 230  # the edge's own ports at +56/+57 of it; its test origins take any port


def component_port_base(offset: int) -> int:
    return int(os.environ.get("PORTAL_STACK_PORT_BASE", "29000")) + offset
