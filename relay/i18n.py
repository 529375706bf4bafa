"""Languages people read relay in: gettext catalogues through Babel, chosen per visitor or form.

The catalogues are `relay/locale/<lang>/LC_MESSAGES/relay.po`, read with Babel when first
needed (no compile step: a clean clone runs as it is). English is the source language; each
language is one catalogue, so adding a third is a new `.po` file, not a code change.
`tests/test_i18n.py` fails when a catalogue misses a message that templates or code use.

Pure but for reading the catalogue files once.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from io import BytesIO
from pathlib import Path
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from jinja2 import BaseLoader, Environment, StrictUndefined, nodes
from jinja2.visitor import NodeTransformer

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "relay"
SOURCE_LANGUAGE = "en"
_NUMBER = re.compile(r"\d+(?:\.\d+)?")  # 4096, or a setting in seconds such as 2.5


def N_(message: str) -> str:
    """Mark a message for the catalogues without translating it here."""
    return message


#: Messages built with a number in them: looked up with the number as {0}.
NUMBERED = (
    N_("This field is too long (at most {0} characters)."),
    N_("The form is larger than this form accepts ({0} bytes)."),
    N_("Idempotency-Key must be 1-{0} printable ASCII characters."),
    N_("The form was not received within {0} seconds."),
)


@functools.cache
def available() -> tuple[str, ...]:
    """The languages with a catalogue, e.g. ("en", "fr")."""
    return tuple(
        sorted(p.parent.parent.name for p in LOCALE_DIR.glob(f"*/LC_MESSAGES/{DOMAIN}.po"))
    )


@functools.cache
def translations(language: str) -> Translations:
    """The catalogue of `language`, compiled in memory from its .po file."""
    path = LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    with path.open("rb") as po:
        catalog = read_po(po, locale=language, domain=DOMAIN)
    compiled = BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(fp=compiled, domain=DOMAIN)


def gettext_for(language: str) -> Callable[[str], str]:
    return translations(language).gettext


def translate(language: str, message: str) -> str:
    """`message` in `language`; a message with numbers is looked up with them as {0}, {1}..."""
    gettext = gettext_for(language)
    found = gettext(message)
    if found != message or language == SOURCE_LANGUAGE:
        return found
    numbers = _NUMBER.findall(message)
    if not numbers:
        return message
    counter = iter(range(len(numbers)))
    template = _NUMBER.sub(lambda _m: "{" + str(next(counter)) + "}", message)
    translated = gettext(template)
    return message if translated == template else translated.format(*numbers)


def negotiate(accept_language: str, supported: tuple[str, ...]) -> str | None:
    """The supported language the Accept-Language header prefers most, or None."""
    best: tuple[float, int, str] | None = None
    for position, item in enumerate(accept_language.split(",")[:20]):
        tag, _, params = item.strip().partition(";")
        primary = tag.strip().split("-", 1)[0].lower()
        quality = 1.0
        match = re.search(r"q\s*=\s*([0-9.]+)", params)
        if match:
            try:
                quality = float(match.group(1))
            except ValueError:
                quality = 0.0
        if primary in supported and quality > 0:
            key = (-quality, position, primary)
            if best is None or key < best:
                best = key
    return best[2] if best else None


def pick(
    *, asked: str | None, accept_language: str, form_language: str | None, default: str
) -> str:
    """A visitor's language: `_language`/`?lang=` first, then Accept-Language, the form's own
    language, the app's default."""
    supported = available()
    if asked in supported:
        return asked
    return negotiate(accept_language, supported) or form_language or default


class _TranslatedEnvironment(Environment):
    """An environment of one language whose `_("constant")` is translated when a template is
    compiled, not each time it renders.

    Why: through Jinja's i18n extension each `_()` is two context calls, a catalogue lookup,
    a Markup and a `%`; the email templates hold two dozen, about a third of their render
    time. The folded node is what the extension's new-style gettext computes: the translation,
    marked safe when autoescaping, formatted with its keyword arguments (`%` escapes them in
    HTML). A template that binds `_` itself (`{% set _ = … %}`, a loop or macro variable) is
    left as it is, and so is a translation that cannot be formatted: it fails as it did.
    """

    translate: Callable[[str], str]

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        if any(node.name == "_" and node.ctx != "load" for node in tree.find_all(nodes.Name)):
            return tree
        folded = _Fold(self.translate).visit(tree)
        assert isinstance(folded, nodes.Template)  # noqa: S101 - a visitor keeps the root
        return folded


class _Fold(NodeTransformer):
    def __init__(self, translate: Callable[[str], str]) -> None:
        self.translate = translate

    def visit_Call(self, call: nodes.Call) -> nodes.Node:
        node = self.generic_visit(call)
        if not (
            isinstance(node, nodes.Call)
            and isinstance(node.node, nodes.Name)
            and node.node.name == "_"
            and len(node.args) == 1
            and isinstance(node.args[0], nodes.Const)
            and isinstance(node.args[0].value, str)
            and node.dyn_args is None
            and node.dyn_kwargs is None
        ):
            return node
        translated = self.translate(node.args[0].value)
        folded: nodes.Expr
        if node.kwargs:
            pairs = [nodes.Pair(nodes.Const(kw.key), kw.value) for kw in node.kwargs]
            folded = nodes.Mod(
                nodes.MarkSafeIfAutoescape(nodes.Const(translated)), nodes.Dict(pairs)
            )
        else:
            try:
                text = translated % {}  # new-style gettext always formats
            except (TypeError, ValueError, KeyError):
                return node
            folded = nodes.MarkSafeIfAutoescape(nodes.Const(text))
        return folded.set_lineno(node.lineno)


def environment(
    language: str,
    loader: BaseLoader,
    *,
    autoescape: bool | Callable[[str | None], bool],
    **options: Any,
) -> Environment:
    """A Jinja environment whose `_()`/`{% trans %}` speak `language` (constant `_()` calls
    translated at compile time: see `_TranslatedEnvironment`)."""
    env = _TranslatedEnvironment(
        loader=loader,
        extensions=["jinja2.ext.i18n"],
        undefined=StrictUndefined,
        autoescape=autoescape,  # callers pass select_autoescape (pages, email)
        **options,
    )
    env.translate = gettext_for(language)
    env.install_gettext_translations(translations(language), newstyle=True)  # type: ignore[attr-defined]
    return env
