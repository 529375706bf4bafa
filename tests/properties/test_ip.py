"""IP truncation: the one way relay shortens a client's address (issue 15)."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay.rights.privacy import truncate_ip


@given(
    address=st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)),
    v4_prefix=st.integers(min_value=0, max_value=32),
    v6_prefix=st.integers(min_value=0, max_value=128),
    spelling=st.sampled_from(["plain", "exploded", "spaced", "zone", "mapped"]),
)
def test_a_truncated_address_is_its_network_and_keeps_nothing_of_the_host(
    address, v4_prefix, v6_prefix, spelling
):
    """Property: any IPv4 or IPv6 address, however written (exploded, padded with spaces, with
    a zone id, IPv4 as IPv4-mapped IPv6), truncates to the network address of its /v4_prefix
    or /v6_prefix: the address lies in that network, every host bit is zero, and truncating
    the result again gives it back."""
    if spelling == "mapped" and address.version == 4:
        text = f"::ffff:{address}"
    elif spelling == "exploded":
        text = address.exploded
    elif spelling == "spaced":
        text = f"  {address} "
    elif spelling == "zone" and address.version == 6:
        text = f"{address}%eth0"
    else:
        text = str(address)
    mapped = address.ipv4_mapped if address.version == 6 else None
    real = mapped or address
    prefix = v4_prefix if real.version == 4 else v6_prefix
    out = truncate_ip(text, v4_prefix, v6_prefix)
    network = ipaddress.ip_network(f"{out}/{prefix}")  # strict: refuses any host bit set
    assert real in network
    assert out == str(network.network_address)
    assert truncate_ip(out, v4_prefix, v6_prefix) == out


@given(st.text(max_size=60))
def test_any_text_is_an_address_or_a_value_error(text):
    """Property: any text either truncates to an address or is refused with ValueError."""
    try:
        out = truncate_ip(text)
    except ValueError:
        return
    assert ipaddress.ip_address(out).version in (4, 6)


def test_the_default_prefixes_keep_24_and_48_bits():
    """The defaults are the CNIL's masks: IPv4 /24, IPv6 /48."""
    assert truncate_ip("203.0.113.77") == "203.0.113.0"
    assert truncate_ip("2001:db8:1234:5678::1") == "2001:db8:1234::"
    with pytest.raises(ValueError, match="does not appear to be an IPv4 or IPv6 address"):
        truncate_ip("203.0.113.77/24")
