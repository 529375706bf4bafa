"""The forms file: a valid one round-trips through TOML, any other gives a clear error
(issue 15)."""

from __future__ import annotations

import math
import string
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from relay.config import FormConfig, load_forms
from relay.errors import ConfigError

BUILT_IN = ("name", "email", "phone", "company", "message")
_BARE_KEY = frozenset(string.ascii_letters + string.digits + "_-")


# --- writing TOML (the standard library reads it but cannot write it) ------------------------


def toml_string(text: str) -> str:
    """A TOML basic string: quote, backslash and control characters escaped."""
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def toml_key(key: str) -> str:
    return key if key and set(key) <= _BARE_KEY else toml_string(key)


def toml_value(value: Any) -> str:
    """Any value the forms file can hold, inline (tables as inline tables)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else repr(value)  # inf and -inf are TOML too
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        pairs = (f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items() if v is not None)
        return "{" + ", ".join(pairs) + "}"
    raise TypeError(type(value).__name__)  # pragma: no cover - the strategies give none


def toml_forms(forms: list[dict[str, Any]]) -> str:
    """A forms file: one `[[forms]]` table per form, its keys one per line."""
    lines = []
    for form in forms:
        lines.append("[[forms]]")
        lines += [f"{toml_key(k)} = {toml_value(v)}" for k, v in form.items() if v is not None]
        lines.append("")
    return "\n".join(lines)


# --- valid forms, every text hostile but within its limits ------------------------------------

#: Any text that can stand in a UTF-8 file (no lone surrogate).
_text = st.characters(exclude_categories=["Cs"])


def texts(max_size: int) -> st.SearchStrategy[str]:
    return st.text(alphabet=_text, min_size=1, max_size=max_size)


_label = st.from_regex(r"[a-z0-9]{1,8}(-[a-z0-9]{1,8})?", fullmatch=True)  # no "xn--" look-alike
domains = st.builds(
    lambda labels, tld: ".".join([*labels, tld]),
    st.lists(_label, min_size=1, max_size=3),
    st.sampled_from(["fr", "com", "org"]),
)
addresses = st.builds(
    "{}@{}".format, st.from_regex(r"[a-z0-9][a-z0-9+_-]{0,15}", fullmatch=True), domains
)
origins = st.builds(
    lambda scheme, host, port: f"{scheme}://{host}{port}",
    st.sampled_from(["https", "http"]),
    domains,
    st.sampled_from(["", ":8443", ":3000"]),
)
urls = st.builds(
    lambda origin, path: origin + path,
    origins,
    st.from_regex(r"(/[a-z0-9._~-]{0,12}){0,3}", fullmatch=True),
)
#: A subject: text with no template delimiter, around some of the names templates may use.
subjects = st.lists(
    st.one_of(
        st.text(
            alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="{}%#"),
            min_size=1,
            max_size=30,
        ),
        st.sampled_from(["{{ name }}", "{{ company }}", "{{ short_id }}", "{{ title }}"]),
    ),
    min_size=1,
    max_size=5,
).map(lambda parts: "".join(parts)[:500])
_field_names = st.from_regex(r"[A-Za-z][A-Za-z0-9_.-]{0,20}", fullmatch=True).filter(
    lambda name: name.lower() not in BUILT_IN
)


@st.composite
def declared_fields(draw: st.DrawFn) -> list[dict[str, Any]]:
    names = draw(st.lists(_field_names, max_size=3, unique_by=str.casefold))
    fields = []
    for name in names:
        kind = draw(
            st.sampled_from(["text", "long_text", "email", "tel", "select", "checkbox", "number"])
        )
        fields.append(
            {
                "name": name,
                "label": {"fr": draw(texts(200)), "en": draw(texts(200))},
                "kind": kind,
                "required": draw(st.booleans()),
                "max_length": draw(st.integers(1, 10_000)),
                "choices": draw(st.lists(texts(200), min_size=1, max_size=3))
                if kind == "select"
                else [],
            }
        )
    return fields


@st.composite
def form_specs(draw: st.DrawFn, form_id: str) -> dict[str, Any]:
    """One form as the file writes it, every value already in relay's normal form."""
    optional_required = draw(
        st.lists(st.sampled_from(["name", "message", "phone", "company"]), unique=True)
    )
    return {
        "id": form_id,
        "recipients": draw(st.lists(addresses, min_size=1, max_size=3)),
        "allowed_origins": draw(st.lists(origins, max_size=3)),
        "legal_basis": draw(st.sampled_from(["contract", "legitimate_interest"])),
        "notice_version": draw(texts(64)),
        "title": draw(st.one_of(st.none(), texts(200))),
        "subject": draw(subjects),
        "max_body_bytes": draw(st.integers(1024, 1_000_000)),
        "success_url": draw(st.one_of(st.none(), urls)),
        "error_url": draw(st.one_of(st.none(), urls)),
        "marketing_consent": draw(
            st.one_of(
                st.none(),
                st.fixed_dictionaries(
                    {
                        "field": st.from_regex(r"[A-Za-z0-9_.-]{1,64}", fullmatch=True),
                        "wording": texts(2000),
                        "wording_version": texts(64),
                    }
                ),
            )
        ),
        "language": draw(st.sampled_from([None, "fr", "en"])),
        "required": ["email", *optional_required],
        "allow_subject": draw(st.booleans()),
        "fields": draw(declared_fields()),
        "honeypot": draw(
            st.one_of(st.none(), st.from_regex(r"[A-Za-z0-9_.-]{1,64}", fullmatch=True))
        ),
        "proof_of_work": draw(st.booleans()),
        "min_fill_seconds": draw(st.floats(min_value=0, max_value=3600)),
        "max_links": draw(st.one_of(st.none(), st.integers(0, 1000))),
        "blocked_domains": draw(st.lists(domains, max_size=3)),
        "blocked_words": draw(st.lists(texts(100), max_size=3)),
        "block_disposable_domains": draw(st.booleans()),
    }


@st.composite
def forms_files(draw: st.DrawFn) -> list[dict[str, Any]]:
    ids = draw(
        st.lists(
            st.from_regex(r"[a-z0-9][a-z0-9_-]{0,63}", fullmatch=True),
            min_size=1,
            max_size=3,
            unique=True,
        )
    )
    return [draw(form_specs(form_id)) for form_id in ids]


def expected(spec: dict[str, Any]) -> dict[str, Any]:
    """What relay keeps of a form spec: the values as written, blocked words trimmed and
    case-folded (the documented normalisation), absent options at their defaults."""
    kept = {k: v for k, v in spec.items() if v is not None}
    kept["blocked_words"] = [w.strip().casefold() for w in spec["blocked_words"] if w.strip()]
    return kept


def outcome(path: Path) -> dict[str, FormConfig] | ConfigError:
    """The forms, or the ConfigError that refused the file."""
    try:
        return load_forms(path)
    except ConfigError as exc:
        return exc


@pytest.fixture(name="folder", scope="module")
def fixture_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("forms")


@settings(max_examples=100)  # each example is a whole file of up to three forms
@given(forms=forms_files())
def test_a_valid_forms_file_round_trips(folder, forms):
    """Property: a forms file whose every value is valid (hostile text within its limits,
    escaped as TOML) loads to exactly the forms written, keyed by id."""
    path = folder / "valid.toml"
    path.write_text(toml_forms(forms), encoding="utf-8")
    loaded = load_forms(path)
    assert list(loaded) == [form["id"] for form in forms]
    for form in forms:
        dumped = loaded[form["id"]].model_dump(mode="json")
        wanted = expected(form)
        assert {key: dumped[key] for key in wanted} == wanted


# --- invalid forms: one value broken, the error names file, form and field --------------------

#: (field, a value relay refuses for it)
BREAKAGES: list[tuple[str, Any]] = [
    ("id", "Contact"),
    ("id", 12),
    ("id", "a/b"),
    ("recipients", []),
    ("recipients", ["not-an-address"]),
    ("recipients", "sales@example.com"),
    ("allowed_origins", ["https://www.example.com/path"]),
    ("allowed_origins", ["javascript:alert(1)"]),
    ("legal_basis", "consent"),
    ("notice_version", ""),
    ("title", ""),
    ("subject", "{{ name"),
    ("subject", "{% for %}"),
    ("max_body_bytes", 10),
    ("max_body_bytes", "big"),
    ("success_url", "javascript:alert(1)"),
    ("error_url", "https://[::1"),
    ("marketing_consent", {"field": "x"}),
    ("language", "de"),
    ("required", ["name"]),
    ("required", ["email", "fax"]),
    ("fields", [{"name": "Email", "label": {"fr": "a", "en": "b"}}]),
    ("fields", [{"name": "p", "label": {"fr": "a"}}]),
    ("fields", [{"name": "p", "label": {"fr": "a", "en": "b"}, "kind": "select"}]),
    ("honeypot", "has space"),
    ("proof_of_work_cost", 0),
    ("min_fill_seconds", -1),
    ("max_links", -1),
    ("blocked_domains", ["not a domain"]),
    ("blocked_words", [""]),
    ("unknown_option", "x"),
]


@settings(max_examples=100)  # the same
@given(forms=forms_files(), data=st.data())
def test_one_broken_value_is_an_error_naming_the_file_the_form_and_the_field(folder, forms, data):
    """Property: in a valid forms file, one value relay refuses gives a ConfigError with a line
    `<file>: forms[<n>].<field>...: <problem>` for that form and field, never an exception."""
    index = data.draw(st.integers(min_value=0, max_value=len(forms) - 1))
    field, value = data.draw(st.sampled_from(BREAKAGES))
    forms[index] = {**forms[index], field: value}
    path = folder / "broken.toml"
    path.write_text(toml_forms(forms), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_forms(path)
    lines = str(info.value).splitlines()
    assert any(line.startswith(f"{path}: forms[{index}].{field}") for line in lines), lines


# --- any file at all ----------------------------------------------------------------------------

_FIELDS = sorted(FormConfig.model_fields)
toml_values: st.SearchStrategy[Any] = st.recursive(
    st.one_of(
        st.text(alphabet=_text, max_size=20),
        st.integers(),
        st.floats(),
        st.booleans(),
        st.datetimes(),
        st.datetimes(timezones=st.just(UTC)),
        st.dates(),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(
            st.one_of(st.sampled_from(_FIELDS), st.text(alphabet=_text, max_size=8)),
            inner,
            max_size=3,
        ),
    ),
    max_leaves=8,
)
any_forms = st.lists(
    st.dictionaries(
        st.one_of(st.sampled_from(_FIELDS), st.text(alphabet=_text, max_size=8)),
        toml_values,
        max_size=8,
    ),
    max_size=3,
)


#: A valid file with one value of the first form replaced by any TOML value.
near_valid = st.builds(
    lambda forms, key, value: [{**forms[0], key: value}, *forms[1:]],
    forms_files(),
    st.sampled_from(_FIELDS),
    st.one_of(toml_values, st.lists(st.text(alphabet=_text, max_size=30), max_size=2)),
)


@settings(max_examples=100)  # half the examples are whole valid files, slow to draw
@given(
    content=st.one_of(
        near_valid.map(lambda forms: toml_forms(forms).encode()),
        any_forms.map(lambda forms: toml_forms(forms).encode()),
        st.binary(max_size=200),
        st.text(max_size=200).map(lambda text: text.encode("utf-8", "surrogatepass")),
    )
)
@example(content=b"[[forms]]\nid = 'a'\nsubject = '" + b"{{ (" * 200 + b"'\n")
@example(content=b'[[forms]]\nallow_subject = []\n"\\u000d" = []\n')  # a CR in the key was
# written raw into the error, starting a line that did not name the file
def test_any_file_is_forms_or_an_error_naming_the_file(folder, content):
    """Property: any bytes as the forms file (any TOML of any shape, any text, invalid UTF-8)
    give forms or a ConfigError whose every line starts with the file's path, never another
    exception."""
    path = folder / "any.toml"
    path.write_bytes(content)
    loaded = outcome(path)
    if isinstance(loaded, ConfigError):
        event("refused")
        assert all(line.startswith(f"{path}: ") for line in str(loaded).splitlines())
    else:
        event("loaded")
        assert all(isinstance(form, FormConfig) for form in loaded.values())
