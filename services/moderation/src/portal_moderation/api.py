"""Moderation's JSON API: admin (sources, accounts), sign-in, and the editors' review queue.

Routes take the use cases from the app (``app.py`` keeps them in ``app.state``) and the editor
from the bearer token (``CurrentEditor``); the submissions API (``submissions.api``) uses both.
"""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations.
import json
import math
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import ValidationError

from portal_contracts.codec import describe_validation_error
from portal_moderation import accounts_repository as accounts_repo
from portal_moderation import repository as repo
from portal_moderation.domain import (
    PERMISSIONS,
    Action,
    Conflict,
    Editor,
    Forbidden,
    InvalidEdit,
    ItemState,
    Role,
    authorize,
    category_key,
    flags_of,
    visible_source,
)
from portal_moderation.schemas import (
    ApproveIn,
    Credentials,
    EditIn,
    HistoryEntry,
    ItemDetail,
    ItemPage,
    ItemSummary,
    Me,
    RejectIn,
    RetractIn,
    SourceIn,
    SourceOut,
    TokenOut,
    UserIn,
    UserOut,
)
from portal_moderation.usecases import Accounts, NotFound, ReviewDesk, SignInRefused
from portal_runtime.auth import make_admin_router

USERNAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{1,63}$"
SourcePath = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9-]*$", min_length=2, max_length=64)]
UsernamePath = Annotated[str, Path(pattern=USERNAME_PATTERN)]
ArticlePath = Annotated[str, Path(min_length=1, max_length=64)]
MAX_SIGN_IN_BYTES = 4096

# --- what the routes depend on --------------------------------------------------------------


def review_desk(request: Request) -> ReviewDesk:
    desk: ReviewDesk = request.app.state.review_desk
    return desk


def accounts(request: Request) -> Accounts:
    found: Accounts = request.app.state.accounts
    return found


Desk = Annotated[ReviewDesk, Depends(review_desk)]
AccountsDep = Annotated[Accounts, Depends(accounts)]
_bearer = HTTPBearer(auto_error=False, description="A token from POST /v1/auth/token")
Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def _unauthorized(reason: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, reason, headers={"WWW-Authenticate": "Bearer"}
    )


async def current_editor(accounts: AccountsDep, credentials: Bearer) -> Editor:
    if credentials is None:
        raise _unauthorized("Authorization: a bearer token is required")
    token = credentials.credentials
    editor = await accounts.editor_for(token) if len(token) <= 200 else None
    if editor is None:
        raise _unauthorized("Authorization: token wrong or expired; sign in again")
    return editor


CurrentEditor = Annotated[Editor, Depends(current_editor)]

# --- admin ----------------------------------------------------------------------------------

admin_router = make_admin_router()


@admin_router.put(
    "/sources/{code}",
    response_model=SourceOut,
    summary="Create or update a partner source and its trust policy",
)
async def put_source(body: SourceIn, code: SourcePath, accounts: AccountsDep) -> Any:
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


@admin_router.get("/sources", response_model=list[SourceOut], summary="Every configured source")
async def get_sources(accounts: AccountsDep) -> Any:
    async with accounts.sessions() as session:
        return await repo.list_sources(session)


@admin_router.put(
    "/users/{username}",
    response_model=UserOut,
    summary="Create or update an editor's account",
    responses={
        201: {"description": "Account created", "model": UserOut},
        422: {"description": "A field is invalid (named in the message)"},
    },
)
async def put_user(
    body: UserIn, response: Response, username: UsernamePath, accounts: AccountsDep
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


@admin_router.get("/users", response_model=list[UserOut], summary="Every editor's account")
async def get_users(accounts: AccountsDep) -> Any:
    async with accounts.sessions() as session:
        return await accounts_repo.list_users(session)


# --- sign-in --------------------------------------------------------------------------------

auth_router = APIRouter(prefix="/v1/auth", tags=["sign-in"])
_SIGNED_OUT: dict[str, Any] = {"description": "Bearer token missing, wrong or expired"}


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


@auth_router.post(
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
        429: {
            "description": "Too many failed sign-ins from this address (under this name or "
            "any): refused without checking the password; Retry-After says when to try again"
        },
        503: {"description": "Too many sign-ins at once; Retry-After says when to try again"},
    },
)
async def token(request: Request, accounts: AccountsDep) -> Any:
    credentials = await _read_credentials(request)
    try:
        issued = await accounts.sign_in(
            credentials.username,
            credentials.password.get_secret_value(),
            # The peer, or the address a trusted proxy names (TRUSTED_PROXIES).
            request.client.host if request.client else "unknown",
        )
    except SignInRefused as exc:
        if exc.retry_at is not None:
            left = exc.retry_at - datetime.now(exc.retry_at.tzinfo)
            retry = max(1, math.ceil(left.total_seconds()))
            raise HTTPException(429, exc.reason, headers={"Retry-After": str(retry)}) from exc
        raise _unauthorized(exc.reason) from exc
    return TokenOut(
        access_token=issued.token,
        expires_at=issued.expires_at,
        username=issued.editor.username,
        role=issued.editor.role,
        source=issued.editor.source,
    )


@auth_router.post(
    "/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Sign out: the token stops working",
    responses={401: _SIGNED_OUT},
)
async def logout(editor: CurrentEditor, credentials: Bearer, accounts: AccountsDep) -> Response:
    assert credentials is not None
    await accounts.sign_out(credentials.credentials)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@auth_router.get(
    "/me",
    response_model=Me,
    summary="The signed-in account and what it may do",
    responses={401: _SIGNED_OUT},
)
async def me(editor: CurrentEditor) -> Me:
    return Me(
        username=editor.username,
        role=editor.role,
        source=editor.source,
        may=sorted(PERMISSIONS[editor.role]),
    )


# --- the queue ------------------------------------------------------------------------------

items_router = APIRouter(
    prefix="/v1/items",
    tags=["review queue"],
    responses={
        401: {"description": "No or expired token"},
        403: {"description": "The role may not do this, or the item is another agency's"},
        404: {"description": "No such item"},
        409: {"description": "The item moved to a newer revision, or its state forbids the action"},
    },
)


def _summary(row: dict[str, Any]) -> dict[str, Any]:
    flags = flags_of(
        row.get("quality"), section=row.get("section"), duplicate_of=row.get("duplicate_of")
    )
    return {**row, "flags": flags}


async def _load_visible(desk: ReviewDesk, editor: Editor, article_id: str) -> dict[str, Any]:
    async with desk.sessions() as session:
        row = await repo.get_item(session, article_id)
    if row is None:
        raise HTTPException(404, f"article_id: no review item {article_id}")
    try:
        authorize(editor, Action.VIEW, row["source"])
    except Forbidden as exc:
        raise HTTPException(403, str(exc)) from exc
    return row


async def _act(
    desk: ReviewDesk, editor: Editor, article_id: str, action: Action, **kwargs: Any
) -> Any:
    try:
        row = await desk.act(editor, article_id, action, **kwargs)
    except Forbidden as exc:
        raise HTTPException(403, str(exc)) from exc
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    except Conflict as exc:
        detail = {
            "reason": exc.reason,
            "current_revision": exc.current_revision,
            "state": exc.state,
        }
        raise HTTPException(status.HTTP_409_CONFLICT, detail) from exc
    except InvalidEdit as exc:
        raise HTTPException(422, str(exc)) from exc
    return _summary(row)


@items_router.get("", response_model=ItemPage, summary="The review queue, filtered and paginated")
async def list_items(
    editor: CurrentEditor,
    desk: Desk,
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


@items_router.get("/{article_id}", response_model=ItemDetail, summary="One item with its article")
async def get_item(article_id: ArticlePath, editor: CurrentEditor, desk: Desk) -> Any:
    return _summary(await _load_visible(desk, editor, article_id))


@items_router.get(
    "/{article_id}/history",
    response_model=list[HistoryEntry],
    summary="Every decision on the item: who, when, what, why",
)
async def get_history(article_id: ArticlePath, editor: CurrentEditor, desk: Desk) -> Any:
    await _load_visible(desk, editor, article_id)
    async with desk.sessions() as session:
        rows = await repo.history(session, article_id)
    return [{**r, "event_id": str(r["event_id"]) if r["event_id"] else None} for r in rows]


@items_router.post(
    "/{article_id}/approve",
    response_model=ItemSummary,
    summary="Approve the revision you reviewed: it is published (roles: editor and up)",
)
async def approve(
    body: ApproveIn, article_id: ArticlePath, editor: CurrentEditor, desk: Desk
) -> Any:
    return await _act(desk, editor, article_id, Action.APPROVE, revision=body.revision)


@items_router.post(
    "/{article_id}/reject",
    response_model=ItemSummary,
    summary="Reject the revision you reviewed, with a reason (roles: editor and up)",
)
async def reject(body: RejectIn, article_id: ArticlePath, editor: CurrentEditor, desk: Desk) -> Any:
    return await _act(
        desk, editor, article_id, Action.REJECT, revision=body.revision, reason=body.reason
    )


@items_router.patch(
    "/{article_id}",
    response_model=ItemSummary,
    summary="Edit title, summary or section; a public item is republished (editor and up)",
)
async def edit(body: EditIn, article_id: ArticlePath, editor: CurrentEditor, desk: Desk) -> Any:
    edits = body.model_dump(exclude_unset=True, exclude={"revision"})
    if not edits:
        raise HTTPException(
            422, "title, summary, section, lead_image: give at least one field to change"
        )
    return await _act(desk, editor, article_id, Action.EDIT, revision=body.revision, edits=edits)


@items_router.post(
    "/{article_id}/retract",
    response_model=ItemSummary,
    summary="Withdraw a public item, with a reason (roles: chief_editor, admin)",
)
async def retract(
    body: RetractIn, article_id: ArticlePath, editor: CurrentEditor, desk: Desk
) -> Any:
    return await _act(
        desk, editor, article_id, Action.RETRACT, revision=body.revision, reason=body.reason
    )
