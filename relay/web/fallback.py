"""Every other request under /f/ and /p/: a JSON answer for JSON clients, never plain text.

Why: Formspree's client library parses every answer as JSON whatever its status, so a
Starlette plain-text 404 or 405 reaches the visitor as "Unexpected token ... is not valid
JSON". Browsers (HTML forms) get relay's error page instead.
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response

from relay.errors import SubmissionRejected
from relay.web.deps import deps_of
from relay.web.submit import Answer, refused

#: Every method a client may use (Starlette defaults a function route to GET only).
ANY = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
#: Paths that exist with other methods: POST/OPTIONS on the form, GET on its thank-you page.
_FORM = re.compile(r"^/(?:p/[^/]+/)?f/([^/]+)$")
_THANKS = re.compile(r"^/f/([^/]+)/thanks$")
#: `endpoint` set to the whole form URL: the client appends /f/{key} a second time.
_DOUBLED = re.compile(r"^/(?:p/[^/]+/)?f/[^/]+/f/[^/]+$")


def _problem(path: str) -> tuple[SubmissionRejected, str | None]:
    """The refusal for a method `path` does not serve, and those it does (for Allow)."""
    if _FORM.match(path):
        return (
            SubmissionRejected(
                405, "METHOD_NOT_ALLOWED", "This address only accepts forms: post the form."
            ),
            "POST, OPTIONS",
        )
    if _THANKS.match(path):
        return (
            SubmissionRejected(405, "METHOD_NOT_ALLOWED", "This page can only be read (GET)."),
            "GET",
        )
    if _DOUBLED.match(path):
        return (
            SubmissionRejected(
                404,
                "FORM_NOT_FOUND",
                "There is no form at this address: give the client relay's base URL as "
                "its endpoint, not the form's URL (it appends /f/<form> itself).",
            ),
            None,
        )
    return SubmissionRejected(404, "FORM_NOT_FOUND", "There is no form with this address."), None


async def fallback(request: Request) -> Response:
    """Any method on any path under /f/ or /p/ that no other route serves."""
    deps = deps_of(request)
    match = _FORM.match(request.url.path)
    form = deps.forms.get(match.group(1)) if match else None
    exc, allow = _problem(request.url.path)
    if exc.status == 405 and match and form is None:
        exc, allow = _problem("/")  # an unknown form is a 404 whatever the method
    refused(deps, form, exc)  # counted and logged like every other refusal (README)
    response = Answer(deps, request, form).rejected(exc)
    if allow is not None:
        response.headers["Allow"] = allow
    return response
