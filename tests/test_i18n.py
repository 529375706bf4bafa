"""French and English for everyone who reads: catalogues complete, pages, email, dates."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from jinja2 import (
    DictLoader,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    meta,
    select_autoescape,
)
from starlette.testclient import TestClient

from relay import i18n
from relay.app import create_app
from relay.config import load_forms, load_settings
from relay.deliver.delivery import renderer_for
from relay.errors import ConfigError
from relay.mail.render import label
from tests.formspree_forms import post_demo, write_forms
from tests.helpers import ORIGIN, VALID
from tests.test_fields import demo_view

ROOT = Path(__file__).resolve().parent.parent
KEYWORDS = {"_": None, "gettext": None, "N_": None, "SubmissionRejected": (3,), "FieldError": (3,)}
METHODS = [
    ("relay/**.py", "python"),
    ("templates/pages/*.html", "jinja2.ext:babel_extract"),
    ("templates/email/*.j2", "jinja2.ext:babel_extract"),
]
_PLACEHOLDER = re.compile(r"\{[a-z0-9_]*\}|%\([a-z_]+\)s")


def used_messages() -> set[str]:
    """Every message the code and the templates ask the catalogues for."""
    found = extract_from_dir(ROOT, METHODS, keywords=KEYWORDS)
    return {msg if isinstance(msg, str) else msg[0] for _f, _l, msg, _c, _x in found} - {""}


def catalogue(language: str) -> dict[str, str]:
    path = i18n.LOCALE_DIR / language / "LC_MESSAGES" / "relay.po"
    with path.open("rb") as f:
        return {m.id: str(m.string) for m in read_po(f) if m.id and isinstance(m.id, str)}


def test_french_and_english_have_catalogues():
    """Both languages relay promises have a catalogue."""
    assert {"fr", "en"} <= set(i18n.available())


@pytest.mark.parametrize("language", i18n.available())
def test_no_catalogue_misses_a_message(language):
    """Every message used in code or templates is translated in each catalogue."""
    messages = catalogue(language)
    missing = sorted(m for m in used_messages() if not messages.get(m))
    assert missing == [], f"{language}: run `make messages` and translate: {missing}"


@pytest.mark.parametrize("language", i18n.available())
def test_translations_keep_their_placeholders(language):
    """A translation keeps exactly the placeholders of its message ({limit}, %(title)s)."""
    for msgid, msgstr in catalogue(language).items():
        assert sorted(_PLACEHOLDER.findall(msgid)) == sorted(_PLACEHOLDER.findall(msgstr)), msgid


def test_the_extraction_finds_the_messages_it_should():
    """The check above is not vacuous: it sees template, N_() and SubmissionRejected texts."""
    used = used_messages()
    assert {"Go back to the form", "Name", "Please fix the fields below."} <= used


# --- visitor pages -------------------------------------------------------------------------


def test_error_page_follows_accept_language(client):
    """A browser asking for French gets the error page in French, with French labels."""
    headers = {"Accept": "text/html", "Origin": ORIGIN, "Accept-Language": "fr-FR,fr;q=0.9"}
    body = {**VALID, "email": "nope"}
    response = client.post("/f/contact", data=body, headers=headers)
    assert response.status_code == 422
    assert '<html lang="fr">' in response.text
    assert "Certains champs sont à corriger" in response.text
    assert "<strong>E-mail</strong>: Cette adresse e-mail n’est pas valide." in response.text


def test_language_field_beats_accept_language(client):
    """`_language=en` on a form read in French gives English answers."""
    headers = {"Accept": "application/json", "Origin": ORIGIN, "Accept-Language": "fr"}
    body = {**VALID, "email": "nope", "_language": "en"}
    response = client.post("/f/contact", json=body, headers=headers)
    assert response.json()["errors"][0]["message"] == "This is not a valid email address."


@pytest.fixture(name="demo")
def fixture_demo(settings_factory, tmp_path, clock) -> Iterator[TestClient]:
    settings = settings_factory(forms_file=write_forms(tmp_path))
    with TestClient(create_app(settings, clock=clock), base_url="http://relay.test") as client:
        yield client


def test_form_language_is_the_default_for_its_visitors(demo):
    """Without _language or Accept-Language, a French form answers in French (numbers too)."""
    response = post_demo(demo, country="x" * 41, expect=422)
    assert response.json()["error"] == "Corrigez les champs ci-dessous."
    assert response.json()["errors"] == [
        {
            "field": "country",
            "code": "TOO_LONG",
            "message": "Ce champ est trop long (40 caractères au plus).",
        }
    ]


def test_declared_labels_on_the_error_page(demo):
    """The error page names a declared field by its label in the visitor's language."""
    headers = {"Accept": "text/html", "Origin": ORIGIN, "Accept-Language": "en"}
    body = {"email": "a@example.fr", "message": "m", "product": "x"}
    response = demo.post("/f/demo", data=body, headers=headers)
    assert "<strong>Product</strong>: Choose one of the options offered." in response.text


def test_thank_you_page_in_the_language_asked(demo):
    """`_language` carries to relay's thank-you page (`?lang=`), which speaks it."""
    response = post_demo(demo, _language="en")
    assert response.json()["next"] == "http://relay.test/f/demo/thanks?lang=en"
    assert "Thank you, your message was received." in demo.get("/f/demo/thanks?lang=en").text
    assert "Merci, votre message a bien été reçu." in demo.get("/f/demo/thanks").text


def test_unknown_form_page_in_french(client):
    """The thank-you page of an unknown form is a 404 in the language asked."""
    response = client.get("/f/nope/thanks", headers={"Accept-Language": "fr"})
    assert response.status_code == 404
    assert "Formulaire introuvable" in response.text


def test_withdraw_page_in_french(client):
    """The withdrawal page follows Accept-Language too."""
    response = client.get("/consent/withdraw?token=bad", headers={"Accept-Language": "fr"})
    assert response.status_code == 400
    assert "Ce lien ne peut pas être utilisé" in response.text


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("fr-CA, en;q=0.5", "fr"),
        ("de, en;q=0.2, fr;q=0.1", "en"),
        ("fr;q=0, en;q=0.1", "en"),
        ("de", None),
        ("", None),
        ("fr;q=abc", "fr"),
    ],
)
def test_accept_language_negotiation(header, expected):
    """The supported language with the highest quality wins; q=0 means never."""
    assert i18n.negotiate(header, ("en", "fr")) == expected


# --- the email and dates ---------------------------------------------------------------------


def test_email_follows_the_forms_language_with_its_title(settings, tmp_path):
    """A French form's email: French heading with the form's title, labels, sentences."""
    form = load_forms(write_forms(tmp_path))["demo"]
    renderer = renderer_for(settings.model_copy(update={"mailgun_domain": "mg.example.com"}))
    email = renderer.render(demo_view(), form)
    assert email.text.startswith("Nouveau message du formulaire « Demande de démonstration »")
    assert "contrat ou mesures précontractuelles" in email.text
    assert "non demandé sur ce formulaire" in email.text
    assert "Reçu le:" in email.text
    assert email.html is not None
    assert '<html lang="fr"' in email.html


def test_email_dates_in_the_configured_zone(settings, tmp_path):
    """RELAY_TIMEZONE sets the zone of the receipt time in the email."""
    form = load_forms(write_forms(tmp_path))["contact"]
    update = {"mailgun_domain": "mg.example.com", "timezone": "America/New_York"}
    email = renderer_for(settings.model_copy(update=update)).render(demo_view(), form)
    assert "14/07/2026 04:05:00 EDT (America/New_York)" in email.text


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("default_language", "de", "is not a language relay speaks"),
        ("timezone", "Mars/Olympus", "is not an IANA time zone"),
    ],
)
def test_bad_language_and_zone_settings_are_refused(name, value, problem):
    """RELAY_DEFAULT_LANGUAGE and RELAY_TIMEZONE are checked at start-up."""
    with pytest.raises(ConfigError) as info:
        load_settings(**{name: value})
    assert problem in str(info.value)


def test_cli_tables_use_the_zone_and_json_keeps_utc(client, cli):
    """`relay deliveries` shows times in RELAY_TIMEZONE; `--json` keeps UTC ISO times."""
    import json

    from tests.conftest import invoke

    headers = {"Accept": "application/json", "Origin": ORIGIN}
    client.post("/f/contact", json=VALID, headers=headers)
    table = invoke(cli, "deliveries", "--since", "2000-01-01").output
    assert "2026-11-25 10:30:00 CET" in table
    data = json.loads(invoke(cli, "deliveries", "--since", "2000-01-01", "--json").output)
    assert data[0]["received_at"] == datetime(2026, 11, 25, 9, 30, tzinfo=UTC).isoformat()


def test_a_malformed_body_is_explained_in_french(client):
    """The malformed-body refusals are whole translated sentences, not English pieces."""
    response = client.post(
        "/f/contact",
        content=b"{not json",
        headers={
            "Content-Type": "application/json",
            "Accept": "application/json",
            "Origin": ORIGIN,
            "Accept-Language": "fr-FR,fr;q=0.9",
        },
    )
    assert response.status_code == 400
    assert response.json()["error"] == "Le corps de la requête n’est pas du JSON valide."


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (10, "Le formulaire n’est pas arrivé en 10 secondes."),
        (2.5, "Le formulaire n’est pas arrivé en 2.5 secondes."),
    ],
)
def test_a_body_timeout_is_explained_in_french(seconds, expected):
    """The 408 message carries the body deadline, whole or not, and is translated with it."""
    from relay.web.submit import body_timed_out

    assert i18n.translate("fr", body_timed_out(seconds).message) == expected


def test_an_unusable_withdrawal_link_is_explained_in_french(settings_factory):
    """The invalid-link page is French throughout and names the privacy contact."""
    settings = settings_factory(privacy_contact="dpo@example.com")
    with TestClient(create_app(settings), base_url="http://relay.test") as client:
        page = client.get("/consent/withdraw?token=nope", headers={"Accept-Language": "fr"}).text
    assert "Ce lien de retrait n’est pas valide." in page
    assert "Écrivez à dpo@example.com et nous retirerons votre consentement" in page


def test_the_withdrawal_page_names_the_controller(settings_factory):
    """The withdrawal pages say who the controller is and whom to ask, from the settings."""
    settings = settings_factory(
        controller_name="Biosera",
        controller_address="15 Rue du Mans, 49300 Cholet",
        privacy_contact="dpo@example.com",
    )
    with TestClient(create_app(settings), base_url="http://relay.test") as client:
        page = client.get("/consent/withdraw?token=x", headers={"Accept-Language": "fr"}).text
    assert (
        "Responsable du traitement : Biosera, 15 Rue du Mans, 49300 Cholet. "
        "Questions sur vos données : dpo@example.com"
    ) in page


def _unfolded(language: str, loader: Any, autoescape: Any) -> Environment:
    """Jinja's own i18n environment, as relay used it before translations were folded."""
    env = Environment(
        loader=loader,
        extensions=["jinja2.ext.i18n"],
        undefined=StrictUndefined,
        autoescape=autoescape,  # noqa: S701 - select_autoescape, as relay's own
        keep_trailing_newline=True,
    )
    env.install_gettext_translations(i18n.translations(language), newstyle=True)  # type: ignore[attr-defined]
    env.globals["label"] = label  # as relay.mail.render.Renderer provides it
    return env


@pytest.mark.parametrize("language", i18n.available())
def test_translations_folded_at_compile_time_render_exactly_as_before(language):
    """Every page and email template renders the same text with `_()` folded at compile time
    as through Jinja's i18n calls, markup and escaping of the arguments included."""
    for folder in (ROOT / "templates" / "email", ROOT / "templates" / "pages"):
        loader = FileSystemLoader(folder)
        autoescape = select_autoescape(enabled_extensions=("html", "html.j2"), default=False)
        folded = i18n.environment(
            language, loader, autoescape=autoescape, keep_trailing_newline=True
        )
        folded.globals["label"] = label
        plain = _unfolded(language, loader, autoescape)
        paths = sorted([*folder.glob("*.j2"), *folder.glob("*.html")])
        used: set[str] = set()
        for path in paths:  # a page's variables and its base template's
            used |= meta.find_undeclared_variables(plain.parse(path.read_text(encoding="utf-8")))
        context = dict.fromkeys(used - {"_"}, _HOSTILE) | _SHAPED
        for name in (path.name for path in paths):
            assert folded.get_template(name).render(context) == plain.get_template(name).render(
                context
            ), name


class _Hostile(str):
    """Text that needs escaping, whose every attribute is such text too (`form.id`, …)."""

    __slots__ = ()

    def __getattr__(self, name: str) -> _Hostile:
        if name.startswith("__"):  # __html__ and friends: plain text, escaped like any
            raise AttributeError(name)
        return self


_HOSTILE = _Hostile('<b>Tom & "Jerry"</b>')
_SHAPED: dict[str, Any] = {
    "fields": [("<i>Label</i>", "<value>")],
    "message_lines": ["<one>", "two & three"],
    "errors": [_HOSTILE],
    "languages": ["fr", "en"],
    "built_in": [],
    "declared": [],
    "consent_wording": None,
}


def test_a_template_that_binds_underscore_keeps_it():
    """`{% set _ = … %}` in a template: its `_()` calls what it bound, not the catalogue."""
    env = i18n.environment(
        "fr", DictLoader({"t": '{% set _ = shout %}{{ _("Name") }}'}), autoescape=False
    )
    assert env.get_template("t").render(shout=str.upper) == "NAME"
    assert i18n.environment(
        "fr", DictLoader({"t": '{{ _("Name") }}'}), autoescape=False
    ).get_template("t").render() == i18n.translate("fr", "Name")


def test_a_message_that_cannot_be_formatted_fails_as_it_did():
    """`_("50% off")` is not a format string: it is left to Jinja, whose rendering fails."""
    env = i18n.environment("en", DictLoader({"t": '{{ _("50% off") }}'}), autoescape=False)
    with pytest.raises(TypeError, match="format"):
        env.get_template("t").render()
