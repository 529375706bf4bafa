"""A phone number's one spelling: E.164 where it parses as a possible number, else as typed. Pure.

`phonenumbers` decides (Google's libphonenumber metadata). What visitors type most, a
national number of the form's region written with spaces, dots or dashes (`06 12 34 56 78`),
is answered without its parser (about 25 µs of regular expressions), from the same metadata
and the same possibility check, where the region's rules make the answer certain: a plain
national prefix, no transform rule, the region the main one of its country code, and digits
that neither start like an international call nor with the country code itself. A property
test holds the fast path to `phonenumbers.parse` on any text, in many regions.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import phonenumbers
from phonenumbers import PhoneMetadata, PhoneNumber, ValidationResult

#: ASCII digits, with at most one space, dot or dash between two of them.
_NATIONAL_SHAPE = re.compile(r"[0-9](?:[ .-]?[0-9])*")
_SEPARATORS = str.maketrans("", "", " .-")


@dataclass(frozen=True)
class _Region:
    country_code: int
    prefix: str  # the national (trunk) prefix, e.g. "0"
    international: re.Pattern[str]  # how a call abroad starts here, e.g. "00"
    general: re.Pattern[str]  # any national number of the region


@functools.cache
def _region(code: str) -> _Region | None:
    """The region's rules when its national numbers can be read without the parser; else None."""
    metadata = PhoneMetadata.metadata_for_region(code)
    if metadata is None or metadata.country_code is None:
        return None
    prefix = metadata.national_prefix
    if (
        not prefix
        or not prefix.isdigit()
        or metadata.national_prefix_for_parsing != prefix
        or metadata.national_prefix_transform_rule
        or phonenumbers.region_code_for_country_code(metadata.country_code) != code
        or str(metadata.country_code).startswith(prefix)
        or metadata.international_prefix is None
        or metadata.general_desc is None
        or metadata.general_desc.national_number_pattern is None
    ):
        return None
    return _Region(
        country_code=metadata.country_code,
        prefix=prefix,
        international=re.compile(metadata.international_prefix),
        general=re.compile(metadata.general_desc.national_number_pattern),
    )


def _national(text: str, region: _Region) -> str | None:
    """E.164 for a national number of `region` that is certainly possible; None to ask the
    parser (it may still find one)."""
    if not _NATIONAL_SHAPE.fullmatch(text):
        return None
    digits = text.translate(_SEPARATORS)
    national = digits[len(region.prefix) :]
    if (
        not digits.startswith(region.prefix)
        or not national
        or national[0] == "0"  # a leading zero the number keeps (Italian style): the parser's
        or region.international.match(digits)
        or digits.startswith(str(region.country_code))
        or not region.general.fullmatch(national)
    ):
        return None
    number = PhoneNumber(country_code=region.country_code, national_number=int(national))
    if phonenumbers.is_possible_number_with_reason(number) != ValidationResult.IS_POSSIBLE:
        return None
    return f"+{region.country_code}{national}"


def normalise_phone(text: str, region: str) -> str:
    """E.164 where the number parses as a possible number; otherwise kept as the person typed it."""
    rules = _region(region)
    if rules is not None:
        fast = _national(text, rules)
        if fast is not None:
            return fast
    return parsed(text, region)


def parsed(text: str, region: str) -> str:
    """`normalise_phone` by phonenumbers' parser alone (what the fast path must agree with)."""
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return text
    if not phonenumbers.is_possible_number(number):
        return text
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
