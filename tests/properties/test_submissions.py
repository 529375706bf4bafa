"""What validation makes of hostile text inside otherwise valid submissions (issue 15).

The strategies know which case they built (every field valid, or exactly one broken), so each
property asserts the exact outcome rather than "a model or some errors".
"""

from __future__ import annotations

import re
from typing import Any

import idna
from hypothesis import event, given, settings
from hypothesis import strategies as st

from relay.accept.form_input import FormInput, read_form
from relay.accept.submission import Submission, validate_submission
from relay.config import load_forms
from relay.errors import SubmissionRejected
from tests.formspree_forms import write_forms
from tests.strategies import (
    DemoCase,
    SubmissionCase,
    demo_cases,
    hostile_text,
    submission_cases,
)

E164 = re.compile(r"^\+[1-9][0-9]{5,14}$")
#: Phones the strategy types, and the one spelling relay must store for each.
KNOWN_PHONES = {
    "06 12 34 56 78": "+33612345678",
    "+33 6 12 34 56 78": "+33612345678",
    "0033612345678": "+33612345678",
    "+1 (415) 555-2671": "+14155552671",
    "０６１２３４５６７８": "+33612345678",
}


def ascii_form(address: str) -> str:
    """The address with its domain in IDNA ASCII: how two spellings of one address compare."""
    local, _, domain = address.rpartition("@")
    return f"{local}@{idna.encode(domain, uts46=True).decode('ascii')}"


def one_message(text: str) -> str:
    """A message as relay keeps it: CR LF and CR made LF, trimmed."""
    return text.replace("\r\n", "\n").replace("\r", "\n").strip()


def check_kept(case: SubmissionCase, sub: Submission) -> None:
    """Every field of a valid case is kept as typed (trimmed), the address normalised."""
    raw = case.raw
    assert sub.name == raw["name"].strip()
    assert sub.message == one_message(raw["message"])
    assert ascii_form(sub.email) == case.address.ascii
    assert sub.company == (raw["company"].strip() if "company" in raw else None)
    if "phone" not in raw:
        assert sub.phone is None
    elif raw["phone"] in KNOWN_PHONES:
        assert sub.phone == KNOWN_PHONES[raw["phone"]]
    else:
        assert sub.phone == raw["phone"].strip() or E164.match(sub.phone or "")


def test_most_generated_submissions_are_valid():
    """At least four generated submissions in five pass validation (174 of 200 with the
    fixed seed; the strategies before issue 15 reached it in 10 of 2,000), so the properties
    below test the email relay writes, not only the refusal."""
    outcomes: list[bool] = []

    @settings(max_examples=200, derandomize=True, database=None)
    @given(submission_cases)
    def draw(case: SubmissionCase) -> None:
        outcomes.append(isinstance(validate_submission(case.raw, phone_region="FR"), Submission))

    draw()
    assert len(outcomes) == 200
    assert sum(outcomes) >= 160


@given(submission_cases)
def test_a_submission_is_accepted_intact_or_refused_for_its_one_broken_field(case):
    """Property: a case with every field valid (whatever hostile text it holds) gives a
    Submission holding exactly that text; a case with one broken field gives exactly one
    error, naming that field with its code."""
    result = validate_submission(case.raw, phone_region="FR")
    if case.broken is None:
        event("valid")
        assert isinstance(result, Submission), result
        check_kept(case, result)
    else:
        event(f"refused: {case.broken[1]}")
        assert [(e.field, e.code) for e in result] == [case.broken]  # type: ignore[union-attr]


# --- the whole form: built-in, declared and special fields (read_form) ------------------------

_DEMO = load_forms(write_forms(__import__("pathlib").Path(__import__("tempfile").mkdtemp())))[
    "demo"
]
_NAMES = st.sampled_from(
    [
        *("email", "Email", "_replyto", "message", "name", "phone", "company", "Company"),
        *("product", "Product", "quantity", "urgent"),
        *(
            "country",
            "details",
            "backup_email",
            "mobile",
            "_subject",
            "_language",
            "_format",
            "_cc",
        ),
    ]
)
_VALUES = st.one_of(hostile_text, st.none(), st.booleans(), st.integers(), st.floats())


@given(
    st.one_of(
        demo_cases,
        demo_cases,
        demo_cases,
        st.dictionaries(_NAMES, _VALUES, max_size=12),
    )
)
def test_a_valid_form_keeps_exactly_its_declared_values_and_any_other_is_a_422(case):
    """Property: a demo-form submission whose every field is valid is read with each declared
    field's expected value and the visitor's subject; any other input (any names, any JSON
    values) is read or refused with 422, never an exception."""
    raw = case.raw if isinstance(case, DemoCase) else case
    outcome: FormInput | SubmissionRejected
    try:
        outcome = read_form(raw, _DEMO, phone_region="FR")
    except SubmissionRejected as exc:
        outcome = exc
    if isinstance(outcome, SubmissionRejected):
        event("refused")
        assert not isinstance(case, DemoCase), outcome.errors
        # a `_cc` that says anything (not absent, empty, false or zero) is refused first
        cc = raw.get("_cc") not in (None, "", False)
        assert (outcome.status, outcome.code) == (422, "CC_NOT_ALLOWED" if cc else "INVALID_FIELDS")
    elif not isinstance(case, DemoCase):
        event("junk read")
        assert set(outcome.body().get("fields", {})) <= {f.name for f in _DEMO.fields}
    else:
        event("valid")
        assert outcome.declared == case.declared
        assert outcome.specials.subject == case.subject
        assert outcome.specials.plain is case.plain
        assert ascii_form(outcome.submission.email) == case.address.ascii
        body: dict[str, Any] = outcome.body()
        assert set(body) - {"fields", "_subject", "_format"} == set(Submission.model_fields)
