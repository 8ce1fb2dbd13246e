"""Generate the JSON Schemas and the AsyncAPI document under docs/ from the registry.

Run ``python -m portal_contracts.export [docs-dir]``; a test fails when the committed files differ
from what this generates, so the documents can never go stale.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

from portal_contracts.envelope import Envelope
from portal_contracts.partner import PartnerArticleMessage
from portal_contracts.topics import ALL_TOPICS, PARTNER_TOPIC_CONSUMERS, TopicSpec

ASYNCAPI_FILE = "asyncapi.yaml"
SCHEMA_DIR = "schemas"
_REF = "#/components/schemas/{model}"


def _schema_file(model: type[Envelope]) -> str:
    return f"{model.EVENT_TYPE}.v{model.SCHEMA_VERSION}.schema.json"


def json_schemas() -> dict[str, dict[str, Any]]:
    """File name -> standalone JSON Schema, one per event model plus the partner message."""
    out: dict[str, dict[str, Any]] = {}
    seen: set[type[Envelope]] = set()
    for spec in ALL_TOPICS:
        if spec.model in seen:
            continue
        seen.add(spec.model)
        schema = spec.model.model_json_schema(mode="serialization")
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        out[_schema_file(spec.model)] = schema
    partner = PartnerArticleMessage.model_json_schema(mode="validation")
    partner["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    out["partner.article.v1.schema.json"] = partner
    return out


def _channel_id(name: str) -> str:
    return name.replace(".", "_").replace("{", "").replace("}", "")


def _kafka_channel_binding(spec: TopicSpec) -> dict[str, Any]:
    return {
        "kafka": {
            "topic": spec.name,
            "partitions": spec.partitions,
            "replicas": 1,
            "topicConfiguration": {
                "cleanup.policy": [spec.config["cleanup.policy"]],
                "retention.ms": int(spec.config["retention.ms"]),
            },
            "bindingVersion": "0.5.0",
        }
    }


TRACE_HEADERS = {
    "type": "object",
    "properties": {
        "traceparent": {"type": "string", "description": "W3C trace context of the producer."},
        "tracestate": {"type": "string"},
    },
}


class _AsyncApi:
    """The AsyncAPI document, built one topic at a time."""

    def __init__(self) -> None:
        self.schemas: dict[str, Any] = {}
        self.messages: dict[str, Any] = {}
        self.channels: dict[str, Any] = {}
        self.operations: dict[str, Any] = {}

    def add_model(self, model: type[Any], mode: str = "serialization") -> str:
        schema = model.model_json_schema(ref_template=_REF, mode=mode)
        for name, sub in schema.pop("$defs", {}).items():
            self.schemas[name] = sub
        self.schemas[model.__name__] = schema
        return model.__name__

    def add_topic(self, spec: TopicSpec) -> None:
        name = self.add_model(spec.model)
        self.messages.setdefault(
            name,
            {
                "name": spec.model.EVENT_TYPE,
                "title": name,
                "contentType": "application/json",
                "headers": TRACE_HEADERS,
                "payload": {"$ref": _REF.format(model=name)},
                "bindings": {"kafka": {"key": {"type": "string", "description": spec.key}}},
            },
        )
        cid = _channel_id(spec.name)
        self.channels[cid] = {
            "address": spec.name,
            "description": spec.description,
            "messages": {name: {"$ref": f"#/components/messages/{name}"}},
            "bindings": _kafka_channel_binding(spec),
        }
        for action, services in (("send", spec.producers), ("receive", spec.consumers)):
            verb = "publishes" if action == "send" else "consumes"
            for service in services:
                self.operations[f"{service}_{action}s_{cid}"] = {
                    "action": action,
                    "channel": {"$ref": f"#/channels/{cid}"},
                    "summary": f"{service} {verb} {spec.name}",
                }
        for service in spec.readers:
            self.operations[f"{service}_replays_{cid}"] = {
                "action": "receive",
                "channel": {"$ref": f"#/channels/{cid}"},
                "summary": f"{service} reads all of {spec.name} to rebuild its store",
            }

    def add_partner_topics(self) -> None:
        partner = self.add_model(PartnerArticleMessage, mode="validation")
        self.messages[partner] = {
            "name": "partner.article",
            "title": partner,
            "contentType": "application/json",
            "payload": {"$ref": _REF.format(model=partner)},
            "bindings": {"kafka": {"key": {"type": "string", "description": "external_id"}}},
        }
        self.channels["partner_source_articles"] = {
            "address": "partner.{source}.articles",
            "description": (
                "One topic per partner agency, on the SASL_SSL listener (SCRAM-SHA-512); an agency "
                "can write only its own. The source is taken from the topic, never from the payload."
            ),
            "parameters": {"source": {"description": "The agency's source code."}},
            "messages": {partner: {"$ref": f"#/components/messages/{partner}"}},
        }
        for service in PARTNER_TOPIC_CONSUMERS:
            self.operations[f"{service}_receives_partner_source_articles"] = {
                "action": "receive",
                "channel": {"$ref": "#/channels/partner_source_articles"},
                "summary": f"{service} consumes every partner topic",
            }

    def document(self) -> dict[str, Any]:
        return {
            "asyncapi": "3.0.0",
            "info": {
                "title": "Party e-portal events",
                "version": "1.0.0",
                "description": (
                    "Kafka topics of the portal. Every value is a JSON event envelope; trace "
                    "context travels in the W3C traceparent header. Article events are keyed by "
                    "article id."
                ),
            },
            "defaultContentType": "application/json",
            "channels": dict(sorted(self.channels.items())),
            "operations": dict(sorted(self.operations.items())),
            "components": {
                "messages": dict(sorted(self.messages.items())),
                "schemas": dict(sorted(self.schemas.items())),
            },
        }


def asyncapi() -> dict[str, Any]:
    doc = _AsyncApi()
    for spec in ALL_TOPICS:
        doc.add_topic(spec)
    doc.add_partner_topics()
    return doc.document()


def render() -> dict[str, str]:
    """Relative path under docs/ -> file content."""
    files = {
        f"{SCHEMA_DIR}/{name}": json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=True)
        + "\n"
        for name, schema in json_schemas().items()
    }
    files[ASYNCAPI_FILE] = yaml.safe_dump(
        asyncapi(), sort_keys=False, allow_unicode=True, width=100
    )
    return files


def write(docs_dir: Path) -> list[Path]:
    written = []
    for rel, content in render().items():
        path = docs_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
        written.append(path)
    return written


def main() -> None:
    docs = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[4] / "docs"
    for path in write(docs):
        print(path)


if __name__ == "__main__":
    main()
