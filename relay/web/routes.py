"""The route table: every URL relay serves, on one screen."""

from __future__ import annotations

from starlette.routing import Route

from relay.web import consent, submit


def routes() -> list[Route]:
    return [
        Route("/f/{form_id}", submit.submit, methods=["POST"]),
        Route("/f/{form_id}", submit.preflight, methods=["OPTIONS"]),
        Route("/f/{form_id}/thanks", submit.thanks, methods=["GET"]),
        Route("/consent/withdraw", consent.withdraw, methods=["GET", "POST"]),
    ]
