"""Who the client is behind trusted proxies: the right-most hop no trusted proxy vouches for."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay.config import load_settings
from relay.defence.proxies import client_address, forwarded_chain, parse_networks
from relay.errors import ConfigError

TRUSTED = parse_networks(["127.0.0.1", "10.0.0.0/8", "2001:db8:ffff::/48"])


@pytest.mark.parametrize(
    ("peer", "xff", "expected"),
    [
        # an untrusted peer: the header is ignored
        ("203.0.113.7", "198.51.100.1", "203.0.113.7"),
        # one trusted proxy: the hop it appended
        ("127.0.0.1", "198.51.100.1", "198.51.100.1"),
        # a visitor's own header to the left of the real hop is never reached
        ("127.0.0.1", "192.0.2.99, 198.51.100.1", "198.51.100.1"),
        # two trusted proxies: skip both, take the first untrusted from the right
        ("127.0.0.1", "198.51.100.1, 10.1.2.3", "198.51.100.1"),
        # ports and IPv6 as proxies write them
        ("127.0.0.1", "198.51.100.1:4711", "198.51.100.1"),
        ("127.0.0.1", "[2001:db8::1]:4711", "2001:db8::1"),
        ("127.0.0.1", "2001:db8::1", "2001:db8::1"),
        ("::ffff:127.0.0.1", "198.51.100.1", "198.51.100.1"),
        # a hop that is not an address stops the walk at the last trusted address
        ("127.0.0.1", "198.51.100.1, unknown", "127.0.0.1"),
        # every hop trusted: the left-most (a request from inside the proxies' network)
        ("127.0.0.1", "10.0.0.2, 10.0.0.3", "10.0.0.2"),
        # trusted peer but no header: the peer itself
        ("127.0.0.1", None, "127.0.0.1"),
        ("127.0.0.1", " , ,", "127.0.0.1"),
        # a peer that is no address (a test client's name) is kept as is
        ("testclient", "198.51.100.1", "testclient"),
    ],
)
def test_x_forwarded_for_table(peer, xff, expected):
    """Each X-Forwarded-For chain resolves to the documented client address."""
    assert expected == client_address(peer, xff, TRUSTED)


@pytest.mark.parametrize(
    ("forwarded", "expected"),
    [
        ("for=198.51.100.1", "198.51.100.1"),
        ('for="[2001:db8::7]:80";proto=https', "2001:db8::7"),
        ("for=192.0.2.99, for=198.51.100.2;by=10.0.0.1", "198.51.100.2"),
        ("For=198.51.100.3", "198.51.100.3"),
        ("proto=https;for=198.51.100.4", "198.51.100.4"),
        ("for=_hidden", "127.0.0.1"),
        ("by=10.0.0.1", "127.0.0.1"),
    ],
)
def test_forwarded_table(forwarded, expected):
    """RFC 7239 Forwarded values resolve the same way when the proxy writes that header."""
    assert expected == client_address("127.0.0.1", forwarded, TRUSTED, rfc7239=True)


def test_no_trusted_proxies_means_the_peer():
    """With the default (no trusted proxies) forwarding headers are ignored."""
    assert client_address("127.0.0.1", "198.51.100.1", ()) == "127.0.0.1"


visitor_ips = st.ip_addresses(v=4).map(str).filter(lambda ip: not ip.startswith(("127.", "10.")))
junk = st.one_of(
    st.ip_addresses().map(str), st.text(alphabet=st.characters(exclude_characters=","))
)


@given(
    spoofed=st.lists(junk, max_size=5),
    real=visitor_ips,
    proxies=st.lists(st.sampled_from(["10.0.0.1", "10.2.3.4", "127.0.0.1"]), max_size=3),
)
def test_whatever_a_visitor_prepends_the_real_address_wins(spoofed, real, proxies):
    """Whatever a visitor writes into X-Forwarded-For, the address the first trusted proxy
    appended is the one relay uses."""
    header = ", ".join([*spoofed, real, *proxies])
    assert real == client_address("127.0.0.1", header, TRUSTED)


@given(st.text(max_size=300), st.booleans())
def test_any_header_text_gives_an_answer(header, rfc7239):
    """Hostile header text never raises: some address string always comes back."""
    assert isinstance(client_address("127.0.0.1", header, TRUSTED, rfc7239=rfc7239), str)


def test_forwarded_chain_keeps_order_client_first():
    """Both headers list hops client first, as RFC 7239 and the de-facto XFF do."""
    assert forwarded_chain("for=1.1.1.1, for=2.2.2.2", rfc7239=True) == ["1.1.1.1", "2.2.2.2"]
    assert [h.strip() for h in forwarded_chain("1.1.1.1, 2.2.2.2")] == ["1.1.1.1", "2.2.2.2"]


def test_trusted_proxies_setting_takes_a_comma_list():
    """RELAY_TRUSTED_PROXIES is a comma-separated list of addresses and CIDRs, normalised."""
    settings = load_settings(trusted_proxies="127.0.0.1, 10.0.0.0/8,2001:db8::/32")
    assert settings.trusted_proxies == ("127.0.0.1/32", "10.0.0.0/8", "2001:db8::/32")
    assert len(settings.trusted_networks) == 3


def test_bad_trusted_proxy_is_a_settings_error():
    """A value that is no address or CIDR names the variable and the value."""
    with pytest.raises(ConfigError, match=r"RELAY_TRUSTED_PROXIES.*'proxy\.local' is not an IP"):
        load_settings(trusted_proxies="127.0.0.1,proxy.local")
