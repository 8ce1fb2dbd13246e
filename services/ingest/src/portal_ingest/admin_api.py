"""The admin API: sources, their API keys and their partner Kafka access."""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations.
import pathlib
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Response, status
from pydantic import BaseModel, ConfigDict, Field, field_validator

from portal_contracts.articles import (
    SectionCode,
)
from portal_ingest import repository as repo
from portal_ingest.api import _INVALID, SOURCE_CODE_PATTERN, Problem, SourceCodePath
from portal_ingest.deps import AdminToken, Deps
from portal_ingest.kafka_admin import SCRAM_MECHANISM
from portal_ingest.settings import Settings

# -- models: admin API ------------------------------------------------------------------------


class SourceIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=300)
    kind: str = Field(
        min_length=1,
        max_length=64,
        pattern=SOURCE_CODE_PATTERN,
        description="central-party-body, socio-political, ministry, province, ...",
    )
    sections: list[SectionCode] = Field(
        default_factory=list,
        max_length=500,
        description="Every section code the agency may publish to.",
    )
    active: bool = True

    @field_validator("name")
    @classmethod
    def _no_nul(cls, value: str) -> str:
        # PostgreSQL text cannot hold NUL: refuse it here (422), not at the INSERT (500).
        if "\x00" in value:
            raise ValueError("must not contain the NUL character")
        return value


class SourceOut(BaseModel):
    code: str
    name: str
    kind: str
    sections: list[str]
    active: bool
    created_at: datetime
    updated_at: datetime


class ApiKeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    label: str | None = Field(default=None, max_length=200, description="e.g. 'CMS production'.")


class ApiKeyOut(BaseModel):
    key_id: str
    source: str
    label: str | None
    created_at: datetime
    revoked_at: datetime | None


class IssuedApiKeyOut(ApiKeyOut):
    api_key: str = Field(description="Shown once; only a hash is kept. Send as 'Bearer <key>'.")


class KafkaCredentialsOut(BaseModel):
    username: str
    password: str = Field(description="Shown once; calling again sets a new one.")
    topic: str
    bootstrap_servers: str
    mechanism: str = SCRAM_MECHANISM
    security_protocol: str = "SASL_SSL"
    ssl_ca_pem: str | None = Field(
        default=None,
        description="The CA certificate (PEM) to verify the broker with, when the portal's "
        "own CA signs it; null: a public CA does.",
    )
    produce_byte_rate: int = Field(
        description="Bytes per second this agency may produce; beyond it the broker delays it."
    )


class KafkaAccessOut(BaseModel):
    username: str
    topic: str
    bootstrap_servers: str
    mechanism: str = SCRAM_MECHANISM
    security_protocol: str = "SASL_SSL"
    ssl_ca_pem: str | None = None
    created_at: datetime
    rotated_at: datetime


def _partner_ca(settings: Settings) -> str | None:
    path = settings.kafka_partner_ca_file
    return pathlib.Path(path).read_text() if path else None


def _source_out(row: repo.SourceRow) -> SourceOut:
    return SourceOut(
        code=row.code,
        name=row.name,
        kind=row.kind,
        sections=list(row.sections),
        active=row.active,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _key_out(row: repo.ApiKeyRow) -> ApiKeyOut:
    return ApiKeyOut(
        key_id=row.key_id,
        source=row.source,
        label=row.label,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


# -- admin API --------------------------------------------------------------------------------


router = APIRouter(
    prefix="/admin/v1",
    tags=["admin"],
    dependencies=[AdminToken],
    responses={
        401: {"model": Problem, "description": "Admin token missing or wrong"},
        **_INVALID,
    },
)


@router.put(
    "/sources/{code}",
    summary="Create or replace a partner agency (source)",
    response_model=SourceOut,
    responses={201: {"model": SourceOut, "description": "Created"}},
)
async def put_source(
    deps: Deps, code: SourceCodePath, body: SourceIn, response: Response
) -> SourceOut:
    row, created = await deps.admin.put_source(
        code, name=body.name, kind=body.kind, sections=body.sections, active=body.active
    )
    if created:
        response.status_code = status.HTTP_201_CREATED
    return _source_out(row)


@router.get("/sources", summary="Every partner agency", response_model=list[SourceOut])
async def list_sources(deps: Deps) -> list[SourceOut]:
    return [_source_out(r) for r in await deps.admin.list_sources()]


@router.get(
    "/sources/{code}",
    summary="One partner agency",
    response_model=SourceOut,
    responses={404: {"model": Problem}},
)
async def get_source(deps: Deps, code: SourceCodePath) -> SourceOut:
    return _source_out(await deps.admin.get_source(code))


@router.post(
    "/sources/{code}/api-keys",
    summary="Issue an API key (the plaintext is in this answer only)",
    status_code=status.HTTP_201_CREATED,
    response_model=IssuedApiKeyOut,
    responses={404: {"model": Problem}},
)
async def issue_key(
    deps: Deps, code: SourceCodePath, body: ApiKeyIn | None = None
) -> IssuedApiKeyOut:
    issued = await deps.admin.issue_api_key(code, None if body is None else body.label)
    return IssuedApiKeyOut(**_key_out(issued.row).model_dump(), api_key=issued.token)


@router.get(
    "/sources/{code}/api-keys",
    summary="The agency's API keys (metadata only)",
    response_model=list[ApiKeyOut],
    responses={404: {"model": Problem}},
)
async def list_keys(deps: Deps, code: SourceCodePath) -> list[ApiKeyOut]:
    return [_key_out(k) for k in await deps.admin.list_api_keys(code)]


@router.delete(
    "/sources/{code}/api-keys/{key_id}",
    summary="Revoke an API key (rotation: issue a new key, then revoke the old one)",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={404: {"model": Problem}},
)
async def revoke_key(
    deps: Deps, code: SourceCodePath, key_id: Annotated[str, Path(max_length=32)]
) -> Response:
    await deps.admin.revoke_api_key(code, key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/sources/{code}/kafka-credentials",
    summary="Provision (or rotate) the agency's Kafka access",
    description=(
        "Creates the topic partner.<code>.articles, a SCRAM-SHA-512 user with a new random "
        "password, ACLs allowing it to write (and describe) exactly that topic, and its "
        "produce quota. The listener is SASL_SSL; ssl_ca_pem verifies it. Calling it again "
        "sets a new password (the old one stops working)."
    ),
    status_code=status.HTTP_201_CREATED,
    response_model=KafkaCredentialsOut,
    responses={404: {"model": Problem}, 503: {"model": Problem}},
)
async def grant_kafka(deps: Deps, code: SourceCodePath) -> KafkaCredentialsOut:
    access = await deps.admin.grant_kafka(code)
    return KafkaCredentialsOut(
        username=access.username,
        password=access.password,
        topic=access.topic,
        bootstrap_servers=access.bootstrap_servers,
        ssl_ca_pem=_partner_ca(deps.settings),
        produce_byte_rate=deps.settings.partner_produce_byte_rate,
    )


@router.get(
    "/sources/{code}/kafka-credentials",
    summary="The agency's Kafka user and topic (never the password)",
    response_model=KafkaAccessOut,
    responses={404: {"model": Problem}},
)
async def kafka_access(deps: Deps, code: SourceCodePath) -> KafkaAccessOut:
    row = await deps.admin.kafka_access(code)
    return KafkaAccessOut(
        username=row.username,
        topic=row.topic,
        bootstrap_servers=deps.settings.kafka_partner_bootstrap_servers,
        ssl_ca_pem=_partner_ca(deps.settings),
        created_at=row.created_at,
        rotated_at=row.rotated_at,
    )
