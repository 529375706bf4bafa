"""Declared fields in the forms file, and what `relay check` says each form keeps."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy

import pytest

from relay.accept.form_input import read_form
from relay.accept.formspree import canonical, language_tag
from relay.config import load_forms
from relay.deliver.delivery import renderer_for
from relay.errors import ConfigError, SubmissionRejected
from relay.mail.eml import build_eml
from relay.mail.render import SubmissionView
from tests.conftest import invoke
from tests.formspree_forms import FORMS_WITH_FIELDS, write_forms

BASE = """
[[forms]]
id = "f"
recipients = ["sales@example.com"]
legal_basis = "contract"
notice_version = "1"
"""


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ('required = ["name"]', "must include 'email'"),
        ('required = ["email", "fax"]', "'fax' is not a built-in field"),
        ('[[forms.fields]]\nname = "Email"\nlabel = {fr="a", en="b"}', "is a built-in field"),
        ('[[forms.fields]]\nname = "p"\nlabel = {fr="a", en="b"}\nkind = "select"', "choices"),
        ('[[forms.fields]]\nname = "p"\nlabel = {fr="a", en="b"}\nchoices = ["x"]', "choices"),
        ('[[forms.fields]]\nname = "p"\nlabel_fr = "a"', "a label in each language: en, fr"),
        ('[[forms.fields]]\nname = "p"\nlabel = {fr="a", en="b"}\nlabel_fr = "c"', "not both"),
        ('[[forms.fields]]\nname = "p"\nlabel = {fr="a", en="b"}\nkind = "file"', "kind"),
        (
            '[[forms.fields]]\nname = "p"\nlabel = {fr="a", en="b"}\n'
            '[[forms.fields]]\nname = "P"\nlabel = {fr="a", en="b"}',
            "declared twice",
        ),
        ('language = "de"', "language"),
    ],
)
def test_bad_declarations_name_the_problem(tmp_path, extra, problem):
    """A wrong declaration stops start-up with a message naming the field and the problem."""
    with pytest.raises(ConfigError) as info:
        load_forms(write_forms(tmp_path, BASE + extra))
    assert problem in str(info.value)


def test_labels_in_either_spelling(tmp_path):
    """`label = {fr, en}` and `label_fr`/`label_en` give the same labels."""
    forms = load_forms(write_forms(tmp_path))
    country = forms["demo"].fields[1]
    assert (country.label.get("fr"), country.label.get("en")) == ("Pays", "Country")


def test_check_lists_the_fields_each_form_keeps(cli, tmp_path):
    """`relay check` lists, per form, the fields kept (required ones starred, kinds shown)."""
    path = write_forms(tmp_path)
    result = invoke(cli, "check", env={"RELAY_FORMS_FILE": str(path)})
    assert (
        "  demo: keeps name, email*, message*, phone, company, product* (select: Sérum|Milieu), "
        "country (text), quantity (number), urgent (checkbox), details (long_text), "
        "backup_email (email), mobile (tel), _subject"
    ) in result.output
    assert "  contact: keeps name*, email*, message*, phone, company" in result.output


def test_names_are_matched_exactly_first_then_ignoring_case():
    """An exact name wins over a case variant; `_replyto` stands for email; others are dropped."""
    renamed = canonical({"EMAIL": "a", "email": "b", "Name": "n", "x": 1}, ["email", "name"])
    assert renamed.data == {"email": "b", "name": "n"}
    assert renamed.sent_as == {"name": "Name"}
    assert canonical({"_REPLYTO": "a"}, ["email"]).sent_as == {"email": "_REPLYTO"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [("fr", "fr"), ("EN", "en"), ("en-GB", "en"), ("fr_CA", "fr"), ("de", None), (3, None)],
)
def test_language_tags(value, expected):
    """`_language` values are reduced to a supported language, or ignored."""
    assert language_tag(value, ("fr", "en")) == expected


# --- the email --------------------------------------------------------------------------------


def demo_view(**fields):
    values = {"email": "a@example.fr", "message": "Bonjour", "name": "", **fields}
    return SubmissionView.from_fields(
        values,
        id="01937a4c-0000-7000-8000-00000000abcd",
        form_id="demo",
        received_at=datetime(2026, 7, 14, 8, 5, tzinfo=UTC),
        legal_basis="contract",
        notice_version="1",
        consent_given=False,
        consent_wording_version=None,
    )


@pytest.fixture(name="demo_form")
def fixture_demo_form(tmp_path):
    return load_forms(write_forms(tmp_path, FORMS_WITH_FIELDS))["demo"]


@pytest.fixture(name="renderer")
def fixture_renderer(settings):
    return renderer_for(settings.model_copy(update={"mailgun_domain": "mg.example.com"}))


def test_declared_fields_show_in_declared_order_with_the_forms_labels(renderer, demo_form):
    """Both parts list the filled-in declared fields in declared order, labelled in French."""
    view = demo_view(fields={"urgent": True, "country": "France", "product": "Sérum"})
    email = renderer.render(view, demo_form)
    text = email.text
    assert text.index("Produit:  Sérum") < text.index("Pays:     France")
    assert text.index("Pays:     France") < text.index("Urgent:   oui")
    assert email.html is not None
    html = email.html
    assert html.index("Produit") < html.index("Pays") < html.index("Urgent")


def test_visitor_subject_is_the_subject_when_the_template_does_not_place_it(renderer, demo_form):
    """With `_subject` kept and a template not naming it, the subject is the visitor's."""
    assert renderer.subject(demo_view(_subject="Devis urgent"), demo_form) == "Devis urgent"
    assert renderer.subject(demo_view(), demo_form) == "Démo"


def test_a_template_may_place_the_visitor_subject(renderer, demo_form):
    """A subject template naming `_subject` decides where it goes."""
    form = demo_form.model_copy(update={"subject": "Site: {{ _subject }} ({{ product }})"})
    view = demo_view(_subject="Devis", fields={"product": "Sérum"})
    assert renderer.subject(view, form) == "Site: Devis (Sérum)"


def test_format_plain_sends_text_only(renderer, demo_form):
    """`_format=plain` gives an email with a text part and no HTML part."""
    email = renderer.render(demo_view(_format="plain"), demo_form)
    assert email.html is None
    message = message_from_bytes(build_eml(email), policy=policy.default)
    assert message.get_content_type() == "text/plain"


_DEMO = load_forms(write_forms(__import__("pathlib").Path(__import__("tempfile").mkdtemp())))[
    "demo"
]


@pytest.mark.parametrize(
    ("value", "expected"),
    [("12", 12), (" 1 000 ", 1000), ("2,5", "2.5"), (3.0, 3), (7, 7), ("1e3", 1000)],
)
def test_numbers_are_read_as_people_type_them(value, expected):
    """A number field accepts spaces and a decimal comma; whole numbers are stored as ints."""
    result = read_form({**_REQUIRED, "quantity": value}, _DEMO, phone_region="FR")
    assert result.declared["quantity"] == expected


_REQUIRED = {"email": "a@example.fr", "message": "m", "product": "Sérum"}


def test_an_unticked_box_and_empty_optional_fields_are_not_kept():
    """An unticked checkbox and empty optional fields leave nothing in the body."""
    raw = {**_REQUIRED, "urgent": "", "country": "  ", "mobile": ""}
    assert read_form(raw, _DEMO, phone_region="FR").declared == {"product": "Sérum"}


def test_a_required_checkbox_must_be_ticked(tmp_path):
    """A required checkbox left unticked is REQUIRED_FIELD_MISSING."""
    text = BASE + '[[forms.fields]]\nname = "ok"\nlabel = {fr="a", en="b"}\nkind = "checkbox"\n'
    form = load_forms(write_forms(tmp_path, text + "required = true\n"))["f"]
    raw = {"name": "n", "email": "a@example.fr", "message": "m", "ok": False}
    with pytest.raises(SubmissionRejected) as info:
        read_form(raw, form, phone_region="FR")
    assert [(e.field, e.code) for e in info.value.errors] == [("ok", "REQUIRED_FIELD_MISSING")]
    assert read_form({**raw, "ok": "on"}, form, phone_region="FR").declared == {"ok": True}


def test_numbered_messages_fall_back_to_english_when_untranslated():
    """A message with a number and no translation stays as it was."""
    from relay import i18n

    assert i18n.translate("fr", "Nothing like this 42.") == "Nothing like this 42."
    assert i18n.translate("fr", "Nothing at all.") == "Nothing at all."
