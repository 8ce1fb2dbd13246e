"""The integration dashboard: integrated, reviewed and published with percentages, review
latency, backlog by age, rejection reasons, per-source health (pushed and pulled) and dead
letters, sections that receive nothing. The live part refreshes itself with htmx."""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations.
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from starlette.responses import Response

from portal_moderation.desk import charts, forms, present
from portal_moderation.desk.auth import DESK_PREFIX
from portal_moderation.desk.deps import Deps, DeskDeps, Signed, on_page
from portal_moderation.desk.errors import DeskError, forbidden
from portal_moderation.desk.templating import NavLink, page_link
from portal_moderation.domain import AGE_BUCKETS, DeskPage, Editor, Forbidden, visible_source
from portal_moderation.peers import PeerRefused, PeerUnavailable, Site

router = APIRouter(prefix=DESK_PREFIX, include_in_schema=False)
NAV: NavLink | None = page_link(DeskPage.DASHBOARD, "Bảng theo dõi tích hợp", "g d")

PERIODS: dict[str, timedelta | None] = {
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "180d": timedelta(days=180),
    "all": None,
}
PERIOD_LABELS = {"7d": "7 ngày", "30d": "30 ngày", "180d": "6 tháng", "all": "Từ đầu"}
STALE_SOURCE_AFTER = timedelta(days=7)
SORT_KEYS: dict[str, Callable[[Any], Any]] = {
    "integrated": lambda r: (-r.counts.integrated, r.name),
    "name": lambda r: (r.name,),
    "backlog": lambda r: (-r.backlog, r.name),
    "errors": lambda r: (-r.errors, r.name),
    "last": lambda r: (r.last_received or datetime.min.replace(tzinfo=UTC), r.name),
    "reviewed": lambda r: (present.ratio(r.counts.reviewed, r.counts.integrated), r.name),
}


async def pull_health(deps: DeskDeps, scope: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """Health of the sources ingest pulls (feeds, sitemaps); the dashboard works without it."""
    try:
        overview = await deps.sources.ingest.pull_health()
    except (PeerUnavailable, PeerRefused) as exc:
        return [], str(exc)
    rows = [
        {
            **s,
            **{
                k: datetime.fromisoformat(s[k]) if s.get(k) else None
                for k in ("last_success_at", "last_new_item_at")
            },
        }
        for s in overview.get("sources", [])
        if s.get("mode") == "pull" and (scope is None or s.get("source") == scope)
    ]
    return rows, None


def parse_view(editor: Editor, params: Any) -> tuple[str, str | None, str]:
    """The period, the source (an agency sees only its own) and the order of the sources."""
    period_code = params.get("period") or "all"
    if period_code not in PERIODS:
        raise DeskError(422, "Khoảng thời gian không hợp lệ.", "period: unknown")
    try:
        scope = visible_source(editor, forms.code(params.get("source"), "nguồn"))
    except Forbidden as exc:
        raise forbidden(exc) from exc
    sort = params.get("sort") or "integrated"
    if sort not in SORT_KEYS:
        raise DeskError(422, "Cách sắp xếp không hợp lệ.", "sort: unknown")
    return period_code, scope, sort


def chart_context(figures: dict[str, Any]) -> dict[str, Any]:
    """The dashboard's charts (SVG), daily or, over a longer period, weekly."""
    period, backlog = figures["period"], figures["backlog"]
    day_list, series = charts.daily_series(
        figures["days"],
        first=present.local_day(period.since) if period.since else None,
        last=present.local_day(figures["now"]),
        names=("Tích hợp", "Hậu kiểm", "Xuất bản"),
    )
    unit = "ngày"
    if len(day_list) > 62:
        day_list, series = charts.weekly(day_list, series)
        unit = "tuần"
    waiting = [
        charts.Series("Chờ duyệt", "s4", [backlog["pending"][b.code] for b in AGE_BUCKETS]),
        charts.Series("Chờ hậu kiểm", "s2", [backlog["post_review"][b.code] for b in AGE_BUCKETS]),
    ]
    return {
        "unit": unit,
        "chart_days": charts.lines(
            day_list, series, title=f"Tin, bài tích hợp, hậu kiểm, xuất bản theo {unit}"
        ),
        "chart_backlog": charts.stacked_bars(
            [present.AGE_LABELS[b.code] for b in AGE_BUCKETS],
            waiting,
            title="Tin, bài đang chờ xử lý theo thời gian chờ",
        ),
        "chart_reasons": charts.hbars(
            figures["reasons"], title="Lý do từ chối", css="s5", label_width=200
        ),
        "chart_errors": charts.hbars(
            [(present.label(present.ERROR_TYPE_LABELS, t), n) for t, n in figures["errors"]],
            title="Lỗi tích hợp theo loại",
            css="s5",
        ),
    }


def source_rows(figures: dict[str, Any], site: Site, sort: str) -> dict[str, Any]:
    """The per-source table, sorted, with the standard sections each source never sent."""
    rows = sorted(figures["by_source"].values(), key=SORT_KEYS[sort])
    missing = {
        r.code: [s for s in site.standard_sections if s not in r.sections_seen] for r in rows
    }
    return {"rows": rows, "missing": missing}


async def dashboard_context(deps: DeskDeps, editor: Editor, params: Any) -> dict[str, Any]:
    period_code, scope, sort = parse_view(editor, params)
    figures = await deps.figures.get(period_code, PERIODS[period_code], scope)
    site = await deps.sites.site()
    pull_rows, pull_error = await pull_health(deps, scope)

    def query(**override: Any) -> str:
        values = {"period": period_code, "source": scope, "sort": sort, **override}
        return urlencode({k: v for k, v in values.items() if v})

    return {
        "period_code": period_code,
        "periods": PERIOD_LABELS,
        "scope": scope,
        "sort": sort,
        "total": figures["total"],
        "latency": figures["latency"],
        "site": site,
        "backlog": figures["backlog"],
        "recent_errors": figures["recent_errors"],
        "pull_rows": pull_rows,
        "pull_error": pull_error,
        "error_types": figures["errors"],
        "reasons": figures["reasons"],
        "stale_after": STALE_SOURCE_AFTER,
        "updated_at": figures["now"],
        "meter": charts.meter,
        "query": query,
        **source_rows(figures, site, sort),
        **chart_context(figures),
    }


@router.get("/dashboard")
async def dashboard(request: Request, who: Signed, deps: Deps) -> Response:
    editor = on_page(who, DeskPage.DASHBOARD)
    context = await dashboard_context(deps, editor, request.query_params)
    return deps.templates.render(
        request,
        who,
        "dashboard.html",
        active="dashboard",
        sources=await deps.source_names(),
        **context,
    )


@router.get("/dashboard/live")
async def dashboard_live(request: Request, who: Signed, deps: Deps) -> Response:
    editor = on_page(who, DeskPage.DASHBOARD)
    context = await dashboard_context(deps, editor, request.query_params)
    return deps.templates.render(request, who, "_dashboard_live.html", **context)
