"""The route table: every URL relay serves, on one screen."""

from __future__ import annotations

from starlette.routing import Route

from relay.web import (
    admin,
    challenge,
    consent,
    example,
    fallback,
    health,
    openapi,
    submit,
    webhooks,
)


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
        Route("/admin", admin.home, methods=["GET"]),
        Route("/admin/login", admin.login_page, methods=["GET"]),
        Route("/admin/login", admin.login, methods=["POST"]),
        Route("/admin/logout", admin.logout, methods=["POST"]),
        Route("/admin/deliveries", admin.deliveries, methods=["GET"]),
        Route("/admin/deliveries/{submission_id}", admin.delivery, methods=["GET"]),
        Route("/admin/deliveries/{submission_id}/retry", admin.retry, methods=["POST"]),
        Route(
            "/admin/deliveries/{submission_id}/{action:str}",
            admin.quarantine_action,
            methods=["POST"],
        ),
        Route("/admin/prospects", admin.prospects, methods=["GET"]),
        Route("/admin/prospects", admin.prospect_lookup, methods=["POST"]),
        Route("/admin/prospects/{action}", admin.prospect_action, methods=["POST"]),
        Route("/consent/withdraw", consent.confirm, methods=["GET"]),
        Route("/consent/withdraw", consent.withdraw, methods=["POST"]),
        Route("/openapi.json", openapi.openapi, methods=["GET"]),
        # last, so JSON clients get JSON for any other path or method under /f/, /p/
        Route("/f/{rest:path}", fallback.fallback, methods=fallback.ANY),
        Route("/p/{rest:path}", fallback.fallback, methods=fallback.ANY),
    ]
