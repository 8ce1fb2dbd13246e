"""Helpers shared by the cross-service tests."""

from __future__ import annotations

from typing import Any

import httpx
from opentelemetry.instrumentation.utils import suppress_http_instrumentation


class OutsideClient(httpx.Client):
    """An HTTP client that is never traced by this test process.

    In-process service tests install the httpx instrumentation for the whole process; it would
    then inject its own ``traceparent`` into every request of the test, replacing the one a
    trace test sends as "the partner". Requests from outside the platform carry only the headers
    the test gives them.
    """

    def send(self, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        with suppress_http_instrumentation():
            return super().send(request, **kwargs)
