"""GET (or POST) /consent/withdraw?token=…: self-service withdrawal of marketing consent.

No login and no cookie: the token itself (sealed address + expiry, see
relay.consent_link) proves the link was made by relay for one person. The page
confirms the withdrawal and reveals nothing else, not even the address. POST is accepted too,
for one-click unsubscribe headers (RFC 8058). Repeating the request changes nothing.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse

from relay import consent_link, i18n, privacy
from relay.errors import StoreUnavailable
from relay.i18n import N_
from relay.web.deps import deps_of, store_of

HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


def _page(request: Request, status: int, title: str, message: str) -> HTMLResponse:
    deps = deps_of(request)
    language = i18n.pick(  # issue 10: ?lang=, else Accept-Language, else the default
        asked=request.query_params.get("lang"),
        accept_language=request.headers.get("accept-language", ""),
        form_language=None,
        default=deps.settings.default_language,
    )
    html = deps.pages.render(
        "withdraw.html",
        language=language,
        title=i18n.translate(language, title),
        message=i18n.translate(language, message),
    )
    return HTMLResponse(html, status_code=status, headers=HEADERS)


async def withdraw(request: Request) -> HTMLResponse:
    """Record the withdrawal named by the token and confirm it."""
    deps = deps_of(request)
    now = deps.clock()
    token = request.query_params.get("token", "")
    try:
        email = consent_link.email_of_token(deps.keyring, token, now=now)
    except consent_link.InvalidLink as exc:
        return _page(
            request,
            400,
            N_("This link cannot be used"),
            f"{str(exc).capitalize()}. Write to us and we will withdraw your consent by hand.",
        )
    try:
        await privacy.withdraw_consent(
            store_of(request),
            deps.keyring,
            email,
            actor="withdraw_link",
            now=now,
            source="withdraw_link",
        )
    except StoreUnavailable:
        return _page(
            request, 503, N_("Please try again in a moment"), N_("Your request could not be saved.")
        )
    return _page(
        request,
        200,
        N_("You will no longer receive our marketing emails"),
        N_("Your consent is withdrawn. You do not need to do anything else."),
    )
