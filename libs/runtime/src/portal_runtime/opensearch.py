"""OpenSearch calls as client spans (there is no OpenTelemetry instrumentation for opensearch-py).

``TracedAsyncTransport`` wraps every request the async client sends: one span per logical call
(retries included), named ``<operation> <index>`` as the database conventions ask, with
``db.system.name``, ``db.operation.name``, ``db.collection.name``, ``http.request.method``,
``server.*`` and the response status. Query bodies are not recorded: they hold what the public
searched for.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any
from urllib.parse import urlparse

from opensearchpy import AsyncTransport
from opensearchpy.exceptions import TransportError
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from portal_runtime.settings import ServiceSettings

tracer = trace.get_tracer(__name__)


def opensearch_auth(settings: ServiceSettings) -> dict[str, Any]:
    """The service's own OpenSearch user (basic auth) and, for https, the CA to verify with."""
    options: dict[str, Any] = {}
    if settings.opensearch_username:
        options["http_auth"] = (
            settings.opensearch_username,
            settings.opensearch_password.get_secret_value(),
        )
    if settings.opensearch_url.startswith("https://"):
        options["use_ssl"] = True
        options["verify_certs"] = True
        if settings.opensearch_ca_file:
            options["ca_certs"] = settings.opensearch_ca_file
    return options


# Path endpoints whose name is the operation (``/idx/_search`` -> search).
_DOC_OPERATIONS = {
    "GET": "get",
    "HEAD": "exists",
    "DELETE": "delete",
    "PUT": "index",
    "POST": "index",
}


def operation_of(method: str, path: str) -> tuple[str, str | None]:
    """``(operation, index)`` of a REST call, e.g. ``("search", "articles")``."""
    parts = [p for p in path.split("?")[0].split("/") if p]
    index = parts[0] if parts and not parts[0].startswith("_") else None
    endpoint = next((p for p in parts if p.startswith("_")), None)
    if endpoint is None:
        # "/", "/idx": the cluster or an index itself.
        verb = {"GET": "get", "HEAD": "exists", "DELETE": "delete", "PUT": "create"}
        return (f"indices.{verb.get(method, method.lower())}" if index else "info"), index
    if endpoint in ("_doc", "_create", "_update"):
        name = endpoint[1:] if endpoint != "_doc" else _DOC_OPERATIONS.get(method, "doc")
        return name, index
    return endpoint[1:], index


class TracedAsyncTransport(AsyncTransport):
    async def perform_request(
        self,
        method: str,
        url: str,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        timeout: int | float | None = None,  # noqa: ASYNC109 - the overridden signature
        ignore: Collection[int] = (),
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        operation, index = operation_of(method, url)
        attributes: dict[str, str | int] = {
            "db.system.name": "opensearch",
            "db.system": "opensearch",
            "db.operation.name": operation,
            "http.request.method": method,
        }
        if index:
            attributes["db.collection.name"] = index
        host = self._server()
        if host is not None:
            attributes["server.address"], attributes["server.port"] = host
        name = f"{operation} {index}" if index else operation
        with tracer.start_as_current_span(
            name, kind=SpanKind.CLIENT, attributes=attributes, record_exception=False
        ) as span:
            try:
                result = await super().perform_request(
                    method,
                    url,
                    params=params,
                    body=body,
                    timeout=timeout,
                    ignore=ignore,
                    headers=headers,
                )
            except TransportError as exc:
                status = exc.status_code
                if isinstance(status, int):
                    span.set_attribute("http.response.status_code", status)
                span.set_attribute("error.type", type(exc).__name__)
                span.set_status(Status(StatusCode.ERROR, str(exc.error)[:200]))
                span.record_exception(exc)
                raise
            except Exception as exc:
                span.set_attribute("error.type", type(exc).__name__)
                span.set_status(Status(StatusCode.ERROR, str(exc)[:200]))
                span.record_exception(exc)
                raise
            return result

    def _server(self) -> tuple[str, int] | None:
        hosts = getattr(self, "hosts", None) or []
        if not hosts:
            return None
        first = hosts[0]
        if isinstance(first, dict):
            host, port = first.get("host"), first.get("port")
            return (str(host), int(port)) if host and port else None
        parsed = urlparse(str(first))
        return (parsed.hostname or "", parsed.port or 9200) if parsed.hostname else None
