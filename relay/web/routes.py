"""The route table: every URL relay serves, on one screen."""

from __future__ import annotations

from starlette.routing import Route

from relay.web import health, submit, webhooks


def routes() -> list[Route]:
    return [
        Route("/f/{form_id}", submit.submit, methods=["POST"]),
        Route("/f/{form_id}", submit.preflight, methods=["OPTIONS"]),
        Route("/f/{form_id}/thanks", submit.thanks, methods=["GET"]),
        # issue 5: webhooks, health and metrics
        Route("/webhooks/mailgun", webhooks.mailgun, methods=["POST"]),
        Route("/healthz", health.healthz, methods=["GET"]),
        Route("/readyz", health.readyz, methods=["GET"]),
        Route("/metrics", health.metrics, methods=["GET"]),
    ]
