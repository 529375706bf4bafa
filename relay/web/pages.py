"""Built-in HTML pages (thank-you, errors): server-rendered, autoescaped, no JavaScript."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

#: Field names as a person reads them on the error page.
LABELS = {
    "name": "Name",
    "email": "Email",
    "phone": "Phone",
    "company": "Company",
    "message": "Message",
}


def default_templates_dir() -> Path:
    """templates/ at the top of the checkout, beside the relay package."""
    return Path(__file__).resolve().parent.parent.parent / "templates"


class Pages:
    """Renders templates/pages/*.html."""

    def __init__(self, templates_dir: Path) -> None:
        self._env = Environment(
            loader=FileSystemLoader(templates_dir / "pages"),
            autoescape=select_autoescape(default_for_string=True, default=True),
            undefined=StrictUndefined,
        )

        self.render_static = functools.lru_cache(maxsize=STATIC_PAGES)(self._render_static)

    def render(self, name: str, **context: Any) -> str:
        return self._env.get_template(name).render(labels=LABELS, **context)

    def _render_static(self, name: str, *context: tuple[str, str | None]) -> str:
        return self.render(name, errors=[], **dict(context))


#: Pages whose context is a few strings (a 429, a 404) are rendered once and kept: a flood is
#: answered from this cache. Bounded, since `back` can come from a visitor's Referer.
STATIC_PAGES = 256
