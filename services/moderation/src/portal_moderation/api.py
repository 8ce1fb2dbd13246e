"""The review desk's HTTP API: admin (sources, accounts), sign-in, the editors' queue."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from portal_contracts.articles import NormalizedArticle, QualityReport, SectionCode, SourceCode
from portal_contracts.codec import describe_validation_error
from portal_moderation import repository as repo
from portal_moderation.domain import (
    PERMISSIONS,
    Action,
    Conflict,
    Editor,
    Forbidden,
    InvalidEdit,
    ItemState,
    Policy,
    Role,
    authorize,
    category_key,
    flags_of,
    visible_source,
)
from portal_moderation.passwords import MAX_LENGTH, MIN_LENGTH
from portal_moderation.usecases import Accounts, NotFound, ReviewDesk, SignInRefused
from portal_runtime.auth import ADMIN_RESPONSES, admin_guard
from portal_runtime.problems import NulFree
from portal_runtime.settings import ServiceSettings

USERNAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{1,63}$"
SOURCE_PATH = Path(pattern=r"^[a-z0-9][a-z0-9-]*$", min_length=2, max_length=64)
USERNAME_PATH = Path(pattern=USERNAME_PATTERN)
ARTICLE_PATH = Path(min_length=1, max_length=64)
MAX_SIGN_IN_BYTES = 4096


class Model(NulFree):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# --- admin ----------------------------------------------------------------------------------


class SourceIn(Model):
    name: str = Field(min_length=1, max_length=300)
    kind: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[a-z0-9][a-z0-9-]*$",
        description="central-party-body, socio-political, ministry, province, ...",
    )
    policy: Policy = Field(
        description="pre-review: published after an editor approves; trusted: at once."
    )
    categories: dict[Annotated[str, Field(min_length=1, max_length=200)], SectionCode] | None = (
        Field(
            default=None,
            max_length=500,
            description="The agency's own category names -> portal section codes, applied to "
            "an item that names no section. Omit it to keep the mapping as it is.",
        )
    )


class SourceOut(BaseModel):
    code: str
    name: str
    kind: str
    policy: Policy
    categories: dict[str, str] = Field(description="Case-folded category -> section code.")
    updated_at: datetime


class UserIn(Model):
    password: SecretStr | None = Field(
        default=None,
        min_length=MIN_LENGTH,
        max_length=MAX_LENGTH,
        description="Required to create an account; give it to change the password.",
    )
    role: Role
    display_name: str = Field(min_length=1, max_length=200)
    source: SourceCode | None = Field(
        default=None, description="The agency of an agency_publisher (and only then)."
    )
    active: bool = True


class UserOut(BaseModel):
    username: str
    role: Role
    display_name: str
    source: str | None
    active: bool
    created_at: datetime
    updated_at: datetime


def admin_router(settings: ServiceSettings, accounts: Accounts) -> APIRouter:
    router = APIRouter(
        prefix="/admin/v1",
        tags=["admin"],
        dependencies=[Depends(admin_guard(settings))],
        responses=ADMIN_RESPONSES,
    )

    @router.put(
        "/sources/{code}",
        response_model=SourceOut,
        summary="Create or update a partner source and its trust policy",
    )
    async def put_source(body: SourceIn, code: Annotated[str, SOURCE_PATH]) -> Any:
        categories = (
            {category_key(k): v for k, v in body.categories.items()}
            if body.categories is not None
            else None
        )
        async with accounts.sessions.begin() as session:
            await repo.upsert_source(
                session, code, body.name, body.kind, body.policy, categories=categories
            )
            return await repo.get_source(session, code)

    @router.get("/sources", response_model=list[SourceOut], summary="Every configured source")
    async def get_sources() -> Any:
        async with accounts.sessions() as session:
            return await repo.list_sources(session)

    @router.put(
        "/users/{username}",
        response_model=UserOut,
        summary="Create or update an editor's account",
        responses={
            201: {"description": "Account created", "model": UserOut},
            422: {"description": "A field is invalid (named in the message)"},
        },
    )
    async def put_user(
        body: UserIn, response: Response, username: Annotated[str, USERNAME_PATH]
    ) -> Any:
        if body.role is Role.AGENCY_PUBLISHER and body.source is None:
            raise HTTPException(422, "source: required for the agency_publisher role")
        if body.role is not Role.AGENCY_PUBLISHER and body.source is not None:
            raise HTTPException(422, "source: only an agency_publisher belongs to a source")
        try:
            user, created = await accounts.save_user(
                username,
                password=body.password.get_secret_value() if body.password else None,
                role=body.role,
                display_name=body.display_name,
                source=body.source,
                active=body.active,
            )
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from exc
        if created:
            response.status_code = status.HTTP_201_CREATED
        return user

    @router.get("/users", response_model=list[UserOut], summary="Every editor's account")
    async def get_users() -> Any:
        async with accounts.sessions() as session:
            return await repo.list_users(session)

    return router


# --- sign-in --------------------------------------------------------------------------------


class Credentials(Model):
    username: str = Field(min_length=1, max_length=64)
    password: SecretStr = Field(min_length=1, max_length=MAX_LENGTH)


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the scheme's name, not a secret
    expires_at: datetime
    username: str
    role: Role
    source: str | None


class Me(BaseModel):
    username: str
    role: Role
    source: str | None
    may: list[Action] = Field(description="What this account may do on items.")


_bearer = HTTPBearer(auto_error=False, description="A token from POST /v1/auth/token")


def _unauthorized(reason: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, reason, headers={"WWW-Authenticate": "Bearer"}
    )


def editor_dependency(accounts: Accounts) -> Any:
    async def current_editor(
        credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
    ) -> Editor:
        if credentials is None:
            raise _unauthorized("Authorization: a bearer token is required")
        token = credentials.credentials
        editor = await accounts.editor_for(token) if len(token) <= 200 else None
        if editor is None:
            raise _unauthorized("Authorization: token wrong or expired; sign in again")
        return editor

    return current_editor


async def _read_credentials(request: Request) -> Credentials:
    """JSON, or a form as in the OAuth2 password flow (parsed here: no multipart parser)."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > MAX_SIGN_IN_BYTES:
        raise HTTPException(413, f"body: larger than {MAX_SIGN_IN_BYTES} bytes")
    body = await request.body()
    if len(body) > MAX_SIGN_IN_BYTES:
        raise HTTPException(413, f"body: larger than {MAX_SIGN_IN_BYTES} bytes")
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    raw: Any
    if content_type == "application/x-www-form-urlencoded":
        try:
            form = parse_qs(body.decode(), max_num_fields=10, strict_parsing=False)
        except (UnicodeDecodeError, ValueError) as exc:
            raise HTTPException(422, "body: not a valid form") from exc
        raw = {k: v[0] for k, v in form.items() if k in ("username", "password") and v}
    elif content_type in ("application/json", ""):
        try:
            raw = json.loads(body or b"null")
        except ValueError as exc:
            raise HTTPException(422, "body: not valid JSON") from exc
        if isinstance(raw, dict):
            raw = {k: v for k, v in raw.items() if k in ("username", "password")}
    else:
        raise HTTPException(
            415, "Content-Type: send application/json or application/x-www-form-urlencoded"
        )
    try:
        return Credentials.model_validate(raw)
    except ValidationError as exc:
        raise HTTPException(422, describe_validation_error(exc)) from exc


_CREDENTIALS_SCHEMA = {
    "type": "object",
    "required": ["username", "password"],
    "properties": {"username": {"type": "string"}, "password": {"type": "string"}},
}


_SIGNED_OUT: dict[str, Any] = {"description": "Bearer token missing, wrong or expired"}


def auth_router(accounts: Accounts) -> APIRouter:
    router = APIRouter(prefix="/v1/auth", tags=["sign-in"])
    current_editor = editor_dependency(accounts)

    @router.post(
        "/token",
        response_model=TokenOut,
        summary="Sign in: exchange username and password for a bearer token",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": _CREDENTIALS_SCHEMA},
                    "application/x-www-form-urlencoded": {"schema": _CREDENTIALS_SCHEMA},
                },
            }
        },
        responses={
            401: {"description": "Username or password wrong"},
            413: {"description": "Body larger than 4 KiB"},
            415: {"description": "Neither JSON nor a form"},
            422: {"description": "Username or password missing, or not JSON / a form"},
            429: {"description": "Too many failed sign-ins: the account is locked for a while"},
        },
    )
    async def token(request: Request) -> Any:
        credentials = await _read_credentials(request)
        try:
            issued = await accounts.sign_in(
                credentials.username, credentials.password.get_secret_value()
            )
        except SignInRefused as exc:
            if exc.locked_until is not None:
                retry = max(
                    1,
                    int((exc.locked_until - datetime.now(exc.locked_until.tzinfo)).total_seconds()),
                )
                raise HTTPException(429, exc.reason, headers={"Retry-After": str(retry)}) from exc
            raise _unauthorized(exc.reason) from exc
        return TokenOut(
            access_token=issued.token,
            expires_at=issued.expires_at,
            username=issued.editor.username,
            role=issued.editor.role,
            source=issued.editor.source,
        )

    @router.post(
        "/logout",
        status_code=status.HTTP_204_NO_CONTENT,
        summary="Sign out: the token stops working",
        responses={401: _SIGNED_OUT},
    )
    async def logout(
        editor: Editor = Depends(current_editor),
        credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
    ) -> Response:
        assert credentials is not None
        await accounts.sign_out(credentials.credentials)
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    @router.get(
        "/me",
        response_model=Me,
        summary="The signed-in account and what it may do",
        responses={401: _SIGNED_OUT},
    )
    async def me(editor: Editor = Depends(current_editor)) -> Me:
        return Me(
            username=editor.username,
            role=editor.role,
            source=editor.source,
            may=sorted(PERMISSIONS[editor.role]),
        )

    return router


# --- the queue ------------------------------------------------------------------------------


class ItemSummary(BaseModel):
    article_id: str
    source: str
    external_id: str
    revision: int
    state: ItemState
    title: str | None
    section: str | None
    quality_score: float | None
    flags: list[str] = Field(description="Codes of the quality issues that need a person.")
    published_revision: int | None = Field(description="The revision the public sees, if any.")
    version: int = Field(
        description="Bumped by every change to the item (a lock for screens that show it)."
    )
    duplicate_of: str | None = Field(description="A near-duplicate found when it arrived.")
    received_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    updated_at: datetime


class ItemDetail(ItemSummary):
    article: NormalizedArticle | None
    quality: QualityReport | None


class ItemPage(BaseModel):
    items: list[ItemSummary]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")


class ApproveIn(Model):
    revision: int = Field(ge=1, description="The revision you reviewed (optimistic lock).")


class RejectIn(Model):
    revision: int = Field(ge=1, description="The revision you reviewed (optimistic lock).")
    reason: str = Field(min_length=1, max_length=2000)


class EditIn(Model):
    revision: int = Field(ge=1, description="The revision you edited (optimistic lock).")
    title: str | None = Field(default=None, min_length=1, max_length=500)
    summary: str | None = Field(default=None, max_length=5000)
    section: SectionCode | None = None
    lead_image: str | None = Field(
        default=None,
        max_length=2000,
        description="Original URL of one of the article's images; empty for no lead image.",
    )


class RetractIn(Model):
    reason: str = Field(min_length=1, max_length=2000)
    revision: int | None = Field(
        default=None, ge=1, description="Optional optimistic lock on the revision you saw."
    )


class HistoryEntry(BaseModel):
    action: str
    revision: int
    actor: str
    actor_role: str | None
    reason: str | None
    changes: dict[str, Any] | None
    event_id: str | None
    decided_at: datetime


def _summary(row: dict[str, Any]) -> dict[str, Any]:
    flags = flags_of(
        row.get("quality"), section=row.get("section"), duplicate_of=row.get("duplicate_of")
    )
    return {**row, "flags": flags}


def _conflict(exc: Conflict) -> HTTPException:
    return HTTPException(
        status.HTTP_409_CONFLICT,
        {"reason": exc.reason, "current_revision": exc.current_revision, "state": exc.state},
    )


_ITEM_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "No or expired token"},
    403: {"description": "The role may not do this, or the item is another agency's"},
    404: {"description": "No such item"},
    409: {"description": "The item moved to a newer revision, or its state forbids the action"},
}


def items_router(accounts: Accounts, desk: ReviewDesk) -> APIRouter:
    router = APIRouter(prefix="/v1/items", tags=["review queue"], responses=_ITEM_ERRORS)
    current_editor = editor_dependency(accounts)

    async def load_visible(editor: Editor, article_id: str) -> dict[str, Any]:
        async with desk.sessions() as session:
            row = await repo.get_item(session, article_id)
        if row is None:
            raise HTTPException(404, f"article_id: no review item {article_id}")
        try:
            authorize(editor, Action.VIEW, row["source"])
        except Forbidden as exc:
            raise HTTPException(403, str(exc)) from exc
        return row

    async def act(editor: Editor, article_id: str, action: Action, **kwargs: Any) -> Any:
        try:
            row = await desk.act(editor, article_id, action, **kwargs)
        except Forbidden as exc:
            raise HTTPException(403, str(exc)) from exc
        except NotFound as exc:
            raise HTTPException(404, str(exc)) from exc
        except Conflict as exc:
            raise _conflict(exc) from exc
        except InvalidEdit as exc:
            raise HTTPException(422, str(exc)) from exc
        return _summary(row)

    @router.get("", response_model=ItemPage, summary="The review queue, filtered and paginated")
    async def list_items(
        editor: Editor = Depends(current_editor),
        state: ItemState | None = None,
        source: Annotated[str | None, Query(max_length=64)] = None,
        section: Annotated[str | None, Query(max_length=64)] = None,
        order: Literal["oldest", "newest"] = "oldest",
        cursor: Annotated[str | None, Query(max_length=500)] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
    ) -> Any:
        try:
            scope = visible_source(editor, source)
        except Forbidden as exc:
            raise HTTPException(403, str(exc)) from exc
        try:
            async with desk.sessions() as session:
                page = await repo.list_items(
                    session,
                    state=state,
                    source=scope,
                    section=section,
                    newest_first=order == "newest",
                    cursor=cursor,
                    limit=limit,
                )
        except repo.BadCursor as exc:
            raise HTTPException(422, str(exc)) from exc
        return {"items": [_summary(r) for r in page.items], "next_cursor": page.next_cursor}

    @router.get("/{article_id}", response_model=ItemDetail, summary="One item with its article")
    async def get_item(
        article_id: Annotated[str, ARTICLE_PATH], editor: Editor = Depends(current_editor)
    ) -> Any:
        return _summary(await load_visible(editor, article_id))

    @router.get(
        "/{article_id}/history",
        response_model=list[HistoryEntry],
        summary="Every decision on the item: who, when, what, why",
    )
    async def get_history(
        article_id: Annotated[str, ARTICLE_PATH], editor: Editor = Depends(current_editor)
    ) -> Any:
        await load_visible(editor, article_id)
        async with desk.sessions() as session:
            rows = await repo.history(session, article_id)
        return [{**r, "event_id": str(r["event_id"]) if r["event_id"] else None} for r in rows]

    @router.post(
        "/{article_id}/approve",
        response_model=ItemSummary,
        summary="Approve the revision you reviewed: it is published (roles: editor and up)",
    )
    async def approve(
        body: ApproveIn,
        article_id: Annotated[str, ARTICLE_PATH],
        editor: Editor = Depends(current_editor),
    ) -> Any:
        return await act(editor, article_id, Action.APPROVE, revision=body.revision)

    @router.post(
        "/{article_id}/reject",
        response_model=ItemSummary,
        summary="Reject the revision you reviewed, with a reason (roles: editor and up)",
    )
    async def reject(
        body: RejectIn,
        article_id: Annotated[str, ARTICLE_PATH],
        editor: Editor = Depends(current_editor),
    ) -> Any:
        return await act(
            editor, article_id, Action.REJECT, revision=body.revision, reason=body.reason
        )

    @router.patch(
        "/{article_id}",
        response_model=ItemSummary,
        summary="Edit title, summary or section; a public item is republished (editor and up)",
    )
    async def edit(
        body: EditIn,
        article_id: Annotated[str, ARTICLE_PATH],
        editor: Editor = Depends(current_editor),
    ) -> Any:
        edits = body.model_dump(exclude_unset=True, exclude={"revision"})
        if not edits:
            raise HTTPException(
                422, "title, summary, section, lead_image: give at least one field to change"
            )
        return await act(editor, article_id, Action.EDIT, revision=body.revision, edits=edits)

    @router.post(
        "/{article_id}/retract",
        response_model=ItemSummary,
        summary="Withdraw a public item, with a reason (roles: chief_editor, admin)",
    )
    async def retract(
        body: RetractIn,
        article_id: Annotated[str, ARTICLE_PATH],
        editor: Editor = Depends(current_editor),
    ) -> Any:
        return await act(
            editor, article_id, Action.RETRACT, revision=body.revision, reason=body.reason
        )

    return router
