"""Settings and forms-file errors name the file (or variable), the field and the problem."""

from __future__ import annotations

import pytest

from relay.app import create_app
from relay.config import Settings, load_forms, load_settings
from relay.errors import ConfigError
from tests.conftest import FORMS_TOML, TEST_KEY


def write(tmp_path, text):
    path = tmp_path / "forms.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_example_forms_file_is_valid():
    """The shipped example has the form `contact` that `make run` serves."""
    forms = load_forms(Settings().effective_forms_file)
    assert "contact" in forms


def test_forms_file_parses_to_frozen_models(tmp_path):
    """The test forms file gives its two forms as models that cannot be changed once loaded."""
    forms = load_forms(write(tmp_path, FORMS_TOML))
    assert set(forms) == {"contact", "quote"}
    assert forms["contact"].marketing_consent is not None
    with pytest.raises(ValueError, match="frozen"):
        forms["contact"].id = "x"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("replace", "expected"),
    [
        (('legal_basis = "contract"', 'legal_basis = "consent"'), "forms[1].legal_basis"),
        (('id = "quote"', 'id = "Bad Id!"'), "forms[1].id: Value error, must be 1-64"),
        (('id = "quote"', 'id = "contact"'), "form id 'contact' appears twice"),
        (
            (
                'recipients = ["sales@example.com"]\nallowed_origins = ["https://www.example.com"]\n'
                'legal_basis = "contract"',
                'recipients = ["not-an-address"]\nallowed_origins = ["https://www.example.com"]\n'
                'legal_basis = "contract"',
            ),
            "forms[1].recipients: Value error, 'not-an-address' is not a valid email address",
        ),
        (
            ('subject = "Quote - {{ name }}"', 'subject = "Quote - {{ name "'),
            "forms[1].subject: Value error, is not a valid template",
        ),
        (("max_body_bytes = 4096", "max_body_bytes = 10"), "forms[1].max_body_bytes"),
        (
            ('success_url = "https://www.example.com/merci"', 'success_url = "/merci"'),
            "forms[1].success_url: Value error, '/merci' is not an absolute http(s) URL",
        ),
        (
            (
                'notice_version = "2026-03-20"\nsubject = "Quote',
                'colour = "red"\nnotice_version = "2026-03-20"\nsubject = "Quote',
            ),
            "forms[1].colour: Extra inputs are not permitted",
        ),
    ],
)
def test_forms_file_errors_name_file_field_and_problem(tmp_path, replace, expected):
    """Each mistake in a form is a ConfigError that starts with the file and names the form's field
    and the problem."""
    old, new = replace
    assert old in FORMS_TOML
    path = write(tmp_path, FORMS_TOML.replace(old, new))
    with pytest.raises(ConfigError) as info:
        load_forms(path)
    assert str(info.value).startswith(f"{path}: ")
    assert expected in str(info.value)


@pytest.mark.parametrize(
    ("origin", "problem"),
    [
        ("www.example.com", "is not an origin"),
        ("https://www.example.com/contact", "without a path"),
    ],
)
def test_bad_origin_is_explained(tmp_path, origin, problem):
    """An allowed origin without a scheme, or with a path, is refused saying why."""
    path = write(tmp_path, FORMS_TOML.replace('"https://www.example.com"]', f'"{origin}"]', 1))
    with pytest.raises(ConfigError, match=problem):
        load_forms(path)


def test_invalid_toml_names_the_file_and_position(tmp_path):
    """A file that is not TOML is refused naming the file and the line."""
    path = write(tmp_path, "[[forms]\nid=")
    with pytest.raises(ConfigError, match=rf"{path}: not valid TOML: .*line 1"):
        load_forms(path)


def test_missing_forms_file(tmp_path):
    """A forms file that does not exist is a ConfigError saying so."""
    with pytest.raises(ConfigError, match="forms file not found"):
        load_forms(tmp_path / "absent.toml")


def test_empty_forms_file(tmp_path):
    """An empty forms file is refused: the `forms` list is required."""
    with pytest.raises(ConfigError, match="forms: Field required"):
        load_forms(write(tmp_path, ""))


def test_unreadable_forms_file(tmp_path):
    """A forms file that is not UTF-8 is refused saying it cannot be read."""
    path = tmp_path / "forms.toml"
    path.write_bytes(b"\xff\xfe not utf-8")
    with pytest.raises(ConfigError, match="cannot read the forms file"):
        load_forms(path)


def test_bad_environment_variable_is_named(monkeypatch):
    """Every bad RELAY_* variable is named in the one error, with what it should be."""
    monkeypatch.setenv("RELAY_SQLITE_SYNCHRONOUS", "SOMETIMES")
    monkeypatch.setenv("RELAY_WRITE_BATCH_MAX", "0")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "settings: RELAY_SQLITE_SYNCHRONOUS: Input should be 'NORMAL' or 'FULL'" in str(
        info.value
    )
    assert "RELAY_WRITE_BATCH_MAX" in str(info.value)


def test_production_needs_a_secret_key():
    """Production without RELAY_SECRET_KEY is refused (no trial key there)."""
    with pytest.raises(ConfigError, match="RELAY_SECRET_KEY must be set in production"):
        load_settings(environment="production")


def test_secret_key_is_masked_in_repr():
    """The secret key shows as stars in the settings' repr and str, never in clear."""
    settings = Settings(secret_key=TEST_KEY)
    assert "secret_key=SecretStr('**********')" in repr(settings)
    assert TEST_KEY not in repr(settings)
    assert str(settings.secret_key) == "**********"


def test_too_short_secret_key_stops_start_up(settings_factory):
    """The app does not start with a key shorter than 32 bytes."""
    with pytest.raises(ConfigError, match="at least 32"):
        create_app(settings_factory(secret_key="c2hvcnQ"))


def test_bad_forms_file_stops_start_up(settings_factory, tmp_path):
    """The app does not start with an invalid forms file, and the error names the field."""
    path = write(tmp_path, FORMS_TOML.replace('legal_basis = "contract"', "legal_basis = 1"))
    with pytest.raises(ConfigError, match="legal_basis"):
        create_app(settings_factory(forms_file=path))


def test_public_url_must_be_absolute():
    """A RELAY_PUBLIC_URL without a scheme is refused, naming the variable."""
    with pytest.raises(ConfigError, match="RELAY_PUBLIC_URL"):
        load_settings(public_url="forms.example.com")


def test_auto_migrate_defaults_by_backend():
    """SQLite upgrades its schema at start by default, PostgreSQL only when RELAY_AUTO_MIGRATE says
    so."""
    assert Settings().migrates_on_start is True
    assert Settings(database_url="postgresql+asyncpg://x@h/db").migrates_on_start is False
    assert Settings(database_url="postgresql+asyncpg://x@h/db", auto_migrate=True).migrates_on_start
