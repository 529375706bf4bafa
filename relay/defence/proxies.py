"""Who the client is: the connecting peer, or behind trusted proxies the right-most untrusted hop.

Pure: strings in, a string out. A request that reaches relay through the reverse proxy of
deploy/ comes from the proxy's address; the visitor's address is in ``X-Forwarded-For``
(``client, proxy1, proxy2``) or RFC 7239 ``Forwarded`` (``for=client, for=proxy1``). Anyone can
send those headers, so relay reads them only when the peer itself is a trusted proxy
(``RELAY_TRUSTED_PROXIES``), and only the one header that proxy writes
(``RELAY_TRUSTED_PROXY_HEADER``): a proxy that sets ``X-Forwarded-For`` passes a visitor's own
``Forwarded`` through untouched, and the other way round. The chain is read from the right:
every hop a trusted proxy appended is skipped, and the first address no trusted proxy vouches
for is the client. Whatever a visitor writes to the left of their own address is never
reached, so they can neither spoof another visitor's address nor poison another's counter.

The address found is used in memory only (rate-limit keys, login attempts); it is never stored.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

#: One ``for=`` parameter of RFC 7239, quoted or not (the value may hold ``[v6]:port``).
_FORWARDED_FOR = re.compile(r'(?:^|[;,\s])for=(?:"([^"]*)"|([^;,\s]*))', re.IGNORECASE)
#: Longest header value read; a longer one is a hostile request, and only its tail matters.
MAX_HEADER_CHARS = 4096


def parse_networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """`RELAY_TRUSTED_PROXIES` entries (addresses, CIDRs) → networks; ValueError names a bad one."""
    out = []
    for entry in entries:
        text = entry.strip()
        try:
            out.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            msg = f"{text!r} is not an IP address or a CIDR such as 10.0.0.0/8"
            raise ValueError(msg) from None
    return tuple(out)


def _address(token: str) -> Address | None:
    """An address as proxies write it: bare, ``[v6]``, ``[v6]:port``, ``v4:port`` or quoted."""
    text = token.strip().strip('"').strip()
    if text.startswith("["):
        end = text.find("]")
        text = text[1:end] if end > 0 else text
    elif text.count(":") == 1:  # v4:port (a bare v6 address has several colons)
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: Address | None, trusted: tuple[Network, ...]) -> bool:
    return address is not None and any(address in network for network in trusted)


def forwarded_chain(header: str | None, *, rfc7239: bool = False) -> list[str]:
    """The hops the proxies recorded in `header`, client first.

    `header` is an ``X-Forwarded-For`` value (``a, b``), or with `rfc7239` a ``Forwarded`` one
    (``for=a;proto=https, for=b``).
    """
    if not header:
        return []
    text = header[-MAX_HEADER_CHARS:]
    if rfc7239:
        return [quoted or bare for quoted, bare in _FORWARDED_FOR.findall(text)]
    return [hop for hop in text.split(",") if hop.strip()]


def client_address(
    peer: str,
    header: str | None,
    trusted: tuple[Network, ...],
    *,
    rfc7239: bool = False,
) -> str:
    """The client's address for this request (see the module docstring).

    - peer not trusted (or no trusted proxies configured): the peer, headers ignored;
    - otherwise walk the recorded hops from the right, skipping trusted proxies; the first
      other hop is the client. A hop that is not an address (``unknown``, an obfuscated
      identifier, garbage a proxy passed through) stops the walk there: the last trusted
      address seen is then the client, since nothing trustworthy says more;
    - every hop trusted: the left-most one (a request from inside the proxies' own network).
    """
    peer_address = _address(peer)
    if peer_address is None:
        return peer  # a test client's name, or a Unix socket: nothing to forward from
    if not _trusted(peer_address, trusted):
        return str(peer_address)
    current: Address = peer_address
    for hop in reversed(forwarded_chain(header, rfc7239=rfc7239)):
        address = _address(hop)
        if address is None:
            return str(current)
        current = address
        if not _trusted(address, trusted):
            return str(address)
    return str(current)
