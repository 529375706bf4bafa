"""A phone number's one spelling: relay's fast path answers as phonenumbers' parser does."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from relay.accept import phones
from relay.accept.phones import normalise_phone, parsed

#: Regions whose national numbers take the fast path, and regions that never do (a prefix
#: that is a pattern, no national prefix, a country code shared with a main region, a
#: country code starting with the prefix), and two that are not regions at all.
FAST = ["FR", "BE", "CH", "DE", "NL", "MC", "RU", "AT", "SE", "IE", "MA", "GP", "RE"]
SLOW = [
    "GB",
    "US",
    "CA",
    "IT",
    "ES",
    "AR",
    "BR",
    "JP",
    "LU",
    "MX",
    "PL",
    "PT",
    "BL",
    "YT",
    "fr",
    "ZZ",
]


@st.composite
def typed_numbers(draw: st.DrawFn) -> str:
    """What people type: digits (sometimes after a prefix, an international call's start or
    a country code), grouped by spaces, dots or dashes, now and then something else."""
    start = draw(st.sampled_from(["0", "0", "0", "00", "1", "8", "33", "49", "+33 ", "", "011"]))
    digits = draw(st.text(alphabet="0123456789", min_size=0, max_size=15))
    text = start.strip() + digits
    if not text:
        return draw(st.sampled_from(["", " ", "0"]))
    separators = draw(st.lists(st.sampled_from(["", "", " ", ".", "-", "  ", "/"]),
                               min_size=len(text), max_size=len(text)))  # fmt: skip
    spaced = "".join(d + s for d, s in zip(text, separators, strict=True)).rstrip(" .-/")
    return ("+" if start.startswith("+") else "") + spaced


@settings(max_examples=1500)
@given(text=st.one_of(typed_numbers(), st.text(max_size=20)), region=st.sampled_from(FAST + SLOW))
@example(text="06 12 34 56 78", region="FR")
@example(text="06.12.34.56.78", region="FR")
@example(text="0012345678", region="FR")  # an international call's start
@example(text="0 612345678", region="FR")
@example(text="00 33 6 12 34 56 78", region="FR")
@example(text="0612345678", region="GB")
@example(text="06 12 34 56 7", region="FR")  # one digit short: as typed
@example(text="٠٦١٢٣٤٥٦٧٨", region="FR")  # Arabic-Indic digits: the parser's
@example(text="8 912 345 67 89", region="RU")
def test_the_fast_path_gives_what_the_parser_gives(text: str, region: str) -> None:
    """Property: on any text and in any region, normalise_phone answers exactly as
    phonenumbers' parser does (E.164 for a possible number, the text as typed otherwise)."""
    assert normalise_phone(text, region) == parsed(text, region)


@st.composite
def national_numbers(draw: st.DrawFn) -> tuple[str, str]:
    """A region taking the fast path, and a number of one of its national lengths after its
    prefix, grouped as people group them: most take the fast path, some ask the parser."""
    region = draw(st.sampled_from(FAST))
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    assert metadata is not None
    assert metadata.general_desc is not None
    assert metadata.national_prefix is not None
    length = draw(st.sampled_from(metadata.general_desc.possible_length))
    digits = metadata.national_prefix + draw(
        st.text(alphabet="0123456789", min_size=length, max_size=length)
    )
    separators = draw(st.lists(st.sampled_from(["", "", " ", ".", "-"]),
                               min_size=len(digits), max_size=len(digits)))  # fmt: skip
    return "".join(d + s for d, s in zip(digits, separators, strict=True)).rstrip(" .-"), region


@settings(max_examples=1500)
@given(case=national_numbers())
def test_national_numbers_give_what_the_parser_gives(case: tuple[str, str]) -> None:
    """Property: national numbers of the fast regions, of their own lengths (about half of
    them possible numbers, answered by the fast path), give exactly the parser's answer."""
    text, region = case
    assert normalise_phone(text, region) == parsed(text, region)


@pytest.mark.parametrize("region", FAST)
def test_these_regions_take_the_fast_path(region: str) -> None:
    """The regions listed as fast really are (so the property above exercises the fast path),
    and the others are not."""
    assert phones._region(region) is not None


@pytest.mark.parametrize("region", SLOW)
def test_these_regions_ask_the_parser(region: str) -> None:
    """Regions whose rules the fast path cannot read with certainty (a prefix that is a
    pattern, none at all, a country code shared with a main region or starting with the
    prefix, no such region) always go to the parser."""
    assert phones._region(region) is None


def test_a_french_mobile_number_takes_the_fast_path_without_the_parser(monkeypatch):
    """The common case does not reach phonenumbers.parse at all."""

    def no_parser(*_args: object, **_kwargs: object) -> None:
        raise AssertionError

    monkeypatch.setattr(phonenumbers, "parse", no_parser)
    assert normalise_phone("06 12 34 56 78", "FR") == "+33612345678"
    assert normalise_phone("06-12-34-56-78", "FR") == "+33612345678"
