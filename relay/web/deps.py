"""What every endpoint needs, built once by create_app; the store comes from the lifespan."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypedDict, cast

from starlette.requests import Request

from relay.clock import Clock
from relay.config import FormConfig, Settings
from relay.crypto import KeyRing
from relay.defence.pow import ProofKeys
from relay.metrics import Metrics
from relay.web.pages import Pages

if TYPE_CHECKING:
    from relay.dispatcher import Dispatcher
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
    proof_keys: ProofKeys = field(init=False)  # issue 8: ALTCHA keys, derived from keyring

    def __post_init__(self) -> None:
        object.__setattr__(self, "proof_keys", ProofKeys.of(self.keyring))


class State(TypedDict):
    """Resources opened in the lifespan and closed at shutdown."""

    store: Store
    dispatcher: Dispatcher | None  # None when RELAY_DISPATCH_IN_SERVE is off


def deps_of(request: Request) -> Deps:
    return cast("Deps", request.app.state.deps)


def store_of(request: Request) -> Store:
    return cast("Store", request.state.store)
