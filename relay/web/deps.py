"""What every endpoint needs, built once by create_app; the store comes from the lifespan."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypedDict, cast

from starlette.requests import Request

from relay.clock import Clock
from relay.config import FormConfig, Settings
from relay.crypto import KeyRing
from relay.defence.pow import ProofKeys
from relay.defence.proxies import Network, client_address
from relay.deliver.pacing import Visitors
from relay.metrics import Metrics
from relay.web.pages import Pages

if TYPE_CHECKING:
    from relay.deliver.dispatcher import Dispatcher
    from relay.store import Store


@dataclass(frozen=True)
class Deps:
    """Immutable application context: settings, forms, keys, pages and the clock."""

    settings: Settings
    forms: dict[str, FormConfig]
    keyring: KeyRing
    pages: Pages
    clock: Clock
    metrics: Metrics = field(default_factory=Metrics)  # issue 5: per-app registry
    trusted_proxies: tuple[Network, ...] = ()
    trusted_proxy_header: str = "x-forwarded-for"
    proof_keys: ProofKeys = field(init=False)  # ALTCHA keys, derived from the key ring
    #: submissions being answered now, which an in-process dispatcher lets go first
    visitors: Visitors = field(default_factory=Visitors)

    def __post_init__(self) -> None:
        object.__setattr__(self, "proof_keys", ProofKeys.of(self.keyring))


class State(TypedDict):
    """Resources opened in the lifespan and closed at shutdown."""

    store: Store
    dispatcher: Dispatcher | None  # None when RELAY_DISPATCH_IN_SERVE is off


def deps_of(request: Request) -> Deps:
    return cast("Deps", request.app.state.deps)


def client_of(request: Request) -> str:
    """The client's address: the peer, or behind a trusted proxy the hop it vouches for.

    In memory only (rate limits, login attempts); relay never stores it.
    """
    peer = request.client.host if request.client else ""
    deps = deps_of(request)
    if not deps.trusted_proxies:
        return peer
    return client_from(deps, peer, request.headers.getlist(deps.trusted_proxy_header))


def client_from(deps: Deps, peer: str, forwarded: list[str]) -> str:
    """The client's address from the peer and the proxy header's values (all of them, in order)."""
    trusted = deps.trusted_proxies
    if not trusted:
        return peer
    chain = ", ".join(forwarded) or None
    return client_address(peer, chain, trusted, rfc7239=deps.trusted_proxy_header == "forwarded")


def store_of(request: Request) -> Store:
    return cast("Store", request.state.store)
