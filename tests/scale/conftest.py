"""Scale-out tests: several instances of every service on the real stack (the e2e fixture)."""

from __future__ import annotations

from tests.e2e.conftest import partner_images, portal  # noqa: F401 - the e2e tests' fixtures
