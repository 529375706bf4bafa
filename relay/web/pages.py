"""Built-in HTML pages (thank-you, errors, withdrawal, the example): server-rendered,
autoescaped, in the visitor's language (relay.i18n)."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader, select_autoescape

from relay import i18n
from relay.config import FormConfig
from relay.errors import FieldError
from relay.i18n import N_

#: Field names as a person reads them on the error page (translated by the catalogues).
LABELS = {
    "name": N_("Name"),
    "email": N_("Email"),
    "phone": N_("Phone"),
    "company": N_("Company"),
    "message": N_("Message"),
}


def default_templates_dir() -> Path:
    """templates/ at the top of the checkout, beside the relay package."""
    return Path(__file__).resolve().parent.parent.parent / "templates"


def problems(
    errors: Iterable[FieldError], form: FormConfig | None, language: str
) -> list[dict[str, str]]:
    """Each field error as the error page lists it: the field's label and the message."""
    declared = {f.name.casefold(): f.label_in(language) for f in form.fields} if form else {}
    out = []
    for e in errors:
        key = e.field.casefold()
        if key == "_replyto":
            key = "email"
        if key in declared:
            label = declared[key]
        else:
            label = i18n.translate(language, LABELS.get(key, e.field))
        out.append(
            {"field": e.field, "label": label, "message": i18n.translate(language, e.message)}
        )
    return out


class Pages:
    """Renders templates/pages/*.html in each language that has a catalogue."""

    def __init__(self, templates_dir: Path) -> None:
        loader = FileSystemLoader(templates_dir / "pages")
        autoescape = select_autoescape(default_for_string=True, default=True)
        self._envs = {
            language: i18n.environment(language, loader, autoescape=autoescape)
            for language in i18n.available()
        }

        self.render_static = functools.lru_cache(maxsize=STATIC_PAGES)(self._render_static)

    def render(self, name: str, *, language: str = i18n.SOURCE_LANGUAGE, **context: Any) -> str:
        env = self._envs.get(language) or self._envs[i18n.SOURCE_LANGUAGE]
        return env.get_template(name).render(labels=LABELS, lang=language, **context)

    def _render_static(self, name: str, language: str, *context: tuple[str, object]) -> str:
        return self.render(name, language=language, errors=[], **dict(context))


#: Pages whose context is a few strings (a 429, a 404) are rendered once and kept: a flood is
#: answered from this cache. Bounded, since `back` can come from a visitor's Referer.
STATIC_PAGES = 256
