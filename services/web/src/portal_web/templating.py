"""Jinja2 templates of the website and the static assets they link (versioned by content)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from portal_web import present
from portal_web.assets import Assets
from portal_web.forms import DIACRITICS_MESSAGE, SPAM_TRAP
from portal_web.views import Site

TEMPLATES_DIR = Path(__file__).parent / "templates"


class Templates:
    def __init__(self, assets: Assets, *, site_name: str, base_url: str) -> None:
        self.assets = assets
        self.env = Environment(
            loader=FileSystemLoader(TEMPLATES_DIR),
            autoescape=select_autoescape(default=True, default_for_string=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            # The templates ship with the code: no file-system check on every render.
            auto_reload=False,
        )
        self.env.filters.update(
            time_vn=present.time_vn,
            date_vn=present.date_vn,
            iso=present.iso,
            number=present.number_vn,
        )
        self.env.globals.update(
            asset=assets.url,
            site_name=site_name,
            base_url=base_url,
            spam_trap=SPAM_TRAP,
            diacritics_message=DIACRITICS_MESSAGE,
            csrf_field="csrf_token",
        )

    def render(
        self, name: str, *, site: Site | None, active: str | None = None, **context: Any
    ) -> str:
        nav = site.nav(active) if site is not None else []
        return self.env.get_template(name).render(
            {
                "site": site,
                "nav": nav,
                "active": active,
                "today": present.long_date_vn(present.now()),
                **context,
            }
        )

    def fragment(self, name: str, **context: Any) -> str:
        """A partial (e.g. a live dialogue entry) on its own."""
        return self.env.get_template(name).render(context)
