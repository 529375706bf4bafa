"""The route table: every URL relay serves, on one screen."""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from relay.web import (
    challenge,
    example,
    fallback,
    health,
    openapi,
    submit,
    webhooks,
)

Endpoint = Callable[[Request], Awaitable[Response]]


def on_first_use(module: str, name: str) -> Endpoint:
    """`module.name`, imported at the first request it answers rather than at start-up.

    For the admin pages and the consent-withdrawal page: most relays never serve one, and
    their modules (with argon2, the subject actions, the privacy and erasure code) cost ~40 ms
    and a few MB at every start otherwise.
    """
    loaded: list[Endpoint] = []

    async def endpoint(request: Request) -> Response:
        if not loaded:
            loaded.append(getattr(importlib.import_module(module), name))
        return await loaded[0](request)

    endpoint.__name__ = endpoint.__qualname__ = name  # what relay.web.middleware logs
    return endpoint


def _admin(name: str) -> Endpoint:
    return on_first_use("relay.web.admin", name)


def routes() -> list[Route]:
    return [
        Route("/", example.page, methods=["GET"]),  # issue 10: what `make run` shows first
        Route("/example.js", example.script, methods=["GET"]),
        Route("/altcha/{name}", example.widget, methods=["GET"]),
        Route("/f/{form_id}", submit.submit, methods=["POST"]),
        Route("/f/{form_id}", submit.preflight, methods=["OPTIONS"]),
        Route("/f/{form_id}/thanks", submit.thanks, methods=["GET"]),
        # issue 10: what FormspreeProvider project= posts to
        Route("/p/{project}/f/{form_id}", submit.submit, methods=["POST"]),
        Route("/p/{project}/f/{form_id}", submit.preflight, methods=["OPTIONS"]),
        # issue 8: ALTCHA proof-of-work challenges
        Route("/f/{form_id}/challenge", challenge.challenge, methods=["GET"]),
        Route("/f/{form_id}/challenge", challenge.preflight, methods=["OPTIONS"]),
        # issue 5: webhooks, health and metrics
        Route("/webhooks/mailgun", webhooks.mailgun, methods=["POST"]),
        Route("/healthz", health.healthz, methods=["GET"]),
        Route("/readyz", health.readyz, methods=["GET"]),
        Route("/metrics", health.metrics, methods=["GET"]),
        Route("/admin", _admin("home"), methods=["GET"]),
        Route("/admin/login", _admin("login_page"), methods=["GET"]),
        Route("/admin/login", _admin("login"), methods=["POST"]),
        Route("/admin/logout", _admin("logout"), methods=["POST"]),
        Route("/admin/deliveries", _admin("deliveries"), methods=["GET"]),
        Route("/admin/deliveries/{submission_id}", _admin("delivery"), methods=["GET"]),
        Route("/admin/deliveries/{submission_id}/retry", _admin("retry"), methods=["POST"]),
        Route(
            "/admin/deliveries/{submission_id}/{action:str}",
            _admin("quarantine_action"),
            methods=["POST"],
        ),
        Route("/admin/prospects", _admin("prospects"), methods=["GET"]),
        Route("/admin/prospects", _admin("prospect_lookup"), methods=["POST"]),
        Route("/admin/prospects/{action}", _admin("prospect_action"), methods=["POST"]),
        Route("/consent/withdraw", on_first_use("relay.web.consent", "confirm"), methods=["GET"]),
        Route("/consent/withdraw", on_first_use("relay.web.consent", "withdraw"), methods=["POST"]),
        Route("/openapi.json", openapi.openapi, methods=["GET"]),
        # last, so JSON clients get JSON for any other path or method under /f/, /p/
        Route("/f/{rest:path}", fallback.fallback, methods=fallback.ANY),
        Route("/p/{rest:path}", fallback.fallback, methods=fallback.ANY),
    ]
