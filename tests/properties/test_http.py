"""Hostile but valid submissions posted through HTTP, all the way to the .eml (issue 15).

The real app (create_app in a TestClient) accepts each one, its dispatcher delivers it through
the file transport, and the file is parsed back as a mail client reads it.
"""

from __future__ import annotations

import email
import json
from email import policy
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from relay.accept.form_input import read_form
from relay.app import create_app
from relay.config import load_forms
from relay.deliver.delivery import renderer_for
from tests.conftest import FORMS_TOML
from tests.deliveries_helpers import drained
from tests.helpers import ORIGIN
from tests.properties.test_intake import as_multipart, as_urlencoded, text_fields
from tests.properties.test_message import (
    EML_HEADERS,
    Markup,
    check_one_line_headers,
    check_reply_to,
    skeleton,
    view_of,
)
from tests.strategies import SubmissionCase, valid_cases

EXAMPLES = 50


def as_json(case: SubmissionCase) -> tuple[str, bytes]:
    """JSON carries every value, the ignored non-text ones too."""
    return "application/json", json.dumps(case.raw).encode("ascii")


ENCODINGS = {
    "json": as_json,
    "urlencoded": lambda case: as_urlencoded(text_fields(case)),
    "multipart": lambda case: as_multipart(text_fields(case)),
}


def test_a_hostile_valid_submission_is_accepted_and_mailed_with_relays_headers_only(
    settings_factory, clock, tmp_path
):
    """Property through HTTP: any valid submission, whatever hostile text its fields hold, sent
    as JSON, urlencoded or multipart, is answered 202; the .eml the dispatcher writes for it
    parses back with exactly relay's headers, none holding a line break, one Reply-To (the
    submitter), the message intact in the text part and the template's own tags in the HTML."""
    forms_file = tmp_path / "forms.toml"
    # the field limits are the limits here, not the body's size (a 10,000-character message
    # of emoji is 40 kB)
    forms_file.write_text(FORMS_TOML.replace("max_body_bytes = 20000", "max_body_bytes = 1000000"))
    config = settings_factory(
        forms_file=forms_file,
        dispatch_in_serve=True,
        rate_limit_client="100000/minute",
        rate_limit_form="100000/minute",
    )
    form = load_forms(forms_file)["contact"]
    renderer = renderer_for(config)
    mailed: list[str] = []

    with TestClient(create_app(config, clock=clock), base_url="http://relay.test") as client:

        @settings(
            max_examples=EXAMPLES,
            database=None,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(case=valid_cases(), encoding=st.sampled_from(sorted(ENCODINGS)))
        def post(case: SubmissionCase, encoding: str) -> None:
            event(encoding)
            content_type, body = ENCODINGS[encoding](case)
            headers = {"Content-Type": content_type, "Accept": "application/json", "Origin": ORIGIN}
            response = client.post("/f/contact", content=body, headers=headers)
            assert response.status_code == 202, response.text
            drained(client)  # the app's dispatcher has handled everything due
            path = config.var_dir / "mail" / f"{response.json()['id']}.eml"
            check_eml(path.read_bytes(), case, read_form(case.raw, form, phone_region="FR").body())
            mailed.append(path.name)

        def check_eml(data: bytes, case: SubmissionCase, stored: dict[str, Any]) -> None:
            assert data.split(b"\r\n\r\n", 1)[0].isascii()
            message = email.message_from_bytes(data, policy=policy.default)
            assert {name.lower() for name in message} == EML_HEADERS
            check_one_line_headers(message)
            check_reply_to(message, stored["name"], case.address.ascii)
            plain = message.get_body(("plain",))
            html = message.get_body(("html",))
            assert plain is not None
            assert html is not None
            assert stored["message"] in plain.get_content().replace("\r\n", "\n")
            template = renderer.render(view_of(form, skeleton(stored)), form).html
            assert template is not None
            assert Markup(html.get_content()).markup == Markup(template).markup

        post()
    assert len(set(mailed)) == EXAMPLES
