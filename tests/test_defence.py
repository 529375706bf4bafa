"""relay.defence: honeypot, content rules, ALTCHA proofs and verdicts, as functions of values."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from altcha import (
    Challenge,
    Payload,
    Solution,
    create_challenge,
    derive_key_pbkdf2,
    verify_solution,
)
from hypothesis import given
from hypothesis import strategies as st

from relay.config import FormConfig
from relay.crypto import KeyRing
from relay.defence import content, honeypot
from relay.defence import pow as proof
from relay.defence.verdict import Action, screen_fields, screen_raw
from tests.conftest import TEST_KEY, TEST_KEY_2
from tests.defence_helpers import solve, tamper

KEYS = proof.ProofKeys.of(KeyRing.from_text(TEST_KEY))
#: The altcha library checks expiry against the system clock too, and this module is imported
#: minutes before a long suite reaches it: an hour ahead, challenges made "now" (expiring in 10
#: minutes, or 60 s) are still unexpired for the library whenever the test runs.
NOW = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)


def issue(
    form_id: str = "contact", now: datetime = NOW, keys: proof.ProofKeys = KEYS
) -> dict[str, Any]:
    return proof.issue(keys, form_id, now, ttl_seconds=600, cost=1, counter=1)


def form(**options: object) -> FormConfig:
    return FormConfig.model_validate(
        {
            "id": "contact",
            "recipients": ["sales@example.com"],
            "legal_basis": "legitimate_interest",
            "notice_version": "v1",
            **options,
        }
    )


# --- honeypot -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "form_field", "expected"),
    [
        ({"_gotcha": "http://spam.example"}, None, True),
        ({"_gotcha": "  "}, None, False),
        ({"_gotcha": ""}, None, False),
        ({}, None, False),
        ({"website_url": "x"}, "website_url", True),
        ({"website_url": "x"}, None, False),
        ({"_gotcha": True}, "website_url", True),
        ({"_gotcha": False}, "website_url", False),
        ({"_gotcha": None, "website_url": None}, "website_url", False),
        ({"_gotcha": 0}, None, True),
    ],
)
def test_a_honeypot_is_caught_when_any_trap_holds_something(raw, form_field, expected):
    """`_gotcha` and the form's own trap count when they hold anything but blanks."""
    assert honeypot.caught(raw, form_field) is expected


def test_a_filled_honeypot_is_dropped_before_anything_else():
    """The certain verdict drops, naming the honeypot rule."""
    verdict = screen_raw({"_gotcha": "x"}, form())
    assert verdict is not None
    assert (verdict.action, verdict.rules, verdict.stored) == (Action.DROP, ("honeypot",), False)
    assert screen_raw({"_gotcha": ""}, form()) is None


# --- content rules ------------------------------------------------------------------------

RULES = content.ContentRules(
    max_links=1,
    blocked_domains=("spam.example",),
    blocked_words=("casino", "crypto airdrop"),
    block_disposable=True,
)


@pytest.mark.parametrize(
    ("email", "message", "expected"),
    [
        ("a@example.fr", "Bonjour, un devis svp", ()),
        ("a@example.fr", "see https://a.example", ()),
        ("a@example.fr", "https://a.example and http://b.example", ("max_links",)),
        ("a@example.fr", "www.a.example and [url=x]y[/url]", ("max_links",)),
        ("a@spam.example", "Bonjour", ("blocked_domain",)),
        ("a@mx.SPAM.example", "Bonjour", ("blocked_domain",)),
        ("a@notspam.example", "Bonjour", ()),
        ("a@example.fr", "Best CASINO offers", ("blocked_word",)),
        ("a@example.fr", "casinos are not the word", ()),
        ("a@example.fr", "a Crypto  airdrop", ()),
        ("a@example.fr", "a crypto airdrop today", ("blocked_word",)),
        ("a@mailinator.com", "Bonjour", ("disposable_domain",)),
        (
            "a@spam.example",
            "casino http://a.example http://b.example",
            ("max_links", "blocked_domain", "blocked_word"),
        ),
    ],
)
def test_content_rules_name_each_rule_broken(email, message, expected):
    """Each rule that matches is named, in a fixed order; a clean message breaks none."""
    assert content.broken_rules(RULES, email=email, message=message) == expected


def test_blocked_words_are_looked_for_in_name_and_company_too():
    """A blocked word in another field (name, company) also counts."""
    got = content.broken_rules(RULES, email="a@example.fr", message="hi", others=("Casino SA",))
    assert got == ("blocked_word",)


def test_no_rules_catch_nothing():
    """A form without content rules quarantines nothing, whatever the message."""
    got = content.broken_rules(
        content.ContentRules(), email="a@mailinator.com", message="casino " + "http://x.y " * 50
    )
    assert got == ()


def test_the_form_options_are_normalised_and_checked():
    """Domains are lower-cased and stripped of '@'; a non-domain is refused with the field named."""
    assert form(blocked_domains=["@Spam.Example."]).blocked_domains == ("spam.example",)
    assert form(blocked_words=[" Casino "]).blocked_words == ("casino",)
    with pytest.raises(ValueError, match="not a domain name"):
        form(blocked_domains=["not a domain"])


# --- proof of work ------------------------------------------------------------------------


def test_an_honest_proof_is_verified_with_its_form_and_times():
    """A solved challenge verifies; the proof carries the issue time and the expiry."""
    got = proof.check(solve(issue()), KEYS, "contact", NOW)
    assert isinstance(got, proof.Proof)
    assert got.issued_at == NOW
    assert got.expires_at == NOW + timedelta(seconds=600)
    assert len(got.nonce_id) == 64


def test_the_challenge_is_deterministic_with_a_key_signature_and_bound_to_its_form():
    """relay issues PBKDF2 challenges with a key signature, its form and issue time in data."""
    params = issue()["parameters"]
    assert params["algorithm"] == "PBKDF2/SHA-256"
    assert params["keySignature"]
    assert params["data"] == {"form": "contact", "issued": int(NOW.timestamp())}
    assert params["expiresAt"] == int(NOW.timestamp()) + 600


def test_a_forged_counter_zero_solution_is_refused():
    """Regression (altcha 2.0.1): counter=0 with its honestly derived key is no proof."""
    challenge = issue()
    params = Challenge.from_dict(challenge).parameters
    derived = derive_key_pbkdf2(
        params, bytes.fromhex(params.salt), bytes.fromhex(params.nonce) + b"\0\0\0\0"
    )
    forged = Payload(Challenge.from_dict(challenge), Solution(0, derived.hex())).to_base64()
    assert proof.check(forged, KEYS, "contact", NOW) == proof.Refused(proof.INVALID)


def test_a_counter_zero_forgery_fails_even_without_a_key_signature():
    """Without a key signature relay refuses outright, and altcha>=2.3.0's own slow path
    requires the key prefix (the 2.0.1 bug accepted counter=0): both kept so."""
    secret = KEYS.sign[0]
    challenge = create_challenge(
        "PBKDF2/SHA-256",
        1,
        expires_at=int(NOW.timestamp()) + 60,
        data={"form": "contact", "issued": int(NOW.timestamp())},
        key_prefix="00000000",
        hmac_secret=secret,
    )
    params = challenge.parameters
    derived = derive_key_pbkdf2(
        params, bytes.fromhex(params.salt), bytes.fromhex(params.nonce) + b"\0\0\0\0"
    )
    forged = Payload(challenge, Solution(0, derived.hex())).to_base64()
    assert proof.check(forged, KEYS, "contact", NOW) == proof.Refused(proof.INVALID)
    assert verify_solution(forged, secret).verified is False


def test_a_refused_payload_is_remembered_by_its_text_and_the_memory_is_bounded():
    """The same made-up proof sent again gets the same refusal from memory; honest proofs are
    never remembered; the memory holds at most REFUSED_KEPT payloads."""
    keys = proof.ProofKeys(KEYS.sign, KEYS.key_sign)
    payload = solve(issue())
    decoded = json.loads(base64.b64decode(payload))
    decoded["solution"]["derivedKey"] = "ab" * 32
    forged = base64.b64encode(json.dumps(decoded).encode()).decode()
    first = proof.check(forged, keys, "contact", NOW)
    assert first == proof.check(forged, keys, "other", NOW) == proof.Refused(proof.INVALID)
    assert keys.refused == {forged: proof.INVALID}
    assert isinstance(proof.check(payload, keys, "contact", NOW), proof.Proof)
    for n in range(proof.REFUSED_KEPT + 5):
        assert proof.check(f"junk{n}", keys, "contact", NOW) == proof.Refused(proof.MALFORMED)
    assert 0 < len(keys.refused) <= proof.REFUSED_KEPT


def _set(path: tuple[str, ...], value: object):
    def change(d: dict[str, Any]) -> None:
        for key in path[:-1]:
            d = d[key]
        d[path[-1]] = value

    return change


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (_set(("challenge", "parameters", "cost"), 0), proof.INVALID),
        (_set(("challenge", "parameters", "keyPrefix"), "00"), proof.INVALID),
        (_set(("challenge", "parameters", "data", "form"), "contact"), proof.INVALID),
        (_set(("challenge", "parameters", "data", "issued"), 0), proof.INVALID),
        (_set(("challenge", "signature"), "00" * 32), proof.INVALID),
        (_set(("challenge", "signature"), None), proof.INVALID),
        (_set(("solution", "derivedKey"), "00" * 32), proof.INVALID),
        (_set(("solution", "derivedKey"), "not hex"), proof.INVALID),
        (_set(("challenge", "parameters", "expiresAt"), 2_000_000_000), proof.INVALID),
    ],
)
def test_a_tampered_proof_is_refused(change, code):
    """Any change to the signed parameters, the signature or the solution is refused."""
    payload = tamper(solve(issue("quote")), change)
    assert proof.check(payload, KEYS, "quote", NOW) == proof.Refused(code)


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (None, proof.REQUIRED),
        ("", proof.REQUIRED),
        ("   ", proof.REQUIRED),
        (["a"], proof.MALFORMED),
        (42, proof.MALFORMED),
        ("x" * (proof.MAX_PAYLOAD_CHARS + 1), proof.MALFORMED),
        ("not base64!", proof.MALFORMED),
        (base64.b64encode(b"not json").decode(), proof.MALFORMED),
        (base64.b64encode(b"[1, 2]").decode(), proof.MALFORMED),
        (
            base64.b64encode(
                json.dumps({"challenge": None, "solution": None, "test": True}).encode()
            ).decode(),
            proof.MALFORMED,
        ),
        (
            base64.b64encode(
                json.dumps({"challenge": {"parameters": {}}, "solution": {}}).encode()
            ).decode(),
            proof.MALFORMED,
        ),
    ],
)
def test_a_missing_or_unreadable_proof_is_refused_with_its_code(payload, code):
    """Missing → PROOF_OF_WORK_REQUIRED; not a payload (the widget's test mode too) → MALFORMED."""
    assert proof.check(payload, KEYS, "contact", NOW) == proof.Refused(code)


def test_a_proof_for_another_form_is_refused():
    """The form is bound into the signed challenge: form A's proof does not open form B."""
    assert proof.check(solve(issue("quote")), KEYS, "contact", NOW) == proof.Refused(
        proof.WRONG_FORM
    )


def test_an_expired_proof_is_refused_on_relays_clock_and_the_systems():
    """Past expiresAt on relay's clock, or on the system clock (the library's check), it expired."""
    payload = solve(issue())
    later = NOW + timedelta(seconds=600)
    assert proof.check(payload, KEYS, "contact", later) == proof.Refused(proof.EXPIRED)
    an_hour_ago = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)  # real time
    old = solve(issue(now=an_hour_ago))
    assert proof.check(old, KEYS, "contact", an_hour_ago) == proof.Refused(proof.EXPIRED)


def test_a_proof_signed_with_a_key_no_longer_in_the_ring_is_refused():
    """Other keys, other signatures: a challenge from another deployment does not verify."""
    other = proof.ProofKeys.of(KeyRing.from_text(TEST_KEY_2))
    assert proof.check(solve(issue(keys=other)), KEYS, "contact", NOW) == proof.Refused(
        proof.INVALID
    )


def test_a_proof_signed_before_a_key_rotation_still_verifies():
    """After rotation (new key first) a challenge signed with the previous key is accepted."""
    rotated = proof.ProofKeys.of(KeyRing.from_text(f"{TEST_KEY_2},{TEST_KEY}"))
    assert isinstance(proof.check(solve(issue()), rotated, "contact", NOW), proof.Proof)


@given(
    st.one_of(
        st.text(max_size=300), st.binary(max_size=300).map(lambda b: base64.b64encode(b).decode())
    )
)
def test_any_text_gives_a_proof_or_a_refusal_never_an_exception(text):
    """Whatever a client sends in the altcha field, check answers with a value."""
    assert isinstance(proof.check(text, KEYS, "contact", NOW), proof.Refused | proof.Proof)


# --- verdicts -----------------------------------------------------------------------------


def test_a_proof_sent_sooner_than_min_fill_seconds_is_a_time_trap():
    """Solved and sent 2 s after issue on a 3 s form: quarantined as time_trap."""
    got = proof.check(solve(issue()), KEYS, "contact", NOW)
    assert isinstance(got, proof.Proof)
    quick = screen_fields(
        form(), email="a@example.fr", message="hi", proof=got, now=NOW + timedelta(seconds=2)
    )
    assert (quick.action, quick.rules) == (Action.QUARANTINE, ("time_trap",))
    calm = screen_fields(
        form(), email="a@example.fr", message="hi", proof=got, now=NOW + timedelta(seconds=3)
    )
    assert (calm.action, calm.rules, calm.stored) == (Action.DELIVER, (), True)


def test_the_time_trap_and_content_rules_are_named_together():
    """A verdict lists every rule that caught the submission, the time trap first."""
    got = proof.check(solve(issue()), KEYS, "contact", NOW)
    assert isinstance(got, proof.Proof)
    verdict = screen_fields(
        form(max_links=0), email="a@example.fr", message="http://x.example", proof=got, now=NOW
    )
    assert verdict.reason == "time_trap,max_links"
    assert verdict.stored


@given(st.text(max_size=400), st.text(max_size=80))
def test_content_rules_take_any_text(message, email):
    """Any message and address give a tuple of rule names, never an exception."""
    got = content.broken_rules(RULES, email=email, message=message, others=(message[:10],))
    assert set(got) <= {"max_links", "blocked_domain", "blocked_word", "disposable_domain"}


def test_the_defence_modules_import_no_io_library():
    """relay.defence is a pure step of the flow: importing it pulls in no I/O library."""
    import subprocess
    import sys

    io = ("httpx", "sqlalchemy", "starlette", "redis", "relay.store", "relay.web", "relay.cli")
    code = (
        "import sys\n"
        "import relay.defence, relay.defence.content, relay.defence.pow\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {io!r} "
        f"or m.startswith({io!r})))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"honeypot": "has space"}, "honeypot"),
        ({"proof_of_work_cost": 0}, "proof_of_work_cost"),
        ({"min_fill_seconds": -1}, "min_fill_seconds"),
        ({"max_links": -1}, "max_links"),
        ({"blocked_words": [""]}, "blocked_words"),
    ],
)
def test_bad_defence_options_are_refused_naming_the_field(options, field):
    """The forms file's defence options are validated at start-up like the others."""
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as caught:
        form(**options)
    assert field in str(caught.value)


@pytest.mark.parametrize(
    ("extra", "code"),
    [
        ({"data": None, "expires_at": int(NOW.timestamp()) + 60}, proof.INVALID),
        ({"data": {"form": "contact"}, "expires_at": None}, proof.INVALID),
        ({"data": {"form": "contact"}, "expires_at": int(NOW.timestamp()) + 60}, proof.INVALID),
    ],
)
def test_a_challenge_signed_with_relays_keys_but_not_made_by_issue_is_refused(extra, code):
    """Without relay's form, issue time and expiry in it, a validly signed challenge is no proof."""
    challenge = create_challenge(
        "PBKDF2/SHA-256",
        1,
        counter=1,
        hmac_secret=KEYS.sign[0],
        hmac_key_secret=KEYS.key_sign[0],
        **extra,
    )
    assert proof.check(solve(challenge.to_dict()), KEYS, "contact", NOW) == proof.Refused(code)
