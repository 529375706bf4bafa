"""IP truncation (Matomo's masks) and the rate-limit key: pure functions."""

from __future__ import annotations

import pytest

from relay.rights.privacy import truncate_ip
from relay.web.ratelimit import client_key


@pytest.mark.parametrize(
    ("ip", "expected"),
    [
        ("255.255.255.255", "255.255.255.0"),
        ("2001:db8:0:8d3:0:8a2e:70:7344", "2001:db8::"),
        ("2001:6f8:900:724::2", "2001:6f8:900::"),
        ("::ffff:192.168.1.42", "192.168.1.0"),
        ("fe80::1%eth0", "fe80::"),
        (" 10.1.2.3 ", "10.1.2.0"),
    ],
)
def test_truncate_default_prefixes(ip, expected):
    """IPv4 keeps /24, IPv6 /48, IPv4-mapped IPv6 is treated as IPv4 (gdpr-cnil.md I1)."""
    assert expected == truncate_ip(ip)


@pytest.mark.parametrize(
    ("ip", "expected"),
    [
        ("2001:db8:0:8d3:0:8a2e:70:7344", "2001:db8:0:8d3::"),
        ("2001:6f8:900:724::2", "2001:6f8:900:724::"),
    ],
)
def test_truncate_v6_to_64(ip, expected):
    """The prefix is a parameter (the /64 column of the test vectors)."""
    assert expected == truncate_ip(ip, v6_prefix=64)


def test_truncate_v4_to_16():
    """A /16 truncation keeps the first two bytes of an IPv4 address."""
    assert truncate_ip("192.168.1.42", v4_prefix=16) == "192.168.0.0"


@pytest.mark.parametrize("bad", ["", "not-an-ip", "300.1.1.1", "1.2.3"])
def test_truncate_refuses_non_addresses(bad):
    """Anything that is not an IP address is a ValueError, not a guess."""
    with pytest.raises(ValueError, match="does not appear to be an IPv4 or IPv6 address"):
        truncate_ip(bad)


def test_client_key_is_keyed_short_and_daily():
    """The key holds no part of the address, and changes with the day key."""
    day1, day2 = b"\x01" * 32, b"\x02" * 32
    key = client_key(day1, "203.0.113.7")
    assert len(key) == 22
    assert "203" not in key
    assert key == client_key(day1, "203.0.113.7")
    assert key != client_key(day2, "203.0.113.7")
    assert key != client_key(day1, "203.0.113.8")
